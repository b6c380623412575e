"""Settings read from environment variables, once, at the composition root.

Every variable is documented in the README's settings table; keep the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import msgspec

DEV_JWT_KEY = "mpks-development-key-not-for-production-use"


class ProcessRole(StrEnum):
    """What one process of a service runs (`mpks serve --role`, `MPKS_ROLE`). Kubernetes
    scales the two halves on their own: API pods with the request rate, worker pods (one
    leads each job, the others stand by) for availability of the background work."""

    # The HTTP API: commands and reads; no relay, projections or consumers (and no NATS).
    API = "api"
    # Relay, projections, consumers and process managers; over HTTP only health and metrics.
    WORKER = "worker"
    # Both, in one process: `mpks up`, small deployments.
    ALL = "all"

    @property
    def serves_api(self) -> bool:
        return self is not ProcessRole.WORKER

    @property
    def runs_background(self) -> bool:
        return self is not ProcessRole.API


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None = None
    app_database_url: str | None = None
    nats_url: str | None = None
    nats_prefix: str = "mpks"
    data_dir: Path = Path(".mpks")
    jwt_algorithm: str = "HS256"
    jwt_secret: str = DEV_JWT_KEY
    jwt_public_key: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Verified tokens kept per process (`shared.auth.VerifiedTokens`); 0 turns the cache off.
    token_cache_size: int = 4096
    # The longest a verified token is trusted without checking it again (never past its exp).
    token_cache_seconds: int = 300
    # Where each service listens, and where the others reach its events feed: MPKS_<NAME>_URL
    # for every service the composition root declares (`from_env`).
    service_urls: dict[str, str] = msgspec.field(default_factory=dict)
    host: str = "127.0.0.1"
    eventstore_pool_size: int = 4
    eventstore_pool_overflow: int = 4
    readmodel_pool_size: int = 8
    lock_timeout_seconds: int = 5
    # How long the services wait for the answer to one statement (asyncpg's
    # `command_timeout`): a PostgreSQL that stops answering (frozen, a network partition)
    # costs a request a 503 after this, not a hang as long as the outage.
    statement_timeout_seconds: float = 15.0
    log_level: str = "INFO"
    service_token: str | None = None
    # The key personal-data keys are encrypted under (32 bytes, base64; `shared.personal`).
    master_key: str | None = None
    workers: int = 1
    role: ProcessRole = ProcessRole.ALL
    # The Ed25519 key that signs the logs' checkpoints (`shared.audit.keys`): a PEM private
    # key, or the path of a file holding one. Unset: a development key (refused with a
    # production JWT key).
    chain_signing_key: str | None = None
    # A tenant log gets a signed checkpoint once this many events, or this many seconds,
    # passed since its last one (whichever comes first).
    checkpoint_every_events: int = 1000
    checkpoint_every_seconds: int = 300
    # How often the scheduler looks for due deadlines (`shared.scheduling`); a deadline still
    # pending two polls after it fell due counts as overdue.
    scheduler_poll_seconds: float = 10.0
    # Requests a minute each client address may make to the public routes, per process
    # (`shared.http.public`).
    public_rate_limit: int = 120

    @property
    def is_production_key(self) -> bool:
        """A key other than the development default means real tokens: refuse to mint."""
        return (
            self.jwt_algorithm != "HS256"
            or self.jwt_secret != DEV_JWT_KEY
            or self.jwks_url is not None
        )

    def service_url(self, service: str) -> str:
        try:
            return self.service_urls[service]
        except KeyError:
            raise LookupError(
                f"no URL for service {service!r}: the composition root does not declare it "
                f"(MPKS_{service.upper()}_URL)"
            ) from None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, service_ports: Mapping[str, int] | None = None
    ) -> Settings:
        """`service_ports`: the services the composition root declares, each with the port it
        listens on (on this machine) unless `MPKS_<NAME>_URL` says otherwise."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            raw = env.get(f"MPKS_{field.name.upper()}")
            if raw is not None and raw != "":
                values[field.name] = raw
        urls: dict[str, str] = {}
        for service, port in (service_ports or {}).items():
            variable = service_url_variable(service)
            urls[service] = env.get(variable) or f"http://127.0.0.1:{port}"
        values["service_urls"] = urls
        return msgspec.convert(values, cls, strict=False, dec_hook=_decode)

    def replace(self, **changes: object) -> Settings:
        return msgspec.structs.replace(self, **changes)


def service_url_variable(service: str) -> str:
    """`MPKS_<NAME>_URL`, refused for a name whose variable is already a setting's."""
    variable = f"MPKS_{service.upper()}_URL"
    if f"{service}_url" in Settings.__struct_fields__ or not service.isidentifier():
        raise ValueError(f"{service!r} cannot name a service: {variable} means something else")
    return variable


def _decode(kind: type, value: object) -> object:
    # msgspec has no built-in conversion to Path (MPKS_DATA_DIR).
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot convert {value!r} to {kind}")
