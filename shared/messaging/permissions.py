"""NATS users and permissions that keep each province's systems to its own events.

The services (and their relays) connect as ``services`` with full access. Every province
``<code>`` gets a user ``tenant-<code>`` that can do exactly what a JetStream *pull*
consumer of its own events needs, and nothing else:

- create a consumer only through the filtered create API
  ``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``, with the filter pinned by the
  permission to ``<prefix>.*.<code>.>`` (the server rejects a request whose body names
  another filter than the subject, or several filters);
- read, pull from, ack and delete only its own consumers. NATS wildcards match whole
  tokens only (``t35-*`` is a literal, not a pattern), so each province gets a fixed set of
  consumer names ``t<code>-1`` .. ``t<code>-<slots>``;
- receive only on its own inbox prefix ``_INBOX_t<code>`` (clients connect with
  ``inbox_prefix=b"_INBOX_t<code>"``), so it can never subscribe to event subjects,
  another province's replies or the services' inboxes.

Everything not allowed is denied: publishing events, the legacy ``CONSUMER.DURABLE.CREATE``
and unfiltered ``CONSUMER.CREATE`` subjects (their filter is in the body only), stream
management, ``STREAM.MSG.GET`` and ``DIRECT.GET``, and other provinces' consumers.

Passwords are derived, not stored: ``HMAC-SHA256(secret, "nats:" + user)`` in hex, with the
JWT secret as the key. In development that key is the public development key, so these
passwords separate provinces' systems from honest mistakes, not from someone who reads
this file; production NATS is configured by its operator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable

import msgspec

from shared.settings import Settings
from shared.tenancy import province_codes

__all__ = [
    "DEFAULT_CONSUMER_SLOTS",
    "SERVICES_USER",
    "TenantCredentials",
    "render_authorization",
    "service_nats_password",
    "tenant_consumer_names",
    "tenant_credentials",
    "tenant_filter",
    "tenant_inbox_prefix",
    "tenant_nats_password",
    "tenant_permissions",
    "tenant_user",
]

SERVICES_USER = "services"
DEFAULT_CONSUMER_SLOTS = 4

# The prefix becomes one subject token; anything else would widen or break the patterns.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class TenantCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """What a province's system needs to consume its events."""

    user: str
    password: str
    filter_subject: str
    inbox_prefix: str
    consumer_names: tuple[str, ...]


def tenant_user(code: str) -> str:
    return f"tenant-{code}"


def tenant_inbox_prefix(code: str) -> str:
    return f"_INBOX_t{code}"


def tenant_consumer_names(code: str, slots: int = DEFAULT_CONSUMER_SLOTS) -> tuple[str, ...]:
    return tuple(f"t{code}-{n}" for n in range(1, slots + 1))


def tenant_filter(prefix: str, code: str, service: str = "*") -> str:
    """The consumer filter a province may use: all its events, or one service's."""
    return f"{prefix}.{service}.{code}.>"


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
        filter_subject=tenant_filter(settings.nats_prefix, code),
        inbox_prefix=tenant_inbox_prefix(code),
        consumer_names=tenant_consumer_names(code),
    )


def tenant_permissions(
    prefix: str, code: str, slots: int = DEFAULT_CONSUMER_SLOTS
) -> dict[str, dict[str, list[str]]]:
    """nats-server ``permissions`` of one province's user."""
    if not _TOKEN.fullmatch(prefix):
        raise ValueError(f"NATS prefix {prefix!r} must be a single subject token")
    if not _TOKEN.fullmatch(code):
        raise ValueError(f"tenant code {code!r} must be a single subject token")
    # The stream token is `*`: a consumer is bound to its name, which only this province
    # may use, and to the filter, which only matches this province's events whatever the
    # stream; new services need no new permissions.
    publish = ["$JS.API.INFO"]
    for name in tenant_consumer_names(code, slots):
        publish += [
            f"$JS.API.CONSUMER.CREATE.*.{name}.{tenant_filter(prefix, code)}",
            f"$JS.API.CONSUMER.INFO.*.{name}",
            f"$JS.API.CONSUMER.MSG.NEXT.*.{name}",
            f"$JS.API.CONSUMER.DELETE.*.{name}",
            # Ack, nak, term and in-progress all publish to the message's reply subject,
            # `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`.
            f"$JS.ACK.*.{name}.>",
        ]
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": [f"{tenant_inbox_prefix(code)}.>"]},
    }


def render_authorization(
    settings: Settings,
    *,
    prefix: str | None = None,
    tenants: Iterable[str] | None = None,
    slots: int = DEFAULT_CONSUMER_SLOTS,
) -> str:
    """The ``authorization`` section of a nats-server config (plain-text passwords:
    ``bcrypt`` is not a dependency; the file is written owner-only)."""
    prefix = settings.nats_prefix if prefix is None else prefix
    codes = sorted(province_codes()) if tenants is None else list(tenants)
    users: list[dict[str, object]] = [
        {"user": SERVICES_USER, "password": service_nats_password(settings)}
    ]
    for code in codes:
        users.append(
            {
                "user": tenant_user(code),
                "password": tenant_nats_password(settings, code),
                "permissions": tenant_permissions(prefix, code, slots),
            }
        )
    # JSON is valid nats-server config syntax, and quoting keeps `$JS...` from being read
    # as a variable reference.
    lines = ["authorization {", "  users: ["]
    lines += [f"    {json.dumps(user)}" for user in users]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)
