"""Checking that a webhook delivery came from creditflow: the `Creditflow-Signature` header is
`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the endpoint's secret>`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from creditflow.client.errors import CreditflowError
from creditflow.client.types import Event

DEFAULT_TOLERANCE = 300  # seconds: older deliveries are refused, against replays


class WebhookSignatureError(CreditflowError):
    """The delivery is not signed with the secret, is malformed, or is too old."""


def verify_webhook(payload: bytes, signature: str, secret: str, *, tolerance: int = DEFAULT_TOLERANCE,
                   now: float | None = None) -> Event:
    """The event of a delivery, once its signature is checked. Pass the raw body as received
    (not re-encoded JSON: the signature is over its exact bytes)."""
    parts = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        sent = parts["v1"]
    except (KeyError, ValueError):
        raise WebhookSignatureError("the signature header is malformed") from None
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sent):
        raise WebhookSignatureError("the signature does not match the body and secret")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookSignatureError(f"the delivery is more than {tolerance} seconds old")
    return json.loads(payload)
