"""Runs one service in this process with uvicorn."""

from __future__ import annotations

from urllib.parse import urlparse

import uvicorn

from shared.observability import configure_logging
from shared.settings import Settings


def serve(name: str, settings: Settings, *, port: int | None = None) -> int:
    from services.bootstrap import build_app

    configure_logging(name, settings.log_level)
    app = build_app(name, settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=port or urlparse(settings.service_url(name)).port or 80,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0
