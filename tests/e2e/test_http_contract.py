"""The HTTP contract every service keeps: authentication, tenancy, roles, validation, problem
details, operations endpoints and the events feed, checked against the running services.

Routes are enumerated from the apps themselves, so a route added later is covered by the
authentication and tenancy checks without anyone remembering to list it here.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest

from services.bootstrap import SERVICES, build_app
from shared.auth import Role, mint_dev_token
from shared.settings import DEV_JWT_KEY, Settings
from tests.helpers import auth, eventually

PROBLEM_JSON = "application/problem+json"
ALL_ROLES = tuple(Role)
# The claims a token with every role must carry (pdm_operator and institution_staff are
# limited to a PDM and an institution); a province-wide role among them reaches everything.
ANY_INSTITUTION = "8c0f5a52-5d43-4a53-9a8e-3f3d4b0e1a11"


def every_role(tenant: str) -> dict[str, str]:
    return {"pdm": f"{tenant}71", "institution": ANY_INSTITUTION}


# Building an app only wires it; nothing connects until its lifespan starts, so these URLs
# are never used. The routes do not depend on settings.
_WIRING_ONLY = Settings(database_url="postgresql://unused/unused", nats_url="nats://unused:1")


def _v1_routes() -> list[tuple[str, str, str]]:
    """(service, method, path template) of every `/v1` route of every service."""
    found: list[tuple[str, str, str]] = []
    for name in SERVICES:
        for route in build_app(name, _WIRING_ONLY).routes:
            if not route.path.startswith("/v1/"):
                continue
            # OPTIONS is Litestar's automatic preflight answer, not an API operation.
            for method in sorted(set(getattr(route, "methods", ())) - {"OPTIONS", "HEAD"}):
                found.append((name, method, route.path))
    return found


V1_ROUTES = _v1_routes()
TENANT_ROUTES = [r for r in V1_ROUTES if "{tenant:" in r[2]]
_IDS = [f"{service}:{method}:{path}" for service, method, path in V1_ROUTES]
_TENANT_IDS = [f"{service}:{method}:{path}" for service, method, path in TENANT_ROUTES]
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


def concrete(template: str, tenant: str = "31") -> str:
    """A real path for a route template: the tenant given, a fresh uuid for any id."""

    def fill(match: re.Match[str]) -> str:
        name, kind = match.groups()
        if name == "tenant":
            return tenant
        if kind == "uuid":
            return str(uuid4())
        raise AssertionError(f"no sample value for path parameter {match.group(0)} in {template}")

    return _PARAM.sub(fill, template)


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


def fields_of(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem.get("errors") or []]


async def feed_head(http: httpx.AsyncClient, base: str, tenant: str, token: str) -> int:
    r = await http.get(f"{base}/v1/tenants/{tenant}/events", headers=auth(token))
    assert r.status_code == 200, r.text
    head: int = r.json()["head"]
    return head


async def whole_feed(
    http: httpx.AsyncClient, base: str, tenant: str, token: str
) -> list[dict[str, Any]]:
    """Every event of the tenant from the start, page by page."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await http.get(
            f"{base}/v1/tenants/{tenant}/events",
            params={"after": after, "limit": 1000},
            headers=auth(token),
        )
        assert r.status_code == 200, r.text
        page = r.json()["events"]
        if not page:
            return events
        events.extend(page)
        after = page[-1]["position"]


def _claims(tenant: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "intruder",
        "tenant": tenant,
        "roles": [str(r) for r in ALL_ROLES],
        **every_role(tenant),
        "iat": now,
        "exp": now + 600,
        **overrides,
    }


def bad_credentials(settings: Settings) -> dict[str, dict[str, str]]:
    """Headers a caller must never get past authentication with. The forged ones carry every
    role for tenant 31, so a server that skipped a check would answer something else."""
    expired = mint_dev_token(
        settings,
        sub="late",
        tenant="31",
        roles=list(ALL_ROLES),
        ttl_seconds=-120,
        pdm="3171",
        institution=ANY_INSTITUTION,
    )
    wrong_key = jwt.encode(_claims("31"), "not-" + DEV_JWT_KEY, algorithm="HS256")
    unsigned = jwt.encode(_claims("31"), "", algorithm="none")
    unknown_tenant = jwt.encode(_claims("99"), settings.jwt_secret, algorithm="HS256")
    no_expiry = jwt.encode(
        {k: v for k, v in _claims("31").items() if k != "exp"},
        settings.jwt_secret,
        algorithm="HS256",
    )
    valid = mint_dev_token(
        settings,
        sub="ok",
        tenant="31",
        roles=list(ALL_ROLES),
        pdm="3171",
        institution=ANY_INSTITUTION,
    )
    return {
        "missing": {},
        "bearer without token": {"Authorization": "Bearer"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "wrong scheme": {"Authorization": f"Basic {valid}"},
        "wrong signature": auth(wrong_key),
        "unsigned (alg none)": auth(unsigned),
        "expired": auth(expired),
        "no expiry": auth(no_expiry),
        "unknown tenant claim": auth(unknown_tenant),
    }


async def send(
    http: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    # A body on writes, so a refusal can never be blamed on a missing body.
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    return await http.request(method, url, headers=headers, json=body)


# --- 1. authentication -------------------------------------------------------------------


def test_route_enumeration_sees_the_known_routes() -> None:
    # Guards the enumeration itself: if it silently found nothing, every check below would
    # pass vacuously.
    expected = {
        ("registry", "POST", "/v1/tenants/{tenant:str}/institutions"),
        ("registry", "GET", "/v1/tenants/{tenant:str}/institutions/{institution_id:uuid}"),
        ("registry", "POST", "/v1/tenants/{tenant:str}/institutions/{institution_id:uuid}/rename"),
        ("cases", "POST", "/v1/tenants/{tenant:str}/complaints"),
        ("hr", "POST", "/v1/tenants/{tenant:str}/workers"),
        *((s, "GET", "/v1/tenants/{tenant:str}/events") for s in SERVICES),
        *((s, "GET", "/v1/catalogue/events") for s in SERVICES),
    }
    assert expected <= set(V1_ROUTES)


@pytest.mark.parametrize(("service", "method", "template"), V1_ROUTES, ids=_IDS)
async def test_every_v1_route_refuses_missing_or_invalid_tokens(
    services: dict[str, str], settings: Settings, service: str, method: str, template: str
) -> None:
    path = concrete(template)
    async with httpx.AsyncClient(timeout=10) as http:
        for label, headers in bad_credentials(settings).items():
            r = await send(http, method, services[service] + path, headers)
            assert r.status_code == 401, (label, r.status_code, r.text)
            assert is_problem(r, 401)["instance"] == path
            # Even a refusal before routing's handlers is traceable.
            assert r.headers.get("x-correlation-id"), (label, r.headers)


async def test_missing_token_challenges_with_bearer(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{services['registry']}/v1/tenants/31/institutions")
    is_problem(r, 401)
    assert r.headers["www-authenticate"].lower().startswith("bearer")


# --- 2. tenancy ----------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "method", "template"), TENANT_ROUTES, ids=_TENANT_IDS)
async def test_tenant_routes_refuse_another_tenants_token(
    services: dict[str, str], token: Any, service: str, method: str, template: str
) -> None:
    # Every role, so the refusal can only come from the tenant check.
    other = token("34", *ALL_ROLES, **every_role("34"))
    async with httpx.AsyncClient(timeout=10) as http:
        r = await send(http, method, services[service] + concrete(template, "31"), auth(other))
    body = is_problem(r, 403)
    assert "'34'" in body["detail"], body
    assert "'31'" in body["detail"], body


@pytest.mark.parametrize(("service", "method", "template"), TENANT_ROUTES, ids=_TENANT_IDS)
async def test_national_tokens_read_any_tenant_but_never_write(
    services: dict[str, str], token: Any, service: str, method: str, template: str
) -> None:
    national = token("national", Role.NATIONAL_ADMIN, Role.AUDITOR)
    async with httpx.AsyncClient(timeout=10) as http:
        r = await send(http, method, services[service] + concrete(template, "31"), auth(national))
    if method == "GET":
        # A random id is simply not there; anything else must be served.
        assert r.status_code == (404 if ":uuid}" in template else 200), r.text
    else:
        is_problem(r, 403)


@pytest.mark.parametrize(("service", "method", "template"), TENANT_ROUTES, ids=_TENANT_IDS)
async def test_unknown_tenant_is_not_found(
    services: dict[str, str], token: Any, service: str, method: str, template: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for caller in (
            token("31", *ALL_ROLES, **every_role("31")),
            token("national", Role.NATIONAL_ADMIN),
        ):
            r = await send(http, method, services[service] + concrete(template, "99"), auth(caller))
            body = is_problem(r, 404)
            assert "99" in body["detail"]


async def test_foreign_and_national_writes_leave_the_tenant_log_untouched(
    services: dict[str, str], token: Any
) -> None:
    # A well-formed registration, so only the tenant rule can stop it.
    registry = services["registry"]
    auditor = token("31", Role.AUDITOR)
    valid = {"name": "LKSA Lintas Wilayah", "kind": "lksa", "pdm": "3171"}
    async with httpx.AsyncClient(timeout=10) as http:
        before = await feed_head(http, registry, "31", auditor)
        for caller in (
            token("34", Role.WILAYAH_ADMIN),
            token("national", Role.NATIONAL_ADMIN, Role.WILAYAH_ADMIN),
        ):
            r = await http.post(
                f"{registry}/v1/tenants/31/institutions", json=valid, headers=auth(caller)
            )
            is_problem(r, 403)
        assert await feed_head(http, registry, "31", auditor) == before


# --- 3. roles ------------------------------------------------------------------------------


async def test_role_guards_refuse_the_wrong_roles(services: dict[str, str], token: Any) -> None:
    registry, hr = services["registry"], services["hr"]
    auditor = token("31", Role.AUDITOR)
    async with httpx.AsyncClient(timeout=10) as http:
        registry_head = await feed_head(http, registry, "31", auditor)
        hr_head = await feed_head(http, hr, "31", auditor)

        r = await http.post(
            f"{registry}/v1/tenants/31/institutions",
            json={"name": "Panti Auditor", "kind": "lksa", "pdm": "3171"},
            headers=auth(auditor),
        )
        assert "roles" in is_problem(r, 403)["detail"]

        r = await http.post(
            f"{hr}/v1/tenants/31/workers",
            json={"full_name": "Siti Aminah", "birth_date": "1990-03-04"},
            headers=auth(token("31", Role.CASE_WORKER)),
        )
        assert "roles" in is_problem(r, 403)["detail"]

        # Suspending is for the province's admin, not for a PDM operator.
        r = await http.post(
            f"{registry}/v1/tenants/31/institutions/{uuid4()}/suspend",
            json={"reason": "operator overreach"},
            headers=auth(token("31", Role.PDM_OPERATOR, pdm="3171")),
        )
        is_problem(r, 403)

        assert await feed_head(http, registry, "31", auditor) == registry_head
        assert await feed_head(http, hr, "31", auditor) == hr_head


async def test_pdm_operator_registers_only_inside_its_own_pdm(
    services: dict[str, str], token: Any
) -> None:
    registry = services["registry"]
    operator = token("31", Role.PDM_OPERATOR, sub="operator-3171", pdm="3171")
    auditor = token("31", Role.AUDITOR)
    url = f"{registry}/v1/tenants/31/institutions"
    async with httpx.AsyncClient(timeout=10) as http:
        before = await feed_head(http, registry, "31", auditor)
        r = await http.post(
            url,
            json={"name": "PAKM Jakarta Pusat", "kind": "pakm", "pdm": "3172"},
            headers=auth(operator),
        )
        assert "3171" in is_problem(r, 403)["detail"]
        assert await feed_head(http, registry, "31", auditor) == before

        r = await http.post(
            url,
            json={"name": "PAKM Jakarta Selatan", "kind": "pakm", "pdm": "3171"},
            headers=auth(operator),
        )
        assert r.status_code == 201, r.text

        # A province admin is not bound by a PDM claim.
        r = await http.post(
            url,
            json={"name": "PSKM Jakarta Timur", "kind": "pskm", "pdm": "3172"},
            headers=auth(token("31", Role.WILAYAH_ADMIN, pdm="3171")),
        )
        assert r.status_code == 201, r.text


# --- 4. validation -------------------------------------------------------------------------

_VALID_INSTITUTION = {"name": "LKSA Muhammadiyah Menteng", "kind": "lksa", "pdm": "3171"}

INVALID_REGISTRATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("missing name", {"kind": "lksa", "pdm": "3171"}, "name"),
    ("name of wrong type", {**_VALID_INSTITUTION, "name": 123}, "name"),
    ("blank name", {**_VALID_INSTITUTION, "name": "   "}, "name"),
    ("unknown kind", {**_VALID_INSTITUTION, "kind": "casino"}, "kind"),
    ("pdm not 4 digits", {**_VALID_INSTITUTION, "pdm": "12"}, "pdm"),
    ("pdm of another province", {**_VALID_INSTITUTION, "pdm": "3578"}, "pdm"),
    ("unknown owner", {**_VALID_INSTITUTION, "owner": "someone"}, "owner"),
    ("unknown field", {**_VALID_INSTITUTION, "colour": "green"}, "colour"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [(body, field) for _, body, field in INVALID_REGISTRATIONS],
    ids=[label for label, _, _ in INVALID_REGISTRATIONS],
)
async def test_invalid_registration_names_the_field_and_writes_nothing(
    services: dict[str, str], token: Any, body: dict[str, Any], field: str
) -> None:
    registry = services["registry"]
    auditor = token("31", Role.AUDITOR)
    async with httpx.AsyncClient(timeout=10) as http:
        before = await feed_head(http, registry, "31", auditor)
        r = await http.post(
            f"{registry}/v1/tenants/31/institutions",
            json=body,
            headers=auth(token("31", Role.WILAYAH_ADMIN)),
        )
        problem = is_problem(r, 422)
        assert field in fields_of(problem), problem
        assert await feed_head(http, registry, "31", auditor) == before


async def test_unparseable_and_empty_bodies_are_problems_and_write_nothing(
    services: dict[str, str], token: Any
) -> None:
    registry = services["registry"]
    auditor = token("31", Role.AUDITOR)
    writer = auth(token("31", Role.WILAYAH_ADMIN), **{"Content-Type": "application/json"})
    url = f"{registry}/v1/tenants/31/institutions"
    async with httpx.AsyncClient(timeout=10) as http:
        before = await feed_head(http, registry, "31", auditor)

        # Not JSON at all: the request is malformed (400), not a value that broke a rule.
        r = await http.post(url, content=b'{"name": "LKSA", "kind":', headers=writer)
        is_problem(r, 400)

        r = await http.post(url, content=b"", headers=writer)
        assert fields_of(is_problem(r, 422)) == ["body"]

        r = await http.post(url, content=b"[1, 2]", headers=writer)
        assert fields_of(is_problem(r, 422)) == ["body"]

        assert await feed_head(http, registry, "31", auditor) == before


INVALID_OTHER_COMMANDS: list[tuple[str, str, str, Role, dict[str, Any], str]] = [
    (
        "complaint channel",
        "cases",
        "/v1/tenants/31/complaints",
        Role.CASE_WORKER,
        {"channel": "pigeon", "summary": "Pengaduan tentang jadwal kunjungan."},
        "channel",
    ),
    (
        "complaint summary too short",
        "cases",
        "/v1/tenants/31/complaints",
        Role.CASE_WORKER,
        {"channel": "phone", "summary": "hi"},
        "summary",
    ),
    (
        "worker birth date",
        "hr",
        "/v1/tenants/31/workers",
        Role.HR_OFFICER,
        {"full_name": "Ahmad Dahlan", "birth_date": "yesterday"},
        "birth_date",
    ),
    (
        "worker missing name",
        "hr",
        "/v1/tenants/31/workers",
        Role.HR_OFFICER,
        {"birth_date": "1980-01-01"},
        "full_name",
    ),
]


@pytest.mark.parametrize(
    ("service", "path", "role", "body", "field"),
    [case[1:] for case in INVALID_OTHER_COMMANDS],
    ids=[case[0] for case in INVALID_OTHER_COMMANDS],
)
async def test_other_services_name_the_invalid_field_too(
    services: dict[str, str],
    token: Any,
    service: str,
    path: str,
    role: Role,
    body: dict[str, Any],
    field: str,
) -> None:
    base = services[service]
    auditor = token("31", Role.AUDITOR)
    async with httpx.AsyncClient(timeout=10) as http:
        before = await feed_head(http, base, "31", auditor)
        r = await http.post(base + path, json=body, headers=auth(token("31", role)))
        problem = is_problem(r, 422)
        assert field in fields_of(problem), problem
        assert await feed_head(http, base, "31", auditor) == before


# --- 5. errors, operations, docs -----------------------------------------------------------


async def test_unknown_institution_is_a_not_found_problem(
    services: dict[str, str], token: Any
) -> None:
    missing = uuid4()
    async with httpx.AsyncClient(headers=auth(token("31", Role.AUDITOR)), timeout=10) as http:
        r = await http.get(f"{services['registry']}/v1/tenants/31/institutions/{missing}")
        body = is_problem(r, 404)
        assert str(missing) in body["detail"]

        # A command on it is refused the same way.
        r = await http.post(
            f"{services['registry']}/v1/tenants/31/institutions/{missing}/rename",
            json={"name": "Nama Baru"},
            headers=auth(token("31", Role.WILAYAH_ADMIN)),
        )
        is_problem(r, 404)

        r = await http.get(f"{services['registry']}/v1/no/such/route")
        is_problem(r, 404)


async def test_health_probes(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for base in services.values():
            live = await http.get(f"{base}/health/live")
            assert live.status_code == 200, live.text
            assert live.json() == {"status": "live"}
            ready = await http.get(f"{base}/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {
                "status": "ready",
                "checks": {"postgres": True, "nats": True},
                "tasks": {},
                "stalls": [],
            }


async def test_metrics_count_requests_by_route_template_and_status(
    services: dict[str, str], token: Any
) -> None:
    registry = services["registry"]
    async with httpx.AsyncClient(timeout=10) as http:
        ok = await http.get(
            f"{registry}/v1/tenants/31/institutions", headers=auth(token("31", Role.AUDITOR))
        )
        assert ok.status_code == 200
        refused = await http.get(f"{registry}/v1/tenants/31/institutions")
        assert refused.status_code == 401
        r = await http.get(f"{registry}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "mpks_http_requests_total" in text
    assert "mpks_http_request_seconds" in text
    # Labels are the full route template (bounded, and telling routes apart), and a refused
    # request is counted with its real status.
    route = 'route="/v1/tenants/{tenant}/institutions"'
    assert re.search(
        rf'mpks_http_requests_total\{{method="GET",{re.escape(route)},status="200"\}}', text
    )
    assert re.search(
        rf'mpks_http_requests_total\{{method="GET",{re.escape(route)},status="401"\}}', text
    )
    assert "/v1/tenants/31/" not in text


async def test_docs_and_openapi_describe_the_api(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        page = await http.get(f"{services['registry']}/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<html" in page.text.lower()

        spec = await http.get(f"{services['registry']}/docs/openapi.json")
        assert spec.status_code == 200
        paths = spec.json()["paths"]
        institutions = "/v1/tenants/{tenant}/institutions"
        assert "post" in paths[institutions]
        assert "get" in paths[institutions]
        for action in ("rename", "suspend", "reinstate"):
            assert "post" in paths[f"{institutions}/{{institution_id}}/{action}"]
        assert "bearer" in spec.json()["components"]["securitySchemes"]


async def test_every_response_carries_a_correlation_id_and_echoes_the_callers(
    services: dict[str, str], token: Any
) -> None:
    registry = services["registry"]
    admin = token("31", Role.WILAYAH_ADMIN)
    url = f"{registry}/v1/tenants/31/institutions"
    async with httpx.AsyncClient(timeout=10) as http:
        responses = [
            await http.get(f"{registry}/health/live"),
            await http.get(f"{registry}/metrics"),
            await http.get(url, headers=auth(admin)),  # 200
            await http.get(url),  # 401
            await http.get(url, headers=auth(token("34", Role.AUDITOR))),  # 403
            await http.get(f"{url}/{uuid4()}", headers=auth(admin)),  # 404
            await http.post(url, json={"name": "x"}, headers=auth(admin)),  # 422
        ]
        assert [r.status_code for r in responses] == [200, 200, 200, 401, 403, 404, 422]
        ids = [r.headers.get("x-correlation-id") for r in responses]
        assert all(ids), ids
        assert len(set(ids)) == len(ids), "each request gets its own id"

        mine = f"contract-{uuid4().hex}"
        for headers in ({"X-Correlation-ID": mine}, auth(admin, **{"X-Correlation-ID": mine})):
            r = await http.post(url, json={"name": "x"}, headers=headers)
            assert r.headers["x-correlation-id"] == mine
            assert r.json()["correlation_id"] == mine


# --- 6. the events feed and the catalogue --------------------------------------------------


async def test_events_feed_records_who_why_and_chains_positions(
    services: dict[str, str], token: Any
) -> None:
    registry = services["registry"]
    auditor = token("31", Role.AUDITOR)
    admin = token("31", Role.WILAYAH_ADMIN, sub="admin-31@mpks")
    correlation = f"feed-{uuid4().hex}"
    reason = "laporan audit keuangan belum diserahkan"
    async with httpx.AsyncClient(timeout=10) as http:
        created = await http.post(
            f"{registry}/v1/tenants/31/institutions",
            json={"name": "Panti Asuhan Feed", "kind": "lksa", "pdm": "3173"},
            headers=auth(admin, **{"X-Correlation-ID": correlation}),
        )
        assert created.status_code == 201, created.text
        institution_id = created.json()["id"]
        suspended = await http.post(
            f"{registry}/v1/tenants/31/institutions/{institution_id}/suspend",
            json={"reason": reason},
            headers=auth(admin),
        )
        assert suspended.status_code == 200, suspended.text

        events = await whole_feed(http, registry, "31", auditor)

    mine = [e for e in events if e["aggregate_id"] == institution_id]
    assert [(e["aggregate"], e["event"]) for e in mine] == [
        ("Institution", "Registered"),
        ("Institution", "Suspended"),
    ]
    registered, suspension = mine
    assert registered["tenant"] == "31"
    assert registered["service"] == "registry"
    assert registered["aggregate_version"] == 1
    assert registered["event_version"] == 1
    assert registered["meta"]["actor"] == "admin-31@mpks"
    assert registered["meta"]["tenant"] == "31"
    assert registered["meta"]["correlation_id"] == correlation
    assert registered["meta"].get("reason") is None
    assert registered["data"]["name"] == "Panti Asuhan Feed"
    assert registered["data"]["pdm"] == "3173"
    assert suspension["meta"]["reason"] == reason
    assert suspension["meta"]["actor"] == "admin-31@mpks"
    assert suspension["aggregate_version"] == 2

    # Each event names the one before it, so a reader can prove it missed nothing.
    assert events[0]["previous_position"] is None
    for earlier, later in itertools.pairwise(events):
        assert later["position"] > earlier["position"]
        assert later["previous_position"] == earlier["position"]


async def test_feed_resumes_after_a_position_naming_it_as_previous(
    services: dict[str, str], token: Any
) -> None:
    registry = services["registry"]
    auditor = token("31", Role.AUDITOR)
    admin = token("31", Role.WILAYAH_ADMIN)
    async with httpx.AsyncClient(timeout=10) as http:
        for name in ("PSKM Resume Satu", "PSKM Resume Dua"):
            r = await http.post(
                f"{registry}/v1/tenants/31/institutions",
                json={"name": name, "kind": "pskm", "pdm": "3174"},
                headers=auth(admin),
            )
            assert r.status_code == 201, r.text
        events = await whole_feed(http, registry, "31", auditor)
        anchor = events[-2]["position"]
        r = await http.get(
            f"{registry}/v1/tenants/31/events",
            params={"after": anchor, "limit": 1},
            headers=auth(auditor),
        )
    page = r.json()
    assert page["after"] == anchor
    assert page["head"] >= events[-1]["position"]
    assert [e["position"] for e in page["events"]] == [events[-1]["position"]]
    assert page["events"][0]["previous_position"] == anchor


async def test_catalogue_lists_published_events_with_versions(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(headers=auth(token("31", Role.AUDITOR)), timeout=10) as http:
        r = await http.get(f"{services['registry']}/v1/catalogue/events")
    assert r.status_code == 200, r.text
    specs = {spec["name"]: spec for spec in r.json()}
    assert specs["Institution.Registered"]["version"] == 1
    assert {"name", "kind", "pdm", "owner"} <= set(specs["Institution.Registered"]["fields"])
    assert {"Institution.Renamed", "Institution.Suspended", "Institution.Reinstated"} <= set(specs)


async def test_registered_institution_is_readable_with_its_etag(
    services: dict[str, str], token: Any
) -> None:
    # The ETag a reader gets is the version a writer must send back as If-Match.
    registry = services["registry"]
    admin = token("31", Role.WILAYAH_ADMIN)
    async with httpx.AsyncClient(headers=auth(admin), timeout=10) as http:
        r = await http.post(
            f"{registry}/v1/tenants/31/institutions",
            json={"name": "Rumah Singgah ETag", "kind": "rumah_singgah", "pdm": "3175"},
        )
        assert r.status_code == 201, r.text
        url = f"{registry}/v1/tenants/31/institutions/{r.json()['id']}"

        async def readable() -> httpx.Response | None:
            got = await http.get(url)
            return got if got.status_code == 200 else None

        got = await eventually(readable)
    assert got.headers["etag"] == '"1"'
    assert got.json()["version"] == 1


async def test_cors_preflight_needs_no_token(services: dict[str, str]) -> None:
    """Browsers send OPTIONS without credentials before a cross-origin call."""
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.options(f"{services['registry']}/v1/tenants/31/institutions")
    assert r.status_code in (200, 204), r.text
    assert "GET" in r.headers.get("allow", "")
