"""The two PostgreSQL logins of the platform.

- The **owner** (`MPKS_DATABASE_URL`) runs DDL and owns every schema, table and function:
  `mpks migrate`, `mpks up` and a starting service use it to migrate, and for nothing else.
- The **application login** (`MPKS_APP_DATABASE_URL`) is what the services run on — the
  asyncpg read-model pool, the psycopg event-store pool, the leader locks and the log
  watcher. It is NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB, owns nothing, is a member
  of no role and holds only the grants the migrations give it. So row-level security binds
  it, `RESET ROLE` leaves it where it is and `SET ROLE <anyone else>` is refused.

Unset, the application login is derived from the owner's URL: the same server and
database, user ``mpks_app``, password ``HMAC-SHA256(MPKS_JWT_SECRET, "postgres:mpks_app")``
in hex (as `shared.messaging.permissions` derives NATS passwords), and the migration
creates that role if it is missing. That is development only: the key is public there
(and stays so under RS256/JWKS, which leave it at its default), so with a production key
configuration the services refuse to start until `MPKS_APP_DATABASE_URL` names a login
the operator provisioned. The migration then
only grants to it (and creates it, with the URL's password, if it does not exist and the
owner may create roles).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from shared.settings import Settings

if TYPE_CHECKING:
    from shared.db.pool import DbConnection

APP_ROLE = "mpks_app"

# Role names go into DDL unquoted (grants, policies): keep them to plain identifiers.
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class UnsafeLogin(RuntimeError):
    """The services were given a login that row-level security would not bind."""


def app_role_password(settings: Settings) -> str:
    return hmac.new(
        settings.jwt_secret.encode(), f"postgres:{APP_ROLE}".encode(), hashlib.sha256
    ).hexdigest()


def app_database_url(settings: Settings, owner_url: str) -> str:
    """The URL the services log in with (see the module docstring)."""
    if settings.app_database_url is not None:
        return settings.app_database_url
    if settings.is_production_key:
        raise UnsafeLogin(
            "a production key is configured: set MPKS_APP_DATABASE_URL to the services' "
            "own PostgreSQL login (not the owner, not a superuser)"
        )
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    login = f"{APP_ROLE}:{quote(app_role_password(settings), safe='')}"
    return urlunsplit(parts._replace(netloc=f"{login}@{host}"))


def login_role(url: str) -> tuple[str, str | None]:
    """The role name and password a URL logs in with."""
    parts = urlsplit(url)
    if parts.username is None:
        raise UnsafeLogin(f"the application database URL names no user: {parts.hostname}")
    role = unquote(parts.username)
    if not _ROLE_NAME.fullmatch(role):
        raise UnsafeLogin(f"application role {role!r} must be a plain lower-case identifier")
    return role, None if parts.password is None else unquote(parts.password)


async def ensure_app_login(conn: DbConnection, app_url: str) -> str:
    """Create the application login if it is missing (or was the NOLOGIN role of earlier
    versions, which the services entered with SET ROLE); returns its name. An existing
    login is left as the operator made it."""
    role, password = login_role(app_url)
    row = await conn.fetchrow("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role)
    if row is not None and row["rolcanlogin"]:
        return role
    verb = "CREATE" if row is None else "ALTER"
    statement = await conn.fetchval(
        "SELECT format('%s ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOBYPASSRLS NOCREATEROLE "
        "NOCREATEDB NOINHERIT', $1::text, $2::text, $3::text)",
        verb,
        role,
        password,
    )
    try:
        # Roles are cluster-wide and advisory locks are not: a migration in another
        # database (a parallel test run, another service's database) may create or alter
        # the role at the same moment. The savepoint keeps the caller's transaction usable
        # when it loses that race ("duplicate" on create, "tuple concurrently updated" on
        # alter); the winner ran the same statement.
        async with conn.transaction():
            await conn.execute(statement)
    except (
        asyncpg.DuplicateObjectError,
        asyncpg.UniqueViolationError,
        asyncpg.InternalServerError,
    ):
        if not await conn.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role):
            raise
    return role


async def check_app_login(conn: DbConnection) -> None:
    """Refuse to serve on a login that row-level security would not bind."""
    row = await conn.fetchrow(
        """SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
                  session_user = current_user AS own_session,
                  EXISTS (SELECT FROM pg_class WHERE relowner = r.oid)
                    OR EXISTS (SELECT FROM pg_namespace WHERE nspowner = r.oid)
                    OR EXISTS (SELECT FROM pg_proc WHERE proowner = r.oid) AS owns,
                  EXISTS (SELECT FROM pg_auth_members WHERE member = r.oid) AS member
           FROM pg_roles r WHERE r.rolname = session_user"""
    )
    assert row is not None
    unsafe = [
        what
        for what, flag in (
            ("is a superuser", row["rolsuper"]),
            ("bypasses row-level security", row["rolbypassrls"]),
            ("may create roles", row["rolcreaterole"]),
            ("may create databases", row["rolcreatedb"]),
            ("has switched role", not row["own_session"]),
            ("owns objects in this database", row["owns"]),
            ("is a member of other roles", row["member"]),
        )
        if flag
    ]
    if unsafe:
        raise UnsafeLogin(
            f"the services' PostgreSQL login {row['rolname']!r} {', '.join(unsafe)}: "
            "set MPKS_APP_DATABASE_URL to a login without those rights"
        )
