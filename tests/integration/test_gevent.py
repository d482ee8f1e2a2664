"""gevent against a real server: one subprocess per (patching mode, check).

gevent's monkey-patching must happen before anything imports socket or threading, and it
cannot be undone, so nothing here patches the pytest process: every check runs in a fresh
interpreter (tests/support/gevent_scripts/<mode>.py URI CHECK), and its whole output is shown
when it fails. Modes:

  patch_all_before        monkey.patch_all(), then import wireclient
  patch_all_after         import wireclient, then monkey.patch_all()
  patch_socket_greenlets  monkey.patch_socket() only, Connection(use_greenlets=True)
  patch_socket_threads    monkey.patch_socket() only, Connection(use_greenlets=False)

Each script prints one ``RESULT {json}`` line (socket counts for the reclamation check,
timings for the concurrency check); with ``-s`` they are echoed.

The docs' examples (docs/gevent.md) run the same way, one subprocess per example.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest

pytest.importorskip("gevent")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(ROOT, "tests", "support", "gevent_scripts")
DOC = os.path.join(ROOT, "docs", "gevent.md")

# Seconds a script may run before its watchdog dumps every stack and exits.
WATCHDOG = 120

CHECKS: Dict[str, List[str]] = {
    "patch_all_before": [
        "socket_per_greenlet",
        "request_per_greenlet",
        "socket_per_greenlet_use_greenlets",
        "reclamation",
        "reclamation_use_greenlets",
        "hub_not_blocked",
        "concurrency",
        "connect_storm",
    ],
    "patch_all_after": [
        "socket_per_greenlet",
        "request_per_greenlet",
        "reclamation",
        "hub_not_blocked",
        "concurrency",
    ],
    "patch_socket_greenlets": [
        "socket_per_greenlet",
        "request_per_greenlet",
        "hub_not_blocked",
        "concurrency",
        "reclamation",
        "thread_beside_greenlets",
    ],
    "patch_socket_threads": [
        "shared_thread_request",
        "hub_not_blocked",
        "concurrency",
    ],
}

# Failures whose cause is outside the gevent support itself, each with its cause. Remove an
# entry when its cause is fixed (they are not strict, so a pass shows up as XPASS).
# (mode, check) -> (reason, watchdog seconds or None)
KNOWN_BUGS: Dict[Tuple[str, str], Tuple[str, Optional[int]]] = {}


def run_script(
    mode: str, uri: str, *checks: str, watchdog: int = WATCHDOG
) -> Tuple[int, str, Dict[str, Any]]:
    """Run one gevent script; returns (returncode, combined output, RESULT dict)."""
    env = dict(os.environ, GEVENT_CHECK_TIMEOUT=str(watchdog), PYTHONUNBUFFERED="1")
    # the package of this tree, not whatever copy is installed (a git worktree beside the
    # checkout the virtualenv was installed from would otherwise test that checkout's code)
    env["PYTHONPATH"] = ROOT
    try:
        proc = subprocess.run(
            [sys.executable, os.path.join(SCRIPTS, f"{mode}.py"), uri, *checks],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=watchdog + 60,
        )
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:  # the watchdog itself failed to fire
        rc = -1
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        err += f"\n[killed after {watchdog + 60}s]"
    result: Dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    return rc, f"--- stdout ---\n{out}\n--- stderr ---\n{err}", result


def shorten(text: str, limit: int = 12000) -> str:
    """Keep the beginning and the end of a long output (repeated tracebacks)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def _cases() -> List[Any]:
    cases = []
    for mode, checks in CHECKS.items():
        for check in checks:
            marks = []
            if (mode, check) in KNOWN_BUGS:
                marks.append(pytest.mark.xfail(reason=KNOWN_BUGS[(mode, check)][0], strict=False))
            cases.append(pytest.param(mode, check, id=f"{mode}-{check}", marks=marks))
    return cases


@pytest.mark.parametrize("mode,check", _cases())
def test_gevent_mode(server: Any, mode: str, check: str) -> None:
    watchdog = KNOWN_BUGS.get((mode, check), ("", None))[1] or WATCHDOG
    rc, output, result = run_script(mode, server.uri, check, watchdog=watchdog)
    if result:
        print(f"{mode} {check}: {json.dumps(result, sort_keys=True)}")
    assert rc == 0, f"{mode} {check} failed (exit {rc}):\n{shorten(output)}"


def test_every_check_is_run() -> None:
    """Each script's check table and CHECKS above agree, so no check is silently skipped."""
    for mode, checks in CHECKS.items():
        with open(os.path.join(SCRIPTS, f"{mode}.py")) as f:
            source = f.read()
        declared = re.findall(r'^        "(\w+)":', source, re.M)
        assert sorted(declared) == sorted(checks), mode


# -- docs/gevent.md -----------------------------------------------------------------------


def doc_examples() -> List[str]:
    with open(DOC) as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def point_at(example: str, server: Any) -> str:
    """Point an example at the test server instead of localhost:27017 (and its replica set,
    'secantus', instead of 'repl0')."""
    example = example.replace(
        "'mongodb://localhost:27017,localhost:27018,localhost:27019'", repr(server.uri)
    )
    example = example.replace("replicaSet='repl0'", "replicaSet='secantus'")
    example = example.replace("Connection()", f"Connection({server.uri!r})")
    example = re.sub(r"(?<![\w.])Connection\((?!')", f"Connection({server.uri!r}, ", example)
    return example


def test_doc_has_the_seed_examples() -> None:
    examples = doc_examples()
    assert len(examples) >= 5
    assert any("patch_all()" in e and "Connection()" in e for e in examples)
    assert any("patch_socket()" in e and "Connection(use_greenlets=True)" in e for e in examples)
    assert any("ReplicaSetConnection(" in e and "use_greenlets=True" in e for e in examples)


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_doc_example_runs(server: Any, index: int) -> None:
    example = doc_examples()[index]
    code = point_at(example, server)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"docs/gevent.md example {index + 1} failed:\n{code}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{shorten(proc.stderr)}"
    )
