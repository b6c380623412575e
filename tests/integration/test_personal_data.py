"""Personal data on the command path and in the owning service's projections (issue 9,
point 7), on real PostgreSQL: an erased complainant's complaint still loads and takes
commands, and its read model keeps no plaintext, rebuilt or not.

Tenant 73 belongs to this module.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from services.cases.application.flag_complaint import FlagComplaint
from services.cases.application.receive_complaint import ReceiveComplaint
from services.cases.domain.complaint import Channel, ComplaintFlag
from shared.audit.history import history_of
from shared.db.pool import tenant_transaction
from shared.personal.erasure import EraseSubject, SubjectErasure
from shared.personal.fields import ERASED
from shared.personal.keys import Erasure
from shared.settings import Settings
from tests.helpers import accepted, eventually, run_command, running

TENANT = "73"
NAME = "Purnamasari Handayaningrum"
CONTACT = "+62 811 5555 0101"


async def test_an_erased_complainants_complaint_still_loads_and_takes_commands(
    settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    async with running("cases", settings) as cases:
        received = ReceiveComplaint(
            channel=Channel.WALK_IN,
            summary="Datang langsung melaporkan pengasuhan.",
            complainant_name=NAME,
            complainant_contact=CONTACT,
        )
        complaint = accepted(await run_command(cases, TENANT, received)).id
        state = await owner.fetchval(
            f"SELECT state FROM cases_t{TENANT}.cases_events WHERE originator_id = $1", complaint
        )
        assert NAME.encode() not in state
        assert CONTACT.encode() not in state
        data = msgspec.json.decode(state)["data"]
        subject = UUID(data["complainant_subject"])
        assert data["complainant_name"]["subject"] == str(subject)

        await cases.projections.catch_up([TENANT])
        assert await _complainant(owner, complaint) == (NAME, CONTACT)

        erased = EraseSubject(subject=subject, reason="Permintaan subjek data")
        await run_command(cases, TENANT, erased, actor="admin-73")
        # The aggregate folds with the fields erased, and takes a command.
        flag = FlagComplaint(
            complaint_id=complaint, flag=ComplaintFlag.INSTITUTION_CLOSED, reason="uji"
        )
        assert accepted(await run_command(cases, TENANT, flag)).version == 2
        async with tenant_transaction(cases.db, TENANT) as conn:
            found = await history_of(conn, cases.logs, TENANT, complaint, cases.keys)
        assert found is not None
        assert found.aggregate.complainant_name == ERASED  # type: ignore[attr-defined]
        assert found.aggregate.complainant_contact == ERASED  # type: ignore[attr-defined]
        assert found.aggregate.flags == (ComplaintFlag.INSTITUTION_CLOSED,)  # type: ignore[attr-defined]

        await cases.projections.catch_up([TENANT])
        assert await _complainant(owner, complaint) == (ERASED, ERASED)
        # Replayed from the log, the read model gets the values erased too.
        assert await cases.projections.rebuild(owner, "complaints") > 0
        assert await _complainant(owner, complaint) == (ERASED, ERASED)


async def test_a_key_loaded_while_its_erasure_commits_stays_erased(
    settings: Settings, monkeypatch: Any
) -> None:
    """A projection of the erasing process loads the subject's key between the erasure's
    first step and its commit (its read still sees the key): reads after the erasure
    answer erased anyway, not the cached key for its 30 s."""
    async with running("cases", settings) as cases:
        received = ReceiveComplaint(
            channel=Channel.PHONE, summary="Laporan lewat telepon.", complainant_name=NAME
        )
        complaint = accepted(await run_command(cases, TENANT, received)).id
        async with tenant_transaction(cases.db, TENANT) as conn:
            found = await history_of(conn, cases.logs, TENANT, complaint, cases.keys)
        assert found is not None
        subject = str(found.aggregate.complainant_subject)  # type: ignore[attr-defined]
        keys, erase = cases.keys, cases.keys.erase

        async def erase_while_a_projection_loads(conn: Any, tenant: str, who: str) -> Erasure:
            erasure = await erase(conn, tenant, who)
            async with tenant_transaction(cases.db, tenant) as other:
                await keys.load(other, tenant, [who])
            return erasure

        monkeypatch.setattr(keys, "erase", erase_while_a_projection_loads)
        assert await SubjectErasure(cases.db, keys, TENANT).erase(UUID(subject)) is Erasure.ERASED
        async with tenant_transaction(cases.db, TENANT) as conn:
            found = await history_of(conn, cases.logs, TENANT, complaint, keys)
        assert found is not None
        assert found.aggregate.complainant_name == ERASED  # type: ignore[attr-defined]


async def test_an_erasure_in_one_process_reaches_the_services_other_processes_at_once(
    settings: Settings,
) -> None:
    """Two processes of one service (replicas, or the API and worker roles) each cache the
    keys they used: the erasing one forgets at once, the other hears of it with the
    erasure's commit instead of trusting its cached key for up to 30 s more."""
    async with running("cases", settings) as first, running("cases", settings) as second:
        received = ReceiveComplaint(
            channel=Channel.PHONE, summary="Laporan lewat telepon.", complainant_name=NAME
        )
        complaint = accepted(await run_command(first, TENANT, received)).id

        async def name_in_second() -> Any:
            async with tenant_transaction(second.db, TENANT) as conn:
                found = await history_of(conn, second.logs, TENANT, complaint, second.keys)
            assert found is not None
            return found.aggregate.complainant_name  # type: ignore[attr-defined]

        assert await name_in_second() == NAME  # the second process now caches the key
        subject = await _history_subject(first, complaint)
        await run_command(
            first, TENANT, EraseSubject(subject=subject, reason="Permintaan subjek data")
        )

        async def erased_in_second() -> bool:
            return bool(await name_in_second() == ERASED)

        await eventually(erased_in_second, within=5, interval=0.05)


async def _history_subject(runtime: Any, complaint: UUID) -> UUID:
    async with tenant_transaction(runtime.db, TENANT) as conn:
        found = await history_of(conn, runtime.logs, TENANT, complaint, runtime.keys)
    assert found is not None
    return UUID(str(found.aggregate.complainant_subject))  # type: ignore[attr-defined]


async def _complainant(owner: asyncpg.Connection[Any], complaint: UUID) -> tuple[Any, Any]:
    row = await owner.fetchrow(
        "SELECT complainant_name, complainant_contact FROM cases.complaints WHERE id = $1",
        complaint,
    )
    assert row is not None
    return row["complainant_name"], row["complainant_contact"]
