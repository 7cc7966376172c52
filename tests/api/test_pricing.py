"""Priced generations over HTTP: estimates, spends and holds by options, unlimited windows,
limits (429 with resets_at, or the relaxed queue), entitlements."""

from __future__ import annotations

import threading

import pytest

from api_kit import assert_error
from creditflow.catalog.loader import default_catalog_path, load_catalog_text

IMAGE_2K_X3_ENHANCED = {"resolution": "2k", "count": 3, "enhancer": True}  # 10 x 1.5 x 3 + 0.5


def _tight(api, *, relaxed: bool = True):
    """The sample catalog with small limits: Standard allows 2 fast images a day (then refuses),
    Ultimate 2 fast videos a day (then the relaxed queue, unless told otherwise)."""
    text = default_catalog_path().read_text(encoding="utf-8")
    for old, new in (
        ("image_fast: {concurrent: 2, fast_per_day: 100, relaxed: true}", "image_fast: {concurrent: 2, fast_per_day: 2}"),
        ("video: {concurrent: 1, fast_per_day: 20, relaxed: true}",
         f"video: {{concurrent: 1, fast_per_day: 2, relaxed: {'true' if relaxed else 'false'}}}"),
    ):
        assert text.count(old) == 1
        text = text.replace(old, new)
    api.ctx.catalog = load_catalog_text(text, source="tight.yaml")


def _estimate(api, cid, feature, options=None):
    body = {"feature": feature} if options is None else {"feature": feature, "options": options}
    return api.post(f"/v1/customers/{cid}/credits/estimate", body)


def _spend(api, cid, reference, feature="image_fast", **body):
    return api.post(f"/v1/customers/{cid}/credits/spend", {"feature": feature, "reference": reference, **body})


def _hold(api, cid, reference, feature="video", **body):
    return api.post(f"/v1/customers/{cid}/credits/holds", {"feature": feature, "reference": reference, **body})


def test_an_estimate_answers_the_amount_and_its_lines(any_api):
    api = any_api
    customer, _ = api.subscribed("standard")
    answer = api.ok("POST", f"/v1/customers/{customer['id']}/credits/estimate",
                    {"feature": "image_fast", "options": IMAGE_2K_X3_ENHANCED})
    assert answer["amount"] == "45.5" and answer["unlimited"] is False
    assert answer["lines"] == [{"what": "image_fast: 10 × 1.5 (resolution 2k) × 3 (count)", "amount": "45"},
                               {"what": "enhancer", "amount": "0.5"}]
    video = api.ok("POST", f"/v1/customers/{customer['id']}/credits/estimate",
                   {"feature": "video", "options": {"seconds": 7, "resolution": "1080p"}})
    assert video["amount"] == "42"
    assert api.ok("POST", f"/v1/customers/{customer['id']}/credits/estimate", {"feature": "image_fast"})["amount"] == "10"
    # nothing was written
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"] == "8000"


@pytest.mark.parametrize("options, param", [
    ({"resolution": "8k"}, "options.resolution"),
    ({"quality": "best"}, "options.quality"),
    ({"count": 9}, "options.count"),
    ({"count": 2.5}, "options.count"),
    ({"enhancer": "yes"}, "options.enhancer"),
])
def test_an_unknown_option_or_a_bad_value_is_422_naming_it(api, options, param):
    customer, _ = api.subscribed("standard")
    assert_error(_estimate(api, customer["id"], "image_fast", options), 422, "invalid_request", param)
    assert_error(_spend(api, customer["id"], "job-1", options=options), 422, "invalid_request", param)
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits/ledger")["data"][-1]["kind"] == "grant"


def test_estimate_refusals(api):
    customer, _ = api.subscribed("standard")
    assert_error(_estimate(api, customer["id"], "telepathy"), 422, "invalid_request", "feature")
    error = assert_error(_estimate(api, customer["id"], "pro_models"), 422, "invalid_request", "feature")
    assert error["reason"] == "feature_not_priced"
    assert_error(_estimate(api, "cus_nope", "image_fast"), 404, "not_found")
    assert_error(api.post(f"/v1/customers/{customer['id']}/credits/estimate",
                          {"feature": "image_fast", "options": {}, "colour": "red"}), 422, "invalid_request", "colour")


def test_a_spend_with_options_is_charged_its_estimate(any_api):
    api = any_api
    customer, _ = api.subscribed("standard")
    cid = customer["id"]
    spent = api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                   {"feature": "image_fast", "options": IMAGE_2K_X3_ENHANCED, "reference": "job-1"})
    assert spent["amount"] == "45.5" and spent["balance"] == "7954.5" and spent["queue"] == "fast"
    # a replay returns the first result; the same reference for other options is refused
    assert api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                  {"feature": "image_fast", "options": IMAGE_2K_X3_ENHANCED, "reference": "job-1"}) == spent
    assert_error(_spend(api, cid, "job-1", options={"count": 4}), 409, "reference_reused", "reference")
    # a hold by options reserves its estimate
    held = api.ok("POST", f"/v1/customers/{cid}/credits/holds",
                  {"feature": "image_fast", "options": {"resolution": "4k"}, "reference": "job-2"})
    assert held["amount"] == "30" and held["status"] == "held"


def test_amount_and_options_together_or_neither_are_refused(api):
    customer, _ = api.subscribed("standard")
    cid = customer["id"]
    assert_error(_spend(api, cid, "j1", amount="10", options={"count": 1}), 422, "invalid_request", "options")
    assert_error(_spend(api, cid, "j2"), 422, "invalid_request", "amount")
    assert_error(_hold(api, cid, "j3", feature="image_fast", amount="10", options={}), 422, "invalid_request",
                 "options")
    assert_error(_spend(api, cid, "j4", feature="pro_models", options={}), 422, "invalid_request", "feature")
    assert api.ok("GET", f"/v1/customers/{cid}/credits")["available"] == "8000"


def test_inside_the_unlimited_window_a_job_costs_nothing_and_is_recorded(any_api):
    api = any_api
    clock = api.clock("2026-01-31T12:00:00Z")
    customer, sub = api.subscribed("ultimate", test_clock=clock["id"])
    cid = customer["id"]
    estimate = api.ok("POST", f"/v1/customers/{cid}/credits/estimate",
                      {"feature": "image_fast", "options": IMAGE_2K_X3_ENHANCED})
    assert estimate["amount"] == "0" and estimate["unlimited"] is True
    assert [line["amount"] for line in estimate["lines"]] == ["45", "0.5", "-45.5"]
    assert estimate["lines"][-1]["what"] == "Unlimited until 2026-02-07T12:00:00Z"
    spent = api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                   {"feature": "image_fast", "options": IMAGE_2K_X3_ENHANCED, "reference": "free-1"})
    assert spent["amount"] == "0" and spent["draws"] == [] and spent["balance"] == "16000"
    also_free = api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                       {"feature": "image_fast", "amount": "12", "reference": "free-2"})
    assert also_free["amount"] == "0"
    ledger = api.ok("GET", f"/v1/customers/{cid}/credits/ledger")["data"]
    assert [(e["kind"], e["amount"], e["reference"]) for e in ledger if e["kind"] == "spend"] == [
        ("spend", "0", "free-1"), ("spend", "0", "free-2")]
    entitlement = _entitlement(api, cid, "image_fast")
    assert entitlement["unlimited_until"] == "2026-02-07T12:00:00Z"

    api.advance(clock["id"], "2026-02-07T11:59:59Z")
    assert _spend(api, cid, "free-3", options={}).json()["amount"] == "0"
    api.advance(clock["id"], "2026-02-07T12:00:00Z")  # the window closes on the second
    assert _spend(api, cid, "paid-1", options={}).json()["amount"] == "10"
    assert _entitlement(api, cid, "image_fast")["unlimited_until"] is None
    # the next billing period opens the next window (Feb 28, the month's end, clamped)
    api.advance(clock["id"], "2026-02-28T12:00:00Z")
    assert _estimate(api, cid, "image_fast").json()["amount"] == "0"
    assert _entitlement(api, cid, "image_fast")["unlimited_until"] == "2026-03-07T12:00:00Z"
    assert _estimate(api, cid, "video").json()["amount"] == "20"  # Ultimate opens no window for video


def _entitlement(api, cid, feature):
    features = api.ok("GET", f"/v1/customers/{cid}/entitlements")["features"]
    return next(item for item in features if item["feature"] == feature)


def test_concurrency_limit_counts_open_holds_and_frees_on_settle_release_and_expiry(any_api):
    api = any_api
    clock = api.clock("2026-03-10T10:00:00Z")
    customer, _ = api.subscribed("ultimate", test_clock=clock["id"])
    cid = customer["id"]
    first = api.ok("POST", f"/v1/customers/{cid}/credits/holds",
                   {"feature": "video", "options": {"seconds": 10}, "reference": "v1", "ttl_seconds": 600})
    assert first["amount"] == "40"
    refused = _hold(api, cid, "v2", options={})
    error = assert_error(refused, 429, "concurrency_limit", "feature")
    assert refused.json()["resets_at"] == "2026-03-10T10:10:00Z"
    assert_error(_spend(api, cid, "v3", feature="video", options={}), 429, "concurrency_limit")
    assert "running" in error["message"]
    assert _entitlement(api, cid, "video")["running"] == 1

    api.ok("POST", f"/v1/holds/{first['id']}/settle", {"amount": "40"})
    second = api.ok("POST", f"/v1/customers/{cid}/credits/holds",
                    {"feature": "video", "options": {}, "reference": "v4", "ttl_seconds": 60})
    api.ok("POST", f"/v1/holds/{second['id']}/release")
    third = api.ok("POST", f"/v1/customers/{cid}/credits/holds",
                   {"feature": "video", "options": {}, "reference": "v5", "ttl_seconds": 60})
    assert_error(_hold(api, cid, "v6", options={}), 429, "concurrency_limit")
    api.advance(clock["id"], "2026-03-10T10:01:00Z")  # the third hold expires: no longer running
    assert api.ok("GET", f"/v1/holds/{third['id']}")["status"] == "expired"
    api.ok("POST", f"/v1/customers/{cid}/credits/holds", {"feature": "video", "options": {}, "reference": "v7"})


def test_daily_limit_refuses_with_resets_at_local_midnight(any_api):
    api = any_api
    _tight(api)
    clock = api.clock("2026-03-10T10:00:00Z")
    customer, _ = api.subscribed("standard", test_clock=clock["id"], timezone="America/New_York")
    cid = customer["id"]
    for reference in ("i1", "i2"):
        assert api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                      {"feature": "image_fast", "options": {}, "reference": reference})["queue"] == "fast"
    refused = _spend(api, cid, "i3", options={})
    assert_error(refused, 429, "daily_limit", "feature")
    assert refused.json()["resets_at"] == "2026-03-11T04:00:00Z"  # midnight in New York (EDT since Mar 8)
    entitlement = _entitlement(api, cid, "image_fast")
    assert (entitlement["fast_per_day"], entitlement["fast_used_today"], entitlement["resets_at"]) == (
        2, 2, "2026-03-11T04:00:00Z")
    api.advance(clock["id"], "2026-03-11T03:59:59Z")
    assert_error(_spend(api, cid, "i4", options={}), 429, "daily_limit")
    api.advance(clock["id"], "2026-03-11T04:00:00Z")
    assert api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                  {"feature": "image_fast", "options": {}, "reference": "i5"})["queue"] == "fast"
    assert _entitlement(api, cid, "image_fast")["fast_used_today"] == 1


def test_past_the_daily_limit_a_relaxed_plan_queues_the_job_relaxed(any_api):
    api = any_api
    _tight(api)
    customer, _ = api.subscribed("ultimate")
    cid = customer["id"]
    queues = [api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                     {"feature": "video", "options": {}, "reference": f"v{i}"})["queue"] for i in range(4)]
    assert queues == ["fast", "fast", "relaxed", "relaxed"]
    assert _entitlement(api, cid, "video")["fast_used_today"] == 2
    # a hold placed on the relaxed queue doesn't count as a fast job when it settles either
    hold = api.ok("POST", f"/v1/customers/{cid}/credits/holds", {"feature": "video", "amount": "5", "reference": "h"})
    assert hold["queue"] == "relaxed"
    assert api.ok("GET", f"/v1/holds/{hold['id']}")["queue"] == "relaxed"
    api.ok("POST", f"/v1/holds/{hold['id']}/settle", {"amount": "5"})
    assert _entitlement(api, cid, "video")["fast_used_today"] == 2


def test_a_settled_hold_counts_as_a_fast_job_an_open_one_does_not(any_api):
    api = any_api
    _tight(api)
    customer, _ = api.subscribed("ultimate")
    cid = customer["id"]
    hold = api.ok("POST", f"/v1/customers/{cid}/credits/holds", {"feature": "video", "amount": "5", "reference": "h"})
    assert hold["queue"] == "fast"
    assert _entitlement(api, cid, "video")["fast_used_today"] == 0
    api.ok("POST", f"/v1/holds/{hold['id']}/settle", {"amount": "3"})
    assert _entitlement(api, cid, "video")["fast_used_today"] == 1


def test_sixteen_racing_holds_leave_exactly_one_job_running(any_api):
    api = any_api
    customer, _ = api.subscribed("ultimate")
    cid = customer["id"]
    statuses: list[int] = []
    barrier = threading.Barrier(16)

    def place(index: int):
        barrier.wait()
        statuses.append(_hold(api, cid, f"race-{index}", options={}).status_code)

    threads = [threading.Thread(target=place, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [429] * 15
    assert _entitlement(api, cid, "video")["running"] == 1
    assert api.ok("GET", f"/v1/customers/{cid}/credits")["held"] == "20"


def test_entitlements_say_what_each_feature_allows(any_api):
    api = any_api
    free = api.customer(payment_method=None)
    features = {item["feature"]: item for item in api.ok("GET", f"/v1/customers/{free['id']}/entitlements")["features"]}
    assert features["standard_models"]["allowed"] is True
    assert (features["video"]["allowed"], features["video"]["reason"]) == (False, "feature_not_in_plan")
    assert (features["pro_models"]["allowed"], features["pro_models"]["reason"]) == (False, "subscription_required")
    customer, _ = api.subscribed("ultimate")
    video = _entitlement(api, customer["id"], "video")
    assert (video["allowed"], video["concurrent_limit"], video["running"], video["fast_per_day"],
            video["fast_used_today"], video["relaxed"]) == (True, 1, 0, 20, 0, True)
    assert video["resets_at"].endswith("T00:00:00Z")
    assert_error(api.get("/v1/customers/cus_nope/entitlements"), 404, "not_found")


def _ledger_clean(api):
    from creditflow.credits.check import check_ledger

    assert api.ctx.db.read(check_ledger) == []


def test_a_transfer_moves_credits_once_as_an_earned_lot_that_free_may_use(any_api):
    api = any_api
    creator = api.customer(payment_method=None)
    buyer, _ = api.subscribed("standard")
    body = {"from": buyer["id"], "to": creator["id"], "amount": "12.5", "feature": "standard_models",
            "reference": "download-1"}
    first = api.post("/v1/credits/transfers", body)
    assert first.status_code == 201, first.text
    sent = first.json()
    assert (sent["object"], sent["from"], sent["to"], sent["amount"], sent["feature"]) == (
        "credit_transfer", buyer["id"], creator["id"], "12.5", "standard_models")
    replay = api.post("/v1/credits/transfers", body)
    assert replay.status_code == 200 and replay.json() == sent
    assert_error(api.post("/v1/credits/transfers", {**body, "amount": "13"}), 409, "reference_reused", "reference")

    assert api.ok("GET", f"/v1/customers/{buyer['id']}/credits")["available"] == "7987.5"
    balance = api.ok("GET", f"/v1/customers/{creator['id']}/credits")
    assert balance["by_kind"]["earned"] == "12.5" and balance["available"] == "112.5"
    lot = next(lot for lot in balance["lots"] if lot["kind"] == "earned")
    assert (lot["id"], lot["expires_at"]) == (sent["lot"], None)
    # Free may spend earned credits (after today's free ones, which expire first)
    spent = api.ok("POST", f"/v1/customers/{creator['id']}/credits/spend",
                   {"amount": "105", "feature": "standard_models", "reference": "use-earned"})
    assert {draw["kind"] for draw in spent["draws"]} == {"free", "earned"}
    # the sender's side can't be refunded
    assert_error(api.post(f"/v1/customers/{buyer['id']}/credits/refund", {"reference": "download-1"}), 409,
                 "transfer_not_refundable")
    _ledger_clean(api)


def test_a_transfer_refusals_move_nothing(any_api):
    api = any_api
    poor = api.customer(payment_method=None)
    other = api.customer(payment_method=None)
    body = {"from": poor["id"], "to": other["id"], "amount": "100.001", "feature": "standard_models",
            "reference": "t-1"}
    assert_error(api.post("/v1/credits/transfers", body), 402, "insufficient_credits")
    assert_error(api.post("/v1/credits/transfers", {**body, "amount": "1", "feature": "pro_models"}), 403,
                 "subscription_required")
    assert_error(api.post("/v1/credits/transfers", {**body, "to": "cus_nope", "amount": "1"}), 404, "not_found", "to")
    assert_error(api.post("/v1/credits/transfers", {**body, "to": poor["id"], "amount": "1"}), 422,
                 "invalid_request", "to")
    assert_error(api.post("/v1/credits/transfers", {**body, "amount": "-1"}), 422, "invalid_request", "amount")
    missing = {key: value for key, value in body.items() if key != "from"}
    assert_error(api.post("/v1/credits/transfers", missing), 422, "invalid_request", "from")
    for customer in (poor, other):
        assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"] == "100"
        assert [e["kind"] for e in api.ok("GET", f"/v1/customers/{customer['id']}/credits/ledger")["data"]] in (
            [], ["grant"])
    _ledger_clean(api)


def test_the_estimate_path_answers_as_the_route_does_without_it(any_api, monkeypatch):
    import json

    from creditflow.api.routes import pricing as pricing_routes

    api = any_api
    customer, _ = api.subscribed("standard")
    path = f"/v1/customers/{customer['id']}/credits/estimate"
    raw = json.dumps({"feature": "image_fast", "options": IMAGE_2K_X3_ENHANCED})
    routed = api.request("POST", path, content=raw, headers={"Content-Type": "application/merge-patch+json"})

    def route_not_used(*args, **kwargs):
        raise AssertionError("the route served the estimate")

    monkeypatch.setattr(pricing_routes, "estimate_job", route_not_used)
    fast = api.request("POST", path, content=raw, headers={"Content-Type": "application/json"})
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    bad = api.request("POST", path, content=json.dumps({"feature": "image_fast", "options": {"count": 99}}),
                      headers={"Content-Type": "application/json"})
    assert_error(bad, 422, "invalid_request", "options.count")


def test_the_catalog_shows_costs_windows_and_limits(api):
    catalog = api.ok("GET", "/v1/catalog")
    image = next(feature for feature in catalog["features"] if feature["code"] == "image_fast")
    assert image["cost"]["base"] == "10"
    assert image["cost"]["options"] == [
        {"name": "resolution", "kind": "choice", "choices": {"1k": "1", "2k": "1.5", "4k": "3"}, "default": "1k",
         "min": None, "max": None, "add": None},
        {"name": "count", "kind": "count", "choices": None, "default": 1, "min": 1, "max": 8, "add": None},
        {"name": "enhancer", "kind": "add_on", "choices": None, "default": False, "min": None, "max": None,
         "add": "0.5"}]
    assert next(f for f in catalog["features"] if f["code"] == "standard_models")["cost"] is None
    creator = next(plan for plan in catalog["plans"] if plan["code"] == "creator")
    assert creator["unlimited"] == {"image_fast": 7, "video": 3}
    assert creator["limits"]["video"] == {"concurrent": 2, "fast_per_day": 50, "relaxed": True}


def test_a_team_s_estimates_and_spends_by_options_name_the_member(any_api):
    api = any_api
    customer, _ = api.subscribed("standard")
    invited = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "m@example.com"}, status=201)
    member = api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": "m-1"})
    cid = customer["id"]
    assert_error(_estimate(api, cid, "image_fast"), 422, "member_required", "member")
    answer = api.ok("POST", f"/v1/customers/{cid}/credits/estimate",
                    {"feature": "image_fast", "options": {"count": 2}, "member": member["id"]})
    assert answer["amount"] == "20"
    spent = api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                   {"feature": "image_fast", "options": {"count": 2}, "reference": "team-1", "member": member["id"]})
    assert spent["amount"] == "20"
    loner, _ = api.subscribed("standard")
    assert_error(api.post(f"/v1/customers/{loner['id']}/credits/estimate",
                          {"feature": "image_fast", "member": member["id"]}), 422, "not_a_team", "member")


def test_a_transfer_records_its_events(api):
    sender, _ = api.subscribed("standard")
    receiver = api.customer(payment_method=None)
    sent = api.ok("POST", "/v1/credits/transfers", {"from": sender["id"], "to": receiver["id"], "amount": "3",
                                                    "feature": "standard_models", "reference": "ev-1"}, status=201)
    [out] = api.ok("GET", "/v1/events", params={"customer": sender["id"], "type": "credits.transferred"})["data"]
    assert (out["data"]["transfer"], out["data"]["to"], out["data"]["amount"]) == (sent["id"], receiver["id"], "3")
    granted = api.ok("GET", "/v1/events", params={"customer": receiver["id"], "type": "credits.granted"})["data"]
    assert [(e["data"]["kind"], e["data"]["from"], e["data"]["lot"]) for e in granted] == [
        ("earned", sender["id"], sent["lot"])]
