#!/usr/bin/env python3
"""Draws the scale curves of a gust-bench results JSON as PNGs next to it.

Usage: bench/.venv/bin/python bench/plot.py bench/results/<file>.json [...]

For each scenario of the file it knows (scale, big, dagfiles, apiload) it
writes <json stem>-<scenario>.png: medians over the repetitions, with the
min-max range as error bars where there was more than one repetition.
Needs matplotlib: bench/.venv/bin/pip install matplotlib
"""

import json
import re
import sys
from pathlib import Path

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("matplotlib is missing: python3 -m venv bench/.venv && bench/.venv/bin/pip install matplotlib")

SCALE_MODES = {
    "same_total": "same total concurrency (32 slots split across the workers)",
    "growing": "growing (16 slots per worker)",
}
SCALE_KEY = re.compile(r"^tasks_per_s_w(\d+)_(same_total|growing)$")
DAGFILES_KEY = re.compile(r"^(full_scan_s|rescan_cpu_ms|rescan_wall_ms)_(\d+)$")
APILOAD_ENDPOINTS = {
    "dags": "GET /dags",
    "dag_runs": "GET /dags/{id}/dagRuns",
    "task_instances": "GET /dags/~/dagRuns/~/taskInstances",
}


def metrics_of(scenario):
    """The scenario's metrics by key."""
    return {metric["key"]: metric for metric in scenario.get("metrics", [])}


def error_bars(points):
    """Distances from each median down to its min and up to its max, for errorbar()."""
    return [[p["median"] - p["min"] for p in points], [p["max"] - p["median"] for p in points]]


def subtitle(report):
    """Machine and commit, to tell the pictures of two machines apart."""
    machine = report.get("machine", {})
    commit = (machine.get("git_commit") or "?")[:8]
    return f"{machine.get('cores', '?')} cores, {machine.get('cpu_model') or 'unknown CPU'}, gust {commit}"


def plot_scale(report, scenario, out):
    curves = {}
    for key, metric in metrics_of(scenario).items():
        match = SCALE_KEY.match(key)
        if match:
            curves.setdefault(match.group(2), []).append((int(match.group(1)), metric))
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode, label in SCALE_MODES.items():
        points = sorted(curves.get(mode, []), key=lambda p: p[0])
        if not points:
            continue
        workers = [w for w, _ in points]
        metrics = [metric for _, metric in points]
        ax.errorbar(workers, [p["median"] for p in metrics], yerr=error_bars(metrics), marker="o", capsize=3, label=label)
    workers = sorted({w for points in curves.values() for w, _ in points})
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, [str(w) for w in workers])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("worker processes")
    ax.set_ylabel("tasks/s (noop fan-out)")
    ax.set_title(f"Fan-out throughput by worker processes\n{subtitle(report)}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def plot_dagfiles(report, scenario, out):
    series = {}
    for key, metric in metrics_of(scenario).items():
        match = DAGFILES_KEY.match(key)
        if match:
            series.setdefault(match.group(1), []).append((int(match.group(2)), metric))
    if not series:
        return False
    panels = [
        ("full_scan_s", "scheduler start → all DAGs stored (s)", "First scan"),
        ("rescan_cpu_ms", "ms per rescan", "Rescan with nothing changed"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (key, ylabel, title) in zip(axes, panels):
        points = sorted(series.get(key, []), key=lambda p: p[0])
        files = [n for n, _ in points]
        metrics = [metric for _, metric in points]
        ax.errorbar(files, [p["median"] for p in metrics], yerr=error_bars(metrics), marker="o", capsize=3,
                    label="scheduler CPU" if key == "rescan_cpu_ms" else None)
        if key == "rescan_cpu_ms":
            wall = sorted(series.get("rescan_wall_ms", []), key=lambda p: p[0])
            ax.plot([n for n, _ in wall], [p["median"] for _, p in wall], marker="s", linestyle="--",
                    label="main-loop time")
            ax.legend(fontsize=8)
        ax.set_xscale("log")
        ax.set_xticks(files, [f"{n:,}" for n in files])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xlabel("DAG files in the folder")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Scheduler and the size of the DAG folder\n{subtitle(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def plot_apiload(report, scenario, out):
    metrics = metrics_of(scenario)
    names = [name for name in APILOAD_ENDPOINTS if f"{name}_p50_ms" in metrics]
    if not names:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.38
    positions = range(len(names))
    for offset, quantile in ((-width / 2, "p50"), (width / 2, "p99")):
        values = [metrics[f"{name}_{quantile}_ms"]["median"] for name in names]
        bars = ax.bar([x + offset for x in positions], values, width, label=quantile)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(list(positions), [APILOAD_ENDPOINTS[name] for name in names], fontsize=8)
    ax.set_ylabel("latency (ms)")
    rate = metrics.get("requests_per_s", {}).get("median", float("nan"))
    errors = metrics.get("errors_5xx", {}).get("max", float("nan"))
    ax.set_title(
        f"List endpoints under 64 concurrent clients: {rate:,.0f} req/s, {errors:.0f} answers 5xx\n{subtitle(report)}",
        fontsize=10,
    )
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def plot_big(report, scenario, out):
    metrics = metrics_of(scenario)
    memory = [
        ("scheduler", "scheduler_idle_rss_mib", "scheduler_rss_max_mib"),
        ("worker-0", "worker_idle_rss_mib", "worker_rss_max_mib"),
    ]
    if not all(key in metrics for _, *keys in memory for key in keys):
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    width = 0.38
    for offset, index, label in ((-width / 2, 1, "before the run"), (width / 2, 2, "largest sample during it")):
        values = [metrics[row[index]]["median"] for row in memory]
        bars = left.bar([x + offset for x in range(len(memory))], values, width, label=label)
        left.bar_label(bars, fmt="%.0f", fontsize=8)
    left.set_xticks(range(len(memory)), [name for name, *_ in memory])
    left.set_ylabel("RSS (MiB)")
    left.set_title("Memory", fontsize=10)
    left.legend(fontsize=8)
    halves = [("first half", "first_half_tasks_per_s"), ("second half", "second_half_tasks_per_s")]
    values = [metrics[key]["median"] for _, key in halves if key in metrics]
    bars = right.bar([name for name, _ in halves][: len(values)], values, color="tab:green")
    right.bar_label(bars, fmt="%.0f", fontsize=8)
    right.set_ylabel("tasks/s")
    right.set_title("Throughput by half of the completions", fontsize=10)
    for ax in (left, right):
        ax.grid(True, axis="y", alpha=0.3)
    run_s = metrics.get("run_s", {}).get("median")
    run = f", run {run_s:.0f} s" if run_s else ""
    fig.suptitle(f"One fan-out of {big_size(scenario)} noop tasks{run}\n{subtitle(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def big_size(scenario):
    """The task count stated in the big scenario's note."""
    for note in scenario.get("notes", []):
        match = re.match(r"(\d+) noop tasks", note)
        if match:
            return f"{int(match.group(1)):,}"
    return "?"


PLOTTERS = {"scale": plot_scale, "big": plot_big, "dagfiles": plot_dagfiles, "apiload": plot_apiload}


def main(paths):
    if not paths:
        sys.exit(__doc__)
    for path in map(Path, paths):
        report = json.loads(path.read_text())
        drawn = 0
        for scenario in report.get("scenarios", []):
            plotter = PLOTTERS.get(scenario["name"])
            out = path.with_name(f"{path.stem}-{scenario['name']}.png")
            if plotter and plotter(report, scenario, out):
                print(f"wrote {out}")
                drawn += 1
        if not drawn:
            print(f"{path}: no scale, big, dagfiles or apiload results with metrics to plot")


if __name__ == "__main__":
    main(sys.argv[1:])
