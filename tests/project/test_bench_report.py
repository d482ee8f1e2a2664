"""The benchmark harness's helpers (benchmarks/), without timing anything: the report renders
every section from results JSON and says which targets failed, a missing result leaves its
section saying so, and the driver-benchmark stand-in documents have the spec's sizes."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")
sys.path.insert(0, BENCH)

import report  # noqa: E402


def workloads() -> Dict[str, Any]:
    def one(floor: float, wc: float, pm: float) -> Dict[str, Any]:
        return {
            "cpu_us": {"floor": floor, "wireclient": wc, "pymongo": pm},
            "wall_us": {"floor": floor * 2, "wireclient": wc * 2, "pymongo": pm * 2},
            "wireclient_to_floor": wc / floor,
            "pymongo_to_floor": pm / floor,
            "wireclient_to_pymongo": wc / pm,
            "pass_floor": wc / floor <= 1.25,
            "pass_pymongo": wc < pm,
        }

    return {
        "rounds": 5,
        "ops_per_round": {"ping": 1000, "insert 10,000 docs in one call": 3},
        "workloads": {
            "ping": one(30.0, 36.0, 120.0),
            "insert 10,000 docs in one call": one(18000.0, 36000.0, 18500.0),
        },
    }


def run_json() -> Dict[str, Any]:
    return {
        "machine": {
            "date": "2026-01-01 00:00 UTC",
            "wireclient_commit": "abc1234",
            "cpus": 2,
            "cpu_model": "Test CPU",
            "platform": "Linux",
            "python": "3.11.0",
            "python_implementation": "CPython",
            "pymongo": "4.0",
            "bson_c_extension": True,
            "SecantusDB": "0.7.0b3",
            "gevent": "23.0",
        },
        "quick": False,
        "benchmark_seconds": 321.0,
        "scripts": [
            {"script": "bench_workloads.py", "ok": True, "status": "0", "seconds": 70.0},
            {"script": "bench_hostile.py", "ok": False, "status": "1", "seconds": 3.0},
        ],
    }


@pytest.fixture
def results(tmp_path: Any) -> str:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(run_json()))
    (folder / "workloads.json").write_text(json.dumps(workloads()))
    return str(folder)


def test_report_shows_the_machine_the_tables_and_the_verdicts(results: str, tmp_path: Any) -> None:
    text = report.render(results, str(tmp_path))
    assert "2 CPUs, Test CPU" in text and "SecantusDB 0.7.0b3" in text
    assert "| ping | 30.00 | 120 | 36.00 | 1.20 |" in text
    bulk = next(
        line for line in text.splitlines() if line.startswith("| insert 10,000 docs in one call |")
    )
    assert bulk.count("**FAIL**") == 2  # 2.0x the floor, and behind pymongo
    assert "**FAILED** (1)" in text  # the script that failed is named
    assert "1 of 2 targets met." in text


def test_a_missing_result_leaves_its_section_saying_so(results: str, tmp_path: Any) -> None:
    text = report.render(results, str(tmp_path))
    assert "(no concurrency.json)" in text
    assert "(no driverbench.json)" in text
    assert "(no footprint.json)" in text


def test_charts_are_png_files_beside_the_doc_or_the_doc_says_why_not(
    results: str, tmp_path: Any
) -> None:
    text = report.render(results, str(tmp_path))
    if report.have_matplotlib():  # the bench extra; the tables need nothing
        assert f"]({report.RATIO_CHART})" in text
        with open(tmp_path / report.RATIO_CHART, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    else:
        assert report.NO_CHARTS in text


def test_without_charts_no_image_is_linked(results: str, tmp_path: Any) -> None:
    text = report.render(results, str(tmp_path), charts=False)
    assert report.NO_CHARTS in text and ".png" not in text
    assert not os.path.exists(tmp_path / report.RATIO_CHART)


def test_driver_bench_stand_ins_have_the_spec_sizes() -> None:
    import bench_driver

    assert len(json.dumps(bench_driver.tweet())) == 1622
    assert len(json.dumps(bench_driver.small_doc())) == 275
    assert isinstance(bench_driver.tweet()["user"], dict)
