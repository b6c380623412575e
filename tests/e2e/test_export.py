"""The tenant export (issue 9, point 4): every event of a tenant across the three services in
one NDJSON document, over HTTP (streamed) and by `mpks audit export`, resumable and bounded."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jsonschema_rs

from services.bootstrap import SERVICES
from shared.auth import Role
from shared.settings import Settings
from tests.helpers import auth

TENANT = "96"  # Papua Barat Daya: no other test writes here (the suite shares its database
# across modules), so its logs hold only this module's events.
OTHER = "52"
SCHEMA = json.loads((Path("shared/audit/export.schema.json")).read_text())


async def _record_in_every_service(
    http: httpx.AsyncClient, urls: dict[str, str], token: Any
) -> None:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-96"))
    base = f"{urls['registry']}/v1/tenants/{TENANT}/institutions"
    created = await http.post(
        base,
        json={"name": "Panti Asuhan Muhammadiyah Sorong", "kind": "lksa", "pdm": "9671"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    one = f"{base}/{created.json()['id']}"
    await http.post(f"{one}/suspend", json={"reason": "Audit PWM 3/2026"}, headers=admin)
    worker = await http.post(
        f"{urls['hr']}/v1/tenants/{TENANT}/workers",
        json={"full_name": "Ni Made Sari", "birth_date": "1990-05-01", "pdm": "9671"},
        headers=admin,
    )
    assert worker.status_code == 201, worker.text
    complaint = await http.post(
        f"{urls['cases']}/v1/tenants/{TENANT}/complaints",
        json={"channel": "phone", "summary": "Anak belum menerima layanan kesehatan."},
        headers=admin,
    )
    assert complaint.status_code == 201, complaint.text
    # Another province's events must never reach this tenant's export.
    other = auth(token(OTHER, Role.WILAYAH_ADMIN))
    elsewhere = await http.post(
        f"{urls['registry']}/v1/tenants/{OTHER}/institutions",
        json={"name": "LKSA Muhammadiyah Mataram", "kind": "lksa", "pdm": "5271"},
        headers=other,
    )
    assert elsewhere.status_code == 201, elsewhere.text


async def _logs(owner: asyncpg.Connection[Any], tenant: str) -> dict[str, list[Any]]:
    """What each service's log of the tenant holds, read straight from PostgreSQL."""
    return {
        service: list(
            await owner.fetch(
                f"SELECT notification_id, originator_id, originator_version, topic, state, hash "
                f"FROM {service}_t{tenant}.{service}_events ORDER BY notification_id"
            )
        )
        for service in SERVICES
    }


async def _http_export(
    http: httpx.AsyncClient, url: str, token: str, **params: str
) -> httpx.Response:
    return await http.get(f"{url}/v1/tenants/{TENANT}/export", params=params, headers=auth(token))


def _parse(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.splitlines()]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _events(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == "event"]


async def _cli(settings: Settings, *args: str) -> tuple[int, bytes, bytes]:
    env = {**os.environ, "MPKS_DATABASE_URL": str(settings.database_url)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mpks.main",
        "audit",
        "export",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err


async def test_the_export_holds_every_event_of_the_tenant_once_in_order_as_documented(
    services: dict[str, str],
    token: Any,
    owner: asyncpg.Connection[Any],
    settings: Settings,
    tmp_path: Path,
) -> None:
    # A provincial admin's export: an auditor's is itself recorded in the access log (each
    # service's part then holds its own entry; tests/e2e/test_access_log.py).
    auditor = token(TENANT, Role.WILAYAH_ADMIN)
    async with httpx.AsyncClient(timeout=30) as http:
        await _record_in_every_service(http, services, token)
        logs = await _logs(owner, TENANT)
        # Asked of any service, the export is the whole tenant's, streamed.
        answers = [await _http_export(http, services[name], auditor) for name in SERVICES]
        # Or each service for its own part, which it reads from its log alone (no second hop).
        parts = {
            name: await _http_export(http, services[name], auditor, service=name)
            for name in SERVICES
        }
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert response.headers.get("transfer-encoding") == "chunked"
    body = answers[0].content
    lines = _parse(body)
    validator = jsonschema_rs.validator_for(SCHEMA)
    for line in lines:
        validator.validate(line)

    header, end = lines[0], lines[-1]
    assert (header["type"], end["type"]) == ("header", "end")
    assert header["tenant"] == TENANT
    assert header["services"] == list(SERVICES)
    assert header["from"] == dict.fromkeys(SERVICES, 0)
    events = _events(lines)
    # Every event of each log once, services in order, each log in position order.
    assert [(e["service"], e["position"]) for e in events] == [
        (service, row["notification_id"]) for service, rows in logs.items() for row in rows
    ]
    assert all(logs[s] for s in SERVICES), "each service recorded something"
    assert {e["tenant"] for e in events} == {TENANT}
    assert {e["meta"]["tenant"] for e in events} == {TENANT}
    by_position = {(s, r["notification_id"]): r for s, rows in logs.items() for r in rows}
    for event in events:
        row = by_position[(event["service"], event["position"])]
        assert event["aggregate_id"] == str(row["originator_id"])
        assert event["aggregate_version"] == row["originator_version"]
        assert f"{event['aggregate']}.{event['event']}" == row["topic"]
        assert event["occurred_at"] == event["data"]["timestamp"]
        assert event["hash"] == row["hash"].hex()
    suspended = next(e for e in events if e["event"] == "Suspended")
    assert suspended["meta"]["actor"] == "admin-96"
    assert suspended["meta"]["reason"] == "Audit PWM 3/2026"

    # The stored state, byte for byte, is in the line: an auditor can recompute hashes.
    raw_lines = body.splitlines()[1:-1]
    for raw, event in zip(raw_lines, events, strict=True):
        row = by_position[(event["service"], event["position"])]
        meta_at = raw.index(b',"meta":') + len(b',"meta":')
        data_at = raw.index(b',"data":', meta_at)
        hash_at = raw.rindex(b',"hash":')
        stored = b'{"v":%d,"meta":%b,"data":%b}' % (
            event["event_version"],
            raw[meta_at:data_at],
            raw[data_at + len(b',"data":') : hash_at],
        )
        assert stored == row["state"]

    # The end line counts what came and proves the document whole.
    assert end["events"] == len(events)
    assert end["services"] == {
        s: {"events": len(rows), "last_position": rows[-1]["notification_id"]}
        for s, rows in logs.items()
    }
    assert end["next_from"] == ",".join(
        f"{s}:{rows[-1]['notification_id']}" for s, rows in logs.items()
    )
    before_end = body[: body.rindex(b"\n", 0, len(body) - 1) + 1]
    assert end["sha256"] == hashlib.sha256(before_end).hexdigest()

    # Every service answers the same events; so does the CLI (owner's login, to a file).
    for other in answers[1:]:
        assert _events(_parse(other.content)) == events
    for name, part in parts.items():
        part_lines = _parse(part.content)
        assert _events(part_lines) == [e for e in events if e["service"] == name]
        part_end = part_lines[-1]
        assert part_end["services"] == {name: end["services"][name]}
        part_before_end = part.content[: part.content.rindex(b"\n", 0, len(part.content) - 1) + 1]
        assert part_end["sha256"] == hashlib.sha256(part_before_end).hexdigest()
    out = tmp_path / "export.ndjson"
    code, stdout, stderr = await _cli(settings, "--tenant", TENANT, "--out", str(out))
    assert code == 0, stderr
    assert stdout == b""
    # The progress bar (on stderr) runs to each log's head and ends full.
    assert b"100% of the positions" in stderr
    cli_lines = _parse(out.read_bytes())
    assert _events(cli_lines) == events
    assert {k: v for k, v in cli_lines[-1].items() if k != "sha256"} == {
        k: v for k, v in end.items() if k != "sha256"
    }


async def test_an_export_resumes_from_a_position_and_stops_at_until(
    services: dict[str, str],
    token: Any,
    owner: asyncpg.Connection[Any],
    settings: Settings,
) -> None:
    # A provincial admin's export: an auditor's is itself recorded in the access log (each
    # service's part then holds its own entry; tests/e2e/test_access_log.py).
    auditor = token(TENANT, Role.WILAYAH_ADMIN)
    async with httpx.AsyncClient(timeout=30) as http:
        await _record_in_every_service(http, services, token)
        await _record_in_every_service(http, services, token)
        full = _parse((await _http_export(http, services["cases"], auditor)).content)
        events = _events(full)
        registry = [e for e in events if e["service"] == "registry"]
        # Cut after the second registry event: the rest is exactly what follows it.
        cut = registry[1]["position"]
        rest = await _http_export(http, services["cases"], auditor, **{"from": f"registry:{cut}"})
        assert rest.status_code == 200, rest.text
        assert _events(_parse(rest.content)) == events[2:]
        assert _parse(rest.content)[0]["from"] == {"registry": cut, "cases": 0, "hr": 0}

        # From the end line's next_from: nothing, until something new is recorded.
        next_from = full[-1]["next_from"]
        nothing = _parse(
            (await _http_export(http, services["hr"], auditor, **{"from": next_from})).content
        )
        assert _events(nothing) == []
        assert nothing[-1]["next_from"] == next_from
        await _record_in_every_service(http, services, token)
        news = _events(
            _parse(
                (await _http_export(http, services["hr"], auditor, **{"from": next_from})).content
            )
        )
        assert [e["service"] for e in news] == ["registry", "registry", "cases", "hr"]

        # Until the moment of the first hr event: each log up to then, none of what came after.
        moment = next(e for e in events if e["service"] == "hr")["occurred_at"]
        bounded = _parse(
            (await _http_export(http, services["registry"], auditor, until=moment)).content
        )
        expected = [e for e in events if _at(e["occurred_at"]) <= _at(moment)]
        assert _events(bounded) == expected
        assert 0 < len(expected) < len(events)
        assert bounded[0]["until"] is not None

    code, stdout, _ = await _cli(
        settings,
        "--tenant",
        TENANT,
        "--from",
        f"registry:{cut}",
        "--until",
        moment,
        "--service",
        "registry",
        "--service",
        "hr",
        "--quiet",
    )
    assert code == 0
    assert _events(_parse(stdout)) == [
        e
        for e in expected
        if (e["service"] == "registry" and e["position"] > cut) or e["service"] == "hr"
    ]


async def test_only_the_tenants_own_readers_export_it_and_bad_parameters_are_named(
    services: dict[str, str], token: Any, settings: Settings
) -> None:
    url = services["registry"]
    async with httpx.AsyncClient(timeout=30) as http:
        other_province = await _http_export(http, url, token(OTHER, Role.AUDITOR))
        assert other_province.status_code == 403
        case_worker = await _http_export(http, url, token(TENANT, Role.CASE_WORKER))
        assert case_worker.status_code == 403
        national = await _http_export(http, url, token("national", Role.AUDITOR))
        assert national.status_code == 200
        unknown = await http.get(
            f"{url}/v1/tenants/99/export", headers=auth(token("national", Role.AUDITOR))
        )
        assert unknown.status_code == 404
        auditor = token(TENANT, Role.AUDITOR)
        for params, field in (
            ({"from": "registry:-1"}, "from"),
            ({"from": "payroll:5"}, "from"),
            ({"until": "yesterday"}, "until"),
            ({"until": "2026-01-01T00:00:00"}, "until"),
            ({"service": "payroll"}, "service"),
        ):
            refused = await _http_export(http, url, auditor, **params)
            assert refused.status_code == 422, (params, refused.text)
            assert [e["field"] for e in refused.json()["errors"]] == [field]
    code, _, stderr = await _cli(settings, "--tenant", TENANT, "--until", "soon", "--quiet")
    assert code == 2
    assert b"--until" in stderr
