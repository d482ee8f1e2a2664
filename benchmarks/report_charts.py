"""The PNG charts of docs/benchmarks.md (matplotlib, the ``bench`` extra), drawn from the
results JSON by report.py."""

from __future__ import annotations

from typing import Any, Dict


def ratio_chart(w: Dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(w["workloads"])
    wc = [w["workloads"][n]["wireclient_to_floor"] for n in names]
    pm = [w["workloads"][n]["pymongo_to_floor"] for n in names]
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], wc, 0.4, label="wireclient", color="#2b7bba")
    ax.bar([x + 0.2 for x in xs], pm, 0.4, label="pymongo", color="#aaaaaa")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(1.25, color="#c0392b", linestyle="--", linewidth=1, label="target 1.25x")
    for x, a, b in zip(xs, wc, pm):
        ax.text(x - 0.2, a, f"{a:.2f}", ha="center", va="bottom", fontsize=8)
        ax.text(x + 0.2, b, f"{b:.2f}", ha="center", va="bottom", fontsize=8, color="#555555")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(
        [n.replace(" over ", "\nover ").replace(" in ", "\nin ") for n in names], fontsize=8
    )
    ax.set_ylabel("client CPU / bare-socket floor")
    ax.set_title("Client CPU per operation over the floor (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def concurrency_chart(c: Dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = c["rows"]
    labels = [f"{r['run']}\n{r['workload']}" for r in rows]
    series = [
        ("floor alone", "floor_single_cpu_us", "#c7e9c0"),
        ("floor", "floor_cpu_us", "#31a354"),
        ("wireclient alone", "wireclient_single_cpu_us", "#9ecae1"),
        ("wireclient", "wireclient_cpu_us", "#2b7bba"),
        ("pymongo alone", "pymongo_single_cpu_us", "#dddddd"),
        ("pymongo", "pymongo_cpu_us", "#999999"),
    ]
    if "floor_cpu_us" not in rows[0]:  # a concurrency.json from before the floor
        series = series[2:]
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    width = 0.8 / len(series)
    for i, (label, key, color) in enumerate(series):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(rows))]
        ax.bar(xs, [r[key] for r in rows], width, label=label, color=color)
    ax.set_xticks(list(range(len(rows))))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("client CPU µs per operation")
    ax.set_title("Many callers at once against one caller alone (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
