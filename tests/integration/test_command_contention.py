"""Many writers on one record at once, with and without a shared Idempotency-Key: every
answer is a success, a replay of the first answer or a 409, never an error (a 500)."""

from __future__ import annotations

import asyncio
import collections
from uuid import UUID

from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.institution import InstitutionType
from shared.domain.errors import Conflict
from shared.eventstore.context import CommandContext
from shared.settings import Settings
from tests.helpers import accepted, running

TENANT = "75"


async def test_contended_commands_end_in_success_replay_or_conflict(settings: Settings) -> None:
    ctx = CommandContext(tenant=TENANT, actor="contention-test", correlation_id="c")
    outcomes: collections.Counter[str] = collections.Counter()
    async with running("registry", settings) as runtime:
        for round_ in range(25):
            created = await runtime.bus.execute(
                RegisterInstitution(
                    name=f"LKSA Gorontalo {round_}", kind=InstitutionType.LKSA, pdm=f"{TENANT}71"
                ),
                ctx,
            )
            institution = accepted(created).id

            async def rename(i: int, r: int = round_, iid: UUID = institution) -> str:
                # Half the writers retry one request (same key, same body), half are distinct.
                key = f"round-{r}-retry" if i % 2 else f"round-{r}-writer-{i}"
                try:
                    result = await runtime.bus.execute(
                        RenameInstitution(institution_id=iid, name=f"Nama {r}-{i % 2}"),
                        ctx,
                        idempotency_key=key,
                        request_fingerprint=f"body-{i % 2}",
                    )
                except Conflict:
                    return "conflict"
                return "replayed" if result.replayed else "applied"

            outcomes.update(await asyncio.gather(*(rename(i) for i in range(8))))
    assert set(outcomes) <= {"applied", "replayed", "conflict"}, outcomes
    assert outcomes["applied"] >= 25
