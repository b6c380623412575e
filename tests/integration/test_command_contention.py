"""Many writers on one record at once, with and without a shared Idempotency-Key: every
answer is a success, a replay of the first answer or a 409, never an error (a 500)."""

from __future__ import annotations

import asyncio
import collections
from functools import partial
from uuid import UUID

import msgspec

from services.registry.application.register_institution import register_institution
from services.registry.application.rename_institution import rename_institution
from services.registry.domain.institution import InstitutionType, Owner
from shared.domain.errors import Conflict
from shared.eventstore.commands import Decision
from shared.eventstore.context import CommandContext
from shared.eventstore.stores import TenantApplication
from shared.settings import Settings
from tests.helpers import running

TENANT = "75"


async def test_contended_commands_end_in_success_replay_or_conflict(settings: Settings) -> None:
    ctx = CommandContext(tenant=TENANT, actor="contention-test", correlation_id="c")
    outcomes: collections.Counter[str] = collections.Counter()
    async with running("registry", settings) as runtime:
        for round_ in range(25):
            created = await runtime.commands.run(
                TENANT,
                ctx,
                partial(
                    register_institution,
                    name=f"LKSA Gorontalo {round_}",
                    kind=InstitutionType.LKSA,
                    owner=Owner.MUHAMMADIYAH,
                    pdm=f"{TENANT}71",
                    address=None,
                ),
            )
            institution = UUID(msgspec.json.decode(created.body)["id"])

            async def rename(i: int, r: int = round_, iid: UUID = institution) -> str:
                # Half the writers retry one request (same key, same body), half are distinct.
                key = f"round-{r}-retry" if i % 2 else f"round-{r}-writer-{i}"

                def handler(app: TenantApplication) -> Decision:
                    return rename_institution(
                        app, iid, name=f"Nama {r}-{i % 2}", expected_version=None
                    )

                try:
                    result = await runtime.commands.run(
                        TENANT,
                        ctx,
                        handler,
                        idempotency_key=key,
                        request_fingerprint=f"body-{i % 2}",
                    )
                except Conflict:
                    return "conflict"
                return "replayed" if result.replayed else "applied"

            outcomes.update(await asyncio.gather(*(rename(i) for i in range(8))))
    assert set(outcomes) <= {"applied", "replayed", "conflict"}, outcomes
    assert outcomes["applied"] >= 25
