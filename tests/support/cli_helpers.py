"""Run the real ``wireclient`` command in a subprocess, from this tree, with bounded waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest
from mockupdb import MockupDB

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}
TIMEOUT = 60.0  # no single command of the tests comes near it


def command(*args: str) -> List[str]:
    return [sys.executable, "-m", "wireclient", *args]


def run_cli(
    *args: str, input: Optional[bytes] = None, timeout: float = TIMEOUT, cwd: Optional[str] = None
) -> subprocess.CompletedProcess[str]:
    """``wireclient ARGS...``: the completed process, stdout and stderr as text."""
    out = subprocess.run(
        command(*args),
        input=input,
        capture_output=True,
        timeout=timeout,
        env=ENV,
        cwd=cwd or ROOT,
    )
    return subprocess.CompletedProcess(
        out.args, out.returncode, out.stdout.decode(errors="replace"), out.stderr.decode()
    )


def popen_cli(*args: str, stdout: Any = subprocess.PIPE, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
        text=True,
        **kwargs,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Wait for a process started by ``popen_cli`` (killed if it overstays)."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate(timeout=5)
        raise AssertionError(f"{proc.args} did not finish in {timeout}s: {stderr}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout or "", stderr or "")


def json_documents(text: str) -> List[Any]:
    """The JSON values printed one after another (indented) on stdout."""
    decoder = json.JSONDecoder()
    values, pos = [], 0
    text = text.strip()
    while pos < len(text):
        value, end = decoder.raw_decode(text, pos)
        values.append(value)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return values


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """An expected failure: one line on stderr, naming each needle, and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def wait_for_line(path: str, prefix: str, timeout: float = 20.0) -> str:
    """The first line of file ``path`` starting with ``prefix``, once it has been written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(prefix):
                        return line
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no line starting {prefix!r} in {path} within {timeout}s")


def sent_frames(stderr: str) -> List[str]:
    """The header lines of the frames a --trace printed, in order."""
    return [line for line in stderr.splitlines() if line.startswith(("client -> ", "server -> "))]


def hello_reply(**extra: Any) -> Dict[str, Any]:
    return {
        "ok": 1,
        "isWritablePrimary": True,
        "helloOk": True,
        "maxWireVersion": 17,
        "minWireVersion": 0,
        "maxBsonObjectSize": 16777216,
        "maxMessageSizeBytes": 48000000,
        "maxWriteBatchSize": 100000,
        **extra,
    }


@pytest.fixture(name="mock")
def mock_fixture() -> Iterator[MockupDB]:
    """A mockupdb server that answers the handshake and queues everything else."""
    server = MockupDB(auto_ismaster=hello_reply(), request_timeout=10)
    server.autoresponds("hello", hello_reply())
    server.run()
    yield server
    server.stop()
