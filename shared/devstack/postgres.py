"""A private PostgreSQL server for development and tests.

The machine's own PostgreSQL binaries are preferred because they start fast and
listen on TCP like a real deployment; the ``pgserver`` wheel (which bundles its
own binaries) is the fallback for machines without a PostgreSQL install.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

from shared.devstack.processes import pid_alive, port_accepts

__all__ = ["EmbeddedPostgres", "find_system_bindir"]

_log = logging.getLogger(__name__)

SUPERUSER = "postgres"
# Used only when running as root on a machine without a `postgres` account.
_FALLBACK_OS_USER = "mpks"
# sun_path is 108 bytes on Linux and 104 on macOS; keep a margin.
_MAX_SOCKET_PATH = 100

Backend = Literal["system", "pgserver"]

# Written at every start. The owner login (SUPERUSER, what migrations use) needs no
# password, as a developer's own cluster; every other login — the services' `mpks_app`
# (`shared.db.roles`) — must give its password, as in production, so a service that lost
# its credentials fails here too and not first in production.
_HBA = f"""# Written by mpks at every start (shared/devstack/postgres.py); edits are lost.
# type  database  user         address        method
local   all       {SUPERUSER:<12} {"":<14} trust
local   all       all          {"":<14} scram-sha-256
host    all       {SUPERUSER:<12} 127.0.0.1/32   trust
host    all       all          127.0.0.1/32   scram-sha-256
"""


def _major_version_matches(version_output: str, pg_version: str) -> bool:
    """Compare `pg_ctl --version` output with a cluster's PG_VERSION ("15", "9.6")."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*)", version_output)
    if match is None:
        return False
    return f"{match.group(1)}.".startswith(f"{pg_version}.")


def _bindir_version(bindir: Path) -> str:
    result = subprocess.run(
        [str(bindir / "pg_ctl"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip()


def find_system_bindir(pg_version: str | None = None) -> Path | None:
    """Locate a directory holding `initdb` and `pg_ctl`, or None.

    When ``pg_version`` (a cluster's PG_VERSION) is given, a Debian-style
    ``/usr/lib/postgresql/<version>/bin`` matching it wins, because a data
    directory can only be run by the major version that created it.
    """
    candidates: list[Path] = []
    if pg_version is not None:
        candidates.append(Path("/usr/lib/postgresql") / pg_version / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    debian_dirs = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.is_dir()]

    def _version_key(path: Path) -> tuple[int, ...]:
        parts = re.findall(r"\d+", path.parent.name)
        return tuple(int(p) for p in parts)

    candidates.extend(sorted(debian_dirs, key=_version_key, reverse=True))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is not None:
        candidates.append(Path(pg_ctl).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


class EmbeddedPostgres:
    """Run a private PostgreSQL cluster in ``data_dir``.

    ``start()`` initialises the cluster on first use, starts the server (or
    adopts one already running on the same data directory) and returns a URL
    that works for asyncpg and psycopg. ``stop()`` performs a fast shutdown,
    which checkpoints, so nothing committed is lost on the next start.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        prefer_system_binaries: bool = True,
        start_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.prefer_system_binaries = prefer_system_binaries
        self.start_timeout = start_timeout
        self.backend: Backend | None = None
        self._url: str | None = None
        self._bindir: Path | None = None
        self._os_user: str | None = None
        self._pgserver: Any = None

    # -- public API -------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        return self._url

    @property
    def log_path(self) -> Path:
        # pgserver hard-codes its log location inside the data directory.
        if self.backend == "pgserver":
            return self.data_dir / "log"
        return self.data_dir / "postgres.log"

    def start(self) -> str:
        if self._url is not None:
            return self._url
        pg_version = self._cluster_version()
        bindir = find_system_bindir(pg_version) if self.prefer_system_binaries else None
        if bindir is None:
            if self.prefer_system_binaries:
                _log.info("no PostgreSQL binaries on this machine; using pgserver")
            self._url = self._start_pgserver()
        else:
            self._url = self._start_system(bindir, pg_version)
        return self._url

    def stop(self) -> None:
        try:
            if self.backend == "system":
                self._stop_system()
            elif self.backend == "pgserver":
                self._stop_pgserver()
        finally:
            self._url = None
            self.backend = None
            self._pgserver = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- system binaries ---------------------------------------------------

    def _start_system(self, bindir: Path, pg_version: str | None) -> str:
        self._bindir = bindir
        if pg_version is not None:
            version = _bindir_version(bindir)
            if not _major_version_matches(version, pg_version):
                raise RuntimeError(
                    f"{self.data_dir} holds a PostgreSQL {pg_version} cluster but "
                    f"{bindir} is {version or 'unknown'}; remove the directory or "
                    "install the matching PostgreSQL version"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        socket_dir = self._socket_dir()
        socket_dir.mkdir(parents=True, exist_ok=True)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # initdb and postgres refuse to run as root.
            self._os_user = self._unprivileged_user()
            self._hand_over(self._os_user, [self.data_dir, socket_dir])
        # Only from here on can stop() act, so a refused version never gets
        # signalled by mismatched binaries.
        self.backend = "system"
        # The server refuses group/world-accessible data directories.
        self.data_dir.chmod(0o700)
        socket_dir.chmod(0o700)

        if pg_version is None:
            self._initdb()
        # Also on clusters made by earlier versions, which trusted every login.
        (self.data_dir / "pg_hba.conf").write_text(_HBA)
        if self._server_running():
            port = self._postmaster_port() or self.port
            _log.info(
                "reusing PostgreSQL already running on %s (port %d)",
                self.data_dir,
                port,
            )
            self._pg_ctl("reload", timeout=30)
        else:
            port = self.port
            if port_accepts(port):
                raise RuntimeError(
                    f"cannot start embedded PostgreSQL: 127.0.0.1:{port} is already in use"
                )
            options = f"-p {port} -c listen_addresses=127.0.0.1 -k {shlex.quote(str(socket_dir))}"
            result = self._pg_ctl(
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "-o",
                options,
                "start",
                timeout=self.start_timeout + 30,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"pg_ctl start failed (exit {result.returncode}): "
                    f"{(result.stderr or result.stdout).strip()}\n{self._log_tail()}"
                )
        url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
        self._wait_until_ready_or_stop(url)
        return url

    def _stop_system(self) -> None:
        if not self._server_running():
            return
        result = self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop", timeout=90)
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl stop failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}\n{self._log_tail()}"
            )
        # The server removed its socket; an empty socket folder is all that is left.
        with contextlib.suppress(OSError):
            self._socket_dir().rmdir()

    def _initdb(self) -> None:
        base = ["-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
        result = self._run_pg_tool("initdb", *base, "--locale=C.UTF-8", timeout=120)
        output = f"{result.stdout}\n{result.stderr}"
        if result.returncode != 0 and "locale" in output.lower():
            # Some systems (older macOS, minimal images) lack C.UTF-8; plain C
            # still stores UTF-8 text, it only changes collation rules.
            result = self._run_pg_tool("initdb", *base, "--locale=C", timeout=120)
            output = f"{result.stdout}\n{result.stderr}"
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}):\n{output.strip()}"
            )

    def _server_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        return self._pg_ctl("status", timeout=30).returncode == 0

    def _pg_ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return self._run_pg_tool("pg_ctl", "-D", str(self.data_dir), *args, timeout=timeout)

    def _run_pg_tool(
        self, tool: str, *args: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None
        command = [str(self._bindir / tool), *args]
        if self._os_user is not None:
            command = ["runuser", "-u", self._os_user, "--", *command]
        # cwd must be readable by the unprivileged user: the tools call getcwd().
        # stdin/stdout go to files/DEVNULL rather than pipes so that the
        # postmaster cannot inherit a pipe and keep this call waiting.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            completed = subprocess.run(
                command,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                timeout=timeout,
                check=False,
            )
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                command, completed.returncode, out.read(), err.read()
            )

    def _socket_dir(self) -> Path:
        # A sibling of the data directory keeps everything under one root, but
        # Unix socket paths are short, so deep paths fall back to the temp dir.
        sibling = self.data_dir.with_name(f"{self.data_dir.name}.run")
        if len(str(sibling / f".s.PGSQL.{self.port}.lock")) <= _MAX_SOCKET_PATH:
            return sibling
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"mpks-pg-{digest}"

    @staticmethod
    def _unprivileged_user() -> str:
        for name in (SUPERUSER, _FALLBACK_OS_USER):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return name
        subprocess.run(
            ["useradd", "--system", "--no-create-home", _FALLBACK_OS_USER],
            check=True,
            capture_output=True,
        )
        return _FALLBACK_OS_USER

    @staticmethod
    def _hand_over(user: str, paths: list[Path]) -> None:
        entry = pwd.getpwnam(user)
        for path in paths:
            info = path.stat()
            if (info.st_uid, info.st_gid) != (entry.pw_uid, entry.pw_gid):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            # The server chdirs into its data directory, so every ancestor must
            # be traversable; search permission alone does not expose listings.
            for parent in path.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    _log.warning("granting o+x on %s so %s can reach %s", parent, user, path)
                    parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    # -- pgserver fallback -------------------------------------------------

    def _start_pgserver(self) -> str:
        self.backend = "pgserver"
        # Imported lazily: importing pgserver touches the runtime directory.
        pgserver = importlib.import_module("pgserver")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._pgserver = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        except (subprocess.SubprocessError, OSError, AssertionError) as exc:
            raise RuntimeError(
                f"pgserver could not start PostgreSQL in {self.data_dir}: {exc!r}\n"
                f"{self._log_tail()}"
            ) from exc
        socket_dir, port = self._postmaster_socket()
        url = (
            f"postgresql://{SUPERUSER}@/postgres"
            f"?host={quote(str(socket_dir), safe='/')}&port={port}"
        )
        self._wait_until_ready_or_stop(url)
        return url

    def _stop_pgserver(self) -> None:
        server = self._pgserver
        if server is not None:
            server.cleanup()
        # pgserver keeps a per-data-dir list of client pids and only stops the
        # server when this process is the last one listed; a crashed earlier
        # process leaves a stale entry, so stop it directly in that case.
        pid = self._postmaster_pid()
        if pid is not None and pid_alive(pid):
            pgserver = importlib.import_module("pgserver")
            system_user = getattr(server, "system_user", None)
            pgserver.pg_ctl(["-m", "fast", "-w", "stop"], pgdata=self.data_dir, user=system_user)

    def _postmaster_socket(self) -> tuple[Path, int]:
        lines = self._postmaster_lines()
        if len(lines) < 5 or not lines[4].strip():
            raise RuntimeError(
                f"pgserver left no socket directory in {self.data_dir}/postmaster.pid"
            )
        return Path(lines[4].strip()), int(lines[3].strip())

    # -- shared helpers ----------------------------------------------------

    def _cluster_version(self) -> str | None:
        try:
            return (self.data_dir / "PG_VERSION").read_text().strip()
        except OSError:
            return None

    def _postmaster_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _postmaster_pid(self) -> int | None:
        lines = self._postmaster_lines()
        return int(lines[0]) if lines and lines[0].strip().isdigit() else None

    def _postmaster_port(self) -> int | None:
        lines = self._postmaster_lines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def _wait_until_ready_or_stop(self, url: str) -> None:
        try:
            self._wait_until_ready(url)
        except BaseException:
            # Do not leave a half-working server behind the caller's back.
            try:
                self.stop()
            except (RuntimeError, OSError, subprocess.SubprocessError):
                _log.exception("could not stop PostgreSQL after a failed start")
            raise

    def _wait_until_ready(self, url: str) -> None:
        import psycopg  # deferred: only needed once a server is up

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"embedded PostgreSQL at {url} did not accept connections within "
                        f"{self.start_timeout:.0f}s: {exc}\n{self._log_tail()}"
                    ) from exc
            time.sleep(0.05)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no server log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{tail}"
