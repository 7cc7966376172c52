"""Templates, formatting, and the HTML error pages of the billing page and the console."""

from __future__ import annotations

import logging
from collections.abc import Callable
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError
from creditflow.kit.money import format_money

log = logging.getLogger("creditflow.web")

STATIC_DIR = Path(__file__).parent / "static"

environment = Environment(
    loader=PackageLoader("creditflow.web", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Served with every page: nothing but our own stylesheet runs or loads; no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Formatter:
    """How one viewer sees amounts and dates: their currency and time zone."""

    def __init__(self, currency: str, timezone: str = "UTC"):
        self.currency = currency
        self.timezone = timezone
        self._zone = ZoneInfo(timezone)

    def money(self, amount: int, currency: str | None = None) -> str:
        return format_money(int(amount), currency or self.currency)

    def credits(self, value) -> str:
        if isinstance(value, int):
            value = Credits(value)
        elif not isinstance(value, Credits):
            value = Credits.parse(value, allow_negative=True)
        whole, _, frac = str(value).partition(".")
        sign = "-" if whole.startswith("-") else ""
        whole = f"{int(whole.lstrip('-')):,}"
        return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self._zone)

    def date(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return ""
        local = self.local(moment)
        return f"{local.day} {local:%b %Y}"

    def datetime(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return ""
        local = self.local(moment)
        zone = "UTC" if self.timezone == "UTC" else local.tzname()
        return f"{local.day} {local:%b %Y, %H:%M} {zone}"


def render(name: str, context: dict, *, status: int = 200, headers: dict | None = None) -> HTMLResponse:
    html = environment.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def secure(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


# The status of the error page for each category of domain error. Not found stays not found,
# whether the object is missing or someone else's.
STATUS_BY_CATEGORY = {
    "invalid": 422,
    "payment_failed": 402,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
}

STATUS_TITLES = {
    400: "That didn't work",
    401: "Your session has ended",
    403: "Not allowed",
    404: "Page not found",
    409: "That can't be done right now",
    422: "Please check what you entered",
    500: "Something went wrong",
}


def error_page(status: int, message: str, *, home: str | None = None, home_label: str = "Back") -> HTMLResponse:
    area = "console" if (home or "").startswith("/console") else "billing"
    return render("error.html", {"title": STATUS_TITLES.get(status, "Error"), "message": message, "area": area,
                                 "flash": None, "home": home, "home_label": home_label, "status": status},
                  status=status)


class PageRefused(Exception):
    """Raised (by a page's dependencies, mostly) to answer with `response` instead of the page:
    the session has ended, the form's CSRF token is wrong, the user must sign in."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


class HTMLErrorRoute(APIRoute):
    """Routes of the billing page and the console answer errors with an HTML page, whatever
    exception handlers the application around them (the JSON API) installed."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        home = "/console" if self.path.startswith("/console") else "/billing"

        async def route_handler(request: Request) -> Response:
            try:
                return secure(await handler(request))
            except PageRefused as refused:
                return secure(refused.response)
            except RequestValidationError:
                return error_page(400, "That address isn't quite right.", home=home)
            except CreditflowError as exc:
                status = STATUS_BY_CATEGORY.get(exc.category, 400)
                message = ("There's nothing here, or it isn't yours to see." if status == 404
                           else exc.message[:1].upper() + exc.message[1:])
                return error_page(status, message, home=home)
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return error_page(500, "Something went wrong on our side. Please reload the page to see where "
                                       "things stand.", home=home)

        return route_handler
