"""Keys and scopes, the error format, limits, health and the OpenAPI document."""

from __future__ import annotations

from api_kit import SERVER_KEY, SUPPORT_KEY, assert_error, make_api

from creditflow.auth.models import ApiKey
from creditflow.auth.service import hash_key


def test_missing_or_wrong_key_is_401(api):
    assert_error(api.get("/v1/catalog", key=None), 401, "unauthorized", None)
    assert_error(api.get("/v1/catalog", key="sk_nope"), 401, "unauthorized")
    response = api.get("/v1/catalog", key=None, headers={"Authorization": f"Basic {SERVER_KEY}"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_keys_are_stored_hashed(api):
    with api.ctx.db.transaction(readonly=True) as session:
        stored = {key.key_hash: key.scope for key in session.query(ApiKey)}
    assert stored == {hash_key(SERVER_KEY): "server", hash_key(SUPPORT_KEY): "support"}
    assert SERVER_KEY not in repr(stored)


def test_a_server_key_gets_403_forbidden_on_support_actions(api):
    customer = api.customer()
    grant = {"amount": "10", "reason": "sorry"}
    assert_error(api.post(f"/v1/customers/{customer['id']}/credits/grants", grant), 403, "forbidden")
    assert_error(api.post("/v1/refunds", {"invoice": "inv_x", "reason": "dup"}), 403, "forbidden")
    assert api.post(f"/v1/customers/{customer['id']}/credits/grants", grant, key=SUPPORT_KEY).status_code == 201


def test_support_can_do_everything_server_can(api):
    customer = api.customer()
    assert api.get(f"/v1/customers/{customer['id']}", key=SUPPORT_KEY).status_code == 200


def test_malformed_json_is_400(api):
    response = api.post("/v1/customers", content=b'{"external_id": ', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json", None)


def test_unknown_field_is_422_naming_it(api):
    response = api.post("/v1/customers", {"external_id": "x", "email": "a@example.com", "plan": "gold"})
    assert_error(response, 422, "invalid_request", "plan")


def test_wrong_type_and_missing_field_name_the_field(api):
    assert_error(api.post("/v1/customers", {"external_id": 5, "email": "a@example.com"}), 422,
                 "invalid_request", "external_id")
    assert_error(api.post("/v1/customers", {"external_id": "x"}), 422, "invalid_request", "email")
    assert_error(api.post("/v1/customers", [1, 2]), 400, "invalid_json")
    assert_error(api.get("/v1/events?limit=101"), 422, "invalid_request", "limit")


def test_domain_validation_errors_are_422_invalid_request_with_the_finer_reason(api):
    customer = api.customer()
    response = api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "platinum", "term": "monthly"})
    error = assert_error(response, 422, "invalid_request", "plan")
    assert error["reason"] == "unknown_plan"


def test_unknown_route_and_object_are_404(api):
    assert_error(api.get("/v1/nothing_here"), 404, "not_found")
    assert_error(api.get("/v1/customers/cus_missing"), 404, "not_found", "customer")


def test_request_body_over_the_limit_is_413(sqlite_db):
    api = make_api(sqlite_db, max_body_bytes=1000)
    big = {"external_id": "x" * 2000, "email": "a@example.com"}
    assert_error(api.post("/v1/customers", big), 413, "request_too_large")

    def chunks():  # no Content-Length: the limit holds while the body streams in
        yield b'{"external_id": "'
        for _ in range(20):
            yield b"y" * 100
        yield b'", "email": "a@example.com"}'

    response = api.post("/v1/customers", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "request_too_large")


def test_rate_limit_per_key_answers_429_with_retry_after(sqlite_db):
    api = make_api(sqlite_db, rate_limit=1.0, rate_burst=3.0)
    statuses = [api.get("/v1/catalog").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = api.get("/v1/catalog")
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    # Another key has its own bucket.
    assert api.get("/v1/catalog", key=SUPPORT_KEY).status_code == 200


def test_healthz(api):
    response = api.get("/healthz", key=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path):
    from fastapi.testclient import TestClient

    from creditflow.api.app import create_app
    from creditflow.api.settings import Settings
    from creditflow.wiring import build_context
    from creditflow.kit.db import Database

    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    client = TestClient(create_app(build_context(Database(f"sqlite:///{missing}")), Settings(secret_key="k")))
    response = client.get("/healthz")
    assert_error(response, 503, "unavailable")
    # The API answers in its own format too, with Retry-After.
    response = client.get("/v1/catalog", headers={"Authorization": "Bearer sk_x"})
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "1"


def test_openapi_describes_requests_responses_errors_and_auth(api):
    doc = api.get("/openapi.json", key=None).json()
    spend = doc["paths"]["/v1/customers/{customer_id}/credits/spend"]["post"]
    assert set(spend["responses"]) >= {"200", "400", "401", "402", "403", "404", "409", "422", "429"}
    assert spend["responses"]["402"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "requestBody" in spend
    schemas = doc["components"]["schemas"]
    assert schemas["SpendCreate"]["additionalProperties"] is False
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert len(doc["paths"]) >= 33


def test_settings_from_the_environment():
    import pytest

    from creditflow.api.settings import Settings

    settings = Settings.from_env({"CREDITFLOW_SECRET_KEY": "k", "CREDITFLOW_TEST_CLOCKS": "1",
                                  "CREDITFLOW_RATE_LIMIT": "5", "CREDITFLOW_BOOTSTRAP_KEYS": "sk_a:server",
                                  "CREDITFLOW_WEBHOOK_DENY": "10.0.0.0/8"})
    assert (settings.secret_key, settings.test_clocks, settings.rate_limit, settings.burst) == ("k", True, 5.0, 5.0)
    assert Settings.from_env({}).test_clocks is False
    for env, message in (({"CREDITFLOW_RATE_LIMIT": "fast"}, "CREDITFLOW_RATE_LIMIT"),
                         ({"CREDITFLOW_BOOTSTRAP_KEYS": "sk_a:root"}, "unknown scope"),
                         ({"CREDITFLOW_BOOTSTRAP_KEYS": "sk_a"}, "SECRET:SCOPE")):
        with pytest.raises(ValueError, match=message):
            Settings.from_env(env)
