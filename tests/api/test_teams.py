"""Teams through the API: seats, invitations, members' limits on the shared pool, the ledger's
member, downgrades by the seat policy, and auto top-up settings."""

from __future__ import annotations

import threading
from decimal import Decimal


from api_kit import assert_error


def team_of(api, plan="standard", members=2, **customer_fields):
    """A subscribed owner with `members` active members; (customer, sub, [member, ...])."""
    customer, sub = api.subscribed(plan, **customer_fields)
    joined = []
    for n in range(members):
        invited = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": f"m{n}@example.com"},
                         status=201)
        joined.append(api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": f"{customer['id']}-{n}"}))
    return customer, sub, joined


def spend(api, customer_id, amount, reference, member=None):
    body = {"amount": amount, "feature": "standard_models", "reference": reference}
    if member is not None:
        body["member"] = member
    return api.post(f"/v1/customers/{customer_id}/credits/spend", body)


def test_invite_accept_and_the_seat_limit_counting_the_owner(any_api):
    api = any_api
    customer, _sub = api.subscribed("standard")
    invited = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "bo@example.com", "role": "admin"},
                     status=201)
    assert (invited["object"], invited["status"], invited["role"]) == ("member", "invited", "admin")
    assert "/team/invitations/" in invited["invite_url"]
    second = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "cy@example.com"}, status=201)
    # Standard has 3 seats: the owner and two invitations fill them.
    assert_error(api.post(f"/v1/customers/{customer['id']}/members", {"email": "di@example.com"}), 409,
                 "seat_limit_reached")
    listed = api.ok("GET", f"/v1/customers/{customer['id']}/members")
    assert (listed["seats_used"], listed["seat_limit"]) == (3, 3)
    assert [m["role"] for m in listed["data"]] == ["owner", "admin", "member"]
    joined = api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": "bo-1"})
    assert (joined["status"], joined["external_id"], joined["invite_url"]) == ("active", "bo-1", None)
    # Revoking an invitation frees its seat.
    assert api.ok("DELETE", f"/v1/members/{second['id']}")["status"] == "revoked"
    api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "di@example.com"}, status=201)
    types = [e["type"] for e in api.ok("GET", "/v1/events", params={"customer": customer["id"], "limit": 100})["data"]]
    assert types.count("member.invited") == 3 and types.count("member.joined") == 1
    assert types.count("member.removed") == 1
    invited_events = api.ok("GET", "/v1/events", params={"customer": customer["id"], "type": "member.invited"})["data"]
    token = invited["invite_url"].rsplit("/", 1)[1]
    assert all(token not in str(event["data"]) for event in invited_events)  # kept only hashed


def test_one_person_may_belong_to_several_teams(api):
    first, _s = api.subscribed("standard")
    second, _s = api.subscribed("standard")
    for team in (first, second):
        invited = api.ok("POST", f"/v1/customers/{team['id']}/members", {"email": "sam@example.com"}, status=201)
        assert api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": "sam"})["status"] == "active"


def test_member_is_required_on_a_team_and_refused_elsewhere(any_api):
    api = any_api
    customer, _sub, (member, _other) = team_of(api)
    before = api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"]
    assert_error(spend(api, customer["id"], 5, "no-member"), 422, "member_required", "member")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"] == before
    loner, _s = api.subscribed("standard")
    assert_error(spend(api, loner["id"], 5, "job-1", member=member["id"]), 422, "not_a_team", "member")
    hold = api.post(f"/v1/customers/{customer['id']}/credits/holds",
                    {"amount": 5, "feature": "standard_models", "reference": "h-none"})
    assert_error(hold, 422, "member_required", "member")
    done = spend(api, customer["id"], 5, "job-1", member=member["id"])
    assert done.status_code == 200, done.text
    ledger = api.ok("GET", f"/v1/customers/{customer['id']}/credits/ledger", params={"limit": 100})["data"]
    spent = [e for e in ledger if e["kind"] == "spend"]
    assert [(e["reference"], e["member"]) for e in spent] == [("job-1", member["id"])]
    assert all(e["member"] is None for e in ledger if e["kind"] == "grant")


def test_a_member_at_the_limit_is_refused_while_another_spends(any_api):
    api = any_api
    customer, _sub, (capped, free) = team_of(api)
    updated = api.ok("POST", f"/v1/members/{capped['id']}", {"monthly_limit": "100"})
    assert updated["monthly_limit"] == "100"
    assert spend(api, customer["id"], 60, "a-1", member=capped["id"]).status_code == 200
    error = assert_error(spend(api, customer["id"], 41, "a-2", member=capped["id"]), 402, "member_limit_reached",
                         "member")
    assert "100" in error["message"]
    assert spend(api, customer["id"], 40, "a-3", member=capped["id"]).status_code == 200
    assert spend(api, customer["id"], 500, "b-1", member=free["id"]).status_code == 200
    assert api.ok("GET", f"/v1/members/{capped['id']}")["used_this_month"] == "100"
    # A refund gives the usage back; a hold counts until it is settled or released.
    api.ok("POST", f"/v1/customers/{customer['id']}/credits/refund", {"reference": "a-3"})
    assert api.ok("GET", f"/v1/members/{capped['id']}")["used_this_month"] == "60"
    hold = api.ok("POST", f"/v1/customers/{customer['id']}/credits/holds",
                  {"amount": 40, "feature": "standard_models", "reference": "h-1", "member": capped["id"]}, status=201)
    assert_error(spend(api, customer["id"], 1, "a-4", member=capped["id"]), 402, "member_limit_reached")
    api.ok("POST", f"/v1/holds/{hold['id']}/settle", {"amount": 15})
    assert api.ok("GET", f"/v1/members/{capped['id']}")["used_this_month"] == "75"
    # No limit again.
    api.ok("POST", f"/v1/members/{capped['id']}", {"monthly_limit": None})
    assert spend(api, customer["id"], 1000, "a-5", member=capped["id"]).status_code == 200


def test_suspended_and_removed_members_cannot_spend(api):
    customer, _sub, (one, two) = team_of(api)
    api.ok("POST", f"/v1/members/{one['id']}", {"status": "suspended"})
    assert_error(spend(api, customer["id"], 1, "s-1", member=one["id"]), 403, "member_inactive")
    api.ok("DELETE", f"/v1/members/{two['id']}")
    assert_error(spend(api, customer["id"], 1, "s-2", member=two["id"]), 403, "member_inactive")
    owner = api.ok("GET", f"/v1/customers/{customer['id']}/members")["data"][0]
    assert owner["role"] == "owner"
    assert spend(api, customer["id"], 1, "s-3", member=owner["id"]).status_code == 200
    assert_error(api.delete(f"/v1/members/{owner['id']}"), 409, "owner_role")


def test_sixteen_threads_of_one_member_never_pass_the_limit(any_api):
    api = any_api
    customer, _sub, (member, _other) = team_of(api)
    api.ok("POST", f"/v1/members/{member['id']}", {"monthly_limit": "100"})
    answers = []

    def worker(n):
        for k in range(4):
            response = spend(api, customer["id"], 7, f"t-{n}-{k}", member=member["id"])
            answers.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(200) == 14 and answers.count(402) == 64 - 14  # 14 * 7 = 98 <= 100 < 105
    assert Decimal(api.ok("GET", f"/v1/members/{member['id']}")["used_this_month"]) == 98


def test_a_downgrade_to_fewer_seats_is_refused_until_members_leave(any_api):
    api = any_api
    customer, sub, (one, _two) = team_of(api, plan="standard")
    change = {"plan": "basic", "term": "monthly", "timing": "end_of_period"}
    error = assert_error(api.post(f"/v1/subscriptions/{sub['id']}/change", change), 409, "too_many_members", "plan")
    assert "remove 2" in error["message"]
    api.ok("DELETE", f"/v1/members/{one['id']}")
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/change", change), 409, "too_many_members")


def test_auto_top_up_needs_the_feature(api):
    customer, _sub = api.subscribed("standard")
    body = {"enabled": True, "threshold": "500", "bundle": "credits_1000", "monthly_max": 2}
    assert_error(api.post(f"/v1/customers/{customer['id']}/auto_top_up", body), 403, "feature_not_in_plan")
    top, _sub = api.subscribed("creator")
    settings = api.ok("POST", f"/v1/customers/{top['id']}/auto_top_up", body)
    assert (settings["object"], settings["enabled"], settings["threshold"], settings["monthly_max"]) == (
        "auto_top_up", True, "500", 2)
    assert_error(api.post(f"/v1/customers/{top['id']}/auto_top_up", {**body, "bundle": "nope"}), 422,
                 "invalid_request", "bundle")
    assert_error(api.post(f"/v1/customers/{top['id']}/auto_top_up", {**body, "monthly_max": 0}), 422,
                 "invalid_request", "monthly_max")


def test_an_expired_hold_gives_the_members_usage_back(any_api):
    api = any_api
    clock = api.clock("2026-03-10T10:00:00Z")
    customer = api.customer(test_clock=clock["id"])
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"},
           status=201)
    invited = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "hal@example.com"}, status=201)
    member = api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": f"hal-{customer['id']}"})
    api.ok("POST", f"/v1/members/{member['id']}", {"monthly_limit": 50})
    api.ok("POST", f"/v1/customers/{customer['id']}/credits/holds",
           {"amount": 50, "feature": "standard_models", "reference": "long", "ttl_seconds": 60, "member": member["id"]},
           status=201)
    assert api.ok("GET", f"/v1/members/{member['id']}")["used_this_month"] == "50"
    api.advance(clock["id"], "2026-03-10T10:05:00Z")  # the worker releases the hold as expired
    assert api.ok("GET", f"/v1/members/{member['id']}")["used_this_month"] == "0"
    assert spend(api, customer["id"], 50, "after", member=member["id"]).status_code == 200


def test_an_estimate_may_name_the_member_on_a_team_and_only_there(any_api):
    api = any_api
    customer, _sub, (member, _other) = team_of(api)
    body = {"feature": "image_fast", "options": {"count": 2}}
    url = f"/v1/customers/{customer['id']}/credits/estimate"
    assert api.ok("POST", url, {**body, "member": member["id"]})["amount"] == "20"
    loner, _s = api.subscribed("standard")
    assert_error(api.post(f"/v1/customers/{loner['id']}/credits/estimate", {**body, "member": member["id"]}), 422,
                 "not_a_team", "member")
    other, _s, (stranger, _x) = team_of(api)
    assert_error(api.post(url, {**body, "member": stranger["id"]}), 404, "not_found", "member")


def test_unknown_ids_and_bad_input_are_refused_naming_the_field(api):
    assert_error(api.post("/v1/customers/cus_nope/members", {"email": "a@example.com"}), 404, "not_found")
    assert_error(api.get("/v1/customers/cus_nope/members"), 404, "not_found")
    assert_error(api.get("/v1/members/mem_nope"), 404, "not_found", "member")
    assert_error(api.post("/v1/members/mem_nope/accept", {"external_id": "x"}), 404, "not_found", "member")
    assert_error(api.post("/v1/members/mem_nope", {"monthly_limit": 5}), 404, "not_found", "member")
    assert_error(api.delete("/v1/members/mem_nope"), 404, "not_found", "member")
    customer, _sub = api.subscribed("standard")
    url = f"/v1/customers/{customer['id']}/members"
    assert_error(api.post(url, {"email": "not-an-email"}), 422, "invalid_request", "email")
    assert_error(api.post(url, {"email": "a@example.com", "role": "owner"}), 422, "invalid_request", "role")
    invited = api.ok("POST", url, {"email": "a@example.com"}, status=201)
    assert_error(api.post(url, {"email": "A@example.com"}), 409, "member_exists", "email")
    assert_error(api.post(f"/v1/members/{invited['id']}", {"monthly_limit": "-1"}), 422, "invalid_request",
                 "monthly_limit")
    assert_error(api.post(f"/v1/members/{invited['id']}", {"monthly_limit": "1.0001"}), 422, "invalid_request",
                 "monthly_limit")
    assert_error(api.post(f"/v1/members/{invited['id']}/accept", {}), 422, "invalid_request", "external_id")
    assert api.ok("GET", f"/v1/members/{invited['id']}")["monthly_limit"] is None  # nothing changed
    assert_error(api.post("/v1/portal_sessions", {"customer": customer["id"], "member": invited["id"]}), 404,
                 "not_found", "member")  # an invitation is not yet a member who can open a page


def test_racing_invitations_never_pass_the_seat_limit(any_api):
    api = any_api
    customer, _sub = api.subscribed("standard")  # 3 seats: the owner and two more
    answers = []
    barrier = threading.Barrier(8)

    def invite(n):
        barrier.wait()
        answers.append(api.post(f"/v1/customers/{customer['id']}/members", {"email": f"r{n}@example.com"}).status_code)

    threads = [threading.Thread(target=invite, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201, 201] + [409] * 6
    assert api.ok("GET", f"/v1/customers/{customer['id']}/members")["seats_used"] == 3
