"""An image generator that bills with creditflow: read it top to bottom.

- Signing in finds (or, the first time, creates) the user's creditflow customer.
- Every job places a hold for its cost, runs, then settles the hold (success) or releases it
  (failure): a job the user can't pay for never starts, and a failed job costs nothing.
- "Billing" sends the user to creditflow's Billing and Subscription page.
- `/webhooks/creditflow` receives creditflow's signed events.

Every call to creditflow goes through `creditflow.client.Client`. Handlers that call it are
plain `def`s: FastAPI runs them on its thread pool, so the blocking client never stalls the
event loop.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import uuid
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import FastAPI, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from creditflow.client import (
    Client,
    ConflictError,
    PaymentRequiredError,
    PermissionDeniedError,
    WebhookSignatureError,
    verify_webhook,
)

# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    creditflow_url: str
    api_key: str  # a `server` key
    webhook_secret: str | None = None  # the `whsec_...` creditflow gave when the endpoint was registered
    session_secret: str = field(default_factory=lambda: secrets.token_hex(32))

    @classmethod
    def from_env(cls) -> "Settings":
        api_key = os.environ.get("CREDITFLOW_API_KEY")
        if not api_key:
            raise SystemExit("Set CREDITFLOW_API_KEY to a creditflow server key (creditflow keys create --scope server)")
        return cls(creditflow_url=os.environ.get("CREDITFLOW_URL", "http://127.0.0.1:8000"), api_key=api_key,
                   webhook_secret=os.environ.get("CREDITFLOW_WEBHOOK_SECRET") or None,
                   session_secret=os.environ.get("EXAMPLE_SESSION_SECRET") or secrets.token_hex(32))


# -- what a job costs --------------------------------------------------------------------------

# The example prices its jobs itself, from this table. creditflow's priced features will do this:
# the catalog will price a feature by its options, and the app will ask creditflow for the cost.
CREDITS_PER_IMAGE = {"standard": 10, "hd": 25}
SIZES = {"standard": ("Standard", 512), "hd": ("HD", 1024)}  # label, pixels
MAX_IMAGES = 4
FEATURE = "standard_models"  # the catalog feature jobs are billed to (the Free plan includes it)
HOLD_SECONDS = 600  # if this process dies mid-job, creditflow gives the held credits back after this


def job_cost(count: int, size: str) -> int:
    return count * CREDITS_PER_IMAGE[size]


# -- the "model" (fake) ------------------------------------------------------------------------


class GenerationFailed(Exception):
    pass


def generate_images(prompt: str, count: int, size: str, *, seed: str, fail: bool) -> list[str]:
    """Placeholder SVGs standing in for a real model's output."""
    if fail:
        raise GenerationFailed("the model crashed (simulated)")
    pixels = SIZES[size][1]
    images = []
    for index in range(count):
        hue = int(hashlib.sha256(f"{seed}/{index}".encode()).hexdigest()[:6], 16) % 360
        images.append(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" viewBox="0 0 100 100">'
            f'<rect width="100" height="100" fill="hsl({hue},65%,55%)"/>'
            f'<circle cx="50" cy="40" r="18" fill="hsl({(hue + 180) % 360},65%,70%)"/>'
            f'<text x="50" y="80" font-size="7" text-anchor="middle" fill="#fff">{escape(prompt[:30])}</text></svg>')
    return images


@dataclass
class Generation:
    id: str  # also the hold's reference in creditflow: one job, one hold
    prompt: str
    count: int
    size: str
    cost: int
    hold: str
    status: str  # "done" or "failed"
    images: list[str] = field(default_factory=list)


# -- the app -----------------------------------------------------------------------------------

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
LAST_GENERATIONS = 6
LAST_EVENTS = 50


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    cf = Client(settings.creditflow_url, settings.api_key)
    generations: dict[str, deque[Generation]] = {}  # by customer id; in memory: it's an example
    events: deque[dict] = deque(maxlen=LAST_EVENTS)  # webhook events received, newest first

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        cf.close()

    app = FastAPI(title="Image generator (creditflow example)", lifespan=lifespan)
    app.add_middleware(SessionMiddleware, secret_key=settings.session_secret, same_site="lax")

    def page(request: Request, template: str, **context) -> Response:
        context["flash"] = request.session.pop("flash", None)
        return TEMPLATES.TemplateResponse(request, template, {"user": request.session.get("name"), **context})

    def back_home(request: Request, message: str | None = None) -> RedirectResponse:
        if message:
            request.session["flash"] = message
        return RedirectResponse(request.url_for("home"), status_code=303)

    # -- signing in ----------------------------------------------------------------------------

    @app.post("/signin")
    def sign_in(request: Request, name: Annotated[str, Form()] = ""):
        name = name.strip()
        if not 1 <= len(name) <= 64:
            return back_home(request, "Type a name of 1 to 64 characters.")
        customer = find_or_create_customer(cf, name)
        request.session.update(name=name, customer=customer["id"])
        return back_home(request)

    @app.post("/signout")
    def sign_out(request: Request):
        request.session.clear()
        return back_home(request)

    # -- the home page and generating ----------------------------------------------------------

    @app.get("/", name="home")
    def home(request: Request):
        customer = request.session.get("customer")
        if customer is None:
            return page(request, "signin.html")
        return page(request, "home.html", balance=cf.credits.balance(customer),
                    generations=list(generations.get(customer, ())), sizes=SIZES,
                    prices=CREDITS_PER_IMAGE, counts=range(1, MAX_IMAGES + 1), default_cost=job_cost(1, "standard"))

    @app.post("/generate")
    def generate(request: Request, prompt: Annotated[str, Form()] = "", count: Annotated[int, Form()] = 1,
                 size: Annotated[str, Form()] = "standard", fail: Annotated[bool, Form()] = False):
        customer = request.session.get("customer")
        if customer is None:
            return back_home(request)
        if not 1 <= count <= MAX_IMAGES or size not in CREDITS_PER_IMAGE:
            return back_home(request, f"Choose 1 to {MAX_IMAGES} images, standard or HD.")
        cost, job = job_cost(count, size), f"job_{uuid.uuid4().hex}"
        prompt = prompt.strip()[:200] or "a lighthouse at dawn"
        try:
            # Reserve the credits before doing any work. The reference is the job's id: a retry of
            # this call (the client retries on network errors) finds the same hold.
            hold = cf.credits.hold(customer, amount=cost, feature=FEATURE, reference=job, ttl_seconds=HOLD_SECONDS)
        except (PaymentRequiredError, PermissionDeniedError) as error:
            # 402 insufficient_credits, or 403 when the plan lacks the feature: creditflow's
            # message says what's wrong, in words the user can act on.
            return back_home(request, error.message)
        try:
            images = generate_images(prompt, count, size, seed=job, fail=fail)
        except GenerationFailed as error:
            cf.credits.release(hold["id"])  # the job failed: give every held credit back
            remember(generations, customer, Generation(job, prompt, count, size, cost, hold["id"], "failed"))
            return back_home(request, f"The generation failed ({error}); the {cost} credits held for it were released.")
        cf.credits.settle(hold["id"], amount=cost)  # the job succeeded: spend what was held
        remember(generations, customer, Generation(job, prompt, count, size, cost, hold["id"], "done", images))
        return back_home(request, f"Generated {count} image{'s' if count > 1 else ''} for {cost} credits.")

    @app.get("/images/{job}/{index}.svg")
    def image(request: Request, job: str, index: int):
        for generation in generations.get(request.session.get("customer"), ()):
            if generation.id == job and 0 <= index < len(generation.images):
                return Response(generation.images[index], media_type="image/svg+xml")
        return PlainTextResponse("not found", status_code=404)

    # -- billing -------------------------------------------------------------------------------

    @app.post("/billing")
    def billing(request: Request):
        """Plans, top-ups, cards and invoices live on creditflow's page: send the user there with
        a one-time link (valid 5 minutes), and a way back here."""
        customer = request.session.get("customer")
        if customer is None:
            return back_home(request)
        portal = cf.operations.create_portal_session(customer=customer, return_url=str(request.url_for("home")))
        return RedirectResponse(portal["url"], status_code=303)

    # -- webhooks ------------------------------------------------------------------------------

    @app.post("/webhooks/creditflow")
    async def receive_webhook(request: Request):
        if not settings.webhook_secret:
            # Not a 2xx: creditflow keeps the delivery and retries it once the secret is set.
            return PlainTextResponse("CREDITFLOW_WEBHOOK_SECRET is not set", status_code=503)
        try:
            # The raw body, exactly as received: the signature is over its bytes.
            event = verify_webhook(await request.body(), request.headers.get("Creditflow-Signature", ""),
                                   settings.webhook_secret)
        except WebhookSignatureError as error:
            return PlainTextResponse(f"refused: {error}", status_code=400)
        if all(seen["id"] != event["id"] for seen in events):  # delivery is at least once
            events.appendleft(event)
        return PlainTextResponse("ok")

    @app.get("/webhooks")
    def received_events(request: Request):
        """What arrived, for the developer (every customer's events: it's an example)."""
        return page(request, "webhooks.html", events=list(events), secret_set=bool(settings.webhook_secret))

    return app


def find_or_create_customer(cf: Client, name: str) -> dict:
    """The user's creditflow customer, created on first sign-in. `external_id` is this app's own
    id for the user (here, the name), so signing in again finds the same customer."""
    found = cf.customers.list(external_id=name)["data"]
    if found:
        return found[0]
    email = (re.sub(r"[^a-z0-9]+", ".", name.lower()).strip(".") or "user") + "@example.com"
    try:
        return cf.customers.create(external_id=name, email=email, name=name)
    except ConflictError:  # customer_exists: a sign-in in another tab created it just now
        return cf.customers.list(external_id=name)["data"][0]


def remember(generations: dict[str, deque[Generation]], customer: str, generation: Generation) -> None:
    generations.setdefault(customer, deque(maxlen=LAST_GENERATIONS)).appendleft(generation)
