"""Teams through `creditflow.client` against a live server: invite, accept, limits, a member's
spend and ledger entry, removal, a member's billing link, and auto top-up settings."""

from __future__ import annotations

import pytest

from creditflow.client import Client, ConflictError, PaymentRequiredError


def test_teams_through_the_client(server, keys):
    server_key, _support = keys
    with Client(server.url, server_key) as cf:
        owner = cf.customers.create(external_id="team-owner", email="owner@example.com")
        cf.customers.set_payment_method(owner["id"], token="pm_card_ok")
        cf.subscriptions.create(customer=owner["id"], plan="standard", term="monthly")

        invited = cf.teams.invite(owner["id"], email="ana@example.com", role="admin")
        assert invited["status"] == "invited" and invited["invite_url"]
        ana = cf.teams.accept(invited["id"], external_id="ana")
        assert (ana["status"], ana["role"]) == ("active", "admin")
        other = cf.teams.invite(owner["id"], email="bo@example.com")
        with pytest.raises(ConflictError) as full:
            cf.teams.invite(owner["id"], email="cy@example.com")
        assert full.value.code == "seat_limit_reached"
        assert cf.teams.remove(other["id"])["status"] == "revoked"

        listed = cf.teams.list(owner["id"])
        assert (listed["seats_used"], listed["seat_limit"]) == (2, 3)
        assert [m["role"] for m in listed["data"]] == ["owner", "admin"]

        assert cf.teams.update(ana["id"], monthly_limit=50)["monthly_limit"] == "50"
        spent = cf.credits.spend(owner["id"], amount=30, feature="standard_models", reference="c-1",
                                 member=ana["id"])
        assert spent["amount"] == "30"
        with pytest.raises(PaymentRequiredError) as over:
            cf.credits.spend(owner["id"], amount=30, feature="standard_models", reference="c-2", member=ana["id"])
        assert over.value.code == "member_limit_reached"
        hold = cf.credits.hold(owner["id"], amount=20, feature="standard_models", reference="c-3", member=ana["id"])
        cf.credits.release(hold["id"])
        assert cf.teams.get(ana["id"])["used_this_month"] == "30"
        assert cf.teams.update(ana["id"], monthly_limit=None)["monthly_limit"] is None
        assert cf.teams.update(ana["id"], role="member")["monthly_limit"] is None  # left as it was
        entries = cf.credits.ledger(owner["id"], limit=100)["data"]
        assert [e["member"] for e in entries if e["kind"] == "spend"] == [ana["id"]]

        link = cf.operations.create_portal_session(customer=owner["id"], member=ana["id"])
        assert link["member"] == ana["id"] and "/billing/session/" in link["url"]

        settings = cf.teams.set_auto_top_up(owner["id"], enabled=False, threshold="100", bundle="credits_1000",
                                            monthly_max=1)
        assert settings == cf.teams.get_auto_top_up(owner["id"])
        assert (settings["enabled"], settings["threshold"]) == (False, "100")
