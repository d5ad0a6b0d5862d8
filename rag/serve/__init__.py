"""``rag serve``: the pipeline as an HTTP service (an OpenAI-compatible API and a chat page).

    from rag.serve import serve
    serve(Config.load(), host="127.0.0.1", port=8000)    # blocks until Ctrl-C / SIGTERM

The index and the model are loaded before the server listens, so a request never waits for them,
and a store without an index fails at once with the usual one-line error.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from rag.config import Config

SHUTDOWN_GRACE_S = 120  # a local answer takes up to a minute: let the streams in flight end


def build(config: Config, host: str = "127.0.0.1", **options: Any):
    """The ASGI application over ``config``'s index and model (loaded now); refuses a non-loopback
    ``host`` without API keys. ``options``: Limits fields, queue sizes, ``reload_interval_s``."""
    from rag.evaluation.labels import LabelStore
    from rag.serve.app import Limits, Service, create_app
    from rag.serve.auth import ApiKeys, check_binding
    from rag.serve.pipeline import Pipeline

    keys = ApiKeys(config.api_keys)
    check_binding(host, keys)  # before anything loads: the refusal is instant
    limits = Limits(**{k: options.pop(k) for k in list(options) if k in Limits.__dataclass_fields__})
    reload_interval_s = options.pop("reload_interval_s", 2.0)
    pipeline = Pipeline(config, **options)
    pipeline.load_model()
    labels = LabelStore(config.resolved_database_url)
    return create_app(Service(pipeline, keys, labels, limits, reload_interval_s=reload_interval_s))


def serve(config: Config, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> int:
    """Serve until stopped (Ctrl-C or SIGTERM: the streams in flight finish first); returns an exit code."""
    import uvicorn

    app = build(config, host, **options)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    keys = "API keys required" if app.state.service.keys.required else "no API key (this machine only)"
    shown = f"[{host}]" if ":" in host else host
    print(f"Serving {config.storage_dir} on http://{shown}:{port}/ ({keys}); chat page at /, OpenAI API at /v1; "
          "Ctrl-C to stop.", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=SHUTDOWN_GRACE_S))
    # uvicorn stops gracefully on SIGINT / SIGTERM, then raises the signal again for the handler it found:
    # ours notes it, so that a requested stop ends with exit code 0 instead of a death by signal.
    stops: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, _frame: stops.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("Stopped: the answers in flight were finished." if stops else "Stopped.", flush=True)
    return 0
