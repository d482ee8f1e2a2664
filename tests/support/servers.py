"""Start and stop real peers (SecantusDB) as separate processes, for tests, demo and benchmarks.

SecantusDB quirks handled here: it accepts connections about 0.4 s after start, and a SIGTERM
sent right after start can be lost, so we wait for the port before we ever stop it, then send
SIGTERM and, after a few seconds, SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _secantus_command() -> List[str]:
    exe = shutil.which("secantusd-py")
    candidate = os.path.join(os.path.dirname(sys.executable), "secantusd-py")
    if os.path.exists(candidate):
        exe = candidate
    if exe is None:
        raise RuntimeError("secantusd-py not found: pip install SecantusDB==0.7.0b3")
    return [exe]


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on {host}:{port} did not start in {timeout}s") from None
            time.sleep(0.05)


class SecantusServer:
    """One SecantusDB process on 127.0.0.1 and a free port."""

    def __init__(
        self,
        port: Optional[int] = None,
        extra_args: Sequence[str] = (),
        storage_path: str = ":memory:",
        test_commands: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.storage_path = storage_path
        self.test_commands = test_commands
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log: Optional[Any] = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        return f"mongodb://{self.address}/"

    def start(self, timeout: float = 30.0) -> SecantusServer:
        cmd = _secantus_command() + [
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            self.storage_path,
            "--log-level",
            "WARNING",
        ]
        if self.test_commands:
            cmd.append("--enable-test-commands")
        cmd += self.extra_args
        # The server's log goes to a file, not a pipe nobody reads (a full pipe would block it).
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        try:
            wait_for_port(self.host, self.port, timeout)
        except RuntimeError:
            log = self.log
            self.log = None  # keep it open for the message below
            self.stop()
            log.seek(0)
            err = log.read()[-4000:].decode(errors="replace")
            log.close()
            raise RuntimeError(f"SecantusDB failed to start: {err}") from None
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        log, self.log = self.log, None
        try:
            if proc is None or proc.poll() is not None:
                return
            proc.terminate()
            try:
                # With clients still connected SecantusDB waits 2 s for them to leave; with
                # storage in memory there is nothing to lose by not waiting that long.
                proc.wait(timeout=0.5 if self.storage_path == ":memory:" else 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        finally:
            if log is not None:
                log.close()

    def kill(self) -> None:
        """SIGKILL: the server dies at once, like a crash (no graceful shutdown)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        self.stop()  # forgets the process, closes the log

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> SecantusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def secantus_with_auth(
    setup: Callable[[Any], None], prefix: str = "wireclient-auth-"
) -> Iterator[SecantusServer]:
    """A SecantusDB requiring authentication. It starts without ``--auth`` on a storage
    directory of its own, ``setup(connection)`` creates the users and data (SecantusDB has
    no localhost exception), and it restarts on the same directory with ``--auth``."""
    from wireclient import Connection

    storage = tempfile.TemporaryDirectory(prefix=prefix)
    server = SecantusServer(storage_path=storage.name)
    try:
        server.start()
        conn = Connection(server.uri, auto_start_request=False)
        try:
            setup(conn)
        finally:
            conn.close()
        server.stop()
        server.extra_args = ["--auth"]
        server.start()
        yield server
    finally:
        server.stop()
        storage.cleanup()


def wait_until_serving(server: SecantusServer, timeout: float = 20.0) -> None:
    """After a restart: until a fresh client can read (the node is primary again)."""
    from wireclient import Connection
    from wireclient.errors import AutoReconnect

    deadline = time.monotonic() + timeout
    while True:
        try:
            with Connection(server.uri, auto_start_request=False) as probe:
                probe.test_pool_faults.c.find_one()
                return
        except AutoReconnect:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
