"""Posted forms are bounded: too many fields answers 400, a field too big 413, each as an HTML
error page, before any handler runs, so nothing is changed. Driven over HTTP (the real app, no
browser), on the billing page and in the console."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.credits.models import CreditLot
from creditflow.customer.service import create_customer
from creditflow.kit.clock import FixedClock
from creditflow.payment.sandbox import SandboxGateway
from creditflow.support import service as support
from creditflow.web.security import MAX_FORM_FIELDS, MAX_FORM_PART_BYTES

NOW = datetime(2026, 1, 31, 10, tzinfo=timezone.utc)
SERVER_KEY = "sk_test_server_forms_0123456789"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(db):
    ctx = Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(NOW))
    settings = replace(Settings(), secret_key="forms-secret", bootstrap_keys=f"{SERVER_KEY}:server")
    return create_app(ctx, settings)


def _too_many_fields(csrf: str, **fields: str) -> dict:
    return {"csrf_token": csrf, **fields, **{f"f{i}": "x" for i in range(MAX_FORM_FIELDS)}}


def _too_big(csrf: str, **fields: str) -> dict:
    return {"csrf_token": csrf, **fields, "reason": "x" * (MAX_FORM_PART_BYTES + 1)}


def _assert_error_page(response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Nothing was changed" in response.text
    assert "Content-Security-Policy" in response.headers


def test_the_billing_page_refuses_a_form_too_large_and_changes_nothing(app):
    api = TestClient(app, headers={"Authorization": f"Bearer {SERVER_KEY}"})
    customer = api.post("/v1/customers", json={"external_id": "forms", "email": "f@example.com"}).json()
    api.post(f"/v1/customers/{customer['id']}/payment_method", json={"token": "pm_card_ok"})
    sub = api.post("/v1/subscriptions", json={"customer": customer["id"], "plan": "standard", "term": "monthly"})
    assert sub.status_code == 201, sub.text
    link = api.post("/v1/portal_sessions", json={"customer": customer["id"]}).json()["url"]

    browser = TestClient(app, follow_redirects=False)
    opened = browser.get(link.replace("http://testserver", ""))
    assert opened.status_code in (302, 303), opened.text
    csrf = CSRF.search(browser.get("/billing").text).group(1)

    _assert_error_page(browser.post("/billing/cancel", data=_too_many_fields(csrf)), 400)
    _assert_error_page(browser.post("/billing/cancel", data=_too_big(csrf)), 413)
    assert api.get(f"/v1/subscriptions/{sub.json()['id']}").json()["cancel_at_period_end"] is False
    # The same form within the limits does cancel: the refusals above were the limits' doing.
    assert browser.post("/billing/cancel", data={"csrf_token": csrf}).status_code == 303
    assert api.get(f"/v1/subscriptions/{sub.json()['id']}").json()["cancel_at_period_end"] is True


def test_the_console_refuses_a_form_too_large_and_changes_nothing(app, db):
    with db.transaction() as session:
        support.create_support_user(session, username="bob", password="bob password", role="support", now=NOW)
        customer_id = create_customer(app.state.ctx, session, external_id="ext_forms", email="a@example.com").id
    browser = TestClient(app, follow_redirects=False)
    csrf = CSRF.search(browser.get("/console/login").text).group(1)
    login = {"csrf_token": csrf, "username": "bob", "password": "bob password"}
    _assert_error_page(browser.post("/console/login", data={**login, **_too_many_fields(csrf)}), 400)
    assert browser.post("/console/login", data=login).status_code == 303
    csrf = CSRF.search(browser.get("/console").text).group(1)

    promo = f"/console/customers/{customer_id}/promo"
    _assert_error_page(browser.post(promo, data=_too_many_fields(csrf, amount="500", reason="goodwill")), 400)
    _assert_error_page(browser.post(promo, data=_too_big(csrf, amount="500")), 413)
    _assert_error_page(browser.post(promo, data={"csrf_token": csrf, "amount": "500", "reason": "goodwill"},
                                    files={"upload": ("a.txt", b"hello")}), 400)
    with db.transaction(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(CreditLot).where(CreditLot.kind == "promo")) == 0
    assert browser.post(promo, data={"csrf_token": csrf, "amount": "500", "reason": "goodwill"}).status_code == 303
