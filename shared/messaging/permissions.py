"""NATS accounts that keep each province's systems to its own events.

Permissions only see subjects, never the body of a JetStream request: a user allowed to
create consumers on the services' streams can pick a push consumer's deliver subject, and
with it write into another province's inbox or into other streams' subjects. So each
province gets its own NATS *account*, NATS's unit of isolation: subjects, streams and
consumers of one account are invisible to the others, and only what an account exports
and another imports crosses between them.

- ``SERVICES`` holds the user ``services`` (full access, JetStream): the services, their
  relays and the services' streams ``<PREFIX>_<SERVICE>`` live there, unchanged.
- ``T<code>`` (one per province) holds the user ``tenant-<code>`` and one stream,
  ``<PREFIX>_EVENTS``, that *sources* the services' streams filtered to
  ``<prefix>.<service>.<code>.>``. Sourcing copies the whole history, also what was
  published before the stream or the province's system existed, and keeps following.
  It also sources the services' checkpoint stream filtered to
  ``<prefix>.checkpoints.<code>.>``: the signed checkpoints of the province's logs, which
  its copy of the events can be verified against (`mpks audit verify`'s chain rules).
  The province's system consumes this stream like any JetStream stream: push or pull,
  durable, acks, any deliver subject, any consumer name. Whatever it configures stays
  inside its account, which holds nothing but its own events.

What crosses accounts, and why each is safe:

- ``SERVICES`` exports to ``T<code>`` only, as a service, the filtered consumer-create
  subject ``$JS.API.CONSUMER.CREATE.*.*.<prefix>.*.<code>.>`` (the server refuses a body
  whose filter differs from the subject's) and ``$JS.FC.>`` (flow-control replies of the
  source consumers; a reply only counts on the exact subject a consumer is waiting on),
  and as a stream the source consumers' deliver subjects ``_SOURCE.<prefix>.<code>.>``.
  ``T<code>`` imports the create subject under ``$JS.SERVICES.API``, the API prefix of its
  stream's sources.
- ``T<code>`` exports its stream's management subjects
  ``$JS.API.STREAM.*.<PREFIX>_EVENTS`` to ``SERVICES`` only, imported there as
  ``$JS.T<code>.API``: the services' connection provisions every province's stream
  (:func:`ensure_province_streams`, run by ``mpks up`` and ``mpks nats-provision``).
- ``tenant-<code>`` may not publish to ``$JS.SERVICES.API`` (else it could create a push
  consumer in ``SERVICES`` again) nor manage streams (a source's deliver prefix is part of
  the stream's configuration): it reads its stream, manages consumers, acks. A consumer of
  its own that delivers into ``$JS.SERVICES.API`` sends stored events, which are no
  create requests.

The province's account may use 64 consumers and its stream 1 GiB; beyond that the stream
drops its oldest events (they stay in the services' streams and the events feed) rather
than stall.

Rejected alternatives: exporting the consumer API of the services' streams to the
provinces (as a service, or through permissions as before) leaves the deliver subject in a
body no permission or export can see; importing the province's raw subjects into a stream
of its account carries only what is published after that stream exists.

Production's NATS operator configures the same accounts: ``mpks nats-config`` prints this
section (with a production key, passwords are ``$MPKS_NATS_PASSWORD_<USER>`` variables,
``..._SERVICES``, ``..._TENANT_35``, which nats-server reads from its environment), then
``mpks nats-provision`` creates the provinces' streams through ``MPKS_NATS_URL``.

Development passwords are derived, not stored: ``HMAC-SHA256(secret, "nats:" + user)`` in
hex, with the JWT secret as the key. With the public development key they separate
provinces' systems from honest mistakes, not from someone who reads this file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Iterable

import msgspec
import nats
from nats.aio.client import Client
from nats.js.api import (
    DiscardPolicy,
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.errors import NotFoundError

from shared.audit.checkpoints import ensure_checkpoint_stream
from shared.audit.checkpoints import stream_name as checkpoint_stream
from shared.messaging.streams import Subjects, ensure_stream
from shared.settings import Settings
from shared.tenancy import province_codes

__all__ = [
    "SERVICES_ACCOUNT",
    "SERVICES_API_PREFIX",
    "SERVICES_USER",
    "TenantCredentials",
    "ensure_province_streams",
    "province_api_prefix",
    "province_stream",
    "province_stream_config",
    "provision",
    "render_accounts",
    "service_nats_password",
    "source_deliver_prefix",
    "tenant_account",
    "tenant_credentials",
    "tenant_filter",
    "tenant_nats_password",
    "tenant_permissions",
    "tenant_user",
]

SERVICES_ACCOUNT = "SERVICES"
SERVICES_USER = "services"
# Where a province account reaches the services' consumer-create API (its sources' `api`).
SERVICES_API_PREFIX = "$JS.SERVICES.API"
# A province's account holds its stream and consumers, and may not fill the server's disk.
# Its stream keeps the newest events within that room rather than stall its sources; older
# ones stay in the services' streams and the events feed.
PROVINCE_STREAM_BYTES = 2**30
PROVINCE_JETSTREAM_LIMITS: dict[str, object] = {
    "max_mem": 64 * 2**20,
    # The account's limit trips on the store's overhead before the stream discards.
    "max_file": PROVINCE_STREAM_BYTES + PROVINCE_STREAM_BYTES // 4,
    "max_streams": 1,
    "max_consumers": 64,
}

# The prefix and codes become subject tokens; anything else would widen or break patterns.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class TenantCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """What a province's system needs to consume its events."""

    user: str
    password: str
    account: str
    stream: str
    filter_subject: str


def tenant_account(code: str) -> str:
    return f"T{code}"


def tenant_user(code: str) -> str:
    return f"tenant-{code}"


def province_stream(prefix: str) -> str:
    """The stream in each province's account holding all its events."""
    return f"{prefix.upper()}_EVENTS"


def tenant_filter(prefix: str, code: str, service: str = "*") -> str:
    """A province's events: all of them, or one service's."""
    return f"{prefix}.{service}.{code}.>"


def source_deliver_prefix(prefix: str, code: str) -> str:
    """Deliver prefix (in ``SERVICES``) of the consumers feeding a province's stream."""
    return f"_SOURCE.{prefix}.{code}"


def province_api_prefix(code: str) -> str:
    """Where the services' connection reaches a province account's stream API."""
    return f"$JS.{tenant_account(code)}.API"


def _check_tokens(prefix: str, codes: Iterable[str]) -> None:
    if not _TOKEN.fullmatch(prefix):
        raise ValueError(f"NATS prefix {prefix!r} must be a single subject token")
    for code in codes:
        if not _TOKEN.fullmatch(code):
            raise ValueError(f"tenant code {code!r} must be a single subject token")


def _password(settings: Settings, user: str) -> str:
    return hmac.new(
        settings.jwt_secret.encode(), f"nats:{user}".encode(), hashlib.sha256
    ).hexdigest()


def tenant_nats_password(settings: Settings, code: str) -> str:
    return _password(settings, tenant_user(code))


def service_nats_password(settings: Settings) -> str:
    return _password(settings, SERVICES_USER)


def tenant_credentials(settings: Settings, code: str) -> TenantCredentials:
    """A province's NATS credentials; refused with a production key, like dev tokens."""
    if settings.is_production_key:
        raise PermissionError(
            "a production key is configured: NATS credentials come from the NATS operator"
        )
    if code not in province_codes():
        raise ValueError(f"unknown tenant {code!r} (a 2-digit province code)")
    return TenantCredentials(
        user=tenant_user(code),
        password=tenant_nats_password(settings, code),
        account=tenant_account(code),
        stream=province_stream(settings.nats_prefix),
        filter_subject=tenant_filter(settings.nats_prefix, code),
    )


def tenant_permissions(prefix: str) -> dict[str, dict[str, list[str]]]:
    """nats-server ``permissions`` of a province's user, inside its own account."""
    _check_tokens(prefix, ())
    stream = province_stream(prefix)
    return {
        "publish": {
            "allow": [
                "$JS.API.INFO",
                "$JS.API.STREAM.NAMES",
                "$JS.API.STREAM.LIST",
                f"$JS.API.STREAM.INFO.{stream}",
                f"$JS.API.STREAM.MSG.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}.>",
                # Every consumer operation on any stream: the account holds only this one.
                "$JS.API.CONSUMER.>",
                # Ack, nak, term, in-progress, and push consumers' flow-control replies.
                f"$JS.ACK.{stream}.>",
                f"$JS.FC.{stream}.>",
            ]
        },
        # The account holds nothing but the province's own events; the API requests sent
        # in it (the services' provisioning too) are the server's to answer.
        "subscribe": {"allow": [">"], "deny": ["$JS.API.>"]},
    }


def _services_account(settings: Settings, prefix: str, codes: list[str]) -> dict[str, object]:
    exports: list[dict[str, object]] = []
    imports: list[dict[str, object]] = []
    for code in codes:
        account = tenant_account(code)
        exports += [
            {
                "service": f"$JS.API.CONSUMER.CREATE.*.*.{tenant_filter(prefix, code)}",
                "accounts": [account],
            },
            {"stream": f"{source_deliver_prefix(prefix, code)}.>", "accounts": [account]},
        ]
        imports.append(
            {
                "service": {
                    "account": account,
                    "subject": f"$JS.API.STREAM.*.{province_stream(prefix)}",
                },
                "to": f"{province_api_prefix(code)}.STREAM.*.{province_stream(prefix)}",
            }
        )
    exports.append({"service": "$JS.FC.>", "accounts": [tenant_account(c) for c in codes]})
    return {
        "jetstream": "enabled",
        "users": [{"user": SERVICES_USER, "password": _login(settings, SERVICES_USER)}],
        "exports": exports,
        "imports": imports,
    }


def _tenant_account(settings: Settings, prefix: str, code: str) -> dict[str, object]:
    create = f"$JS.API.CONSUMER.CREATE.*.*.{tenant_filter(prefix, code)}"
    return {
        "jetstream": PROVINCE_JETSTREAM_LIMITS,
        "users": [
            {
                "user": tenant_user(code),
                "password": _login(settings, tenant_user(code)),
                "permissions": tenant_permissions(prefix),
            }
        ],
        "exports": [
            {
                "service": f"$JS.API.STREAM.*.{province_stream(prefix)}",
                "accounts": [SERVICES_ACCOUNT],
            }
        ],
        "imports": [
            {
                "service": {"account": SERVICES_ACCOUNT, "subject": create},
                "to": create.replace("$JS.API", SERVICES_API_PREFIX, 1),
            },
            {"service": {"account": SERVICES_ACCOUNT, "subject": "$JS.FC.>"}},
            {
                "stream": {
                    "account": SERVICES_ACCOUNT,
                    "subject": f"{source_deliver_prefix(prefix, code)}.>",
                }
            },
        ],
    }


# A JSON string cannot hold a config variable; this marker, replaced after rendering,
# stands for one (`$NAME` unquoted: nats-server reads it from its environment).
_VARIABLE = "\0variable:"


def _login(settings: Settings, user: str) -> str:
    if settings.is_production_key:
        name = re.sub(r"[^A-Z0-9]", "_", user.upper())
        return f"{_VARIABLE}MPKS_NATS_PASSWORD_{name}"
    return _password(settings, user)


def render_accounts(
    settings: Settings, *, prefix: str | None = None, tenants: Iterable[str] | None = None
) -> str:
    """The ``accounts`` section of a nats-server config.

    Development passwords are in plain text (``bcrypt`` is not a dependency; the embedded
    server's file is written owner-only). With a production key each password is the
    variable ``$MPKS_NATS_PASSWORD_<USER>`` (``SERVICES``, ``TENANT_35``, ...), which
    nats-server takes from its environment, so the output holds no secret.
    """
    prefix = settings.nats_prefix if prefix is None else prefix
    codes = sorted(province_codes()) if tenants is None else sorted(tenants)
    _check_tokens(prefix, codes)
    accounts: dict[str, object] = {SERVICES_ACCOUNT: _services_account(settings, prefix, codes)}
    for code in codes:
        accounts[tenant_account(code)] = _tenant_account(settings, prefix, code)
    # JSON is valid nats-server config syntax, and quoting keeps `$JS...` from being read
    # as a variable reference.
    lines = ["accounts {"]
    lines += [f"  {name}: {json.dumps(account)}" for name, account in accounts.items()]
    lines += ["}", ""]
    text = "\n".join(lines)
    return re.sub(r'"\\u0000variable:([A-Z0-9_]+)"', r"$\1", text)


def province_stream_config(prefix: str, code: str, services: Iterable[str]) -> StreamConfig:
    """A province's stream: one source per service stream, filtered to the province, and
    the signed checkpoints of the province's logs (`shared.audit.checkpoints`, subjects
    ``<prefix>.checkpoints.<code>.<service>``), so the province keeps, outside the
    platform, what its copy of the events can be verified against."""
    subjects = Subjects(prefix)
    sources = [(subjects.stream(service), service) for service in sorted(services)]
    sources.append((checkpoint_stream(prefix), "checkpoints"))
    return StreamConfig(
        name=province_stream(prefix),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_bytes=PROVINCE_STREAM_BYTES,
        discard=DiscardPolicy.OLD,
        allow_direct=True,
        sources=[
            StreamSource(
                name=stream,
                filter_subject=tenant_filter(prefix, code, token),
                external=ExternalStream(
                    api=SERVICES_API_PREFIX, deliver=source_deliver_prefix(prefix, code)
                ),
            )
            for stream, token in sources
        ],
    )


async def ensure_province_streams(
    nc: Client,
    prefix: str,
    services: Iterable[str],
    tenants: Iterable[str] | None = None,
) -> None:
    """Create or update every province's stream, connected as ``services``.

    The services' streams are ensured first (the same configuration the services
    ensure): a source whose stream is missing is only retried every few seconds.
    Run it again when a service is added.
    """
    names = sorted(services)
    codes = sorted(province_codes()) if tenants is None else sorted(tenants)
    _check_tokens(prefix, [*codes, *names])
    subjects = Subjects(prefix)
    for service in names:
        await ensure_stream(nc.jetstream(), subjects, service)
    await ensure_checkpoint_stream(nc.jetstream(), prefix)

    async def ensure(code: str) -> None:
        js = nc.jetstream(prefix=province_api_prefix(code))
        config = province_stream_config(prefix, code, names)
        try:
            await js.stream_info(province_stream(prefix))
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)

    await asyncio.gather(*(ensure(code) for code in codes))


async def provision(settings: Settings, services: Iterable[str]) -> None:
    """:func:`ensure_province_streams` through ``settings.nats_url`` (as ``services``)."""
    if settings.nats_url is None:
        raise ValueError("MPKS_NATS_URL is not set")
    nc = await nats.connect(settings.nats_url, allow_reconnect=False, connect_timeout=5)
    try:
        await ensure_province_streams(nc, settings.nats_prefix, services)
    finally:
        await nc.close()
