"""Small checks on local servers and processes that both embedded servers need."""

from __future__ import annotations

import os
import socket


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists, it just belongs to someone else (e.g. the postgres user).
        return True
    return True
