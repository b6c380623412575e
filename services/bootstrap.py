"""The composition root: which services exist, where each listens by default, and how one is
wired into a runnable app. The kernel (`shared`) and the entry point (`mpks`) take the
services from here; a new service touches its own folder and this file only."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from shared.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar

    from shared.runtime import ServiceRuntime
    from shared.service import ServiceDefinition


class Declared(NamedTuple):
    define: Callable[[], ServiceDefinition]
    # Where it listens on one machine (`mpks up`) unless MPKS_<NAME>_URL says otherwise.
    port: int


def _imported(module: str, name: str) -> Callable[[], ServiceDefinition]:
    """The service's definition, its module imported when first asked for: a command that
    only needs the services' names and ports (`mpks --help`, `mpks audit export`) does not
    pay for importing every service (about a second)."""

    def define() -> ServiceDefinition:
        defined: Callable[[], ServiceDefinition] = getattr(importlib.import_module(module), name)
        return defined()

    return define


SERVICES: dict[str, Declared] = {
    "registry": Declared(_imported("services.registry.service", "registry_service"), port=8101),
    "cases": Declared(_imported("services.cases.service", "cases_service"), port=8102),
    "hr": Declared(_imported("services.hr.service", "hr_service"), port=8103),
}


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(
        env, service_ports={name: declared.port for name, declared in SERVICES.items()}
    )


def build_runtime(name: str, settings: Settings, *, run_background: bool = True) -> ServiceRuntime:
    from shared.eventstore.catalogue import EventCatalogue
    from shared.runtime import ServiceRuntime

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
    from shared.http.app import create_app

    return create_app(build_runtime(name, settings))
