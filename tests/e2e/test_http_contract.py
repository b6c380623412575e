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
from shared.http.security import PUBLIC_PATHS
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
            # Routes anyone may call (the public directory, labels) have their own tests.
            if not route.path.startswith("/v1/") or any(
                re.match(p, route.path) for p in PUBLIC_PATHS
            ):
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
    # A page past the head: the head without reading any event (an auditor's read of
    # events would itself be an event of the log: `shared.http.access`).
    r = await http.get(
        f"{base}/v1/tenants/{tenant}/events", params={"after": 10**18}, headers=auth(token)
    )
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
        assert is_problem(r, 403)["code"] == "forbidden"

        r = await http.post(
            f"{hr}/v1/tenants/31/workers",
            json={"full_name": "Siti Aminah", "birth_date": "1990-03-04"},
            headers=auth(token("31", Role.CASE_WORKER)),
        )
        assert is_problem(r, 403)["code"] == "forbidden"

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
        refusal = is_problem(r, 403)
        assert refusal["code"] == "out-of-scope"
        assert "3171" in refusal["detail"]
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
            body = ready.json()
            # One process per service runs everything (`mpks serve` in its default role).
            assert body.pop("role") == "all"
            assert body.pop("runs")[:4] == ["commands", "reads", "relay", "projections"]
            assert body == {
                "status": "ready",
                "checks": {"postgres": True, "nats": True},
                "tasks": {},
                "stalls": [],
                "deadlines": {"overdue": 0, "oldest_overdue": None, "refused": 0, "refusals": []},
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
    assert registered["event_version"] == 2
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
    assert specs["Institution.Registered"]["version"] == 2
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
    # Every method of the path, though Litestar registers GET and POST as separate handlers.
    assert r.headers.get("allow") == "GET, OPTIONS, POST"


# --- 7. the edge: what no handler may ever see ---------------------------------------------
#
# Operations are enumerated from each app's own OpenAPI document (itself built from the
# routes; the first test pins that the two agree), so a route added later is covered.


async def openapi_of(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{base}/docs/openapi.json")
    assert r.status_code == 200, r.text
    spec: dict[str, Any] = r.json()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def fill(path: str) -> str:
    """An OpenAPI path template with tenant 31 and fresh ids."""
    return re.sub(r"\{(\w+)\}", lambda m: "31" if m.group(1) == "tenant" else str(uuid4()), path)


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def string_fields(spec: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    """The request body's properties that may hold a string."""
    schema = resolve(spec, operation["requestBody"]["content"]["application/json"]["schema"])
    found = []
    for name, prop in schema.get("properties", {}).items():
        variants = [resolve(spec, v) for v in prop.get("oneOf", [prop])]
        if any(v.get("type") == "string" for v in variants):
            found.append(name)
    return found


async def test_openapi_documents_every_route(services: dict[str, str]) -> None:
    documented = set()
    for service, base in services.items():
        for method, path, _ in operations(await openapi_of(base)):
            documented.add((service, method, path))
    routes = {(s, m, re.sub(r":\w+\}", "}", p)) for s, m, p in V1_ROUTES}
    assert routes <= documented


async def _body_operations(
    services: dict[str, str],
) -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for base in services.values():
        spec = await openapi_of(base)
        for method, path, operation in operations(spec):
            if "requestBody" in operation:
                found.append((base, method, path, operation, spec))
    assert len(found) >= 6, "the enumeration must see every command"
    return found


async def test_every_body_route_answers_415_to_anything_but_json(
    services: dict[str, str], token: Any
) -> None:
    caller = auth(token("31", *ALL_ROLES, **every_role("31")))
    refused = [
        "text/plain",
        "application/xml",
        "text/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/octet-stream",
    ]
    accepted = ["application/json", "application/json; charset=UTF-8", "application/merge+json"]
    async with httpx.AsyncClient(timeout=10) as http:
        for base, method, path, _, _ in await _body_operations(services):
            url = base + fill(path)
            for media_type in refused:
                r = await http.request(
                    method, url, content=b"{}", headers={**caller, "Content-Type": media_type}
                )
                body = is_problem(r, 415)
                assert "application/json" in body["detail"], (path, media_type, body)
            # No label at all is no promise of JSON either.
            r = await http.request(method, url, content=b"{}", headers=caller)
            is_problem(r, 415)
            for media_type in accepted:
                # Parsed as JSON: `{}` lacks the required fields, so the answer is about them.
                r = await http.request(
                    method, url, content=b"{}", headers={**caller, "Content-Type": media_type}
                )
                assert r.status_code == 422, (path, media_type, r.text)


async def test_every_body_route_refuses_text_postgres_cannot_store_naming_the_field(
    services: dict[str, str], token: Any
) -> None:
    caller = auth(token("31", *ALL_ROLES, **every_role("31")))
    async with httpx.AsyncClient(timeout=10) as http:
        for base, method, path, operation, spec in await _body_operations(services):
            # A body of nested parts only (an institution's profile) holds its text inside
            # them: the NUL in a field's name below is checked by path for it all the same.
            fields = string_fields(spec, operation) or ["address"]
            r = await http.request(
                method,
                base + fill(path),
                json={name: "Nama \u0000 Panti" for name in fields},
                headers=caller,
            )
            problem = is_problem(r, 422)
            assert sorted(fields_of(problem)) == sorted(fields), (path, problem)
            assert {e["source"] for e in problem["errors"]} == {"body"}
            assert "U+0000" in problem["errors"][0]["message"]

            # A NUL in a field's name is refused by its path too, nested or not.
            r = await http.request(
                method,
                base + fill(path),
                json={"extra": [{"k\u0000": 1}]},
                headers=caller,
            )
            assert fields_of(is_problem(r, 422)) == ["extra[0].k\u0000"], path


NUL_COMMANDS: list[tuple[str, str, Role, dict[str, Any], str]] = [
    ("registry", "/v1/tenants/11/institutions", Role.WILAYAH_ADMIN,
     {"name": "Poison \u0000 NUL", "kind": "lksa", "pdm": "1101"}, "name"),
    ("cases", "/v1/tenants/11/complaints", Role.CASE_WORKER,
     {"channel": "phone", "summary": "Pengaduan \u0000 racun"}, "summary"),
    ("hr", "/v1/tenants/11/workers", Role.HR_OFFICER,
     {"full_name": "Siti \u0000 Aminah", "birth_date": "1990-03-04"}, "full_name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("service", "path", "role", "body", "field"), NUL_COMMANDS, ids=[c[0] for c in NUL_COMMANDS]
)
async def test_a_valid_command_with_a_nul_writes_nothing(
    services: dict[str, str],
    token: Any,
    service: str,
    path: str,
    role: Role,
    body: dict[str, Any],
    field: str,
) -> None:
    """The probe's case: accepted with 201 before, then a projection failing forever."""
    base = services[service]
    auditor = token("11", Role.AUDITOR)
    async with httpx.AsyncClient(timeout=10) as http:
        before = await feed_head(http, base, "11", auditor)
        r = await http.post(base + path, json=body, headers=auth(token("11", role)))
        assert fields_of(is_problem(r, 422)) == [field]
        assert await feed_head(http, base, "11", auditor) == before


async def test_every_body_route_refuses_bodies_that_are_not_utf8_or_too_deep(
    services: dict[str, str], token: Any
) -> None:
    caller = auth(
        token("31", *ALL_ROLES, **every_role("31")), **{"Content-Type": "application/json"}
    )
    malformed = {
        "invalid UTF-8": b'{"name": "\xff\xfe"}',
        "UTF-8 encoded surrogate": b'{"name": "\xed\xa0\x80"}',
        "escaped lone surrogate": b'{"name": "\\ud800"}',
        "nested 1,000 deep": b"[" * 1000 + b"]" * 1000,
        "nested 100,000 deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "nested beyond the limit": b"[" * 40 + b"]" * 40,
    }
    async with httpx.AsyncClient(timeout=10) as http:
        for base, method, path, _, _ in await _body_operations(services):
            for label, content in malformed.items():
                r = await http.request(method, base + fill(path), content=content, headers=caller)
                assert r.status_code == 400, (path, label, r.status_code, r.text)
                is_problem(r, 400)


async def test_every_body_route_refuses_a_body_beyond_the_size_limit(
    services: dict[str, str], token: Any
) -> None:
    caller = auth(
        token("31", *ALL_ROLES, **every_role("31")), **{"Content-Type": "application/json"}
    )
    # Litestar's default limit (10 MB), far above any command.
    oversized = b'{"name": "' + b"a" * 10_000_000 + b'"}'
    async with httpx.AsyncClient(timeout=30) as http:
        for base, method, path, _, _ in await _body_operations(services):
            r = await http.request(method, base + fill(path), content=oversized, headers=caller)
            is_problem(r, 413)


async def test_every_route_refuses_query_integers_beyond_64_bits(
    services: dict[str, str], token: Any
) -> None:
    caller = auth(token("31", *ALL_ROLES, **every_role("31")))
    checked = 0
    async with httpx.AsyncClient(timeout=10) as http:
        for base in services.values():
            spec = await openapi_of(base)
            for method, path, operation in operations(spec):
                for param in operation.get("parameters", []):
                    schema = resolve(spec, param["schema"])
                    if param["in"] != "query" or schema.get("type") != "integer":
                        continue
                    for huge in (2**63, 2**64, 10**30, -(2**63) - 1):
                        r = await http.request(
                            method,
                            base + fill(path),
                            params={param["name"]: str(huge)},
                            headers=caller,
                        )
                        problem = is_problem(r, 422)
                        assert fields_of(problem) == [param["name"]], (path, huge, problem)
                    checked += 1
    # offset on three lists, after on three feeds, limit on all six.
    assert checked >= 12


async def test_every_route_refuses_query_text_postgres_cannot_store(
    services: dict[str, str], token: Any
) -> None:
    caller = auth(token("31", *ALL_ROLES, **every_role("31")))
    async with httpx.AsyncClient(timeout=10) as http:
        for base in services.values():
            for method, path, _ in operations(await openapi_of(base)):
                for query, field in (
                    ("pdm=31%0071", "pdm"),
                    ("note=%ff", "note"),
                    ("note=%ed%a0%80", "note"),
                ):
                    r = await http.request(
                        method, f"{base}{fill(path)}?{query}", headers=caller, json={}
                    )
                    problem = is_problem(r, 422)
                    assert fields_of(problem) == [field], (path, query, problem)
                    assert problem["errors"][0]["source"] == "query"


async def test_causation_id_is_a_bounded_trace_id_or_refused(
    services: dict[str, str], token: Any
) -> None:
    registry = services["registry"]
    auditor = token("31", Role.AUDITOR)
    admin = token("31", Role.WILAYAH_ADMIN)
    url = f"{registry}/v1/tenants/31/institutions"
    body = {"name": "LKSA Sebab Akibat", "kind": "lksa", "pdm": "3171"}
    async with httpx.AsyncClient(timeout=10) as http:
        before = await feed_head(http, registry, "31", auditor)
        for bad in ("x" * 129, "x" * 60_000, "sebab akibat", "sebab\takibat"):
            r = await http.post(url, json=body, headers=auth(admin, **{"X-Causation-ID": bad}))
            problem = is_problem(r, 422)
            assert problem["errors"] == [
                {"field": "X-Causation-ID", "source": "header", "message": problem["detail"]}
            ]
        assert await feed_head(http, registry, "31", auditor) == before

        cause = "evt-" + "9" * 124
        r = await http.post(url, json=body, headers=auth(admin, **{"X-Causation-ID": cause}))
        assert r.status_code == 201, r.text
        created = r.json()["id"]
        events = await whole_feed(http, registry, "31", auditor)
    (registered,) = [e for e in events if e["aggregate_id"] == created]
    assert registered["meta"]["causation_id"] == cause


async def test_a_malformed_correlation_id_is_replaced_not_refused(
    services: dict[str, str],
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for bad in ("x" * 129, "two words"):
            r = await http.get(
                f"{services['registry']}/health/live", headers={"X-Correlation-ID": bad}
            )
            assert r.status_code == 200
            assert r.headers["x-correlation-id"] not in ("", bad)


async def test_openapi_documents_each_operations_problems_security_and_closed_bodies(
    services: dict[str, str],
) -> None:
    for base in services.values():
        spec = await openapi_of(base)
        for method, path, operation in operations(spec):
            public = path.startswith("/health")
            tokenless = any(re.match(p, path) for p in PUBLIC_PATHS)
            statuses = set(operation["responses"])
            where = (base, method, path)
            problems = {s for s in statuses if not s.startswith("2")}
            expected = {"422", "500"}
            if not tokenless:
                expected |= {"401", "403", "503"}
            if path.startswith("/v1/public/"):
                expected |= {"429", "503"}
            if "{" in path:
                expected.add("404")
            if "requestBody" in operation:
                expected |= {"400", "409", "413", "415"}
            assert expected <= problems, (where, sorted(problems))
            for status in problems - ({"503"} if public else set()):
                content = operation["responses"][status]["content"]
                assert list(content) == [PROBLEM_JSON], (where, status)
                assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
            # Public routes need no token; the others inherit the document's bearer scheme.
            assert operation.get("security") == ([] if tokenless else None), where
            if "requestBody" in operation:
                body = resolve(
                    spec, operation["requestBody"]["content"]["application/json"]["schema"]
                )
                assert body["additionalProperties"] is False, where
        assert spec["security"] == [{"bearer": []}]
        assert set(spec["components"]["schemas"]["Problem"]["required"]) == {
            "type",
            "code",
            "title",
            "status",
        }
