"""The newcomer's path: ``make`` / ``make help`` lists the targets, ``make demo`` installs only
the package and the server (the ``demo`` extra, a stamp of its own), ``make test`` the test
tools, both as an editable install type checkers can follow; the README links every doc.

The install itself is not run here (it would fetch packages). What is checked: the recipes
``make`` would run (``make -n``), the extras in setup.cfg, and the mechanism the strict
editable mode relies on: mypy, checking a user's script, follows a static ``.pth`` entry to
the package (what ``editable_mode=strict`` writes: a path to a tree of links to the
package's files) but not the import hook the default (lenient) mode writes. That part runs
mypy against a throwaway virtual environment made with ``--without-pip``: nothing is
installed into it, the ``.pth`` file is written by hand.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from typing import Any, List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make(*args: str) -> str:
    out = subprocess.run(
        ["make", "-C", ROOT, "--no-print-directory", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def phony_targets() -> List[str]:
    with open(os.path.join(ROOT, "Makefile")) as f:
        text = f.read()
    match = re.search(r"^\.PHONY:(.*)$", text, re.M)
    assert match
    return match.group(1).split()


def test_make_and_make_help_list_every_target_with_one_line() -> None:
    listing = make("help")
    assert make() == listing  # a bare `make` is `make help`
    lines = [line for line in listing.splitlines() if line.startswith("  make ")]
    listed = [line.split()[1] for line in lines]
    assert sorted(listed) == sorted(phony_targets())
    for line in lines:
        assert len(line.split(None, 2)) == 3, line  # a description on the same line


def test_demo_installs_only_what_it_needs() -> None:
    demo = make("-n", "-B", "demo")
    assert "'.[demo]'" in demo and ".[test]" not in demo
    assert ".installed-demo" in demo and ".installed-test" not in demo
    assert "examples/requests_demo.py" in demo
    test = make("-n", "-B", "test")
    assert "'.[test]'" in test and ".installed-test" in test
    for recipe in (demo, test):
        install = [line for line in recipe.splitlines() if "pip install" in line and " -e " in line]
        assert install and all("--config-settings editable_mode=strict" in i for i in install)


def test_the_demo_extra_is_the_server_alone() -> None:
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    extras = config["options.extras_require"]
    demo = [line for line in extras["demo"].split("\n") if line.strip()]
    test = [line.strip() for line in extras["test"].split("\n") if line.strip()]
    assert demo == ["SecantusDB==0.7.0b3"]
    assert demo[0] in test  # the same pin as the tests'
    for tool in ("pytest", "hypothesis", "mockupdb", "ruff", "mypy"):
        assert not any(tool in line.lower() for line in demo)


def test_readme_links_every_doc() -> None:
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    docs = sorted(name for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
    assert docs
    for name in docs:
        assert f"](docs/{name})" in readme, name


USER_SCRIPT = """\
from wireclient import AsyncMongoClient, MongoClient, ReturnDocument

client = MongoClient("mongodb://localhost:27017", _connect=False)
doc = client.db.things.find_one_and_update(
    {}, {"$set": {"a": 1}}, return_document=ReturnDocument.AFTER
)
count: int = client.db.things.count_documents({})
size: str = client.max_bson_size


async def the_asyncio_client() -> None:
    conn = AsyncMongoClient("mongodb://localhost:27017")
    things = conn.db.things
    async with conn.start_request():
        await things.update({}, {"$inc": {"n": 1}}, w=0)
        found = await things.find_one({})
    docs = await things.find({}).sort("n").to_list(2)
    async for doc in things.find({}):
        print(doc, found, docs)
    await conn.close()
"""


def _mypy(tmp_path: Any, pth_line: str, helper: str = "") -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")  # the test extra has it; the lint tools come with `make test`
    # nothing may find wireclient but the .pth file: no PYTHONPATH, no MYPYPATH, and a
    # working directory outside the project
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env=env,
    ).stdout.strip()
    with open(os.path.join(purelib, "__editable__.wireclient-0.1.0.pth"), "w") as f:
        f.write(pth_line + "\n")
    if helper:
        with open(os.path.join(purelib, "__editable___wireclient_finder.py"), "w") as f:
            f.write(helper)
    user = tmp_path / "user"
    user.mkdir()
    (user / "app.py").write_text(USER_SCRIPT)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental"]
        + ["--python-executable", str(python), "app.py"],
        cwd=str(user),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_mypy_follows_a_strict_editable_install(tmp_path: Any) -> None:
    tree = tmp_path / "build" / "__editable__.wireclient-0.1.0-py3-none-any"
    tree.mkdir(parents=True)
    os.symlink(os.path.join(ROOT, "wireclient"), tree / "wireclient")  # strict: a link tree
    result = _mypy(tmp_path, str(tree))
    # wireclient was found and its annotations read: the one error is the user's own (the
    # asyncio client's coroutines, cursors and requests type-check as written)
    assert "Cannot find implementation" not in result.stdout, result.stdout
    assert 'app.py:8: error: Incompatible types in assignment (expression has type "int"' in (
        result.stdout
    ), result.stdout
    assert "Found 1 error in 1 file" in result.stdout, result.stdout


def test_mypy_does_not_follow_the_default_import_hook(tmp_path: Any) -> None:
    hook = "import __editable___wireclient_finder; __editable___wireclient_finder.install()"
    result = _mypy(tmp_path, hook, helper="def install() -> None:\n    pass\n")
    assert 'Cannot find implementation or library stub for module named "wireclient"' in (
        result.stdout
    ), result.stdout
