"""The composition root: which services exist and how one is wired into a runnable app."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar

from services.cases.service import cases_service
from services.hr.service import hr_service
from services.registry.service import registry_service
from shared.http.app import create_app
from shared.runtime import ServiceRuntime
from shared.service import ServiceDefinition
from shared.settings import Settings

SERVICES: dict[str, Callable[[], ServiceDefinition]] = {
    "registry": registry_service,
    "cases": cases_service,
    "hr": hr_service,
}


def build_runtime(name: str, settings: Settings, *, run_background: bool = True) -> ServiceRuntime:
    if settings.database_url is None or settings.nats_url is None:
        raise ValueError("MPKS_DATABASE_URL and MPKS_NATS_URL must be set to run a service")
    return ServiceRuntime(
        definition=SERVICES[name](),
        settings=settings,
        database_url=settings.database_url,
        nats_url=settings.nats_url,
        run_background=run_background,
    )


def build_app(name: str, settings: Settings) -> Litestar:
    return create_app(build_runtime(name, settings))
