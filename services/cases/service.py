"""Cases as the kernel sees it."""

from __future__ import annotations

from importlib import resources

from services.cases.api.controllers import ComplaintController, DirectoryController
from services.cases.domain.complaint import Complaint
from services.cases.projections.complaints import ComplaintsProjection
from services.cases.projections.institution_directory import InstitutionDirectoryProjection
from shared.service import ServiceDefinition


def cases_service() -> ServiceDefinition:
    return ServiceDefinition(
        name="cases",
        title="Cases (complaint centre)",
        aggregates=[("Complaint", Complaint)],
        migrations=resources.files("services.cases.migrations"),
        controllers=[ComplaintController, DirectoryController],
        projections=lambda: [ComplaintsProjection()],
        reactions={"registry": lambda: [InstitutionDirectoryProjection()]},
    )
