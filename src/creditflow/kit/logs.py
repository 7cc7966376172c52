"""Logging: structured lines through structlog, with the standard library's records rendered the
same way (uvicorn's, SQLAlchemy's and creditflow's own `logging.getLogger(...)` calls).

    configure_logging(level="info", fmt=None)   once, at an entry point (serve, worker, a CLI command)
    get_logger(name)                            a structlog logger: log.info("event", key=value, ...)

The format is `CREDITFLOW_LOG_FORMAT`: `json` (one JSON object a line), `console` (aligned
text for people), or `auto` (the default: console when stderr is a terminal, JSON otherwise,
which is what log collectors read). Every line has `timestamp` (UTC, ISO 8601), `level`,
`logger` and `event`, plus the current request's `request_id` (`REQUEST_ID`, set by the API for
each request: one context variable, cheaper to set than structlog's bound context) and anything
bound with `structlog.contextvars.bind_contextvars`.
"""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar

import structlog

FORMATS = ("auto", "json", "console")
FORMAT_ENV = "CREDITFLOW_LOG_FORMAT"

# The request being answered in this context (None outside a request).
REQUEST_ID: ContextVar[str | None] = ContextVar("creditflow_request_id", default=None)


def add_request_id(_logger, _method: str, event_dict: dict) -> dict:
    """The current request's id, unless the line names one itself."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


# What every line gets, whether it was logged through structlog or the standard library.
_SHARED = [
    structlog.contextvars.merge_contextvars,
    add_request_id,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _to_stdlib() -> None:
    """structlog loggers hand their events to the standard library's handlers (so that one
    handler renders everything), whether or not `configure_logging` was called."""
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_SHARED, structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


if not structlog.is_configured():  # a host app that configured structlog keeps its configuration
    _to_stdlib()


def log_format(fmt: str | None = None) -> str:
    value = (fmt or os.environ.get(FORMAT_ENV) or "auto").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"{FORMAT_ENV} must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def configure_logging(level: str | int = "info", fmt: str | None = None, stream=None) -> logging.Handler:
    """Send every log record to `stream` (stderr) in the chosen format, replacing the handler a
    previous call installed; returns the handler. Raises ValueError for an unknown format."""
    fmt = log_format(fmt)
    stream = stream if stream is not None else sys.stderr
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    as_json = fmt == "json" or (fmt == "auto" and not interactive)
    renderer = (structlog.processors.JSONRenderer() if as_json
                else structlog.dev.ConsoleRenderer(colors=interactive))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *([structlog.processors.format_exc_info] if as_json else []), renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("creditflow")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "creditflow"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_level(level))
    return handler


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    if level.lower() == "trace":  # uvicorn's level below DEBUG
        return 5
    found = logging.getLevelNamesMapping().get(level.upper())
    if found is None:
        raise ValueError(f"unknown log level {level!r}")
    return found


def get_logger(name: str):
    return structlog.stdlib.get_logger(name)
