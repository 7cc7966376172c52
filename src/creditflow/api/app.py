"""The FastAPI application: `create_app(ctx, settings)`.

Each request is its own unit of work: the services open their transactions through `ctx.db`
(payment use cases commit before calling the gateway, by design). Routes translate between
the request and response schemas and the services, and never query the database themselves.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from creditflow.api import errors, observe
from creditflow.api.fastpath import EstimatePath, SpendPath
from creditflow.api.gate import Gate
from creditflow.api.routes import api_keys
from creditflow.api.routes import catalog, credits, customers, events, invoices, portal, subscriptions, test_clocks
from creditflow.api.routes import coupons
from creditflow.api.routes import teams
from creditflow.api.routes import pricing
from creditflow.api.schemas.health import Health
from creditflow.api.settings import Settings
from creditflow.auth.service import ensure_keys, parse_bootstrap_keys
from creditflow.context import Context
from creditflow.kit.db.heartbeats import last_beat
from creditflow.migrations.runner import head as migrations_head
from creditflow.web.app import include_web

API_PREFIX = "/v1"


def create_app(ctx: Context, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    if settings.bootstrap_keys:
        ensure_keys(ctx.db, parse_bootstrap_keys(settings.bootstrap_keys), now=ctx.clock.now())

    app = FastAPI(
        title="creditflow",
        version="1",
        description="Subscriptions-and-credits billing engine. Authenticate with "
                    "`Authorization: Bearer <secret key>`. POST and DELETE accept an `Idempotency-Key` header.",
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    app.state.settings = settings
    errors.install(app)
    # The credit routes first: a spend is the request the host app makes most, and routes are
    # matched in order.
    for module in (credits, customers, catalog, subscriptions, coupons, invoices, events, portal, test_clocks,
                   api_keys, teams, pricing):
        app.include_router(module.router, prefix=API_PREFIX)
    include_web(app, ctx, secret_key=settings.secret_key)  # the billing page and the support console

    @app.get("/healthz", response_model=Health, tags=["health"],
             responses={503: {"model": errors.ErrorResponse, "description": "The database does not answer"}})
    def healthz():
        try:
            with ctx.db.transaction(readonly=True) as session:
                session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return JSONResponse(errors.error_body("unavailable", "the database does not answer"), status_code=503)
        return Health()

    expected_revision = migrations_head()

    @app.get("/readyz", response_model=Health, tags=["health"],
             responses={503: {"model": errors.ErrorResponse,
                              "description": "Not ready: the database does not answer, its migrations are not "
                                             "current, or no worker ran within the last minute"}})
    def readyz():
        """Ready to serve traffic: for a load balancer's or an orchestrator's readiness probe."""
        try:
            with ctx.db.transaction(readonly=True) as session:
                revision = session.scalar(text("SELECT version_num FROM alembic_version"))
                last_worker = last_beat(session)
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return _not_ready("the database does not answer")
        if revision != expected_revision:
            return _not_ready(f"the database is at migration {revision}, this version needs {expected_revision}: "
                              "run creditflow migrate")
        if last_worker is None or ctx.clock.now() - last_worker > WORKER_SILENCE:
            return _not_ready("no worker ran within the last minute: start creditflow worker")
        return Health()

    # Middleware added last runs first: the gate, then the spend's and the estimate's own paths
    # (api/fastpath.py).
    app.add_middleware(SpendPath, ctx=ctx, prefix=API_PREFIX)
    app.add_middleware(EstimatePath, ctx=ctx, prefix=API_PREFIX)
    app.add_middleware(Gate, ctx=ctx, settings=settings, prefix=API_PREFIX)
    observe.install(app, ctx, settings)  # Request-Id, the request's log line and metrics; GET /metrics
    _describe_gate(app)
    return app


WORKER_SILENCE = timedelta(minutes=1)


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse(errors.error_body("not_ready", reason), status_code=503)


IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "A replay with the same key and body returns the first response and does nothing else; "
                   "the same key with another body gets 409 `idempotency_key_reused`. Kept at least 24 hours.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _describe_gate(app: FastAPI) -> None:
    """Add to the OpenAPI document what the gate does outside the routes: the Idempotency-Key
    header of every POST and DELETE, and bearer authentication on every /v1 operation."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("securitySchemes", {})["HTTPBearer"] = {
            "type": "http", "scheme": "bearer", "description": "A secret API key (server, support or admin scope)"}
        for path, operations in document["paths"].items():
            if not path.startswith(API_PREFIX):
                continue
            for method, operation in operations.items():
                operation.setdefault("security", [{"HTTPBearer": []}])
                if method in ("post", "delete"):
                    operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_HEADER))
                    operation["responses"].setdefault("409", {
                        "description": "`idempotency_key_reused`",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}})
        app.openapi_schema = document
        return document

    app.openapi = openapi
