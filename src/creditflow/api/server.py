"""Running the API with uvicorn, with the worker in a background thread (`creditflow serve`)."""

from __future__ import annotations

import gc
import os
import threading
from dataclasses import replace

import uvicorn

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.kit.process import limit_malloc_arenas


def build_server_app(ctx, settings: Settings):
    """The API with the billing page and the support console (`create_app` adds them)."""
    return create_app(ctx, settings)


def app_from_env():
    """The app for one uvicorn worker process, configured by the environment alone."""
    from creditflow.kit.logs import configure_logging
    from creditflow.wiring import build_context

    limit_malloc_arenas()  # a new process, before its threads
    configure_logging()  # a new process: its records go through the same renderer
    app = build_server_app(build_context(), Settings.from_env())
    settle_heap()
    return app


def settle_heap() -> None:
    """Put what start-up made (modules, routes, the catalog, the app: about 250,000 objects that
    live as long as the process) out of the garbage collector's reach, once it is all built.
    A full collection then walks only what requests made since. Without this, each full
    collection under load took 150-200 ms on the benchmark's 2-core machine, and every request in
    flight waited for it (the collector holds the interpreter lock)."""
    gc.collect()
    gc.freeze()


def start_worker(ctx, *, interval: float = 1.0) -> tuple[threading.Thread, threading.Event]:
    from creditflow.worker.runner import run_forever

    stop = threading.Event()
    thread = threading.Thread(target=run_forever, kwargs={"ctx": ctx, "interval": interval, "stop": stop},
                              name="creditflow-worker", daemon=True)
    thread.start()
    return thread, stop


def serve(ctx, settings: Settings, *, host: str, port: int, worker: bool = True, workers: int = 1,
          log_level: str = "info", access_log: bool = True) -> None:
    """Serve until interrupted. With `workers` > 1, uvicorn runs that many processes, each
    building its app from the environment (the database URL and secret key are passed on).

    uvicorn leaves logging alone (`log_config=None`): its records go through the handler the
    command configured (kit/logs.py), and the app's own line per request is the access log."""
    settings = replace(settings, access_log=settings.access_log and access_log)
    background = start_worker(ctx) if worker else None
    try:
        if workers > 1:
            os.environ["CREDITFLOW_DATABASE_URL"] = ctx.db.url
            # Every process must sign and check portal links with the same key.
            os.environ["CREDITFLOW_SECRET_KEY"] = settings.secret_key
            os.environ.setdefault("CREDITFLOW_TEST_CLOCKS", "1" if settings.test_clocks else "0")
            os.environ["CREDITFLOW_ACCESS_LOG"] = "1" if settings.access_log else "0"
            uvicorn.run("creditflow.api.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                        log_level=log_level, access_log=False, log_config=None)
        else:
            app = build_server_app(ctx, settings)
            settle_heap()
            uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, log_config=None)
    finally:
        if background is not None:
            background[1].set()
            background[0].join(timeout=10)

