"""The registry as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.registry.api.accreditation import (
    AccreditationController,
    NationalAccreditationController,
)
from services.registry.api.controllers import (
    InstitutionController,
    InstitutionDownloadController,
)
from services.registry.api.governance import GovernanceController
from services.registry.api.licences import LicenceController
from services.registry.api.officers import OfficerController
from services.registry.api.policies import PolicyController
from services.registry.api.profile import ProfileController
from services.registry.api.units import InstitutionUnitController, UnitController
from services.registry.configuration import accreditation_validity
from services.registry.domain.accreditation import (
    ACCREDITATION_STATUSES,
    GRADES,
    STANDINGS,
    Accreditation,
    CertificateNumber,
)
from services.registry.domain.institution import (
    INSTITUTION_STATUSES,
    INSTITUTION_TYPES,
    OWNERS,
    Institution,
)
from services.registry.domain.licence import (
    LICENCE_KINDS,
    LICENCE_STATES,
    LICENCE_STATUSES,
    Licence,
)
from services.registry.domain.officers import OFFICER_ROLES
from services.registry.domain.organisation_unit import UNIT_KINDS, UNIT_STATUSES, OrganisationUnit
from services.registry.domain.policy import POLICY_LEVELS, POLICY_STATUSES, Policy
from services.registry.domain.profile import SERVICE_KINDS
from services.registry.process_managers.when_unit_merged_move_institutions import (
    WhenUnitMergedMoveInstitutions,
)
from services.registry.projections.accreditation import AccreditationProjection
from services.registry.projections.governance import GovernanceProjection
from services.registry.projections.institutions import (
    PUBLIC_INSTITUTIONS,
    InstitutionsProjection,
    get_public_institution,
)
from services.registry.projections.licences import LicencesProjection
from services.registry.projections.policies import PoliciesProjection
from services.registry.projections.profiles import ProfilesProjection
from services.registry.projections.units import UnitsProjection
from shared.http.public import PublicResource
from shared.personal.erasure import SUBJECT_AGGREGATE, SubjectsController, with_erasure
from shared.service import ServiceDefinition
from shared.service_layer.handlers import HandlerRegistry


def registry_service() -> ServiceDefinition:
    accreditation_validity()  # a wrong MPKS_ACCREDITATION_VALIDITY_YEARS stops the start
    return ServiceDefinition(
        name="registry",
        title="Registry",
        aggregates=[
            ("Institution", Institution),
            ("OrganisationUnit", OrganisationUnit),
            ("Policy", Policy),
            ("Accreditation", Accreditation),
            ("CertificateNumber", CertificateNumber),
            ("Licence", Licence),
            # Officers are data subjects (their name, NIK and phone): erasable here.
            SUBJECT_AGGREGATE,
        ],
        resources={
            "Institution": "institutions",
            "OrganisationUnit": "units",
            "Policy": "policies",
            "Accreditation": "accreditations",
            "Licence": "licences",
        },
        migrations=resources.files("services.registry.migrations"),
        controllers=[
            InstitutionController,
            InstitutionDownloadController,
            UnitController,
            InstitutionUnitController,
            PolicyController,
            ProfileController,
            OfficerController,
            GovernanceController,
            AccreditationController,
            NationalAccreditationController,
            LicenceController,
            SubjectsController,
        ],
        handlers=lambda: with_erasure(HandlerRegistry.discover("services.registry.application")),
        projections=lambda: [
            InstitutionsProjection(),
            UnitsProjection(),
            PoliciesProjection(),
            ProfilesProjection(),
            GovernanceProjection(),
            AccreditationProjection(),
            LicencesProjection(),
        ],
        process_managers={"registry": lambda bus: [WhenUnitMergedMoveInstitutions(bus)]},
        labels=[
            INSTITUTION_TYPES,
            INSTITUTION_STATUSES,
            OWNERS,
            UNIT_KINDS,
            UNIT_STATUSES,
            POLICY_LEVELS,
            POLICY_STATUSES,
            OFFICER_ROLES,
            SERVICE_KINDS,
            GRADES,
            ACCREDITATION_STATUSES,
            STANDINGS,
            LICENCE_KINDS,
            LICENCE_STATUSES,
            LICENCE_STATES,
        ],
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
