from __future__ import annotations

from datetime import date

from services.hr.domain.social_worker import SocialWorker
from shared.eventstore.commands import Decision
from shared.eventstore.stores import TenantApplication


def register_worker(
    app: TenantApplication, *, full_name: str, birth_date: date, pdm: str | None, today: date
) -> Decision:
    worker = SocialWorker.register(
        tenant=app.tenant, full_name=full_name, birth_date=birth_date, pdm=pdm, today=today
    )
    return Decision.saving(worker, status=201)
