"""Shared fixtures: a real SecantusDB process per test session, and helpers for mockupdb."""

from __future__ import annotations

import gc
import os
import sys
from typing import Iterator

import pytest

# The shared helpers (servers, mock sets, the hostile server, certificates) live in
# tests/support; the test folders mirror the package's layers.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))

import quick_mockupdb  # noqa: E402
from exception_chains import checked_raises  # noqa: E402
from mock_replica_set import MockReplicaSet, monitor_threads  # noqa: E402
from servers import SecantusServer  # noqa: E402
from waiting import wait_until  # noqa: E402

from wireclient import Connection  # noqa: E402

# Every exception a test expects with pytest.raises has its cause chain walked: a cycle
# (an exception that is its own cause) fails the test (see support/exception_chains.py).
pytest.raises = checked_raises  # type: ignore[assignment]

# mockupdb's stop() no longer waits up to a second for its accept loop's next poll.
quick_mockupdb.install()


@pytest.fixture(scope="session")
def server() -> Iterator[SecantusServer]:
    """A SecantusDB server (one-member replica set 'secantus') shared by the session."""
    srv = SecantusServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def conn(server: SecantusServer) -> Iterator[Connection]:
    """A Connection to the session server, without auto_start_request."""
    c = Connection(server.uri, auto_start_request=False)
    yield c
    c.close()


@pytest.fixture()
def fresh_server() -> Iterator[SecantusServer]:
    """A SecantusDB server of the test's own, for tests that restart or break it."""
    srv = SecantusServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def rs() -> Iterator[MockReplicaSet]:
    """A three-member replica set 'rs' of mockupdb servers (member 0 primary)."""
    replica_set = MockReplicaSet(3)
    try:
        yield replica_set
    finally:
        replica_set.close()


@pytest.fixture()
def no_monitor_left() -> Iterator[None]:
    """After the test no monitor thread runs (a dropped connection's monitor stops too)."""
    yield
    gc.collect()
    wait_until(lambda: not monitor_threads())
    assert monitor_threads() == [], "a monitor thread is still running"
