"""Tamper evidence: every append extends its log's hash chain, a worker signs checkpoints
and publishes them to a stream that refuses deletes and purges, and verify catches every
change made to the log directly in PostgreSQL — edited, removed, inserted and reordered
events, a log cut short after a checkpoint, a rewritten chain, forged checkpoints — and
names its position."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.js.errors import APIError

import shared.audit.export as export_module
from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.institution import InstitutionType
from shared.audit.chain import GENESIS, LogChain
from shared.audit.checkpoints import published_checkpoints, stored_checkpoints, stream_name
from shared.audit.export import Cursor, read_export
from shared.audit.signing import Checkpoint, sign, trusted_keys
from shared.audit.verify import LogReport, verify_log
from shared.devstack.stack import DevStack
from shared.runtime import ServiceRuntime, migrate_service
from shared.settings import Settings
from tests.helpers import (
    context,
    own_settings,
    register_institution_in,
    running,
)

SERVICE = "registry"
LOG = "registry_t{}.registry_events"
if TYPE_CHECKING:
    Owner = asyncpg.Connection[Any]
else:
    Owner = asyncpg.Connection


@pytest.fixture(scope="module")
async def own(backing: DevStack, settings: Settings) -> AsyncIterator[Settings]:
    async with own_settings(backing.database_url, backing.nats_url, settings, "chain") as own:
        # A checkpoint whenever asked and something is new.
        yield own.replace(checkpoint_every_events=1)


@pytest.fixture(scope="module")
async def registry(own: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running(SERVICE, own) as runtime:
        yield runtime


@pytest.fixture
async def db(own: Settings) -> AsyncIterator[Owner]:
    """The owner's login: what someone with full access to the database could do."""
    assert own.database_url is not None
    conn = await asyncpg.connect(own.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def verify(runtime: ServiceRuntime, db: Owner, tenant: str) -> LogReport:
    """What an auditor runs: the checkpoints from the database and from the stream."""
    checkpoints = [
        *await stored_checkpoints(db, SERVICE, tenant),
        *await published_checkpoints(runtime.js, runtime.settings.nats_prefix, SERVICE, tenant),
    ]
    async with db.transaction(isolation="repeatable_read", readonly=True):
        return await verify_log(
            db, SERVICE, tenant, checkpoints=checkpoints, keys=trusted_keys(runtime.settings)
        )


async def record(runtime: ServiceRuntime, tenant: str, count: int) -> None:
    for n in range(count):
        await register_institution_in(runtime, tenant, f"LKSA Rantai {n} {secrets.token_hex(2)}")


async def checkpoint(runtime: ServiceRuntime, tenant: str) -> int:
    (signed,) = await runtime.checkpointer.checkpoint_due([tenant])
    return signed.position


async def test_an_untouched_log_is_intact_and_signed_up_to_its_checkpoint(
    registry: ServiceRuntime, db: Owner
) -> None:
    tenant = "11"
    await record(registry, tenant, 5)
    assert await checkpoint(registry, tenant) == 5
    await record(registry, tenant, 2)

    report = await verify(registry, db, tenant)

    assert report.intact, report.summary
    assert (report.position, report.events, report.checkpoints) == (7, 7, 1)
    assert report.signed is not None
    assert report.signed.position == 5
    assert report.summary.startswith("intact up to position 7, signed up to position 5")
    # Each stored hash is the chain v1 definition recomputed independently, from genesis.
    chain = LogChain(SERVICE, tenant, GENESIS)
    rows = await db.fetch(f"SELECT * FROM {LOG.format(tenant)} ORDER BY notification_id")
    assert [r["notification_id"] for r in rows] == list(range(1, 8))
    for r in rows:
        assert r["hash"] == chain.link(
            r["notification_id"],
            r["originator_id"],
            r["originator_version"],
            r["topic"],
            r["state"],
        )


async def test_the_export_carries_every_hash_and_the_signed_checkpoints_after_their_event(
    registry: ServiceRuntime, db: Owner
) -> None:
    """An auditor holding only the export file recomputes the chain from it and checks each
    checkpoint's signature against the published key."""
    tenant = "72"
    await record(registry, tenant, 3)
    assert await checkpoint(registry, tenant) == 3
    await record(registry, tenant, 2)

    body = b"".join(
        [
            chunk
            async for chunk in read_export(
                {SERVICE: db}, tenant, Cursor.parse(None, [SERVICE]), None
            )
        ]
    )

    lines = [msgspec.json.decode(line) for line in body.splitlines()]
    assert [line["type"] for line in lines] == [
        "header", "event", "event", "event", "checkpoint", "event", "event", "end"
    ]  # fmt: skip
    assert lines[-1]["events"] == 5
    chain = LogChain(SERVICE, tenant, GENESIS)
    raw_events = [
        raw for raw, line in zip(body.splitlines(), lines, strict=True) if line["type"] == "event"
    ]
    for raw, event in zip(raw_events, [x for x in lines if x["type"] == "event"], strict=True):
        meta_at = raw.index(b',"meta":') + len(b',"meta":')
        data_at = raw.index(b',"data":', meta_at)
        state = b'{"v":%d,"meta":%b,"data":%b}' % (
            event["event_version"],
            raw[meta_at:data_at],
            raw[data_at + len(b',"data":') : raw.rindex(b',"hash":')],
        )
        expected = chain.link(
            event["position"],
            UUID(event["aggregate_id"]),
            event["aggregate_version"],
            f"{event['aggregate']}.{event['event']}",
            state,
        )
        assert event["hash"] == expected.hex()
    (signed,) = [line for line in lines if line["type"] == "checkpoint"]
    assert signed["position"] == 3
    assert signed["head_hash"] == lines[3]["hash"]
    exported = Checkpoint(
        service=signed["service"],
        tenant=signed["tenant"],
        position=signed["position"],
        head_hash=bytes.fromhex(signed["head_hash"]),
        signed_at=msgspec.convert(signed["signed_at"], datetime),
        key_id=signed["key_id"],
        signature=bytes.fromhex(signed["signature"]),
    )
    assert exported.verifies(trusted_keys(registry.settings))
    assert exported in await stored_checkpoints(db, SERVICE, tenant)


async def test_an_export_read_in_small_batches_is_the_same_document_cut_at_until_after_a_checkpoint(
    registry: ServiceRuntime, db: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches end anywhere: between an event and its checkpoint, on a checkpoint, in the
    middle of what `until` keeps. The document is the same however the log is read."""
    tenant = "81"
    await record(registry, tenant, 3)
    assert await checkpoint(registry, tenant) == 3
    await record(registry, tenant, 3)
    assert await checkpoint(registry, tenant) == 6
    await record(registry, tenant, 1)

    async def lines(until: datetime | None = None) -> list[bytes]:
        cursor = Cursor.parse(None, [SERVICE])
        export = read_export({SERVICE: db}, tenant, cursor, until)
        return b"".join([chunk async for chunk in export]).splitlines()

    whole = await lines()
    monkeypatch.setattr(export_module, "_BATCH", 2)
    batched = await lines()

    kinds = [msgspec.json.decode(line)["type"] for line in batched]
    assert kinds == ["header", *["event"] * 3, "checkpoint", *["event"] * 3, "checkpoint",
                     "event", "end"]  # fmt: skip
    # The same lines (the header's time and so the digest aside), the digest right.
    assert batched[1:-1] == whole[1:-1]
    end = msgspec.json.decode(batched[-1])
    assert end["events"] == 7
    assert end["sha256"] == hashlib.sha256(b"".join(x + b"\n" for x in batched[:-1])).hexdigest()

    fourth = msgspec.json.decode(batched[5])
    assert fourth["position"] == 4
    cut = await lines(until=msgspec.convert(fourth["occurred_at"], datetime))
    kinds = [msgspec.json.decode(line)["type"] for line in cut]
    assert kinds == ["header", "event", "event", "event", "checkpoint", "event", "end"]
    end = msgspec.json.decode(cut[-1])
    assert (end["events"], end["next_from"]) == (4, f"{SERVICE}:4")


# --- tampering, each on a log of its own: 6 events, a checkpoint at 6, then 2 more -------


async def _edit_state(db: Owner, tenant: str, chain: LogChain) -> None:
    log = LOG.format(tenant)
    await db.execute(
        f"UPDATE {log} SET state = overlay(state PLACING 'X'::bytea FROM 12) "
        "WHERE notification_id = 3"
    )


async def _edit_topic(db: Owner, tenant: str, chain: LogChain) -> None:
    log = LOG.format(tenant)
    await db.execute(f"UPDATE {log} SET topic = 'Institution.Suspended' WHERE notification_id = 4")


async def _delete(db: Owner, tenant: str, chain: LogChain) -> None:
    log = LOG.format(tenant)
    await db.execute(f"DELETE FROM {log} WHERE notification_id = 3")


async def _delete_and_renumber(db: Owner, tenant: str, chain: LogChain) -> None:
    log = LOG.format(tenant)
    await db.execute(f"DELETE FROM {log} WHERE notification_id = 3")
    await db.execute(
        f"UPDATE {log} SET notification_id = notification_id - 1 WHERE notification_id > 3"
    )


async def _make_room(db: Owner, log: str, at: int) -> None:
    # In two steps: the unique index is checked row by row.
    await db.execute(
        f"UPDATE {log} SET notification_id = notification_id + 1000000 "
        f"WHERE notification_id >= {at}"
    )
    await db.execute(
        f"UPDATE {log} SET notification_id = notification_id - 999999 "
        "WHERE notification_id >= 1000000"
    )


async def _forge(db: Owner, log: str, at: int, hash_of: Callable[[dict[str, Any]], bytes]) -> None:
    row = await db.fetchrow(f"SELECT * FROM {log} WHERE notification_id = {at - 1}")
    assert row is not None
    forged = {
        **dict(row),
        "notification_id": at,
        "originator_version": 2,
        "topic": "Institution.Closed",
    }
    forged["hash"] = hash_of(forged)
    await db.execute(
        f"""INSERT INTO {log} (notification_id, originator_id, originator_version, topic,
                               state, hash) VALUES ($1, $2, $3, $4, $5, $6)""",
        *(forged[c] for c in ("notification_id", "originator_id", "originator_version")),
        *(forged[c] for c in ("topic", "state", "hash")),
    )


async def _insert_with_fitting_hash(db: Owner, tenant: str, chain: LogChain) -> None:
    """A forger who knows the chain's definition: the forged event's own hash is right."""
    log = LOG.format(tenant)
    await _make_room(db, log, 3)
    previous = await db.fetchval(f"SELECT hash FROM {log} WHERE notification_id = 2")
    chain.previous = previous
    await _forge(
        db,
        log,
        3,
        lambda r: chain.hash_of(
            r["notification_id"],
            r["originator_id"],
            r["originator_version"],
            r["topic"],
            r["state"],
        ),
    )


async def _insert_with_copied_hash(db: Owner, tenant: str, chain: LogChain) -> None:
    log = LOG.format(tenant)
    await _make_room(db, log, 3)
    await _forge(db, log, 3, lambda r: bytes(r["hash"]))


async def _append_forged(db: Owner, tenant: str, chain: LogChain) -> None:
    """After the last event, with a hash that does not fit."""
    log = LOG.format(tenant)
    await _forge(db, log, 9, lambda r: secrets.token_bytes(32))


async def _swap(db: Owner, log: str, a: int, b: int) -> None:
    await db.execute(f"UPDATE {log} SET notification_id = -1 WHERE notification_id = {a}")
    await db.execute(f"UPDATE {log} SET notification_id = {a} WHERE notification_id = {b}")
    await db.execute(f"UPDATE {log} SET notification_id = {b} WHERE notification_id = -1")


async def _reorder(db: Owner, tenant: str, chain: LogChain) -> None:
    log = LOG.format(tenant)
    await _swap(db, log, 2, 5)


async def _reorder_neighbours(db: Owner, tenant: str, chain: LogChain) -> None:
    log = LOG.format(tenant)
    await _swap(db, log, 4, 5)


async def _swap_contents(db: Owner, tenant: str, chain: LogChain) -> None:
    """The events trade places, each position keeping its hash."""
    log = LOG.format(tenant)
    columns = ("originator_id", "originator_version", "topic", "state")
    select = f"SELECT {', '.join(columns)} FROM {log} WHERE notification_id = $1"
    two, four = await db.fetchrow(select, 2), await db.fetchrow(select, 4)
    assert two is not None
    assert four is not None
    put = f"""UPDATE {log} SET originator_id = $1, originator_version = $2, topic = $3,
                  state = $4 WHERE notification_id = $5"""
    # Through a placeholder: (record, version) is unique row by row.
    await db.execute(put, uuid4(), 1, "x", b"", 2)
    await db.execute(put, *two, 4)
    await db.execute(put, *four, 2)


async def _cut_short(db: Owner, tenant: str, chain: LogChain) -> None:
    """The last events, and the checkpoint in the database that covers them."""
    log = LOG.format(tenant)
    await db.execute(f"DELETE FROM {log} WHERE notification_id >= 5")
    await db.execute(
        f"DELETE FROM {SERVICE}.chain_checkpoints WHERE tenant_id = $1 AND position = 6", tenant
    )


async def _rewrite(db: Owner, tenant: str, chain: LogChain) -> None:
    """Edit an event and recompute every hash after it: only the checkpoint can tell."""
    log = LOG.format(tenant)
    await _edit_state(db, tenant, chain)
    for r in await db.fetch(f"SELECT * FROM {log} ORDER BY notification_id"):
        cols = ("notification_id", "originator_id", "originator_version", "topic", "state")
        await db.execute(
            f"UPDATE {log} SET hash = $1 WHERE notification_id = $2",
            chain.link(*(r[c] for c in cols)),
            r["notification_id"],
        )


async def _forge_checkpoint(db: Owner, tenant: str, chain: LogChain) -> None:
    """A checkpoint at the head, signed with a key nobody trusts."""
    log = LOG.format(tenant)
    head = await db.fetchrow(f"SELECT notification_id, hash FROM {log} ORDER BY 1 DESC LIMIT 1")
    assert head is not None
    forged = sign(Ed25519PrivateKey.generate(), SERVICE, tenant, head[0], bytes(head[1]))
    await db.execute(
        f"""INSERT INTO {SERVICE}.chain_checkpoints
                (tenant_id, position, head_hash, signed_at, key_id, signature)
            VALUES ($1, $2, $3, $4, $5, $6)""",
        tenant,
        forged.position,
        forged.head_hash,
        forged.signed_at,
        forged.key_id,
        forged.signature,
    )


async def _alter_checkpoint(db: Owner, tenant: str, chain: LogChain) -> None:
    """The stored checkpoint made to agree with an edited log."""
    await db.execute(
        f"""UPDATE {SERVICE}.chain_checkpoints SET head_hash = $1
            WHERE tenant_id = $2 AND position = 6""",
        secrets.token_bytes(32),
        tenant,
    )


Tamper = Callable[[Owner, str, LogChain], Awaitable[None]]  # (owner, tenant, chain)

CASES: list[tuple[str, Tamper, str, int]] = [
    ("12", _edit_state, "altered", 3),
    ("13", _edit_topic, "altered", 4),
    ("14", _delete, "removed", 3),
    ("15", _delete_and_renumber, "removed", 3),
    ("16", _insert_with_fitting_hash, "inserted", 3),
    ("17", _insert_with_copied_hash, "inserted", 3),
    ("18", _append_forged, "altered", 9),
    ("19", _reorder, "reordered", 2),
    ("21", _reorder_neighbours, "reordered", 4),
    ("51", _swap_contents, "reordered", 2),
    ("52", _cut_short, "removed", 5),
    ("53", _rewrite, "checkpoint mismatch", 6),
    ("61", _forge_checkpoint, "bad signature", 8),
    ("62", _alter_checkpoint, "bad signature", 6),
]


@pytest.mark.parametrize(
    ("tenant", "tamper", "kind", "position"),
    CASES,
    ids=[case[1].__name__.strip("_") for case in CASES],
)
async def test_verify_names_the_first_change_made_in_the_database(
    registry: ServiceRuntime, db: Owner, tenant: str, tamper: Tamper, kind: str, position: int
) -> None:
    await record(registry, tenant, 6)
    assert await checkpoint(registry, tenant) == 6
    await record(registry, tenant, 2)
    assert (await verify(registry, db, tenant)).intact

    await tamper(db, tenant, LogChain(SERVICE, tenant))
    report = await verify(registry, db, tenant)

    assert not report.intact
    assert report.problem is not None, report.summary
    assert (report.problem.kind, report.problem.position) == (kind, position), report.summary
    assert report.summary.startswith(f"{kind} at position {position}: ")


async def test_no_checkpoint_is_signed_over_a_broken_chain(
    registry: ServiceRuntime, db: Owner
) -> None:
    tenant = "63"
    await record(registry, tenant, 3)
    assert await checkpoint(registry, tenant) == 3
    await record(registry, tenant, 3)
    await db.execute(f"DELETE FROM {LOG.format(tenant)} WHERE notification_id = 5")

    assert await registry.checkpointer.checkpoint_due([tenant]) == []
    assert registry.checkpointer.waiting_on == "chain broken, not signed: tenants 63"
    assert [c.position for c in await stored_checkpoints(db, SERVICE, tenant)] == [3]


async def test_checkpoints_are_published_once_to_a_stream_that_refuses_deletes_and_purges(
    registry: ServiceRuntime, db: Owner
) -> None:
    tenant = "64"
    await record(registry, tenant, 2)
    first = await checkpoint(registry, tenant)
    await record(registry, tenant, 1)
    second = await checkpoint(registry, tenant)
    # Published again after a crash between the acknowledgement and the stored flag.
    await db.execute(f"UPDATE {SERVICE}.chain_checkpoints SET published = false")
    await registry.checkpointer.publish_pending()

    js, prefix = registry.js, registry.settings.nats_prefix
    published = await published_checkpoints(js, prefix, SERVICE, tenant)
    assert [c.position for c in published] == [first, second] == [2, 3]
    assert published == await stored_checkpoints(db, SERVICE, tenant)
    keys = trusted_keys(registry.settings)
    assert all(c.verifies(keys) for c in published)

    info = await js.stream_info(stream_name(prefix))
    assert info.config.deny_delete
    assert info.config.deny_purge
    with pytest.raises(APIError):
        await js.delete_msg(stream_name(prefix), 1)
    with pytest.raises(APIError):
        await js.purge_stream(stream_name(prefix))
    assert [c.position for c in await published_checkpoints(js, prefix, SERVICE, tenant)] == [2, 3]


async def test_the_chain_stays_intact_under_concurrent_appends_from_many_writers(
    registry: ServiceRuntime, db: Owner
) -> None:
    tenant = "65"

    async def writer(n: int) -> None:
        for i in range(6):
            await registry.bus.execute(
                RegisterInstitution(
                    name=f"LKSA Serentak {n}-{i}", kind=InstitutionType.LKSA, pdm=f"{tenant}71"
                ),
                context(tenant),
            )

    await asyncio.gather(*(writer(n) for n in range(16)))
    report = await verify(registry, db, tenant)

    assert report.intact, report.summary
    assert (report.position, report.events) == (96, 96)


async def test_the_migration_chains_the_events_recorded_before_the_chain(
    registry: ServiceRuntime, db: Owner, own: Settings
) -> None:
    tenant = "71"
    await record(registry, tenant, 4)
    log = LOG.format(tenant)
    expected = await db.fetch(f"SELECT hash FROM {log} ORDER BY notification_id")
    # As a database from before the chain: no hashes.
    await db.execute(f"UPDATE {log} SET hash = NULL")
    assert not (await verify(registry, db, tenant)).intact

    assert own.database_url is not None
    await migrate_service(registry.definition, own.database_url, own)

    assert await db.fetch(f"SELECT hash FROM {log} ORDER BY notification_id") == expected
    await record(registry, tenant, 1)
    report = await verify(registry, db, tenant)
    assert report.intact, report.summary
    assert report.position == 5
