"""Each fact has one home: a constant, type or function that several layers need is defined
by exactly one module of the package, and every other module imports it (design.md §1).

The check reads the source (no import): a top-level assignment, annotated assignment,
``def`` or ``class`` of the name counts as a definition; ``from ... import NAME`` does not.
"""

from __future__ import annotations

import ast
import os
from typing import Dict, List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "wireclient")

# name -> the one module (path under wireclient/) that defines it
HOMES = {
    "__version__": "_version.py",
    "Address": "rules/uri.py",
    "UNIX_SOCKET_PORT": "rules/uri.py",
    "DEFAULT_PORT": "rules/uri.py",
    "parse_host": "rules/uri.py",
    "format_address": "rules/uri.py",
    "INT32_MAX": "rules/wire.py",
    "MIN_SUPPORTED_WIRE_VERSION": "rules/wire.py",
    "MAX_SUPPORTED_WIRE_VERSION": "rules/wire.py",
    "DEFAULT_MAX_BSON_SIZE": "rules/wire.py",
    "DEFAULT_MAX_WRITE_BATCH_SIZE": "rules/wire.py",
    "DEFAULT_MAX_MESSAGE_SIZE": "protocol/_common.py",
    "COMMAND_OVERHEAD": "rules/wire.py",
    "split": "rules/limits.py",
    "DEFAULT_LOCAL_THRESHOLD_MS": "rules/options.py",
    "DEFAULT_HEARTBEAT_FREQUENCY_MS": "rules/options.py",
    "DEFAULT_SERVER_SELECTION_TIMEOUT_MS": "rules/options.py",
}
# Names the old tree gave its copies (a copy under another name is a second home too; a
# wrapper that calls the one home, such as the CLI's parse_address, is not a copy).
ALIASES = {
    "format_host": "format_address",
    "_fmt": "format_address",
    "_OVERHEAD": "COMMAND_OVERHEAD",
    "_INT32_MAX_VALUE": "INT32_MAX",
    "_DEFAULT_LOCAL_THRESHOLD_MS": "DEFAULT_LOCAL_THRESHOLD_MS",
}


def _definitions() -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for folder, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, PACKAGE).replace(os.sep, "/")
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in tree.body:
                names: List[str] = []
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names = [node.name]
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        elts = target.elts if isinstance(target, ast.Tuple) else [target]
                        names += [e.id for e in elts if isinstance(e, ast.Name)]
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names = [node.target.id]
                for n in names:
                    key = ALIASES.get(n, n)
                    if key in HOMES:
                        found.setdefault(key, []).append(rel)
    return found


DEFINITIONS = _definitions()


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_fact_is_defined_in_one_module(name: str) -> None:
    assert DEFINITIONS.get(name) == [HOMES[name]], (
        f"{name} is defined in {DEFINITIONS.get(name)}; its one home is {HOMES[name]}"
    )
