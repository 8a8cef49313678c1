"""Summarise a run: ``python3 -m evaluation.summary <run dir>`` (from eval/).

Reads ``<run>/cells/<profile>/<system>/seed<k>/`` (see frames.py for the per-cell metrics) and, if present,
``<run>/cpu.csv``, and writes into the run directory:

* ``summary.json``: the analysis parameters, every profile's parameters (from cell.json, nested objects flattened
  to dotted keys, and the netem.json specs): ``parameters`` of a profile are those equal in all its cells, a
  system's ``parameters`` those equal in its cells but not profile-wide, its ``varying_parameters`` those that
  differ between its seeds; per (profile, system) the median over seeds of each per-cell metric with its
  bootstrap CI across seeds; the headline ratios; the CPU table; every cell's metrics, freezes, skips and
  warnings.
* ``latency.csv``: every joined frame, ``profile,system,seed,frame,capture_unix_ms,display_unix_ms,latency_ms``.
* ``summary.md``: the same as tables.
* ``figures/``: see figures.py; skipped (and said so) when matplotlib cannot be imported.

Aggregation across seeds: a (profile, system) value is the median of its per-seed values (a failed cell
contributes nothing and is listed); its CI is the bootstrap percentile interval of that median with the seed (cell)
as the resampled unit (stats.bootstrap_ci). One usable seed gives the value with CI null.

Headline ratios, per profile, for every non-MoQ system S and MoQ system M: median over seeds of S's per-cell p50
(p99) latency divided by M's, with a CI from stats.ratio_ci (the seeds of S and of M resampled independently).
A system is MoQ if ``--moq`` names it; without ``--moq``, if its cell.json has ``"moq": true`` or a
``protocol``/``family`` of ``"moq"``, else if its name starts with "moq" or has "moq" after a "-" or "_".

Exit status: 0 when the summary was written (failed cells included), 1 when figures were attempted and failed
(the summary is written first), 2 for a bad command line or a run directory with neither cells nor cpu.csv.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import frames as frames_mod
from . import stats

# Per-cell metrics aggregated per (profile, system): (key, label, unit).
METRICS: list[tuple[str, str, str]] = [
    ("latency_p50_ms", "latency p50", "ms"),
    ("latency_p95_ms", "latency p95", "ms"),
    ("latency_p99_ms", "latency p99", "ms"),
    ("latency_max_ms", "latency max", "ms"),
    ("latency_mean_ms", "latency mean", "ms"),
    ("ttff_ms", "time to first frame", "ms"),
    ("freeze_count", "freezes", "count"),
    ("freeze_total_ms", "frozen time", "ms"),
    ("freeze_longest_ms", "longest freeze", "ms"),
    ("skipped", "skipped frames", "count"),
    ("duplicates", "duplicate frame rows", "count"),
    ("frames_shown", "frames shown", "count"),
    ("delivered_pct", "delivered", "%"),
    ("drift_ms_per_min", "drift", "ms/min"),
    ("wire_bytes", "bytes on the wire (both directions)", "bytes"),
    ("viewer_bytes", "bytes on the wire (viewer-bound)", "bytes"),
    ("offered_bytes", "bytes offered to the link (both directions)", "bytes"),
]
RATIO_METRICS = ["latency_p50_ms", "latency_p99_ms"]

DEFINITIONS = {
    "latency_ms": "display_unix_ms - (t0_unix_ms + frame * 1000 / fps); first display of each frame number only",
    "percentile": "linear interpolation between closest ranks (Hyndman-Fan type 7, NumPy default)",
    "ttff_ms": "earliest display_unix_ms - viewer.json start_unix_ms",
    "freeze": "consecutive shown frames more than freeze_threshold_ms apart in display time; "
    "frozen time = gap - 1000/fps",
    "skipped": "frame numbers between the lowest and highest shown that were never shown",
    "duplicates": "rows repeating an already shown frame number (not latency samples)",
    "delivered_pct": "distinct shown frames / (highest - lowest shown frame number + 1) * 100",
    "drift_ms_per_min": "least-squares slope of latency on capture time, frames displayed at least "
    "drift_startup_excluded_s after the first; per-cell standard error in cells[].metrics.drift_se_ms_per_min",
    "wire_bytes": "netem down.bytes_out + up.bytes_out: IP bytes that crossed the emulated link, both directions",
    "viewer_bytes": "netem down.bytes_out: IP bytes that crossed the emulated link towards the viewer",
    "offered_bytes": "netem down.bytes_in + up.bytes_in: IP bytes put into the link, dropped ones included",
    "MB": "10^6 bytes",
    "aggregate": "median over seeds of the per-cell value; CI = bootstrap percentile interval of that median, "
    "seed (cell) as the resampled unit; null with fewer than two usable seeds",
    "ratio": "median over seeds of S's per-cell statistic / median over seeds of M's; CI from resampling the seeds "
    "of S and of M independently",
    "cpu_s_per_viewer_s": "cpu_seconds / (viewers * wall_seconds)",
    "cpu_s_per_gb": "cpu_seconds / (bytes_sent * 8 / 1e9)",
}

# cell.json keys that describe the cell, not its parameters ("run" is the execution record: commands, exit
# codes, timings; its warnings are carried into the cell's warnings by frames.py).
_CELL_KEYS = {"system", "seed", "error", "run"}


@dataclass
class Options:
    freeze_threshold_ms: float = frames_mod.DEFAULT_FREEZE_MS
    drift_startup_s: float = frames_mod.DEFAULT_DRIFT_STARTUP_S
    resamples: int = stats.DEFAULT_RESAMPLES
    confidence: float = stats.DEFAULT_CONFIDENCE
    seed: int = stats.DEFAULT_SEED
    moq: list[str] | None = None


@dataclass
class Run:
    run_dir: Path
    options: Options
    cells: list[frames_mod.CellResult] = field(default_factory=list)
    cpu: list[dict[str, Any]] | None = None
    cpu_warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def profiles(self) -> list[str]:
        return list(self.summary.get("profiles", {}).keys())

    def systems(self, profile: str) -> list[str]:
        return list(self.summary["profiles"][profile]["systems"].keys())

    def cells_of(self, profile: str, system: str) -> list[frames_mod.CellResult]:
        return [c for c in self.cells if c.profile == profile and c.system == system]


def find_cells(run_dir: Path) -> list[tuple[str, str, int, Path]]:
    """(profile, system, seed, path) of every cells/<profile>/<system>/seed<k>/ directory, sorted."""
    root = run_dir / "cells"
    out = []
    if not root.is_dir():
        return out
    for pdir in sorted(p for p in root.iterdir() if p.is_dir()):
        for sdir in sorted(s for s in pdir.iterdir() if s.is_dir()):
            for kdir in sdir.iterdir():
                m = re.match(r"^seed(\d+)$", kdir.name)
                if kdir.is_dir() and m:
                    out.append((pdir.name, sdir.name, int(m.group(1)), kdir))
    out.sort(key=lambda t: (t[0], t[1], t[2]))
    return out


def is_moq(system: str, cells: list[frames_mod.CellResult], explicit: list[str] | None) -> bool:
    if explicit is not None:
        return system in explicit
    for c in cells:
        v = c.cell.get("moq")
        if isinstance(v, bool):
            return v
        for key in ("protocol", "family"):
            v = c.cell.get(key)
            if isinstance(v, str):
                return v.lower() == "moq"
    return re.search(r"(^|[-_])moq", system.lower()) is not None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _cell_parameters(c: frames_mod.CellResult) -> dict[str, Any]:
    """One cell's parameters: cell.json flattened (less the cell's identity and the execution record), and the
    netem.json specs."""
    own = {k: v for k, v in c.cell.items()
           if k not in _CELL_KEYS and not (k == "profile" and not isinstance(v, dict))}
    flat = _flatten(own)
    if c.netem is not None:
        for direction in ("down", "up"):
            d = c.netem.get(direction)
            if isinstance(d, dict) and "spec" in d:
                flat[f"netem.{direction}.spec"] = d["spec"]
    return flat


def _split_parameters(cells: list[frames_mod.CellResult]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Parameters equal in every cell that has them, and those that take several values (sorted distinct values)."""
    values: dict[str, dict[str, Any]] = {}
    for c in cells:
        for k, v in _cell_parameters(c).items():
            values.setdefault(k, {})[json.dumps(v, sort_keys=True)] = v
    common, varying = {}, {}
    for k in sorted(values):
        vs = values[k]
        if len(vs) == 1:
            common[k] = next(iter(vs.values()))
        else:
            varying[k] = [vs[j] for j in sorted(vs)]
    return common, varying


def _aggregate(values: list[float], opt: Options) -> dict[str, Any]:
    if not values:
        return {"median": None, "ci": None, "n": 0, "values": []}
    ci = stats.bootstrap_ci(values, stats.median, opt.resamples, opt.confidence, opt.seed)
    return {"median": stats.median(values), "ci": list(ci) if ci else None, "n": len(values), "values": values}


def analyse_run(run_dir: Path, opt: Options) -> Run:
    run = Run(run_dir=run_dir, options=opt)
    for profile, system, seed, path in find_cells(run_dir):
        run.cells.append(
            frames_mod.analyse_cell(
                path, profile, system, seed, freeze_threshold_ms=opt.freeze_threshold_ms,
                drift_startup_s=opt.drift_startup_s,
            )
        )
    run.cpu, run.cpu_warnings = read_cpu(run_dir / "cpu.csv")
    run.summary = build_summary(run)
    return run


def build_summary(run: Run) -> dict[str, Any]:
    opt = run.options
    profiles: dict[str, Any] = {}
    for profile in sorted({c.profile for c in run.cells}):
        pcells = [c for c in run.cells if c.profile == profile]
        common, _ = _split_parameters(pcells)
        names = sorted({c.system for c in pcells})
        moq = {s: is_moq(s, [c for c in pcells if c.system == s], opt.moq) for s in names}
        names.sort(key=lambda s: (not moq[s], s))
        systems: dict[str, Any] = {}
        for s in names:
            scells = [c for c in pcells if c.system == s]
            own, varying = _split_parameters(scells)
            ok = [c for c in scells if c.ok]
            metrics = {}
            for key, _, _ in METRICS:
                metrics[key] = _aggregate([c.metrics[key] for c in ok if c.metrics.get(key) is not None], opt)
            # with a single drift estimate its regression standard error is the only spread there is
            drift_se = [c.metrics.get("drift_se_ms_per_min") for c in ok
                        if c.metrics.get("drift_ms_per_min") is not None]
            systems[s] = {
                "moq": moq[s],
                "seeds": [c.seed for c in ok],
                "failed": [{"seed": c.seed, "reason": c.reason} for c in scells if not c.ok],
                "parameters": {k: v for k, v in own.items() if k not in common},
                "varying_parameters": varying,
                "metrics": metrics,
                "drift_se_ms_per_min": drift_se[0] if len(drift_se) == 1 else None,
            }
        ratios = []
        for s in names:
            if moq[s]:
                continue
            for mq in names:
                if not moq[mq]:
                    continue
                for key in RATIO_METRICS:
                    num = systems[s]["metrics"][key]["values"]
                    den = systems[mq]["metrics"][key]["values"]
                    point, ci = stats.ratio_ci(num, den, stats.median, opt.resamples, opt.confidence, opt.seed)
                    ratios.append({
                        "numerator": s,
                        "denominator": mq,
                        "metric": key,
                        "ratio": point,
                        "ci": list(ci) if ci else None,
                        "n_numerator": len(num),
                        "n_denominator": len(den),
                    })
        profiles[profile] = {
            "parameters": common,
            "systems": systems,
            "ratios": ratios,
        }
    return {
        "run": run.run_dir.name,
        "analysis": {
            "freeze_threshold_ms": opt.freeze_threshold_ms,
            "drift_startup_excluded_s": opt.drift_startup_s,
            "bootstrap": {
                "resamples": opt.resamples,
                "confidence": opt.confidence,
                "seed": opt.seed,
                "method": "percentile",
                "unit": "cell (seed)",
            },
            "moq_systems": sorted({s for p in profiles.values() for s, v in p["systems"].items() if v["moq"]}),
            "moq_rule": "--moq" if opt.moq is not None else "cell.json moq/protocol/family, else the system name",
            "definitions": DEFINITIONS,
        },
        "cells_total": len(run.cells),
        "cells_failed": sum(1 for c in run.cells if not c.ok),
        "profiles": profiles,
        "cpu": {"rows": run.cpu, "warnings": run.cpu_warnings} if run.cpu is not None else None,
        "cells": [c.to_json() for c in run.cells],
    }


def read_cpu(path: Path) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """cpu.csv aggregated per (system, viewers): medians over repeated rows. (None, []) if there is no file."""
    if not path.is_file():
        return None, []
    warnings: list[str] = []
    groups: dict[tuple[str, int], list[dict[str, float]]] = {}
    with path.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                system = (row.get("system") or "").strip()
                n = int(float(row["viewers"]))
                cpu = float(row["cpu_seconds"])
                wall = float(row["wall_seconds"])
                sent = float(row["bytes_sent"])
                dp = row.get("delivered_pct")
                delivered = float(dp) if dp not in (None, "") else None
            except (KeyError, TypeError, ValueError) as e:
                warnings.append(f"cpu.csv line {i} skipped: {type(e).__name__}: {e}")
                continue
            if not system or n <= 0 or wall <= 0 or not all(map(math.isfinite, (cpu, wall, sent))):
                warnings.append(f"cpu.csv line {i} skipped: missing system or non-positive viewers/wall_seconds")
                continue
            groups.setdefault((system, n), []).append({
                "cpu_s_per_viewer_s": cpu / (n * wall),
                "cpu_s_per_gb": cpu / (sent * 8 / 1e9) if sent > 0 else None,
                "delivered_pct": delivered,
                "cpu_seconds": cpu,
                "wall_seconds": wall,
                "bytes_sent": sent,
            })
    rows = []
    for (system, n) in sorted(groups):
        g = groups[(system, n)]
        row: dict[str, Any] = {"system": system, "viewers": n, "n": len(g)}
        for key in ("cpu_s_per_viewer_s", "cpu_s_per_gb", "delivered_pct", "cpu_seconds", "wall_seconds",
                    "bytes_sent"):
            vs = [r[key] for r in g if r[key] is not None]
            row[key] = stats.median(vs) if vs else None
        rows.append(row)
    return rows, warnings


def write_latency_csv(run: Run, path: Path) -> int:
    n = 0
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["profile", "system", "seed", "frame", "capture_unix_ms", "display_unix_ms", "latency_ms"])
        for c in run.cells:
            if not c.ok:
                continue
            for fr in c.frames:
                w.writerow([c.profile, c.system, c.seed, fr.frame, f"{fr.capture_unix_ms:.3f}",
                            f"{fr.display_unix_ms:.3f}", f"{fr.latency_ms:.3f}"])
                n += 1
    return n


# ---------------------------------------------------------------- markdown


def _num(v: Any, digits: int = 0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not math.isfinite(v):
        return "–"
    return f"{v:,.{digits}f}"


def _cell(agg: dict[str, Any], digits: int = 0, scale: float = 1.0) -> str:
    if agg["median"] is None:
        return "–"
    s = _num(agg["median"] * scale, digits)
    if agg["ci"] is not None:
        s += f" [{_num(agg['ci'][0] * scale, digits)}, {_num(agg['ci'][1] * scale, digits)}]"
    return s


def _value(v: Any) -> str:
    if isinstance(v, str):
        return v if v else '""'
    return json.dumps(v)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def render_markdown(run: Run) -> str:
    s = run.summary
    a = s["analysis"]
    b = a["bootstrap"]
    conf = f"{100 * b['confidence']:g} %"
    out = [f"# Evaluation summary: {s['run']}", ""]
    out.append(f"{s['cells_total']} cells, {s['cells_failed']} failed. Values are the median over seeds of each "
               f"cell's value; brackets are the {conf} bootstrap CI across seeds ({b['resamples']} resamples, "
               f"percentile method, seed {b['seed']}, the cell is the unit), absent with one usable seed.")
    out.append("")
    out.append("Analysis parameters: freeze = gap between shown frames > "
               f"{a['freeze_threshold_ms']:g} ms (frozen time = gap − one frame interval); drift excludes the first "
               f"{a['drift_startup_excluded_s']:g} s after the first frame; percentiles interpolate linearly "
               "between closest ranks; MB = 10^6 bytes of IP packets counted by eval-netem "
               "(wire = both directions, down = viewer-bound).")
    out.append(f"MoQ systems ({a['moq_rule']}): {', '.join(a['moq_systems']) or 'none'}.")
    out.append("")
    for profile, p in s["profiles"].items():
        out.append(f"## Profile `{profile}`")
        out.append("")
        if p["parameters"]:
            out.append("| parameter | value |")
            out.append("|---|---|")
            for k, v in p["parameters"].items():
                out.append(f"| {_md_escape(k)} | {_md_escape(_value(v))} |")
            out.append("")
        for sysname, sv in p["systems"].items():
            extra = dict(sv["parameters"])
            for k, vs in sv["varying_parameters"].items():
                extra[k] = "varies across seeds: " + ", ".join(_value(v) for v in vs)
            if extra:
                out.append(f"Parameters of `{sysname}` only: "
                           + "; ".join(f"{_md_escape(k)} = {_md_escape(_value(v) if not isinstance(v, str) else v)}"
                                       for k, v in extra.items()))
                out.append("")
        out.append("| system | seeds | p50 ms | p95 ms | p99 ms | TTFF ms | freezes | frozen s | skipped | "
                   "drift ms/min | delivered % | MB wire | MB down |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for sysname, sv in p["systems"].items():
            m = sv["metrics"]
            seeds = f"{len(sv['seeds'])}"
            if sv["failed"]:
                seeds += f" (+{len(sv['failed'])} failed)"
            drift = _cell(m["drift_ms_per_min"], 1)
            if sv["drift_se_ms_per_min"] is not None:
                drift += f" ± {_num(sv['drift_se_ms_per_min'], 1)}"
            label = sysname + (" (MoQ)" if sv["moq"] else "")
            out.append("| " + " | ".join([
                _md_escape(label), seeds,
                _cell(m["latency_p50_ms"]), _cell(m["latency_p95_ms"]), _cell(m["latency_p99_ms"]),
                _cell(m["ttff_ms"]), _cell(m["freeze_count"]), _cell(m["freeze_total_ms"], 2, 1e-3),
                _cell(m["skipped"]), drift, _cell(m["delivered_pct"], 1),
                _cell(m["wire_bytes"], 1, 1e-6), _cell(m["viewer_bytes"], 1, 1e-6),
            ]) + " |")
        out.append("")
        if p["ratios"]:
            out.append(f"Latency ratios (S / M, {conf} CI):")
            out.append("")
            out.append("| S | M | p50 ratio | p99 ratio |")
            out.append("|---|---|---|---|")
            pairs: dict[tuple[str, str], dict[str, Any]] = {}
            for r in p["ratios"]:
                pairs.setdefault((r["numerator"], r["denominator"]), {})[r["metric"]] = r
            for (num, den), rs in pairs.items():
                cols = []
                for key in RATIO_METRICS:
                    r = rs.get(key)
                    if r is None or r["ratio"] is None:
                        cols.append("–")
                        continue
                    c = f"{r['ratio']:.2f}"
                    if r["ci"] is not None:
                        c += f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
                    cols.append(c)
                out.append(f"| {_md_escape(num)} | {_md_escape(den)} | {cols[0]} | {cols[1]} |")
            out.append("")
    cpu = s.get("cpu")
    if cpu is not None:
        out.append("## Server CPU (loopback)")
        out.append("")
        out.append("CPU-s per viewer-second = cpu_seconds / (viewers × wall_seconds); CPU-s per Gb = cpu_seconds / "
                   "(bytes_sent × 8 / 10^9); medians over repeated rows.")
        out.append("")
        out.append("| system | viewers | rows | CPU-s per viewer-s | CPU-s per Gb | delivered % |")
        out.append("|---|---|---|---|---|---|")
        for r in cpu["rows"]:
            out.append(f"| {_md_escape(r['system'])} | {r['viewers']} | {r['n']} | {_num(r['cpu_s_per_viewer_s'], 5)}"
                       f" | {_num(r['cpu_s_per_gb'], 2)} | {_num(r['delivered_pct'], 1)} |")
        for w in cpu["warnings"]:
            out.append(f"- {w}")
        out.append("")
    failed = [c for c in run.cells if not c.ok]
    if failed:
        out.append("## Failed cells")
        out.append("")
        out.append("| profile | system | seed | reason |")
        out.append("|---|---|---|---|")
        for c in failed:
            out.append(f"| {_md_escape(str(c.profile))} | {_md_escape(str(c.system))} | {c.seed} | "
                       f"{_md_escape(str(c.reason))} |")
        out.append("")
    warned = [c for c in run.cells if c.warnings]
    if warned:
        out.append("## Warnings")
        out.append("")
        for c in warned:
            out.append(f"- {c.profile}/{c.system}/seed{c.seed}: " + "; ".join(c.warnings))
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- CLI


def write_outputs(run: Run) -> None:
    d = run.run_dir
    (d / "summary.json").write_text(json.dumps(run.summary, indent=2, allow_nan=False) + "\n")
    write_latency_csv(run, d / "latency.csv")
    (d / "summary.md").write_text(render_markdown(run))


def make_figures(run: Run) -> int:
    if importlib.util.find_spec("matplotlib") is None:
        print(f"figures skipped: matplotlib is not importable by {sys.executable}")
        return 0
    try:
        from . import figures
    except ImportError as e:
        print(f"figures skipped: {e}")
        return 0
    try:
        written = figures.make_all(run)
    except Exception:
        traceback.print_exc()
        print("figures failed (summary.json, summary.md and latency.csv were written)", file=sys.stderr)
        return 1
    print(f"{len(written)} figure files in {run.run_dir / 'figures'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m evaluation.summary", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="results/<run>, holding cells/ and/or cpu.csv")
    ap.add_argument("--freeze-ms", type=float, default=frames_mod.DEFAULT_FREEZE_MS,
                    help="a gap between shown frames longer than this is a freeze (default %(default)s)")
    ap.add_argument("--drift-startup-s", type=float, default=frames_mod.DEFAULT_DRIFT_STARTUP_S,
                    help="seconds after the first frame left out of the drift fit (default %(default)s)")
    ap.add_argument("--resamples", type=int, default=stats.DEFAULT_RESAMPLES,
                    help="bootstrap resamples (default %(default)s)")
    ap.add_argument("--confidence", type=float, default=stats.DEFAULT_CONFIDENCE,
                    help="CI level (default %(default)s)")
    ap.add_argument("--seed", type=int, default=stats.DEFAULT_SEED, help="bootstrap RNG seed (default %(default)s)")
    ap.add_argument("--moq", action="append", metavar="SYSTEM",
                    help="a MoQ system (repeat); overrides the cell.json/name rule")
    ap.add_argument("--no-figures", action="store_true", help="do not draw figures")
    a = ap.parse_args(argv)
    if not a.run_dir.is_dir():
        print(f"{a.run_dir}: not a directory", file=sys.stderr)
        return 2
    if not (a.run_dir / "cells").is_dir() and not (a.run_dir / "cpu.csv").is_file():
        print(f"{a.run_dir}: neither cells/ nor cpu.csv", file=sys.stderr)
        return 2
    if a.freeze_ms <= 0 or a.drift_startup_s < 0 or a.resamples < 1 or not (0 < a.confidence < 1):
        print("bad --freeze-ms, --drift-startup-s, --resamples or --confidence", file=sys.stderr)
        return 2
    opt = Options(a.freeze_ms, a.drift_startup_s, a.resamples, a.confidence, a.seed, a.moq)
    run = analyse_run(a.run_dir, opt)
    write_outputs(run)
    failed = [c for c in run.cells if not c.ok]
    print(f"{len(run.cells)} cells, {len(failed)} failed; wrote summary.json, summary.md, latency.csv in {a.run_dir}")
    for c in failed:
        print(f"  failed {c.profile}/{c.system}/seed{c.seed}: {c.reason}")
    if a.no_figures:
        return 0
    return make_figures(run)


if __name__ == "__main__":
    sys.exit(main())
