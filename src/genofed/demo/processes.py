"""The demo's services as separate local processes: start, wait until they answer, stop.

Each service is the real ``genofed hub serve`` or ``genofed node serve`` on 127.0.0.1, logging to
a file in its own directory, so the demo exercises exactly what an operator runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import tomli_w

GENOFED = Path(sys.executable).parent / "genofed"
READY_TIMEOUT_S = 60.0


class ServiceFailed(SystemExit):
    """A service did not start or stopped: the message names its log."""


def free_port() -> int:
    """A port free on 127.0.0.1 now (the service binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_http(config_file: Path, port: int) -> str:
    """Make the service at ``config_file`` listen on 127.0.0.1:``port``; returns its URL."""
    config = tomllib.loads(config_file.read_text())
    config["http"] = {**config.get("http", {}), "host": "127.0.0.1", "port": port}
    config_file.write_text(tomli_w.dumps(config))
    return f"http://127.0.0.1:{port}"


@dataclass
class Service:
    """One running ``genofed`` server."""

    name: str
    kind: str  # "hub" or "node"
    config: Path
    url: str
    process: subprocess.Popen[bytes] | None = None
    log_file: Path = field(init=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.log_file = self.config.parent / "service.log"

    def start(self) -> None:
        self._log = open(self.log_file, "ab")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [str(GENOFED), self.kind, "serve", "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GENOFED_CONFIG": str(self.config)},
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceFailed(f"{self.name} stopped at start: see {self.log_file}")
            try:
                if httpx.get(f"{self.url}/service-info", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ServiceFailed(
            f"{self.name} did not answer within {timeout:.0f} s: see {self.log_file}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
