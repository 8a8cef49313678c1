"""The compact tables of docs/evaluation.md, from a run's summary.json (summary.py writes it).

``python3 -m evaluation.brief <run>`` prints Markdown: p50 / p99 of every system per profile side by side, one
latency table per profile (every system, median over seeds with the bootstrap CI), the headline ratios (each
non-MoQ system over each MoQ system, p50 and p99) and the CPU sweep. summary.md holds every number and parameter;
this is the part a reader compares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: Profiles in the order the docs discuss them; others follow, sorted.
PROFILE_ORDER = ["lan", "broadband", "bursty", "long-haul-bloated", "long-haul-small", "lan-drift"]


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"


def _with_ci(agg: dict[str, Any]) -> str:
    s = _ms(agg.get("median"))
    ci = agg.get("ci")
    if ci:
        s += f" [{_ms(ci[0])}, {_ms(ci[1])}]"
    return s


def _plain(agg: dict[str, Any], digits: int = 0, unit: str = "", scale: float = 1.0) -> str:
    m = agg.get("median")
    return "–" if m is None else f"{m * scale:,.{digits}f}{unit}"


def ordered_profiles(names) -> list[str]:
    known = [p for p in PROFILE_ORDER if p in names]
    return known + sorted(set(names) - set(known))


def profile_table(profile: dict[str, Any]) -> list[str]:
    lines = [
        "| system | seeds | p50 | p99 | first frame | freezes | frozen | skipped | delivered | drift | MB down |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in profile["systems"].items():
        m = s["metrics"]
        lines.append(
            f"| {name} | {len(s['seeds'])} | {_with_ci(m['latency_p50_ms'])} | {_with_ci(m['latency_p99_ms'])} "
            f"| {_ms(m['ttff_ms']['median'])} | {_plain(m['freeze_count'], 1)} "
            f"| {_plain(m['freeze_total_ms'], 2, ' s', 1e-3)} | {_plain(m['skipped'], 1)} "
            f"| {_plain(m['delivered_pct'], 1, ' %')} | {_plain(m['drift_ms_per_min'], 1, ' ms/min')} "
            f"| {_plain(m['viewer_bytes'], 1, '', 1e-6)} |"
        )
    return lines


def headline_table(profiles: dict[str, Any]) -> list[str]:
    """One row per profile: every system's p50 / p99 side by side."""
    systems = list(dict.fromkeys(name for p in profiles.values() for name in p["systems"]))
    lines = ["| profile | " + " | ".join(systems) + " |", "|---|" + "---|" * len(systems)]
    for pname in ordered_profiles(profiles):
        cells = []
        for name in systems:
            s = profiles[pname]["systems"].get(name)
            if s is None:
                cells.append("")
                continue
            m = s["metrics"]
            cells.append(f"{_ms(m['latency_p50_ms']['median'])} / {_ms(m['latency_p99_ms']['median'])}")
        lines.append(f"| {pname} | " + " | ".join(cells) + " |")
    return lines


def ratio_table(profiles: dict[str, Any]) -> list[str]:
    """One row per (profile, non-MoQ system): its p50 and p99 over each MoQ system's."""
    lines = ["| profile | system | / MoQ | p50 ratio | p99 ratio |", "|---|---|---|---|---|"]
    for pname in ordered_profiles(profiles):
        by_pair: dict[tuple[str, str], dict[str, dict]] = {}
        for r in profiles[pname].get("ratios", []):
            by_pair.setdefault((r["numerator"], r["denominator"]), {})[r["metric"]] = r
        for (num, den), metrics in by_pair.items():
            cells = []
            for metric in ("latency_p50_ms", "latency_p99_ms"):
                r = metrics.get(metric)
                if r is None or r.get("ratio") is None:
                    cells.append("–")
                    continue
                c = f"{r['ratio']:.1f}x"
                if r.get("ci"):
                    c += f" [{r['ci'][0]:.1f}, {r['ci'][1]:.1f}]"
                cells.append(c)
            lines.append(f"| {pname} | {num} | {den} | {cells[0]} | {cells[1]} |")
    return lines


def cpu_table(cpu: dict[str, Any]) -> list[str]:
    rows = cpu.get("rows", []) if cpu else []
    if not rows:
        return []
    systems = list(dict.fromkeys(r["system"] for r in rows))
    viewers = sorted({r["viewers"] for r in rows})
    at = {(r["system"], r["viewers"]): r for r in rows}
    head = "| viewers | " + " | ".join(f"{s} CPU ms per viewer-s | {s} CPU-s/GB" for s in systems) + " |"
    lines = [head, "|---|" + "---|---|" * len(systems)]
    for n in viewers:
        cells = []
        for s in systems:
            r = at.get((s, n))
            if r is None:
                cells += ["–", "–"]
            else:
                cells += [f"{r['cpu_s_per_viewer_s'] * 1000:.2f}", f"{r['cpu_s_per_gb']:.2f}"]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def render(summary: dict[str, Any]) -> str:
    out: list[str] = []
    profiles = summary.get("profiles", {})
    if profiles:
        out += ["#### p50 / p99 latency per profile and system", ""] + headline_table(profiles) + [""]
    for pname in ordered_profiles(profiles):
        out += [f"#### {pname}", ""] + profile_table(profiles[pname]) + [""]
    ratios = ratio_table(profiles)
    if len(ratios) > 2:
        out += ["#### Ratios (system / MoQ system, 95 % CI across seeds)", ""] + ratios + [""]
    cpu = cpu_table(summary.get("cpu") or {})
    if cpu:
        out += ["#### Server CPU (loopback)", ""] + cpu + [""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m evaluation.brief", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="results/<run>, holding summary.json")
    a = ap.parse_args(argv)
    path = a.run_dir / "summary.json"
    if not path.is_file():
        print(f"{path}: missing (run python3 -m evaluation.summary first)", file=sys.stderr)
        return 2
    print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
