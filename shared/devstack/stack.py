"""Start whatever backing services are not configured externally."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import quote, urlsplit, urlunsplit

from shared.devstack.nats import EmbeddedNats
from shared.devstack.postgres import EmbeddedPostgres

__all__ = ["DevStack"]

_log = logging.getLogger(__name__)


class _Server(Protocol):
    def start(self) -> str: ...

    def stop(self) -> None: ...


# Where the embedded cluster listens unless told otherwise: one-off commands (`mpks migrate`,
# `mpks audit …`) find a running `mpks up` there. Below every system's range of ephemeral
# ports (Linux 32768-60999, Windows and macOS 49152-65535): at 55432, a client connection
# that had just been given that port as its own kept `make run` from starting right after
# the test suite ("Address already in use").
EMBEDDED_PG_PORT = 25432
EMBEDDED_NATS_PORT = 24222


class DevStack:
    """Context manager that fills in missing service URLs with embedded servers.

    For each of ``database_url`` / ``nats_url`` that is None, a private server
    is started under ``data_dir/postgres`` or ``data_dir/nats``. Given URLs are
    passed through untouched and nothing is started for them. On exit only the
    servers started here are stopped, in reverse start order.

    ``nats_config_text`` is handed to an embedded NATS (e.g. accounts and users); with
    ``nats_credentials`` (user, password) ``nats_url`` then carries that user's login.
    Neither touches a given ``nats_url``.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None,
        nats_url: str | None,
        pg_port: int = EMBEDDED_PG_PORT,
        nats_port: int = EMBEDDED_NATS_PORT,
        *,
        prefer_system_binaries: bool = True,
        nats_config_text: str | None = None,
        nats_credentials: tuple[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.pg_port = pg_port
        self.nats_port = nats_port
        self.prefer_system_binaries = prefer_system_binaries
        self.nats_config_text = nats_config_text
        self.nats_credentials = nats_credentials
        self.embedded: list[str] = []
        self._given_database_url = database_url
        self._given_nats_url = nats_url
        self._database_url = database_url
        self._nats_url = nats_url
        # Servers whose start() was attempted; stop() must cover a server that
        # failed half-way through starting, not only the ones in `embedded`.
        self._running: list[tuple[str, _Server]] = []

    @property
    def database_url(self) -> str:
        if self._database_url is None:
            raise RuntimeError("DevStack is not started: no database URL yet")
        return self._database_url

    @property
    def nats_url(self) -> str:
        if self._nats_url is None:
            raise RuntimeError("DevStack is not started: no NATS URL yet")
        return self._nats_url

    def start(self) -> Self:
        if self._running:
            return self
        self.embedded = []
        try:
            if self._given_database_url is None:
                postgres = EmbeddedPostgres(
                    self.data_dir / "postgres",
                    self.pg_port,
                    prefer_system_binaries=self.prefer_system_binaries,
                )
                self._database_url = self._start("postgres", postgres)
            if self._given_nats_url is None:
                nats = EmbeddedNats(
                    self.data_dir / "nats", self.nats_port, config_text=self.nats_config_text
                )
                self._nats_url = self._start("nats", nats)
                if self.nats_credentials is not None:
                    self._nats_url = _with_credentials(self._nats_url, *self.nats_credentials)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        errors: list[BaseException] = []
        while self._running:
            name, server = self._running.pop()
            try:
                server.stop()
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                # Keep stopping the rest before reporting, so one failure does
                # not leave the other server running.
                _log.exception("failed to stop embedded %s", name)
                errors.append(exc)
        self._database_url = self._given_database_url
        self._nats_url = self._given_nats_url
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self, name: str, server: _Server) -> str:
        self._running.append((name, server))
        url = server.start()
        self.embedded.append(name)
        _log.info("embedded %s started at %s", name, url)
        return url


def _with_credentials(url: str, user: str, password: str) -> str:
    # nats-py reads the login from the URL's userinfo as is, without percent-decoding, so
    # only URL-safe credentials can travel there.
    if any(quote(part, safe="") != part for part in (user, password)):
        raise ValueError("NATS user and password must be URL-safe to go into the URL")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))
