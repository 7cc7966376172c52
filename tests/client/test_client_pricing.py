"""The client's calls of priced generations against a real server: estimates, spends and holds by
options, entitlements, limits as exceptions that are not retried, transfers."""

from __future__ import annotations

import asyncio

import pytest

from creditflow.client import AsyncClient, Client, InvalidRequestError, LimitReachedError, RateLimitError


def test_estimate_spend_by_options_entitlements_and_transfers(server, keys):
    server_key, _ = keys
    with Client(server.url, server_key) as cf:
        clock = cf.operations.create_test_clock(frozen_time="2026-03-10T10:00:00Z")
        buyer = cf.customers.create(external_id="buyer", email="b@example.com", test_clock=clock["id"])
        cf.customers.set_payment_method(buyer["id"], token="pm_card_ok")
        cf.subscriptions.create(customer=buyer["id"], plan="ultimate", term="monthly")

        video = {"seconds": 10, "resolution": "1080p"}
        estimate = cf.credits.estimate(buyer["id"], feature="video", options=video)
        assert (estimate["amount"], estimate["unlimited"]) == ("60", False)
        assert sum(float(line["amount"]) for line in estimate["lines"]) == 60
        assert cf.credits.estimate(buyer["id"], feature="image_fast")["unlimited"] is True

        held = cf.credits.hold(buyer["id"], feature="video", options=video, reference="v-1")
        assert (held["amount"], held["queue"]) == ("60", "fast")
        with pytest.raises(LimitReachedError) as refused:
            cf.credits.hold(buyer["id"], feature="video", options={}, reference="v-2")
        assert refused.value.code == "concurrency_limit" and isinstance(refused.value, RateLimitError)
        assert refused.value.resets_at == held["expires_at"]
        entitlement = next(item for item in cf.credits.entitlements(buyer["id"])["features"]
                           if item["feature"] == "video")
        assert (entitlement["concurrent_limit"], entitlement["running"]) == (1, 1)
        cf.credits.settle(held["id"], amount="60")
        spent = cf.credits.spend(buyer["id"], feature="video", options=video, reference="v-3")
        assert (spent["amount"], spent["queue"]) == ("60", "fast")
        with pytest.raises(InvalidRequestError) as wrong:
            cf.credits.spend(buyer["id"], feature="video", options={"seconds": 61}, reference="v-4")
        assert wrong.value.param == "options.seconds"

        creator = cf.customers.create(external_id="creator", email="c@example.com", test_clock=clock["id"])
        sent = cf.credits.transfer(from_customer=buyer["id"], to_customer=creator["id"], amount="7.5",
                                   feature="standard_models", reference="download-1")
        assert (sent["object"], sent["from"], sent["to"], sent["amount"]) == (
            "credit_transfer", buyer["id"], creator["id"], "7.5")
        assert cf.credits.transfer(from_customer=buyer["id"], to_customer=creator["id"], amount="7.5",
                                   feature="standard_models", reference="download-1") == sent
        assert cf.credits.balance(creator["id"])["by_kind"]["earned"] == "7.5"


def test_the_async_client_estimates_too(server, keys):
    server_key, _ = keys

    async def run():
        async with AsyncClient(server.url, server_key) as cf:
            customer = await cf.customers.create(external_id="async-est", email="a@example.com")
            return await cf.credits.estimate(customer["id"], feature="image_fast", options={"count": 3})

    assert asyncio.run(run())["amount"] == "30"
