"""The examples in docs/ run against a real server, as written."""

from __future__ import annotations

import doctest
import os
from typing import Any

import pytest

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs")


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
