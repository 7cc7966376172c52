"""Watching the API run: GET /metrics for a metrics key, the counters that move with requests,
spends, renewals and payments, the Request-Id header, and the JSON line per request."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api_kit import SERVER_KEY, SUPPORT_KEY, assert_error
from creditflow.auth.service import create_api_key, parse_bootstrap_keys
from creditflow.kit.logs import configure_logging
from creditflow.worker.runner import tick

SPEND_ROUTE = "/v1/customers/{customer_id}/credits/spend"
CUSTOMER_ROUTE = "/v1/customers/{customer_id}"


def new_metrics_key(api) -> str:
    with api.ctx.db.transaction() as session:
        _, secret = create_api_key(session, "metrics", now=api.ctx.clock.now())
    return secret


@pytest.fixture
def metrics_key(api) -> str:
    return new_metrics_key(api)


def scrape(api, key: str) -> dict:
    """{(sample name, sorted labels): value} from GET /metrics."""
    response = api.get("/metrics", key=key)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def local(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _spend(api, customer_id: str, amount: str, reference: str, **kw):
    return api.request("POST", f"/v1/customers/{customer_id}/credits/spend", content=json.dumps(
        {"amount": amount, "feature": "pro_models", "reference": reference}),
        headers={"Content-Type": "application/json", **kw.pop("headers", {})}, **kw)


# --- the metrics scope --------------------------------------------------------------------------


def test_metrics_are_read_with_a_metrics_key_only(api, metrics_key):
    assert_error(api.get("/metrics", key=None), 401, "unauthorized")
    assert_error(api.get("/metrics", key="sk_nonsense"), 401, "unauthorized")
    assert_error(api.get("/metrics", key=SERVER_KEY), 403, "forbidden")
    assert_error(api.get("/metrics", key=SUPPORT_KEY), 403, "forbidden")
    samples = scrape(api, metrics_key)
    assert ("creditflow_outbox_pending", (("queue", "events"),)) in samples


def test_a_metrics_key_can_not_use_the_v1_api(api, metrics_key):
    assert_error(api.get("/v1/customers", key=metrics_key), 403, "forbidden")
    assert_error(api.post("/v1/customers", {"external_id": "x", "email": "a@example.com"}, key=metrics_key),
                 403, "forbidden")


def test_a_revoked_metrics_key_is_refused(api, metrics_key):
    from creditflow.auth.service import authenticate, revoke_api_key

    with api.ctx.db.transaction() as session:
        key_id = authenticate(session, metrics_key).key_id
        revoke_api_key(session, key_id, now=api.ctx.clock.now())
    assert_error(api.get("/metrics", key=metrics_key), 401, "unauthorized")


def test_the_metrics_scope_is_accepted_by_bootstrap_keys_and_the_cli(tmp_path):
    from typer.testing import CliRunner

    from creditflow.cli import app
    from creditflow.migrations.runner import upgrade

    assert parse_bootstrap_keys("sk_m_0123:metrics") == [("sk_m_0123", "metrics")]
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    created = CliRunner().invoke(app, ["keys", "create", "--scope", "metrics", "--database-url", url])
    assert created.exit_code == 0, created.output
    assert created.output.strip().startswith("sk_metrics_")
    listed = CliRunner().invoke(app, ["keys", "list", "--database-url", url])
    assert " metrics " in listed.output


# --- HTTP requests ------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_and_status(api, metrics_key):
    customer = api.customer()
    before = scrape(api, metrics_key)
    for _ in range(2):
        api.ok("GET", f"/v1/customers/{customer['id']}")
    assert_error(api.get(f"/v1/customers/{customer['id']}", key="sk_wrong"), 401, "unauthorized")
    assert_error(api.get("/v1/customers/cus_nobody"), 404, "not_found")
    assert api.get("/no/such/page/cus_123", key=None).status_code == 404
    after = scrape(api, metrics_key)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "creditflow_http_requests_total"
    assert moved(requests, method="GET", route=CUSTOMER_ROUTE, status="200") == 2
    assert moved(requests, method="GET", route=CUSTOMER_ROUTE, status="401") == 1  # answered by the gate
    assert moved(requests, method="GET", route=CUSTOMER_ROUTE, status="404") == 1
    assert moved(requests, method="GET", route="unmatched", status="404") == 1
    assert moved("creditflow_http_request_duration_seconds_count", method="GET", route=CUSTOMER_ROUTE) == 4
    assert moved("creditflow_http_request_duration_seconds_sum", method="GET", route=CUSTOMER_ROUTE) > 0
    routes = {dict(labels).get("route") for _, labels in after}
    assert not [route for route in routes if route and ("cus_" in route or "/no/such" in route)], routes


def test_every_response_carries_a_request_id(api):
    generated = api.get("/healthz", key=None)
    assert re.fullmatch(r"req_[0-9a-f]{24}", generated.headers["request-id"])
    assert api.get("/healthz", key=None).headers["request-id"] != generated.headers["request-id"]

    echoed = api.get("/v1/customers", headers={"Request-Id": "edge-7f3a:42"})
    assert echoed.status_code == 200 and echoed.headers["request-id"] == "edge-7f3a:42"
    refused = api.get("/v1/customers", key="sk_wrong", headers={"Request-Id": "from-the-gateway"})
    assert refused.status_code == 401 and refused.headers["request-id"] == "from-the-gateway"
    for invalid in ("has spaces", "x" * 129, "", "a\tb"):
        answered = api.get("/healthz", key=None, headers={"Request-Id": invalid})
        assert re.fullmatch(r"req_[0-9a-f]{24}", answered.headers["request-id"]), invalid
    assert api.get("/nowhere", key=None).headers["request-id"].startswith("req_")


# --- spends, renewals, payments -------------------------------------------------------------------


def test_spend_outcomes_are_counted_through_the_spend_path(any_api, monkeypatch):
    from creditflow.api.routes import credits as credit_routes

    api, metrics_key = any_api, new_metrics_key(any_api)

    def route_not_used(*args, **kwargs):
        raise AssertionError("the route served the spend")

    customer = api.subscribed()[0]["id"]
    monkeypatch.setattr(credit_routes, "spend_job", route_not_used)  # the fast path serves these
    before = scrape(api, metrics_key)
    assert _spend(api, customer, "1.5", "job-1").status_code == 200
    assert _spend(api, customer, "2", "job-2").status_code == 200
    assert _spend(api, customer, "1.5", "job-1").status_code == 200  # the same reference again
    assert_error(_spend(api, customer, "100000", "job-3"), 402, "insufficient_credits")
    assert_error(_spend(api, "cus_nobody", "1", "job-4"), 404, "not_found")
    after = scrape(api, metrics_key)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("creditflow_spends_total", outcome="ok") == 2
    assert moved("creditflow_spends_total", outcome="replayed") == 1
    assert moved("creditflow_spends_total", outcome="insufficient_credits") == 1
    assert moved("creditflow_spends_total", outcome="not_found") == 1
    requests = "creditflow_http_requests_total"
    assert moved(requests, method="POST", route=SPEND_ROUTE, status="200") == 3
    assert moved(requests, method="POST", route=SPEND_ROUTE, status="402") == 1
    assert moved(requests, method="POST", route=SPEND_ROUTE, status="404") == 1


def test_a_spend_through_the_route_is_counted_too(api):
    customer = api.subscribed()[0]["id"]
    before = local("creditflow_spends_total", outcome="ok")
    response = _spend(api, customer, "1", "job-routed", headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text
    assert local("creditflow_spends_total", outcome="ok") == before + 1


def test_a_renewal_run_by_the_worker_is_counted(api):
    customer, sub = api.subscribed()
    due = datetime.fromisoformat(sub["current_term_end"].replace("Z", "+00:00"))
    counted = {
        "renewed": ("creditflow_renewals_total", {"outcome": "renewed"}),
        "charged": ("creditflow_payment_attempts_total", {"outcome": "succeeded"}),
        "job": ("creditflow_worker_job_runs_total", {"job": "renewals", "outcome": "ok"}),
        "items": ("creditflow_worker_job_items_total", {"job": "renewals"}),
        "lag": ("creditflow_worker_job_lag_seconds_count", {"job": "renewals"}),
        "late": ("creditflow_worker_job_lag_seconds_sum", {"job": "renewals"}),
    }
    before = {name: local(metric, **labels) for name, (metric, labels) in counted.items()}
    assert tick(api.ctx, due + timedelta(minutes=5)) >= 1
    moved = {name: local(metric, **labels) - before[name] for name, (metric, labels) in counted.items()}
    renewed = api.ok("GET", f"/v1/customers/{customer['id']}/subscription")
    assert renewed["current_term_start"] == sub["current_term_end"]
    assert moved["renewed"] == 1 and moved["charged"] == 1
    assert moved["job"] == 1 and moved["items"] >= 1
    assert moved["lag"] == 1 and 299 <= moved["late"] <= 301  # it ran five minutes after it was due


def test_a_declined_renewal_is_counted_as_failed(api):
    customer, sub = api.subscribed()
    api.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_declined"})
    due = datetime.fromisoformat(sub["current_term_end"].replace("Z", "+00:00"))
    failed = local("creditflow_renewals_total", outcome="payment_failed")
    declined = local("creditflow_payment_attempts_total", outcome="failed")
    tick(api.ctx, due + timedelta(seconds=1))
    assert local("creditflow_renewals_total", outcome="payment_failed") == failed + 1
    assert local("creditflow_payment_attempts_total", outcome="failed") == declined + 1


def test_the_outbox_backlog_is_read_when_scraped(any_api):
    api, metrics_key = any_api, new_metrics_key(any_api)
    samples = scrape(api, metrics_key)
    waiting = value(samples, "creditflow_outbox_pending", queue="events")
    api.customer()  # writes customer.created (and more) to the outbox; no worker runs here
    samples = scrape(api, metrics_key)
    assert value(samples, "creditflow_outbox_pending", queue="events") > waiting
    assert value(samples, "creditflow_outbox_oldest_pending_age_seconds", queue="events") >= 0
    assert ("creditflow_outbox_pending", (("queue", "webhook_deliveries"),)) in samples
    tick(api.ctx)  # fans the events out
    samples = scrape(api, metrics_key)
    assert value(samples, "creditflow_outbox_pending", queue="events") == 0
    assert value(samples, "creditflow_outbox_oldest_pending_age_seconds", queue="events") == 0


def test_undelivered_webhooks_are_the_webhook_backlog(api, metrics_key):
    api.ok("POST", "/v1/webhook_endpoints", {"url": "http://localhost:9/hook"})  # nothing listens there
    api.customer()
    tick(api.ctx)  # fanned out, sent, refused: the deliveries wait for their retry
    samples = scrape(api, metrics_key)
    assert value(samples, "creditflow_outbox_pending", queue="events") == 0
    assert value(samples, "creditflow_outbox_pending", queue="webhook_deliveries") >= 1
    tick(api.ctx, api.ctx.clock.now() + timedelta(days=4))  # given up after three days
    samples = scrape(api, metrics_key)
    assert value(samples, "creditflow_outbox_pending", queue="webhook_deliveries") == 0
    assert value(samples, "creditflow_outbox_oldest_pending_age_seconds", queue="webhook_deliveries") == 0


def test_database_pool_use_is_reported(api, metrics_key):
    samples = scrape(api, metrics_key)
    assert value(samples, "creditflow_db_pool_size") >= 1
    # The scrape itself holds no connection once its backlog query is done.
    assert value(samples, "creditflow_db_pool_checked_out") >= 0


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = configure_logging("info", fmt="json", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def _lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_request_logs_one_json_line_without_the_secret(api, json_log):
    customer = api.subscribed()[0]["id"]
    json_log.truncate(0)
    json_log.seek(0)
    response = _spend(api, customer, "1", "job-logged", headers={"Request-Id": "trace-123"})
    assert response.status_code == 200
    lines = [line for line in _lines(json_log) if line.get("event") == "request"]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["method"] == "POST" and line["route"] == SPEND_ROUTE and line["status"] == 200
    assert line["request_id"] == "trace-123" == response.headers["request-id"]
    assert line["customer_id"] == customer
    assert line["api_key_id"].startswith("key_")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["level"] == "info" and line["logger"] == "creditflow.access" and line["timestamp"].endswith("Z")
    assert SERVER_KEY not in json_log.getvalue()
    assert SERVER_KEY[:12] not in json_log.getvalue()  # not even the key's prefix


def test_refused_requests_are_logged_without_the_key(api, json_log):
    response = api.get("/v1/customers", key="sk_live_leaked_secret_value")
    assert response.status_code == 401
    line = [line for line in _lines(json_log) if line.get("event") == "request"][-1]
    assert (line["route"], line["status"], line["api_key_id"]) == ("/v1/customers", 401, None)
    assert "sk_live_leaked_secret_value" not in json_log.getvalue()


def test_standard_library_records_go_through_the_same_renderer(json_log):
    logging.getLogger("creditflow.somewhere").warning("the %s is %d", "answer", 42)
    line = _lines(json_log)[-1]
    assert (line["event"], line["level"], line["logger"]) == ("the answer is 42", "warning", "creditflow.somewhere")


def test_a_worker_job_run_is_logged(api, json_log):
    customer, sub = api.subscribed()
    due = datetime.fromisoformat(sub["current_term_end"].replace("Z", "+00:00"))
    tick(api.ctx, due + timedelta(seconds=1))
    jobs = {line["job"]: line for line in _lines(json_log) if line.get("event") == "job"}
    assert jobs["renewals"]["items"] >= 1 and jobs["renewals"]["outcome"] == "ok"
    assert jobs["renewals"]["duration_ms"] >= 0 and jobs["renewals"]["logger"] == "creditflow.worker"


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="CREDITFLOW_LOG_FORMAT"):
        configure_logging(fmt="xml")


def test_lines_logged_while_serving_a_request_carry_its_id(api, json_log, monkeypatch):
    from creditflow.api.routes import credits as credit_routes
    from creditflow.kit.errors import NotFound

    def logging_balance(ctx, session, customer_id):
        logging.getLogger("creditflow.credits").warning("looking up %s", customer_id)
        raise NotFound(f"no such customer: {customer_id}")

    monkeypatch.setattr(credit_routes, "get_balance", logging_balance)
    response = api.get("/v1/customers/cus_traced/credits", headers={"Request-Id": "support-ticket-9"})
    assert response.status_code == 404
    inside = [line for line in _lines(json_log) if line["event"] == "looking up cus_traced"]
    assert len(inside) == 1 and inside[0]["request_id"] == "support-ticket-9"
    after = logging.getLogger("creditflow.credits")
    after.warning("outside any request")
    assert "request_id" not in _lines(json_log)[-1]


def test_a_failing_job_run_is_counted_and_logged_as_an_error(api, json_log, monkeypatch):
    from creditflow.worker import runner
    from creditflow.worker.jobs import Job

    def broken(ctx, now, test_clock_id):
        raise RuntimeError("the job broke")

    monkeypatch.setattr(runner, "JOBS", (Job("broken_job", broken),))
    failed = local("creditflow_worker_job_runs_total", job="broken_job", outcome="error")
    with pytest.raises(RuntimeError, match="the job broke"):
        tick(api.ctx)
    assert local("creditflow_worker_job_runs_total", job="broken_job", outcome="error") == failed + 1
    line = [line for line in _lines(json_log) if line.get("job") == "broken_job"][-1]
    assert (line["outcome"], line["level"], line["items"]) == ("error", "error", 0)


def test_a_spend_that_fails_unexpectedly_is_counted_as_an_error(api, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from creditflow.api import fastpath
    from creditflow.credits import spend

    def database_gone(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("the database went away"))

    customer = api.subscribed()[0]["id"]
    monkeypatch.setattr(spend, "run", database_gone)
    monkeypatch.setattr(spend, "_spend_on_sqlite", lambda *args: None)  # the usual spend declines: `run` runs
    monkeypatch.setattr(fastpath, "queue_spend_job", lambda *args, **kwargs: False)  # and the writer takes none
    before = local("creditflow_spends_total", outcome="error")
    assert _spend(api, customer, "1", "job-lost").status_code == 503
    assert local("creditflow_spends_total", outcome="error") == before + 1
