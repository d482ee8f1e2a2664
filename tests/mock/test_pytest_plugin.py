"""The pytest plugin's mock_server fixture, in a pytest run of its own (pytester)."""

from __future__ import annotations

import configparser
import importlib.metadata
import os
from typing import Any

pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_fixture_serves_and_closes(pytester: Any) -> None:
    pytester.makepyfile(
        """
        import threading
        from wireclient import Connection

        def test_scripted(mock_server):
            conn = Connection(mock_server.uri, auto_start_request=False)
            future = mock_server.go(conn.test.things.insert, {"_id": 7})
            assert mock_server.receives("insert").doc["documents"] == [{"_id": 7}]
            conn.close()

        def test_closed_after():
            assert not [t for t in threading.enumerate() if t.name.startswith("mock-")]
        """
    )
    # Installed (``make venv``), the entry point loads the plugin by itself, and naming it
    # again with -p would register it twice; a tree used without installing it needs -p.
    installed = any(
        entry.value == "wireclient.mock.pytest_plugin"
        for entry in importlib.metadata.entry_points(group="pytest11")
    )
    args = ["-q"] if installed else ["-p", "wireclient.mock.pytest_plugin", "-q"]
    result = pytester.runpytest_inprocess(*args)
    result.assert_outcomes(passed=2)


def test_entry_point_declared() -> None:
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    entry_points = config["options.entry_points"]["pytest11"]
    assert "wireclient.mock.pytest_plugin" in entry_points
    assert "wireclient.mock" in config["options"]["packages"].split()
