"""A genofed app served by a process of its own for the benchmarks, on 127.0.0.1.

The socket is bound here and handed to the child, so the port is known before the server runs
and nothing else can take it; client and server then do not share one interpreter lock, as in
production (they still share the machine's cores).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def listening(port: int = 0, backlog: int = 1024) -> socket.socket:
    """A socket listening on 127.0.0.1 (a free port unless ``port``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    return sock


class ServedApp:
    """``script`` (Python run with ``-c``, given the config path and the socket's fd) serving
    on a socket of ours; ready once ``probe`` answers 200."""

    def __init__(
        self,
        script: str,
        config: Path,
        *,
        probe: str = "/service-info",
        what: str = "the server",
        sock: socket.socket | None = None,
        ready_within: float = 60,
    ) -> None:
        self._sock = sock or listening()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        fd = self._sock.fileno()
        command = [sys.executable, "-c", script, str(config), str(fd)]
        self._process = subprocess.Popen(command, pass_fds=[fd])
        self._wait_ready(probe, what, ready_within)

    def _wait_ready(self, probe: str, what: str, ready_within: float) -> None:
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SystemExit(f"{what} exited: see its log above")
            try:
                httpx.get(f"{self.url}{probe}", timeout=5).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"{what} did not answer within {ready_within:.0f} s")

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._sock.close()
