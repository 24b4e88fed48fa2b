"""Checks that deploy/grafana/gust.json parses as a dashboard and that every
gust_* metric the dashboard or deploy/prometheus/alerts.yaml queries is in
the contract: the table under "The contract" in docs/metrics.md. A
histogram's _bucket, _sum and _count series count as the histogram.
Run by scripts/prometheus-check; exits 1 with what is wrong."""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METRIC = re.compile(r"\bgust_[a-z0-9_]+")


def contract() -> set[str]:
    text = (ROOT / "docs/metrics.md").read_text()
    section = text.split("## The contract", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"^\| `(gust_[a-z0-9_]+)` \|", section, re.M))
    if len(names) < 20:
        sys.exit(f"docs/metrics.md: the contract table lists only {len(names)} metrics; is it still there?")
    return names


def known(name: str, names: set[str]) -> bool:
    return name in names or any(name == f"{n}{suffix}" for n in names for suffix in ("_bucket", "_sum", "_count"))


def dashboard_queries() -> list[str]:
    path = ROOT / "deploy/grafana/gust.json"
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        sys.exit(f"{path}: not JSON: {e}")
    panels = dashboard.get("panels")
    if not isinstance(panels, list) or not dashboard.get("title"):
        sys.exit(f"{path}: not a Grafana dashboard (needs a title and a panels list)")
    exprs = [t["expr"] for p in panels for t in p.get("targets", []) if "expr" in t]
    if not exprs:
        sys.exit(f"{path}: no panel queries anything")
    return exprs


def alert_queries() -> list[str]:
    # The rules file is YAML; its expressions are the `expr:` values (one line, or a `|` block).
    lines = (ROOT / "deploy/prometheus/alerts.yaml").read_text().splitlines()
    exprs, i = [], 0
    while i < len(lines):
        match = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        i += 1
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2)
        if value.strip() in ("|", ">"):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            value = "\n".join(block)
        exprs.append(value)
    if not exprs:
        sys.exit("deploy/prometheus/alerts.yaml: no expr found")
    return exprs


def main() -> None:
    names = contract()
    problems = []
    for where, exprs in (("deploy/grafana/gust.json", dashboard_queries()), ("deploy/prometheus/alerts.yaml", alert_queries())):
        for expr in exprs:
            for name in METRIC.findall(expr):
                if not known(name, names):
                    problems.append(f"{where}: `{name}` is not in the contract (docs/metrics.md): {expr.strip()}")
    if problems:
        sys.exit("\n".join(problems))
    print(f"dashboard and alerts query only the {len(names)} contract metrics")


if __name__ == "__main__":
    main()
