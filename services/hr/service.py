"""HR as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.hr.api.controllers import WorkerController
from services.hr.domain.social_worker import SocialWorker
from services.hr.projections.workers import WorkersProjection
from shared.personal.erasure import SUBJECT_AGGREGATE, SubjectsController, with_erasure
from shared.service import ServiceDefinition
from shared.service_layer.handlers import HandlerRegistry


def hr_service() -> ServiceDefinition:
    return ServiceDefinition(
        name="hr",
        title="HR (social workers)",
        aggregates=[("SocialWorker", SocialWorker), SUBJECT_AGGREGATE],
        resources={"SocialWorker": "workers"},
        migrations=resources.files("services.hr.migrations"),
        controllers=[WorkerController, SubjectsController],
        handlers=lambda: with_erasure(HandlerRegistry.discover("services.hr.application")),
        projections=lambda: [WorkersProjection()],
    )
