"""The examples in docs/ run against a real server, as written."""

from __future__ import annotations

import doctest
import os
from typing import Any

import pytest

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs")


# The session server is a one-member replica set, so replica_sets.md runs on it too.
@pytest.mark.parametrize("name", ["requests.md", "replica_sets.md", "api.md"])
def test_doc_examples_run(name: str, server: Any) -> None:
    result = doctest.testfile(
        os.path.join(DOCS, name),
        module_relative=False,
        globs={"uri": server.uri},
        optionflags=doctest.ELLIPSIS,
        verbose=False,
    )
    assert result.attempted > 0
    assert result.failed == 0


def test_mock_doc_example_runs() -> None:
    """docs/mock.md's pymongo example, against the mock itself (no other server)."""
    result = doctest.testfile(
        os.path.join(DOCS, "mock.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS,
        verbose=False,
    )
    assert result.attempted >= 10
    assert result.failed == 0


def test_protocol_testing_walkthrough(server: Any, tmp_path: Any) -> None:
    """docs/protocol-testing.md, shell sessions and Python examples in order, as written;
    its differential test replays to two fresh servers (localhost:27020 and 27021)."""
    from doc_walkthrough import Walkthrough
    from servers import SecantusServer, free_port

    from wireclient import Connection

    Connection(server.uri).drop_database("walkthrough")
    Connection(server.uri).drop_database("differential")
    with SecantusServer() as left, SecantusServer() as right:
        walk = Walkthrough(
            os.path.join(DOCS, "protocol-testing.md"),
            str(tmp_path),
            {
                "localhost:27017": server.address,
                '("localhost", 27017)': f'("{server.host}", {server.port})',
                "27018": str(free_port()),
                "27019": str(free_port()),
                "localhost:27020": left.address,
                "localhost:27021": right.address,
            },
            files=["examples/tiny_server.py"],
        )
        walk.run()
    assert walk.failures == [], "\n\n".join(walk.failures)
    assert walk.ran == {"console": 18, "doctest": 5, "file": 1}


def test_asyncio_doc_examples_run(server: Any) -> None:
    """docs/asyncio.md's Python blocks, as written but for the server's address, run in a
    fresh process of their own (each calls asyncio.run)."""
    import re
    import subprocess
    import sys

    with open(os.path.join(DOCS, "asyncio.md")) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        program = block.replace("mongodb://localhost:27017", server.uri)
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
