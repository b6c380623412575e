"""Cases as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.cases.api.controllers import ComplaintController, DirectoryController
from services.cases.domain.complaint import Complaint
from services.cases.process_managers.when_complaint_received_flag_if_institution_closed import (
    WhenComplaintReceivedFlagIfInstitutionClosed,
)
from services.cases.process_managers.when_institution_closed_flag_complaints import (
    WhenInstitutionClosedFlagComplaints,
)
from services.cases.projections.complaints import ComplaintsProjection
from services.cases.projections.institution_directory import (
    DirectoryLookup,
    InstitutionDirectoryProjection,
)
from shared.db.pool import DbPool
from shared.personal.erasure import SUBJECT_AGGREGATE, SubjectsController, with_erasure
from shared.service import ServiceDefinition
from shared.service_layer.handlers import HandlerRegistry
from shared.service_layer.messagebus import PortFactory


def cases_service() -> ServiceDefinition:
    return ServiceDefinition(
        name="cases",
        title="Cases (complaint centre)",
        aggregates=[("Complaint", Complaint), SUBJECT_AGGREGATE],
        resources={"Complaint": "complaints"},
        migrations=resources.files("services.cases.migrations"),
        controllers=[ComplaintController, DirectoryController, SubjectsController],
        handlers=lambda: with_erasure(HandlerRegistry.discover("services.cases.application")),
        ports=_ports,
        projections=lambda: [ComplaintsProjection()],
        reactions={"registry": lambda: [InstitutionDirectoryProjection()]},
        process_managers={
            "registry": lambda bus: [WhenInstitutionClosedFlagComplaints(bus)],
            "cases": lambda bus: [WhenComplaintReceivedFlagIfInstitutionClosed(bus)],
        },
    )


def _ports(db: DbPool) -> dict[str, PortFactory]:
    return {"directory": lambda tenant: DirectoryLookup(db, tenant)}
