"""The registry as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.registry.api.controllers import (
    InstitutionController,
    InstitutionDownloadController,
)
from services.registry.domain.institution import (
    INSTITUTION_STATUSES,
    INSTITUTION_TYPES,
    OWNERS,
    Institution,
)
from services.registry.projections.institutions import (
    PUBLIC_INSTITUTIONS,
    InstitutionsProjection,
    get_public_institution,
)
from shared.http.public import PublicResource
from shared.service import ServiceDefinition
from shared.service_layer.handlers import HandlerRegistry


def registry_service() -> ServiceDefinition:
    return ServiceDefinition(
        name="registry",
        title="Registry",
        aggregates=[("Institution", Institution)],
        resources={"Institution": "institutions"},
        migrations=resources.files("services.registry.migrations"),
        controllers=[InstitutionController, InstitutionDownloadController],
        handlers=lambda: HandlerRegistry.discover("services.registry.application"),
        projections=lambda: [InstitutionsProjection()],
        labels=[INSTITUTION_TYPES, INSTITUTION_STATUSES, OWNERS],
        public=[
            PublicResource(
                resource="institutions",
                listing=PUBLIC_INSTITUTIONS,
                one=get_public_institution,
                what="institution",
                projection=InstitutionsProjection.name,
                summary="Institutions of a province (public: no personal data, no token)",
            )
        ],
    )
