#!/usr/bin/env python3
"""Draws the scale curves of a gust-bench results JSON as PNGs next to it.

Usage: bench/.venv/bin/python bench/plot.py bench/results/<file>.json [...]

For each scenario of the file it knows (scale, big, dagfiles, apiload, soak)
it writes <json stem>-<scenario>.png: medians over the repetitions, with the
min-max range as error bars where there was more than one repetition; for the
soak, its sampled series over time with each one's growth per hour.
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


def soak_series(scenario, group):
    """The soak's series of one group, in the order they were first sampled."""
    return [s for s in scenario["timeline"]["series"] if s["group"] == group]


def trend_label(series, name=None):
    """The series' name with its verdict: `scheduler (stable)` or `task_logs (+3.2 MiB/h)`."""
    trend = series.get("trend") or {}
    verdict = trend.get("verdict")
    name = name or series["subject"]
    if verdict in ("grows", "shrinks"):
        unit = f" {series['unit']}" if series["unit"] else ""
        return f"{name} ({trend['per_hour']:+.3g}{unit}/h)"
    if verdict == "stable":
        return f"{name} (stable)"
    return name


def values(series):
    """The series' values with gaps as NaN."""
    return [float("nan") if v is None else v for v in series["values"]]


def rolling_mean(points, width):
    """Mean of each point and the width − 1 before it (NaNs skipped)."""
    out = []
    for i in range(len(points)):
        window = [p for p in points[max(0, i - width + 1) : i + 1] if p == p]
        out.append(sum(window) / len(window) if window else float("nan"))
    return out


def plot_soak(report, scenario, out):
    timeline = scenario.get("timeline")
    if not timeline or not timeline.get("t_s"):
        return False
    minutes = [t / 60 for t in timeline["t_s"]]
    warmup = timeline["warmup_s"] / 60
    fig, axes = plt.subplots(3, 2, figsize=(13, 12))
    (rss, cpu), (connections, tables), (queues, ended) = axes

    for series in soak_series(scenario, "rss_mib"):
        rss.plot(minutes, values(series), label=trend_label(series))
    rss.set_ylabel("RSS (MiB)")
    rss.set_title("Memory of each gust process", fontsize=10)

    for series in soak_series(scenario, "cpu_pct"):
        service = series["subject"] in ("postgres", "rabbitmq")
        cpu.plot(minutes, rolling_mean(values(series), 6), label=trend_label(series, series["subject"] + (" (whole server)" if service else "")),
                 linestyle="--" if service else "-", linewidth=1 if service else 1.5)
    cpu.set_ylabel("% of one core (mean over 1 min)")
    cpu.set_title("CPU", fontsize=10)

    styles = {"pg_connections": ("-", "PostgreSQL"), "amqp_connections": ("--", "RabbitMQ"), "amqp_channels": (":", "channels")}
    colors = {}
    for group, (style, what) in styles.items():
        for series in soak_series(scenario, group):
            color = colors.setdefault(series["subject"], f"C{len(colors)}")
            connections.plot(minutes, values(series), linestyle=style, color=color, marker="." if group == "amqp_channels" else None,
                             label=trend_label(series, f"{series['subject']} {what}"))
    for series in soak_series(scenario, "pg_backends"):
        if series["subject"] == "all":
            connections.plot(minutes, values(series), color="black", linewidth=1, label=trend_label(series, "database backends"))
    connections.set_ylabel("count")
    connections.set_title("Connections (TCP, per process) and RabbitMQ channels", fontsize=10)

    sizes = {}
    for group in ("table_mib", "index_mib"):
        for series in soak_series(scenario, group):
            sizes.setdefault(series["subject"], []).append(series)
    def last(series):
        known = [v for v in series["values"] if v is not None]
        return known[-1] if known else 0
    largest = sorted(sizes.items(), key=lambda item: -sum(last(s) for s in item[1]))[:7]
    for table, parts in largest:
        total = [sum(v) for v in zip(*(values(s) for s in parts))]
        heap = next((s for s in parts if s["group"] == "table_mib"), parts[0])
        growth = [s["trend"]["per_hour"] for s in parts if s.get("trend") and s["trend"].get("per_hour") == s["trend"].get("per_hour")]
        label = f"{table} ({sum(growth):+.3g} MiB/h)" if growth else table
        tables.plot(minutes, total, label=label)
    whole = tables.twinx()
    for series in soak_series(scenario, "database_mib"):
        whole.plot(minutes, values(series), color="black", linestyle="--", label=trend_label(series, "whole database (right)"))
    whole.set_ylim(bottom=0)
    whole.set_ylabel("MiB (whole database)")
    tables.set_ylabel("MiB (table + its indexes)")
    tables.set_title("Largest tables and the database", fontsize=10)

    for series in soak_series(scenario, "queue_messages"):
        queues.plot(minutes, values(series), label=trend_label(series))
    backlog = queues.twinx()
    for series in soak_series(scenario, "backlog"):
        if series["subject"] == "task_instances":
            backlog.plot(minutes, values(series), color="grey", linestyle=":", linewidth=1,
                         label=trend_label(series, "task instances not finished (right)"))
    backlog.set_ylim(bottom=0)
    backlog.set_ylabel("task instances not finished")
    queues.set_ylabel("messages ready")
    queues.set_title("Queue depths (ready messages) and the backlog", fontsize=10)

    for series in soak_series(scenario, "ended_per_min"):
        ended.plot(minutes, rolling_mean(values(series), 6), label=trend_label(series, f"tries ended {series['subject']}"))
    ended.set_ylabel("per minute (mean over 1 min)")
    ended.set_title("Throughput", fontsize=10)

    twins = {tables: whole, queues: backlog}
    for ax in axes.flat:
        ax.axvspan(0, warmup, color="grey", alpha=0.15, linewidth=0)
        ax.set_xlim(0, max(minutes))
        ax.set_ylim(bottom=0)
        ax.set_xlabel("minutes (grey: warm-up, left out of the trends)")
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        twin = twins.get(ax)
        if twin:
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        (twin or ax).legend(handles, labels, fontsize=7, loc="upper left", ncol=2, framealpha=0.8)
    metrics = metrics_of(scenario)
    tries = metrics.get("tries_per_min", {}).get("median")
    rate = f", {tries:,.0f} tries/min" if tries else ""
    fig.suptitle(f"Soak: {max(minutes):.0f} min of scheduled DAGs, fan-outs, retries and failures{rate}\n{subtitle(report)}",
                 fontsize=11)
    fig.tight_layout()
    save_small(fig, out)
    plt.close(fig)
    return True


def save_small(fig, out):
    """Saves the figure as a 256-colour PNG: the soak's six panels of lines stay sharp at a third of the size."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(colors=256).save(out, optimize=True)


PLOTTERS = {"scale": plot_scale, "big": plot_big, "dagfiles": plot_dagfiles, "apiload": plot_apiload, "soak": plot_soak}


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
            print(f"{path}: no scale, big, dagfiles, apiload or soak results to plot")


if __name__ == "__main__":
    main(sys.argv[1:])
