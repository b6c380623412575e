"""The registry as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.registry.api.controllers import InstitutionController
from services.registry.api.governance import GovernanceController
from services.registry.api.officers import OfficerController
from services.registry.api.profile import ProfileController
from services.registry.domain.institution import Institution
from services.registry.projections.governance import GovernanceProjection
from services.registry.projections.institutions import InstitutionsProjection
from services.registry.projections.profiles import ProfilesProjection
from shared.personal.erasure import SUBJECT_AGGREGATE, SubjectsController, with_erasure
from shared.service import ServiceDefinition
from shared.service_layer.handlers import HandlerRegistry


def registry_service() -> ServiceDefinition:
    return ServiceDefinition(
        name="registry",
        title="Registry",
        # Officers are data subjects (their name, NIK and phone): erasable here.
        aggregates=[("Institution", Institution), SUBJECT_AGGREGATE],
        resources={"Institution": "institutions"},
        migrations=resources.files("services.registry.migrations"),
        controllers=[
            InstitutionController,
            ProfileController,
            OfficerController,
            GovernanceController,
            SubjectsController,
        ],
        handlers=lambda: with_erasure(HandlerRegistry.discover("services.registry.application")),
        projections=lambda: [
            InstitutionsProjection(),
            ProfilesProjection(),
            GovernanceProjection(),
        ],
    )
