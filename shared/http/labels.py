"""`GET /v1/labels`: the labels of the service's enums in Bahasa Indonesia and English
(`shared.domain.labels`), for web clients to show what the API's codes mean. Public (no
token: they are the words on the screen, nothing of a tenant), the same for every tenant,
and cacheable: an ETag of the catalogue, which changes only with a release."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from shared.domain.labels import Label, LabelCatalogue

LABELS_PATH = "/v1/labels"
LABELS_MAX_AGE_SECONDS = 3600

# Catalogue name -> code -> its label in each language (`id`, `en`).
Labels = dict[str, dict[str, Label]]


def labels_route(catalogues: Sequence[LabelCatalogue]) -> HTTPRouteHandler:
    body: Labels = {c.name: dict(c.labels) for c in catalogues}
    etag = f'"{hashlib.sha256(msgspec.json.encode(body)).hexdigest()[:16]}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={LABELS_MAX_AGE_SECONDS}"}

    @get(
        LABELS_PATH,
        summary="What the codes of this service's lists mean, in Bahasa Indonesia and English",
        description=(
            "Per catalogue (`institution_type`, `institution_status`, ...), per code, its "
            "label in Bahasa Indonesia (`id`) and English (`en`). No token needed."
        ),
        tags=["labels"],
        security=[],
        sync_to_thread=False,
    )
    def labels(request: Request[Any, Any, Any]) -> Response[Labels | None]:
        if request.headers.get("if-none-match") == etag:
            return Response(None, status_code=304, headers=headers)
        return Response(body, headers=headers)

    return labels
