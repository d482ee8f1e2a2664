"""Shared fixtures: a real SecantusDB process per test session, and helpers for mockupdb."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from servers import SecantusServer  # noqa: E402


@pytest.fixture(scope="session")
def server() -> Iterator[SecantusServer]:
    """A SecantusDB server (one-member replica set 'secantus') shared by the session."""
    srv = SecantusServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def fresh_server() -> Iterator[SecantusServer]:
    """A SecantusDB server of the test's own, for tests that restart or break it."""
    srv = SecantusServer().start()
    try:
        yield srv
    finally:
        srv.stop()
