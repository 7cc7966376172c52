"""The Team section of the billing page, in Chromium: the owner invites a member and sets a
monthly limit, the usage chart shows each member's credits this period, and the page opened for
a member shows the pool, their own usage and limit, and no billing actions (nor do billing
pages open in a member's session)."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect
from web_kit import WebEnv, flash, make_staff, shot, sign_in, utc


def _member_link(env: WebEnv, customer_id: str, member_id: str) -> str:
    response = env.http.post("/v1/portal_sessions", json={"customer": customer_id, "member": member_id},
                             headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    assert response.json()["member"] == member_id
    return response.json()["url"]


def test_the_owner_invites_and_sets_a_limit_and_a_member_sees_no_billing(env: WebEnv, page: Page):
    owner = env.shopper(utc(2026, 1, 31, 10), plan="standard")
    owner.open(page)
    section = page.get_by_test_id("team-section")
    expect(section.get_by_test_id("seats")).to_have_text("1 of 3 seats used")

    page.get_by_label("Invite by email").fill("ana@example.com")
    page.get_by_role("button", name="Invite").click()
    expect(flash(page)).to_contain_text("ana@example.com is invited")
    expect(flash(page)).to_contain_text("/team/invitations/")  # the link, shown once to send
    expect(section.get_by_test_id("seats")).to_have_text("2 of 3 seats used")
    members = env.http.get(f"/v1/customers/{owner.id}/members").json()["data"]
    ana = next(m for m in members if m["email"] == "ana@example.com")
    assert ana["status"] == "invited"
    accepted = env.http.post(f"/v1/members/{ana['id']}/accept", json={"external_id": f"ana-{owner.id}"},
                             headers={"Idempotency-Key": uuid.uuid4().hex})
    assert accepted.status_code == 200, accepted.text

    page.reload()
    page.get_by_label("Monthly limit of ana@example.com").fill("500")
    page.locator(f"form[action='/billing/team/members/{ana['id']}']").get_by_role("button", name="Save").click()
    expect(flash(page)).to_contain_text("saved")
    row = page.locator("[data-testid=team-member][data-email='ana@example.com']")
    expect(row.get_by_test_id("member-limit")).to_have_text("500")
    assert env.http.get(f"/v1/members/{ana['id']}").json()["monthly_limit"] == "500"

    spent = env.http.post(f"/v1/customers/{owner.id}/credits/spend",
                          json={"amount": 120, "feature": "standard_models", "reference": f"web-{uuid.uuid4().hex}",
                                "member": ana["id"]}, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert spent.status_code == 200, spent.text
    page.reload()
    expect(row.get_by_test_id("member-used")).to_have_text("120")
    chart = page.get_by_test_id("team-usage-chart")
    expect(chart.locator("[data-testid=team-bar]")).to_have_count(2)  # the owner and Ana
    expect(chart).to_contain_text("ana@example.com")
    shot(page, "billing-team-owner")

    # Ana's page, opened through a link the host app asks for her.
    member_page = page.context.browser.new_context(base_url=env.base_url).new_page()
    member_page.goto(_member_link(env, owner.id, ana["id"]))
    expect(member_page.get_by_role("heading", name="Your team credits")).to_be_visible()
    expect(member_page.get_by_test_id("pool-credits")).to_have_text("7,880")
    expect(member_page.get_by_test_id("member-used")).to_have_text("120")
    expect(member_page.get_by_test_id("member-limit")).to_have_text("500 credits")
    expect(member_page.get_by_test_id("member-left")).to_have_text("380 credits")
    for action in ("Buy credits", "Cancel subscription", "Invite"):
        expect(member_page.get_by_role("button", name=action)).to_have_count(0)
        expect(member_page.get_by_role("link", name=action)).to_have_count(0)
    expect(member_page.locator("article.plan-card")).to_have_count(0)
    expect(member_page.get_by_test_id("team-section")).to_have_count(0)
    shot(member_page, "billing-team-member")
    # Billing pages don't open in her session.
    refused = member_page.goto(env.base_url + "/billing/credits/buy")
    assert refused.status == 403
    refused = member_page.goto(env.base_url + "/billing/invoices")
    assert refused.status == 403
    member_page.context.close()


def test_the_console_lists_a_customers_team_members(env: WebEnv, page: Page):
    owner = env.shopper(utc(2026, 1, 31, 10), plan="standard")
    invited = env.http.post(f"/v1/customers/{owner.id}/members", json={"email": "bo@example.com", "role": "admin"},
                            headers={"Idempotency-Key": uuid.uuid4().hex})
    assert invited.status_code == 201, invited.text
    username, password = make_staff(env)
    sign_in(page, username, password)
    page.goto(f"/console/customers/{owner.id}")
    team = page.get_by_test_id("console-team")
    expect(team).to_contain_text("2 of 3 seats used")
    rows = team.get_by_test_id("console-team-member")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(owner.email)
    expect(rows.nth(0)).to_contain_text("Owner")
    expect(rows.nth(1)).to_contain_text("bo@example.com")
    expect(rows.nth(1)).to_contain_text("Invited")


def test_an_invitation_link_shows_the_invitation_once_and_not_after_it_is_used(env: WebEnv, page: Page):
    owner = env.shopper(utc(2026, 1, 31, 10), plan="standard")
    invited = env.http.post(f"/v1/customers/{owner.id}/members", json={"email": "dee@example.com"},
                            headers={"Idempotency-Key": uuid.uuid4().hex}).json()
    page.goto(invited["invite_url"])
    expect(page.get_by_test_id("invitation")).to_contain_text("dee@example.com")
    expect(page.get_by_test_id("invitation")).to_contain_text("valid until 07 Feb 2026, 10:00 UTC")
    accepted = env.http.post(f"/v1/members/{invited['id']}/accept", json={"external_id": f"dee-{owner.id}"},
                             headers={"Idempotency-Key": uuid.uuid4().hex})
    assert accepted.status_code == 200
    assert page.goto(invited["invite_url"]).status == 404


def test_an_admins_page_manages_the_team_but_not_billing(env: WebEnv, page: Page):
    owner = env.shopper(utc(2026, 1, 31, 10), plan="standard")
    invited = env.http.post(f"/v1/customers/{owner.id}/members", json={"email": "ada@example.com", "role": "admin"},
                            headers={"Idempotency-Key": uuid.uuid4().hex}).json()
    env.http.post(f"/v1/members/{invited['id']}/accept", json={"external_id": f"ada-{owner.id}"},
                  headers={"Idempotency-Key": uuid.uuid4().hex})
    page.goto(_member_link(env, owner.id, invited["id"]))
    expect(page.get_by_role("heading", name="Your team credits")).to_be_visible()
    expect(page.get_by_test_id("team-section")).to_be_visible()
    page.get_by_label("Invite by email").fill("eve@example.com")
    page.get_by_role("button", name="Invite").click()
    expect(flash(page)).to_contain_text("eve@example.com is invited")
    emails = [m["email"] for m in env.http.get(f"/v1/customers/{owner.id}/members").json()["data"]]
    assert "eve@example.com" in emails
    expect(page.get_by_role("button", name="Buy credits")).to_have_count(0)
    assert page.goto(env.base_url + "/billing/card").status == 403
