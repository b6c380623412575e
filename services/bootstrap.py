"""The composition root: which services exist, where each listens by default, and how one is
wired into a runnable app. The kernel (`shared`) and the entry point (`mpks`) take the
services from here; a new service touches its own folder and this file only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from litestar import Litestar

from services.cases.service import cases_service
from services.hr.service import hr_service
from services.registry.service import registry_service
from shared.eventstore.catalogue import EventCatalogue
from shared.http.app import create_app
from shared.runtime import ServiceRuntime
from shared.service import ServiceDefinition
from shared.settings import Settings


class Declared(NamedTuple):
    define: Callable[[], ServiceDefinition]
    # Where it listens on one machine (`mpks up`) unless MPKS_<NAME>_URL says otherwise.
    port: int


SERVICES: dict[str, Declared] = {
    "registry": Declared(registry_service, port=8101),
    "cases": Declared(cases_service, port=8102),
    "hr": Declared(hr_service, port=8103),
}


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(
        env, service_ports={name: declared.port for name, declared in SERVICES.items()}
    )


def build_runtime(name: str, settings: Settings, *, run_background: bool = True) -> ServiceRuntime:
    if settings.database_url is None or settings.nats_url is None:
        raise ValueError("MPKS_DATABASE_URL and MPKS_NATS_URL must be set to run a service")
    definition = SERVICES[name].define()
    return ServiceRuntime(
        definition=definition,
        settings=settings,
        database_url=settings.database_url,
        nats_url=settings.nats_url,
        run_background=run_background,
        sources={
            source: EventCatalogue(SERVICES[source].define().aggregates)
            for source in definition.followed
        },
    )


def build_app(name: str, settings: Settings) -> Litestar:
    return create_app(build_runtime(name, settings))
