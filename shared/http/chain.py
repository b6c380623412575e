"""The hash chain for auditors: `GET /v1/tenants/{t}/audit/verify` verifies the tenant's
log of this service (`shared.audit.verify`), `GET /v1/audit/chain-key` gives the public key
its checkpoints are signed with."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import msgspec
import nats
from litestar import Controller, get
from litestar.params import FromPath, SkipValidation
from nats.js import JetStreamContext

from shared.audit.checkpoints import audit_log
from shared.audit.signing import key_id, public_pem, signing_key, trusted_keys
from shared.audit.verify import LogReport
from shared.auth import Role
from shared.db.pool import tenant_transaction
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.resilience.faults import CONNECTION_WAIT_SECONDS
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

Runtime = SkipValidation[ServiceRuntime]


class ChainKey(msgspec.Struct, frozen=True):
    key_id: str
    algorithm: str
    public_key_pem: str


@contextlib.asynccontextmanager
async def _stream(runtime: ServiceRuntime) -> AsyncIterator[JetStreamContext | None]:
    """The checkpoint stream: through the worker's connection, or (an API process has
    none) a short one of its own; None when NATS cannot be reached (the report says it
    checked the database's checkpoints only)."""
    if runtime.role.runs_background:
        yield runtime.js
        return
    try:
        nc = await nats.connect(runtime.nats_url, allow_reconnect=False, connect_timeout=2)
    except Exception as exc:
        log.warning("audit verify: NATS unreachable (%s); database checkpoints only", exc)
        yield None
        return
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


class ChainController(Controller):
    tags = ["audit"]

    @get(
        "/v1/tenants/{tenant:str}/audit/verify",
        guards=[tenant_guard, requires_roles(Role.AUDITOR, Role.NATIONAL_ADMIN)],
        summary="Verify the tenant's event log: hash chain and signed checkpoints",
        description=(
            "Recomputes the log's hash chain from its first event and checks every signed "
            "checkpoint (from the database and the JetStream record). `intact` false: "
            "`problem` names the first altered, removed, inserted or reordered event, a bad "
            "signature or a checkpoint the log no longer matches, with its position. Reads "
            "the whole log: seconds per hundred thousand events."
        ),
    )
    async def verify(self, tenant: FromPath[str], runtime: Runtime) -> LogReport:
        keys = trusted_keys(runtime.settings)
        async with (
            _stream(runtime) as js,
            tenant_transaction(runtime.db, tenant, wait=CONNECTION_WAIT_SECONDS) as conn,
        ):
            return await audit_log(
                conn,
                runtime.name,
                tenant,
                keys=keys,
                js=js,
                prefix=runtime.settings.nats_prefix,
            )

    @get(
        "/v1/audit/chain-key",
        guards=[requires_roles(*READERS)],
        summary="The Ed25519 public key the logs' checkpoints are signed with",
    )
    async def chain_key(self, runtime: Runtime) -> ChainKey:
        public = signing_key(runtime.settings).public_key()
        return ChainKey(
            key_id=key_id(public), algorithm="Ed25519", public_key_pem=public_pem(public)
        )
