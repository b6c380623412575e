"""What a client developer meets first: the docs page (working without internet access), the
examples it offers for every request body (valid as they stand), and problem details in
Bahasa Indonesia or English."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse

import httpx

# The content type each kind of asset must be served with.
_ASSET_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}
_LINKS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_ABSOLUTE_URL = re.compile(r"""\b(?:https?:)?//[^\s"'<>)\\]+""", re.IGNORECASE)


async def test_docs_page_loads_nothing_from_other_hosts(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for base in services.values():
            page = await http.get(f"{base}/docs")
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            origin = urlparse(base).netloc
            # Any URL anywhere in the page (script, style, icon, inline code) is this service.
            for url in _ABSOLUTE_URL.findall(page.text):
                assert urlparse(url).netloc == origin, url
            links = _LINKS.findall(page.text)
            kinds = {urlparse(link).path.rsplit(".", 1)[-1] for link in links}
            assert {"js", "css", "png"} <= kinds, links
            for link in links:
                url = urljoin(f"{base}/docs", link)
                assert urlparse(url).netloc == origin, link
                asset = await http.get(url)
                assert asset.status_code == 200, (link, asset.status_code)
                suffix = "." + urlparse(link).path.rsplit(".", 1)[-1]
                media_type = asset.headers["content-type"].split(";")[0].strip()
                assert media_type in _ASSET_TYPES[suffix], (link, media_type)
                assert len(asset.content) > 0
                # Versioned URLs: a browser keeps them for good.
                cache = asset.headers["cache-control"]
                assert "max-age=31536000" in cache, cache
                assert "public" in cache, cache
                assert "immutable" in cache, cache


async def test_docs_assets_need_no_token_and_unknown_ones_are_not_found(
    services: dict[str, str],
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        page = await http.get(f"{services['hr']}/docs")
        script = next(link for link in _LINKS.findall(page.text) if link.endswith(".js"))
        missing = script.rsplit("/", 1)[0] + "/no-such-file.js"
        r = await http.get(urljoin(services["hr"], missing))
        assert r.status_code == 404, r.text
