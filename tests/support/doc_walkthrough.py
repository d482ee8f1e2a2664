"""Run a Markdown walk-through as written: its shell sessions and its Python examples, in order.

- A ```console block holds ``$ command`` lines, each followed by the output it prints
  (stdout and stderr as a terminal shows them). Commands run in ``/bin/sh`` in a scratch
  directory, with ``wireclient`` and ``python`` on the PATH meaning this tree's; the output
  is compared as doctest compares (``...`` matches anything). ``command &`` starts a
  background job: the lines after it are the first lines it prints. ``kill %N`` stops job
  N (numbered as a shell does) and the lines after it are the rest of what it printed.
- A ```python block with ``>>>`` prompts is a doctest; all of them share one namespace and
  run in the scratch directory.
- A ```python block without prompts must be one of the files ``files`` names, verbatim.

``substitutions`` rewrite the text of every block before it runs (the doc's
``localhost:27017`` becomes the test server's address, its fixed ports free ones).
"""

from __future__ import annotations

import doctest
import os
import re
import signal
import stat
import subprocess
import sys
import time
from typing import Dict, List, Mapping, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```\n", re.S | re.M)
_CHECKER = doctest.OutputChecker()
TIMEOUT = 60.0


class Job:
    def __init__(self, command: str, proc: subprocess.Popen[bytes], out_path: str) -> None:
        self.command = command
        self.proc = proc
        self.out_path = out_path
        self.matched = 0  # lines of its output already compared

    def lines(self) -> List[str]:
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()


class Walkthrough:
    def __init__(
        self, path: str, workdir: str, substitutions: Mapping[str, str], files: Sequence[str]
    ) -> None:
        self.path = path
        self.workdir = workdir
        self.substitutions = dict(substitutions)
        self.files = [os.path.join(ROOT, f) for f in files]
        self.globs: Dict[str, object] = {}
        self.jobs: List[Job] = []
        self.failures: List[str] = []
        self.ran = {"console": 0, "doctest": 0, "file": 0}
        # the doc's relative paths (examples/...) name the tree's files
        os.symlink(os.path.join(ROOT, "examples"), os.path.join(workdir, "examples"))
        bindir = os.path.join(workdir, ".bin")
        os.makedirs(bindir, exist_ok=True)
        for name, args in (("wireclient", "-m wireclient"), ("python", "")):
            script = os.path.join(bindir, name)
            with open(script, "w") as f:
                f.write(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
            os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR)
        self.env = {
            **os.environ,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": ROOT,
            "PYTHONUNBUFFERED": "1",
        }

    def substitute(self, text: str) -> str:
        """Every substitution at once (a replacement is never rewritten again)."""
        if not self.substitutions:
            return text
        pattern = "|".join(re.escape(old) for old in self.substitutions)
        return re.sub(pattern, lambda m: self.substitutions[m.group(0)], text)

    def blocks(self) -> List[Tuple[str, str, int]]:
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        return [
            (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in _BLOCK.finditer(text)
        ]

    def run(self) -> None:
        try:
            for kind, text, line in self.blocks():
                if kind == "console":
                    self.console(self.substitute(text), line)
                elif kind == "python" and ">>> " in text:
                    self.doctest(self.substitute(text), line)
                elif kind == "python":
                    self.verbatim(text, line)
        finally:
            for job in self.jobs:
                self.stop(job)

    # -- the three kinds of block -----------------------------------------------------

    def fail(self, line: int, what: str, want: str, got: str) -> None:
        self.failures.append(
            f"{os.path.basename(self.path)}:{line}: {what}\n--- expected\n{want}\n--- got\n{got}"
        )

    def check(self, line: int, what: str, want: str, got: str) -> None:
        if not _CHECKER.check_output(want, got, doctest.ELLIPSIS):
            self.fail(line, what, want, got)

    def console(self, text: str, line: int) -> None:
        self.ran["console"] += 1
        entries: List[Tuple[str, List[str], int]] = []
        for offset, raw in enumerate(text.splitlines()):
            if raw.startswith("$ "):
                entries.append((raw[2:], [], line + 1 + offset))
            elif entries:
                entries[-1][1].append(raw)
        for command, expected, at in entries:
            want = "\n".join(expected) + "\n" if expected else ""
            kill = re.fullmatch(r"kill %(\d+)", command)
            if command.endswith(" &"):
                self.background(command[:-2], want, at)
            elif kill:
                self.kill(int(kill.group(1)), want, at)
            else:
                out = subprocess.run(
                    ["/bin/sh", "-c", command],
                    cwd=self.workdir,
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    timeout=TIMEOUT,
                )
                self.check(at, f"$ {command}", want, out.stdout.decode(errors="replace"))

    def background(self, command: str, want: str, line: int) -> None:
        out_path = os.path.join(self.workdir, f".job{len(self.jobs) + 1}-{line}.out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", "exec " + command],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        job = Job(command, proc, out_path)
        self.jobs.append(job)
        count = len(want.splitlines())
        deadline = time.monotonic() + 20
        while len(job.lines()) < count and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        got = job.lines()[:count]
        job.matched = count
        self.check(line, f"$ {command} &", want, "\n".join(got) + "\n" if got else "")

    def kill(self, number: int, want: str, line: int) -> None:
        if not 1 <= number <= len(self.jobs):
            self.fail(line, f"kill %{number}", "a running job", f"{len(self.jobs)} jobs")
            return
        job = self.jobs.pop(number - 1)
        self.stop(job)
        if want:
            rest = job.lines()[job.matched :]
            self.check(line, f"kill %{number} ({job.command})", want, "\n".join(rest) + "\n")

    def stop(self, job: Job) -> None:
        if job.proc.poll() is None:
            job.proc.send_signal(signal.SIGTERM)
            try:
                job.proc.wait(10)
            except subprocess.TimeoutExpired:
                job.proc.kill()
                job.proc.wait(5)

    def doctest(self, text: str, line: int) -> None:
        self.ran["doctest"] += 1
        test = doctest.DocTestParser().get_doctest(text, self.globs, self.path, self.path, line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        report: List[str] = []
        cwd = os.getcwd()
        os.chdir(self.workdir)
        try:
            runner.run(test, out=report.append, clear_globs=False)
        finally:
            os.chdir(cwd)
        self.globs.update(test.globs)  # the DocTest ran on a copy
        if runner.failures:
            self.failures.append("".join(report))

    def verbatim(self, text: str, line: int) -> None:
        self.ran["file"] += 1
        for path in self.files:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    return
        self.fail(line, "a Python block", f"one of {self.files}, verbatim", text)
