"""Personal data (issue 9, point 7): a worker's name and a complainant's name and contact are
stored and published sealed under a key of their data subject, shown only by the owning
service, masked in list views, and erased by destroying the key — after which the history
still replays, shows the fields erased, and no read model keeps them."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import nats
import pytest

from shared.auth import Role
from shared.http.reads import MIN_POSITION_HEADER, POSITION_HEADER
from shared.messaging.streams import Subjects
from shared.observability import JsonFormatter
from shared.personal.fields import ERASED
from shared.settings import Settings
from shared.tenancy import NATIONAL
from tests.helpers import auth, eventually

TENANT = "61"  # Kalimantan Barat
OTHER = "62"
PDM = "6171"
# Distinctive values, found nowhere else: any trace of them outside the service is a leak.
WORKER = "Zulaikha Prameswari Kuntadewi"
OTHER_WORKER = "Gandasuli Wirabumi Pranacitra"
COMPLAINANT = "Wiryawan Sastrodiningrat"
CONTACT = "wiryawan.sastro@contoh.id"
SECRETS = (WORKER, OTHER_WORKER, COMPLAINANT, CONTACT)


def leaks(text: str | bytes) -> list[str]:
    """The personal values (or any of their words) found in `text`."""
    haystack = text.decode() if isinstance(text, bytes) else text
    return [
        word for secret in SECRETS for word in secret.replace("@", " ").split()
        if len(word) > 5 and word in haystack
    ]  # fmt: skip


async def nats_payloads(settings: Settings, service: str, tenant: str = TENANT) -> list[bytes]:
    """Every message of the service's stream for the tenant, as NATS holds it."""
    subjects = Subjects(settings.nats_prefix)
    nc = await nats.connect(settings.nats_url or "")
    try:
        js = nc.jetstream()
        stream = subjects.stream(service)
        info = await js.stream_info(stream)
        payloads = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            if msg.subject and msg.subject.startswith(
                f"{settings.nats_prefix}.{service}.{tenant}."
            ):
                payloads.append(msg.data or b"")
        return payloads
    finally:
        await nc.close()


async def raw_states(owner: asyncpg.Connection[Any], service: str) -> list[bytes]:
    rows = await owner.fetch(f"SELECT state FROM {service}_t{TENANT}.{service}_events")
    return [bytes(r["state"]) for r in rows]


async def create(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[str, str]:
    """A command's record id and its position (for read-your-writes)."""
    r = await http.post(url, json=body)
    assert r.status_code == 201, r.text
    assert not leaks(r.text)
    return r.json()["id"], r.headers[POSITION_HEADER]


async def test_personal_values_never_leave_their_service_in_plaintext(
    services: dict[str, str],
    token: Any,
    settings: Settings,
    owner: asyncpg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hr = f"{services['hr']}/v1/tenants/{TENANT}"
    cases = f"{services['cases']}/v1/tenants/{TENANT}"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-61"))
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:
        worker, worker_at = await create(
            http,
            f"{hr}/workers",
            {"full_name": WORKER, "birth_date": "1988-07-17", "pdm": PDM},
        )
        complaint, complaint_at = await create(
            http,
            f"{cases}/complaints",
            {
                "channel": "phone",
                "summary": "Penelepon melaporkan anak asuh tidak bersekolah.",
                "concerns_child": True,
                "complainant_name": COMPLAINANT,
                "complainant_contact": CONTACT,
            },
        )

        # The owning service shows them: its read model and its history.
        got = await http.get(f"{hr}/workers/{worker}", headers={MIN_POSITION_HEADER: worker_at})
        assert got.json()["full_name"] == WORKER
        got = await http.get(
            f"{cases}/complaints/{complaint}", headers={MIN_POSITION_HEADER: complaint_at}
        )
        view = got.json()
        assert (view["complainant_name"], view["complainant_contact"]) == (COMPLAINANT, CONTACT)
        assert UUID(view["complainant_subject"])
        history = (await http.get(f"{hr}/workers/{worker}/history")).json()
        changes = {c["field"]: c["after"] for c in history["entries"][0]["changes"]}
        assert changes["full_name"] == WORKER

        # The events feed (what auditors and other systems read) carries them sealed.
        for service, base in (("hr", hr), ("cases", cases)):
            feed = await http.get(f"{base}/events", params={"limit": 1000})
            assert feed.status_code == 200
            assert feed.text.count('"$enc"') >= 1
            assert not leaks(feed.text), f"{service} feed"

    # The raw rows of the logs hold ciphertext only.
    hr_rows, cases_rows = await raw_states(owner, "hr"), await raw_states(owner, "cases")
    assert any(b'"$enc"' in s for s in hr_rows)
    assert any(b'"$enc"' in s for s in cases_rows)
    assert not [leaks(s) for s in hr_rows + cases_rows if leaks(s)]

    # NATS carries what the relay published: sealed.
    async def published() -> list[bytes]:
        hr_msgs = await nats_payloads(settings, "hr")
        cases_msgs = await nats_payloads(settings, "cases")
        assert any(worker.encode() in m for m in hr_msgs)
        assert any(complaint.encode() in m for m in cases_msgs)
        return hr_msgs + cases_msgs

    messages = await eventually(published)
    assert not [leaks(m) for m in messages if leaks(m)]

    # Nor do the JSON logs of the whole run so far.
    formatter = JsonFormatter("test")
    lines = "\n".join(formatter.format(record) for record in caplog.records)
    assert not leaks(lines)


async def test_list_views_mask_names_unless_an_allowed_role_asks(
    services: dict[str, str], token: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hr = f"{services['hr']}/v1/tenants/{TENANT}"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    async with httpx.AsyncClient(timeout=15) as http:
        name = f"Kartini Larasati {uuid4().hex[:6]}"
        r = await http.post(
            f"{hr}/workers",
            json={"full_name": name, "birth_date": "1990-01-01", "pdm": PDM},
            headers=admin,
        )
        worker, at = r.json()["id"], r.headers[POSITION_HEADER]
        params: dict[str, str | int] = {"limit": 500}
        waited = {**admin, MIN_POSITION_HEADER: at}
        listed = {
            w["id"]: w
            for w in (await http.get(f"{hr}/workers", params=params, headers=waited)).json()
        }
        assert listed[worker]["full_name"] == "K*** L*** " + f"{name.split()[-1][0]}***"

        caplog.set_level(logging.INFO, logger="mpks.personal")
        unmask: dict[str, str | int] = {**params, "unmask": "true"}
        officer = auth(token(TENANT, Role.HR_OFFICER, sub="officer-61"))
        full = {
            w["id"]: w
            for w in (await http.get(f"{hr}/workers", params=unmask, headers=officer)).json()
        }
        assert full[worker]["full_name"] == name
        # The unmasked read is recorded: who, where, what; never the names.
        read = [r for r in caplog.records if r.getMessage() == "personal data read unmasked"]
        assert [getattr(r, "fields", None) for r in read] == [
            {"actor": "officer-61", "tenant": TENANT, "resource": "workers"}
        ]

        auditor = auth(token(TENANT, Role.AUDITOR))
        # ... and in the access log auditors read.

        async def logged() -> list[dict[str, Any]]:
            r = await http.get(f"{hr}/access-log", params={"actor": "officer-61"}, headers=auditor)
            entries: list[dict[str, Any]] = r.json()
            return entries

        entries = await eventually(logged)
        assert [(e["resource"], e["route"]) for e in entries] == [
            ("workers", "/v1/tenants/{tenant}/workers")
        ]
        refused = await http.get(f"{hr}/workers", params=unmask, headers=auditor)
        assert refused.status_code == 403
        assert (await http.get(f"{hr}/workers", params=params, headers=auditor)).status_code == 200


async def test_erasing_a_subject_destroys_its_data_but_not_its_history(
    services: dict[str, str], token: Any, owner: asyncpg.Connection[Any]
) -> None:
    hr = f"{services['hr']}/v1/tenants/{TENANT}"
    cases = f"{services['cases']}/v1/tenants/{TENANT}"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-61"))
    reason = "Permintaan penghapusan oleh subjek data, surat No. 7/2026"
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:
        erased_name = f"Sekar Ayu Wulandari {uuid4().hex[:6]}"
        kept_name = f"Ratna Dewi Anggraini {uuid4().hex[:6]}"
        erased, _ = await create(
            http, f"{hr}/workers", {"full_name": erased_name, "birth_date": "1980-05-05"}
        )
        kept, _ = await create(
            http, f"{hr}/workers", {"full_name": kept_name, "birth_date": "1981-06-06"}
        )
        complaint, at = await create(
            http,
            f"{cases}/complaints",
            {
                "channel": "web",
                "summary": "Laporan tentang pengasuhan.",
                "complainant_name": "Joko Prasetyo Wibowo",
            },
        )
        subject = (
            await http.get(f"{cases}/complaints/{complaint}", headers={MIN_POSITION_HEADER: at})
        ).json()["complainant_subject"]

        # Who may not, and what is refused.
        url = f"{hr}/subjects/{erased}/erase"
        officer = auth(token(TENANT, Role.HR_OFFICER))
        assert (await http.post(url, json={"reason": reason}, headers=officer)).status_code == 403
        elsewhere = auth(token(OTHER, Role.WILAYAH_ADMIN))
        assert (await http.post(url, json={"reason": reason}, headers=elsewhere)).status_code == 403
        national = auth(token(NATIONAL, Role.NATIONAL_ADMIN))
        assert (await http.post(url, json={"reason": reason}, headers=national)).status_code == 403
        missing_reason = await http.post(url, json={})
        assert missing_reason.status_code == 422
        assert "reason" in missing_reason.text
        unknown = await http.post(f"{hr}/subjects/{uuid4()}/erase", json={"reason": reason})
        assert unknown.status_code == 404, unknown.text
        # The refusals erased nothing.
        assert (await http.get(f"{hr}/workers/{erased}")).json()["full_name"] == erased_name

        done = await http.post(url, json={"reason": reason})
        assert done.status_code == 200, done.text
        again = await http.post(url, json={"reason": "sekali lagi"})
        assert (again.status_code, again.json()) == (200, done.json())
        after = {MIN_POSITION_HEADER: done.headers[POSITION_HEADER]}

        # The record stays, its name erased; the other worker keeps hers.
        assert (await http.get(f"{hr}/workers/{erased}", headers=after)).json()[
            "full_name"
        ] == ERASED
        assert (await http.get(f"{hr}/workers/{kept}", headers=after)).json()[
            "full_name"
        ] == kept_name
        history = (await http.get(f"{hr}/workers/{erased}/history")).json()
        (registered,) = history["entries"]
        assert {c["field"]: c["after"] for c in registered["changes"]}["full_name"] == ERASED
        assert registered["actor"] == "admin-61"

        # The erasure is in the log with who and why, recorded once.
        feed = (await http.get(f"{hr}/events", params={"limit": 1000})).json()["events"]
        erasures = [e for e in feed if e["event"] == "Erased" and e["data"]["subject"] == erased]
        assert [(e["meta"]["reason"], e["meta"]["actor"]) for e in erasures] == [
            (reason, "admin-61")
        ]

        # A complainant: erased in cases, the complaint itself stays as it was.
        done = await http.post(f"{cases}/subjects/{subject}/erase", json={"reason": reason})
        assert done.status_code == 200, done.text
        view = (
            await http.get(
                f"{cases}/complaints/{complaint}",
                headers={MIN_POSITION_HEADER: done.headers[POSITION_HEADER]},
            )
        ).json()
        assert (view["complainant_name"], view["complainant_contact"]) == (ERASED, None)
        assert view["summary"] == "Laporan tentang pengasuhan."
        # A subject is a service's own: hr holds no key of a complainant.
        assert (
            await http.post(f"{hr}/subjects/{subject}/erase", json={"reason": reason})
        ).status_code == 404

    # No read model keeps the erased values (the owner sees every tenant's rows).
    rows = await owner.fetch("SELECT full_name FROM hr.workers WHERE id = $1", UUID(erased))
    assert [r["full_name"] for r in rows] == [ERASED]
    # Every table of the services' own schemas: the read models, their histories (as of a
    # date), snapshots, the access log.
    tables = await owner.fetch(
        "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables "
        "WHERE schemaname IN ('hr', 'cases')"
    )
    assert {"hr.workers", "hr.workers_history", "cases.complaints"} <= {t["name"] for t in tables}
    for table in tables:
        dump = await owner.fetchval(f"SELECT string_agg(t::text, '|') FROM {table['name']} t")
        assert "Joko Prasetyo Wibowo" not in (dump or ""), table["name"]
        assert erased_name not in (dump or ""), table["name"]
    keys = await owner.fetch(
        "SELECT subject, wrapped IS NULL AS gone, erased_at IS NOT NULL AS erased "
        "FROM hr.subject_keys WHERE subject = ANY($1)",
        [erased, kept],
    )
    assert {r["subject"]: (r["gone"], r["erased"]) for r in keys} == {
        erased: (True, True),
        kept: (False, False),
    }
