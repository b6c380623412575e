"""`mpks` — run the platform locally, mint development tokens, migrate, inspect."""

# Each command imports what it runs when it runs (the services, litestar, asyncpg, rich: about
# a second together), so `mpks --help` and a one-off command such as `mpks audit export` start
# at once.

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from mpks.audit.export import add_export_parser
from services.bootstrap import SERVICES, settings_from_env
from shared.auth import Role, mint_dev_token
from shared.settings import ProcessRole, Settings
from shared.tenancy import province_codes


def _cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        token = mint_dev_token(
            settings,
            sub=args.sub,
            tenant=args.tenant,
            roles=[Role(r) for r in args.role],
            pdm=args.pdm,
            institution=args.institution,
            ttl_seconds=args.ttl,
        )
    except (PermissionError, ValueError) as exc:
        print(f"mpks token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _cmd_nats_credentials(args: argparse.Namespace, settings: Settings) -> int:
    from shared.messaging.permissions import tenant_credentials

    try:
        creds = tenant_credentials(settings, args.tenant)
    except (PermissionError, ValueError) as exc:
        print(f"mpks nats-credentials: {exc}", file=sys.stderr)
        return 2
    print(f"user: {creds.user}")
    print(f"password: {creds.password}")
    print(f"account: {creds.account}")
    print(f"stream: {creds.stream}")
    print(f"filter_subject: {creds.filter_subject}")
    return 0


def _cmd_nats_config(args: argparse.Namespace, settings: Settings) -> int:
    from shared.messaging.permissions import render_accounts

    print(render_accounts(settings), end="")
    return 0


def _cmd_nats_provision(args: argparse.Namespace, settings: Settings) -> int:
    from shared.messaging.permissions import provision

    if settings.nats_url is None:
        print("mpks nats-provision: MPKS_NATS_URL is not set", file=sys.stderr)
        return 2
    asyncio.run(provision(settings, SERVICES))
    print(f"provisioned the provinces' streams for: {', '.join(sorted(SERVICES))}")
    return 0


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.up import run_up

    return run_up(settings, demo=args.demo, services=args.services)


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.serve import serve

    if args.role is not None:
        settings = settings.replace(role=ProcessRole(args.role))
    return serve(args.service, settings, port=args.port)


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.up import run_migrate

    return run_migrate(settings, args.services)


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.status import status

    return asyncio.run(status(settings))


def _cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.up import run_rebuild

    return run_rebuild(settings, args.service, args.projection)


def _cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.up import run_retry

    return run_retry(settings, args.service, args.tenant)


def _cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.audit.verify import run_verify

    if args.tenant not in province_codes():
        print(f"mpks audit verify: unknown tenant {args.tenant!r}", file=sys.stderr)
        return 2
    return run_verify(settings, args.tenant, args.services or sorted(SERVICES), args.public_key)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up", help="start PostgreSQL, NATS and all services (embedded when no URLs)"
    )
    up.add_argument("--demo", action="store_true", help="load a small realistic demo data set")
    up.add_argument("--services", nargs="+", choices=sorted(SERVICES), default=list(SERVICES))
    up.set_defaults(func=_cmd_up)

    serve = sub.add_parser("serve", help="run one service (needs MPKS_DATABASE_URL, MPKS_NATS_URL)")
    serve.add_argument("service", choices=sorted(SERVICES))
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--role",
        choices=[r.value for r in ProcessRole],
        default=None,
        help="api: HTTP commands and reads; worker: relay, projections, consumers (over HTTP "
        "only /health and /metrics); all: both (default: $MPKS_ROLE, else all)",
    )
    serve.set_defaults(func=_cmd_serve)

    migrate = sub.add_parser("migrate", help="create or update every service's schemas")
    migrate.add_argument("--services", nargs="+", choices=sorted(SERVICES), default=list(SERVICES))
    migrate.set_defaults(func=_cmd_migrate)

    token = sub.add_parser("token", help="mint a development JWT (refused with a production key)")
    token.add_argument("--role", action="append", required=True, choices=[r.value for r in Role])
    token.add_argument("--tenant", required=True, help="2-digit province code, or 'national'")
    token.add_argument("--pdm", help="4-digit PDM (regency/city) code the token is scoped to")
    token.add_argument("--institution", help="institution id the token is scoped to")
    token.add_argument("--sub", default="dev-user", help="subject (user id)")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
    token.set_defaults(func=_cmd_token)

    nats_creds = sub.add_parser(
        "nats-credentials",
        help="a province's NATS user for consuming its events (refused with a production key)",
    )
    nats_creds.add_argument("--tenant", required=True, help="2-digit province code")
    nats_creds.set_defaults(func=_cmd_nats_credentials)

    nats_config = sub.add_parser(
        "nats-config",
        help="the nats-server accounts section (with a production key, passwords are "
        "$MPKS_NATS_PASSWORD_<USER> environment variables)",
    )
    nats_config.set_defaults(func=_cmd_nats_config)

    nats_provision = sub.add_parser(
        "nats-provision",
        help="create or update each province's stream (connects as `services` to MPKS_NATS_URL)",
    )
    nats_provision.set_defaults(func=_cmd_nats_provision)

    status = sub.add_parser("status", help="health of the running services")
    status.set_defaults(func=_cmd_status)

    rebuild = sub.add_parser("rebuild", help="drop a read model and replay it from the events")
    rebuild.add_argument("service", choices=sorted(SERVICES))
    rebuild.add_argument("projection")
    rebuild.set_defaults(func=_cmd_rebuild)

    retry = sub.add_parser(
        "retry",
        help="retry a service's stalled read models and consumers and its refused deadlines "
        "now (after a fix)",
    )
    retry.add_argument("service", choices=sorted(SERVICES))
    retry.add_argument("--tenant", help="only this province's stalls and deadlines")
    retry.set_defaults(func=_cmd_retry)

    audit = sub.add_parser(
        "audit", help="what auditors need: the tenant export and tamper evidence of the event logs"
    )
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="recompute a tenant's hash chains and check the signed checkpoints (exit 1: "
        "a log is not intact; the first altered, removed, inserted or reordered event named)",
    )
    verify.add_argument("--tenant", required=True, help="2-digit province code")
    verify.add_argument(
        "--service",
        dest="services",
        action="append",
        choices=sorted(SERVICES),
        default=None,
        help="only this service's log (repeatable; default: every service)",
    )
    verify.add_argument(
        "--public-key",
        action="append",
        type=Path,
        default=[],
        help="PEM file of another Ed25519 public key to trust (an auditor's own copy, a "
        "retired key); the configured signing key's is always trusted",
    )
    verify.set_defaults(func=_cmd_audit_verify)
    add_export_parser(audit_sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from_env()
    code: int = args.func(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
