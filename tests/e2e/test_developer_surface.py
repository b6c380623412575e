"""What a client developer meets first: the docs page (working without internet access), the
examples it offers for every request body (valid as they stand), and problem details in
Bahasa Indonesia or English."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlparse
from uuid import uuid4

import httpx

from shared.auth import Role
from tests.helpers import auth

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


# --- problem details in Bahasa Indonesia or English -----------------------------------------


async def test_the_same_problem_in_indonesian_and_english(
    services: dict[str, str], token: Any
) -> None:
    missing = uuid4()
    url = f"{services['registry']}/v1/tenants/35/institutions/{missing}"
    reader = auth(token("35", Role.AUDITOR))
    async with httpx.AsyncClient(timeout=10) as http:
        answers = {
            language: await http.get(url, headers={**reader, **language_header(language)})
            for language in (None, "id", "en", "en;q=0.9, id;q=0.8", "fr-FR", "id;q=0.5, en")
        }
    bodies = {language: problem_of(r, 404) for language, r in answers.items()}
    english, indonesian = bodies["en"], bodies["id"]
    assert english["title"] == "Not found"
    assert english["detail"] == f"institution {missing} not found"
    assert indonesian["title"] == "Tidak ditemukan"
    assert indonesian["detail"] == f"lembaga {missing} tidak ditemukan"
    # Only the words change: the kind, status and where are the same.
    for body in bodies.values():
        assert body["code"] == "not-found"
        assert body["type"] == "about:blank"
        assert body["instance"] == f"/v1/tenants/35/institutions/{missing}"
    # Indonesian by default and for languages the service does not speak; q-values count.
    assert bodies[None] == {**indonesian, "correlation_id": bodies[None]["correlation_id"]}
    assert bodies["fr-FR"]["title"] == "Tidak ditemukan"
    assert bodies["en;q=0.9, id;q=0.8"]["title"] == "Not found"
    assert bodies["id;q=0.5, en"]["title"] == "Not found"
    for language, r in answers.items():
        expected = "en" if bodies[language]["title"] == "Not found" else "id"
        assert r.headers["content-language"] == expected, language
        assert "accept-language" in r.headers["vary"].lower(), language


def language_header(language: str | None) -> dict[str, str]:
    return {} if language is None else {"Accept-Language": language}


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_each_kind_of_problem_has_its_code_in_both_languages(
    services: dict[str, str], token: Any
) -> None:
    registry, hr = services["registry"], services["hr"]
    institutions = f"{registry}/v1/tenants/35/institutions"
    admin = auth(token("35", Role.WILAYAH_ADMIN))
    operator = auth(token("35", Role.PDM_OPERATOR, pdm="3578"))
    valid = {"name": "LKSA Muhammadiyah Wiyung", "kind": "lksa", "pdm": "3578"}

    async with httpx.AsyncClient(timeout=15) as http:
        created = await http.post(institutions, json=valid, headers=admin)
        assert created.status_code == 201, created.text
        one = f"{institutions}/{created.json()['id']}"
        cases: list[tuple[str, int, str, dict[str, Any]]] = [
            (
                "malformed-request",
                400,
                "POST",
                {
                    "url": institutions,
                    "content": b"{",
                    "headers": {"Content-Type": "application/json"},
                },
            ),
            ("unauthenticated", 401, "GET", {"url": institutions}),
            (
                "forbidden",
                403,
                "POST",
                {"url": institutions, "json": valid, "headers": auth(token("35", Role.AUDITOR))},
            ),
            (
                "out-of-scope",
                403,
                "POST",
                {"url": institutions, "json": {**valid, "pdm": "3501"}, "headers": operator},
            ),
            ("not-found", 404, "GET", {"url": f"{institutions}/{uuid4()}"}),
            ("method-not-allowed", 405, "DELETE", {"url": institutions}),
            (
                "conflict",
                409,
                "POST",
                {
                    "url": f"{one}/rename",
                    "json": {"name": "LKSA Baru"},
                    "headers": {"If-Match": '"9"'},
                },
            ),
            (
                "precondition-failed",
                412,
                "GET",
                {"url": institutions, "headers": {"Mpks-Min-Position": "999999999"}},
            ),
            (
                "unsupported-media-type",
                415,
                "POST",
                {"url": institutions, "content": b"x", "headers": {"Content-Type": "text/plain"}},
            ),
            ("validation-failed", 422, "POST", {"url": institutions, "json": {"name": "LKSA"}}),
            (
                "validation-failed",
                422,
                "POST",
                {
                    "url": f"{one}/rename",
                    "json": {"name": "LKSA Baru"},
                    "headers": {"If-Match": "x"},
                },
            ),
            ("rule-broken", 422, "POST", {"url": institutions, "json": {**valid, "pdm": "3171"}}),
            (
                "rule-broken",
                422,
                "POST",
                {
                    "url": f"{hr}/v1/tenants/35/workers",
                    "json": {"full_name": "Anak Kecil", "birth_date": "2020-01-01"},
                },
            ),
        ]
        for code, status, method, request in cases:
            titles = set()
            for language in ("id", "en"):
                headers = {} if code == "unauthenticated" else dict(admin)
                headers.update(request.get("headers", {}), **{"Accept-Language": language})
                r = await http.request(method, **{**request, "headers": headers})
                body = problem_of(r, status)
                assert body["code"] == code, (code, language, r.text)
                assert r.headers["content-language"] == language
                titles.add(body["title"])
            assert len(titles) == 2, (code, titles)


# --- request examples -------------------------------------------------------------------------

# What a command on an existing record needs done to it first (reinstating needs a
# suspension), by what follows the record in its path, as (path suffix, body) in order.
_BEFORE: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "reinstate": [("suspend", {"reason": "Ditangguhkan sebelum diaktifkan kembali"})],
    "revise": [("request-revision", {"remarks": "Mohon lengkapi prosedur pelaporan."})],
    "accreditation/revoke": [
        (
            "accreditation",
            {
                "grade": "A",
                "scores": dict.fromkeys(
                    ("programme", "human_resources", "management", "facilities", "service_results"),
                    90,
                ),
                "decided_on": "2026-01-05",
                "regulation": "Permensos 8/2025",
                "certificate_number": "1/BAN-PS/2026",
            },
        )
    ],
}
_RECORD = re.compile(r"\{(?!tenant\})(\w+)\}")
# Routes whose examples create records (PDM 3579 Kota Batu and its branch 357901, which no
# other module of the session opens): they run first, as a reader of the docs would try them.
_FIRST = ("/v1/tenants/{tenant}/units",)
_ZERO = "00000000-0000-0000-0000-000000000000"


async def test_every_request_body_offers_an_example_that_works_in_province_35(
    services: dict[str, str], token: Any
) -> None:
    # Every role a command route grants in these services, province-wide.
    writer = auth(token("35", Role.WILAYAH_ADMIN, Role.HR_OFFICER, Role.CASE_WORKER))
    # Nobody decides on their own proposal: policies the examples act on come from another.
    proposer = auth(token("35", Role.WILAYAH_ADMIN, sub="another-officer"))
    posted = 0
    async with httpx.AsyncClient(timeout=15) as http:
        for service, base in services.items():
            spec = (await http.get(f"{base}/docs/openapi.json")).json()
            world = _World(http, base, writer, proposer)
            paths = sorted(spec["paths"].items(), key=lambda item: item[0] not in _FIRST)
            for template, item in paths:
                for method, operation in item.items():
                    body = operation.get("requestBody")
                    if body is None:
                        continue
                    where = f"{method.upper()} {template}"
                    examples = body["content"]["application/json"].get("examples")
                    assert examples, f"{where} offers no example"
                    # The docs page starts "Try it out" in the province the examples are for.
                    tenant = next(p for p in operation["parameters"] if p["name"] == "tenant")
                    assert tenant["example"] == "35", where
                    for name, example in examples.items():
                        assert example["summary"], (where, name)
                        path = template.replace("{tenant}", "35")
                        if "/subjects/" in path:
                            # Erasure: a data subject of this service's own.
                            subject = await _data_subject(http, service, base, writer, world)
                            path = _RECORD.sub(subject, path)
                        elif match := _RECORD.search(path):
                            collection = path[: match.start()].rstrip("/").rsplit("/", 1)[-1]
                            record = await world.record(collection)
                            path = path.replace(match.group(0), record)
                            if "{officer_id}" in path:
                                officer = await _appointed_officer(http, base, record, writer)
                                path = path.replace("{officer_id}", officer)
                            suffix = path.split(f"{record}/", 1)[1]
                            for step, step_body in _BEFORE.get(suffix, []):
                                if "certificate_number" in step_body:
                                    step_body = step_body | {"certificate_number": record}
                                done = await http.post(
                                    f"{base}{path.split(record, 1)[0]}{record}/{step}",
                                    json=step_body,
                                    headers=writer,
                                )
                                assert done.status_code in (200, 201), done.text
                        value = await world.fill(example["value"])
                        r = await http.request(method, f"{base}{path}", json=value, headers=writer)
                        assert 200 <= r.status_code < 300, (where, name, r.text)
                        posted += 1
    # registry: register, rename, suspend, reinstate, the units' and policies' commands;
    # cases: receive, erase; hr: register, erase.
    assert posted >= 8


class _World:
    """New records of province 35 for the examples that act on one, made through the API."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base: str,
        writer: dict[str, str],
        proposer: dict[str, str],
    ) -> None:
        self.http = http
        self.base = f"{base}/v1/tenants/35"
        self.writer = writer
        self.proposer = proposer
        self.branches = 0

    async def record(self, collection: str) -> str:
        if collection == "institutions":
            await self._unit("357802", "PCM Jambangan")
            return await self._create(
                "institutions", {"name": "LKSA Muhammadiyah Gubeng", "kind": "lksa", "pdm": "3578"}
            )
        if collection == "units":
            # A branch of its own (merging or closing one used by other examples would break
            # them), beside 357802, the branch the merge and move examples name.
            await self._unit("357802", "PCM Jambangan")
            self.branches += 1
            return await self._create(
                "units",
                {"kind": "pcm", "code": f"3578{50 + self.branches}", "name": "PCM Contoh"},
            )
        if collection == "licences":
            institution = await self.record("institutions")
            return await self._create(
                f"institutions/{institution}/licences",
                {
                    "kind": "operating",
                    "number": "460/1/2024",
                    "issuer": "Dinas Sosial Kota Surabaya",
                    "issued_on": "2024-05-02",
                },
            )
        if collection == "policies":
            await self._unit("3578", "PDM Kota Surabaya")
            return await self._create(
                "policies",
                {
                    "level": "city",
                    "rule": "MPKS rule 268/1.7/A/2023",
                    "title": "Standar layanan AUMSos Kota Surabaya",
                    "summary": "Standar minimum layanan bagi semua AUMSos di Kota Surabaya.",
                    "unit_kind": "pdm",
                    "unit": "3578",
                },
                headers=self.proposer,
            )
        raise AssertionError(f"this test cannot make a record of {collection!r} yet")

    async def fill(self, value: Any) -> Any:
        """The example's body with each zero id (`<thing>_id`) replaced by a new record."""
        if not isinstance(value, dict):
            return value
        filled = dict(value)
        for key, item in value.items():
            if item == _ZERO and key.endswith("_id"):
                filled[key] = await self.record(f"{key.removesuffix('_id')}s")
        return filled

    async def _unit(self, code: str, name: str) -> None:
        """Opens the unit (and its PDM) unless an earlier example or record did (a second
        open is 409)."""
        if len(code) > 4:
            await self._unit(code[:4], "PDM Kota Surabaya")
        kind = "pdm" if len(code) == 4 else "pcm"
        r = await self.http.post(
            f"{self.base}/units",
            json={"kind": kind, "code": code, "name": name},
            headers=self.writer,
        )
        assert r.status_code in (201, 409), r.text

    async def _create(
        self, collection: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> str:
        r = await self.http.post(
            f"{self.base}/{collection}", json=body, headers=headers or self.writer
        )
        assert r.status_code == 201, r.text
        record: str = r.json()["id"]
        return record


async def _data_subject(
    http: httpx.AsyncClient, service: str, base: str, headers: dict[str, str], world: _World
) -> str:
    """A new data subject of `service`: a worker (the subject of its name) or a complainant."""
    if service == "hr":
        r = await http.post(
            f"{base}/v1/tenants/35/workers",
            json={"full_name": "Siti Aminah", "birth_date": "1990-03-04"},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        worker: str = r.json()["id"]
        return worker
    if service == "registry":
        # An officer (the subject of their name, NIK and phone).
        institution = await world.record("institutions")
        return await _appointed_officer(http, base, institution, headers)
    assert service == "cases", f"{service} has no data subjects this test can make"
    r = await http.post(
        f"{base}/v1/tenants/35/complaints",
        json={"channel": "phone", "summary": "Laporan anak asuh.", "complainant_name": "Budi"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    view = await http.get(
        f"{base}/v1/tenants/35/complaints/{r.json()['id']}",
        headers={**headers, "Mpks-Min-Position": r.headers["Mpks-Position"]},
    )
    subject: str = view.json()["complainant_subject"]
    return subject


async def _appointed_officer(
    http: httpx.AsyncClient, base: str, institution: str, headers: dict[str, str]
) -> str:
    """A secretary of `institution`, appointed now: their id."""
    officers = f"{base}/v1/tenants/35/institutions/{institution}/officers"
    r = await http.post(
        officers,
        json={
            "role": "secretary",
            "full_name": "Ahmad Fauzi",
            "nik": "3578010101800001",
            "term_start": "2025-01-01",
            "term_end": "2029-12-31",
            "reason": "SK PDM Surabaya No. 7/2026",
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    listed = await http.get(
        officers, headers={**headers, "Mpks-Min-Position": r.headers["Mpks-Position"]}
    )
    officer: str = listed.json()[0]["id"]
    return officer
