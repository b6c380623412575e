"""The API docs page (`/docs`, Swagger UI) with everything it loads served by the service
itself: it works on a closed network, and what it runs is the version `uv.lock` pins
(the `swagger-ui-bundle-v2` package), not whatever a public CDN serves today.

The assets live under `/docs/assets/swagger-ui-<version>/`: the version is in the URL, so a
browser may keep them for a year (`immutable`) and an upgrade is a new URL. Swagger UI 5
renders OpenAPI 3.1, the version Litestar writes.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

SWAGGER_UI = Path(str(swagger_ui_path))
# Relative to the OpenAPI path (`/docs`), which is public (shared.http.security).
ASSETS = f"/assets/{SWAGGER_UI.name}"
ONE_YEAR = 365 * 24 * 3600


class OfflineSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI at the docs root, loading its script, style and icon from the service."""

    def __init__(self, docs_path: str) -> None:
        assets = f"{docs_path}{ASSETS}"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
            path="/",
        )

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=ASSETS,
                directories=[SWAGGER_UI],
                name="docs-assets",
                cache_control=CacheControlHeader(max_age=ONE_YEAR, public=True, immutable=True),
            )
        )


__all__ = ["OfflineSwaggerUI"]
