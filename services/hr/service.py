"""HR as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.hr.api.controllers import WorkerController
from services.hr.domain.social_worker import SocialWorker
from services.hr.projections.workers import WorkersProjection
from shared.service import ServiceDefinition


def hr_service() -> ServiceDefinition:
    return ServiceDefinition(
        name="hr",
        title="HR (social workers)",
        aggregates=[("SocialWorker", SocialWorker)],
        migrations=resources.files("services.hr.migrations"),
        controllers=[WorkerController],
        projections=lambda: [WorkersProjection()],
    )
