"""The pytest plugin: a ``mock_server`` fixture, registered by the ``pytest11`` entry
point (or ``pytest -p wireclient.mock.pytest_plugin``)."""

from __future__ import annotations

from typing import Iterator

import pytest

from wireclient.mock.server import MockServer


@pytest.fixture()
def mock_server() -> Iterator[MockServer]:
    """A started ``MockServer()`` with its defaults, closed after the test."""
    with MockServer() as server:
        yield server


__all__ = ["mock_server"]
