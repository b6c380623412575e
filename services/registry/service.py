"""The registry as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.registry.api.controllers import InstitutionController
from services.registry.domain.institution import Institution
from services.registry.projections.institutions import InstitutionsProjection
from shared.service import ServiceDefinition
from shared.service_layer.handlers import HandlerRegistry


def registry_service() -> ServiceDefinition:
    return ServiceDefinition(
        name="registry",
        title="Registry",
        aggregates=[("Institution", Institution)],
        resources={"Institution": "institutions"},
        migrations=resources.files("services.registry.migrations"),
        controllers=[InstitutionController],
        handlers=lambda: HandlerRegistry.discover("services.registry.application"),
        projections=lambda: [InstitutionsProjection()],
    )
