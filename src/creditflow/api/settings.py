"""What the API server reads from its environment (`CREDITFLOW_*` variables)."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field

log = logging.getLogger("creditflow.api")


def _number(env, name: str, default, kind=float):
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be more than 0, got {raw!r}")
    return value


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    test_clocks: bool = False
    bootstrap_keys: str | None = None
    # Requests per second per API key (token bucket; bursts of up to `rate_burst`).
    rate_limit: float = 1000.0
    rate_burst: float | None = None
    max_body_bytes: int = 256 * 1024
    # How long a request waits for a concurrent one with the same Idempotency-Key.
    idempotency_wait: float = 60.0
    # Absolute base of links (portal sessions); by default the one the request came in on.
    public_url: str | None = None
    webhook_deny: tuple = ()
    # One log line per request (api/observe.py); `serve --no-access-log` turns it off.
    access_log: bool = True

    @property
    def burst(self) -> float:
        return self.rate_burst if self.rate_burst is not None else max(self.rate_limit, 1.0)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        secret = env.get("CREDITFLOW_SECRET_KEY")
        if not secret:
            log.warning("CREDITFLOW_SECRET_KEY is not set: portal links are signed with a random key "
                        "and stop working when this process restarts")
            secret = secrets.token_urlsafe(32)
        from creditflow.auth.service import parse_bootstrap_keys
        from creditflow.events.service import denied_ranges

        parse_bootstrap_keys(env.get("CREDITFLOW_BOOTSTRAP_KEYS"))  # a mistake stops the start, with the reason
        return cls(
            secret_key=secret,
            test_clocks=_flag(env.get("CREDITFLOW_TEST_CLOCKS")),
            bootstrap_keys=env.get("CREDITFLOW_BOOTSTRAP_KEYS"),
            rate_limit=_number(env, "CREDITFLOW_RATE_LIMIT", cls.rate_limit),
            rate_burst=_number(env, "CREDITFLOW_RATE_BURST", None),
            max_body_bytes=_number(env, "CREDITFLOW_MAX_BODY_BYTES", cls.max_body_bytes, int),
            public_url=env.get("CREDITFLOW_PUBLIC_URL") or None,
            webhook_deny=denied_ranges(env.get("CREDITFLOW_WEBHOOK_DENY")),
            access_log=env.get("CREDITFLOW_ACCESS_LOG", "1").strip().lower() not in ("0", "false", "no", "off"),
        )
