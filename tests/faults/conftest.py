"""The fault battery: real `creditflow serve` processes, killed (SIGKILL) at named fault points
(`creditflow.kit.faults`), restarted on the same database, then checked: every attempt
settled, each invoice charged at most once and granted only when paid, the ledger balanced.
Also the network to the gateway broken (`gateway_proxy.py`), the database's connections cut,
and a bounded soak of mixed traffic.

    localstripe_url   session: a localstripe process; its base URL
    stripe_admin      a `stripe.StripeClient` on it, to make cards and read what Stripe took
"""

from __future__ import annotations

import pytest
import stripe
from gateway_proxy import STRIPE_KEY, localstripe


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    with localstripe(tmp_path_factory.mktemp("localstripe")) as url:
        yield url


@pytest.fixture(scope="session")
def stripe_admin(localstripe_url) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": localstripe_url}, max_network_retries=0)
