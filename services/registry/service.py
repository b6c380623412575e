"""The registry as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.registry.api.accreditation import (
    AccreditationController,
    NationalAccreditationController,
)
from services.registry.api.controllers import InstitutionController
from services.registry.api.licences import LicenceController
from services.registry.configuration import accreditation_validity
from services.registry.domain.accreditation import Accreditation, CertificateNumber
from services.registry.domain.institution import Institution
from services.registry.domain.licence import Licence
from services.registry.projections.accreditation import AccreditationProjection
from services.registry.projections.institutions import InstitutionsProjection
from services.registry.projections.licences import LicencesProjection
from shared.service import ServiceDefinition
from shared.service_layer.handlers import HandlerRegistry


def registry_service() -> ServiceDefinition:
    accreditation_validity()  # a wrong MPKS_ACCREDITATION_VALIDITY_YEARS stops the start
    return ServiceDefinition(
        name="registry",
        title="Registry",
        aggregates=[
            ("Institution", Institution),
            ("Accreditation", Accreditation),
            ("CertificateNumber", CertificateNumber),
            ("Licence", Licence),
        ],
        resources={
            "Institution": "institutions",
            "Accreditation": "accreditations",
            "Licence": "licences",
        },
        migrations=resources.files("services.registry.migrations"),
        controllers=[
            InstitutionController,
            AccreditationController,
            NationalAccreditationController,
            LicenceController,
        ],
        handlers=lambda: HandlerRegistry.discover("services.registry.application"),
        projections=lambda: [
            InstitutionsProjection(),
            AccreditationProjection(),
            LicencesProjection(),
        ],
    )
