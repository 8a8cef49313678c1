"""Figures of a summarised run, in ``<run>/figures/`` as SVG and PNG (matplotlib, Agg backend).

Called by summary.py with its ``Run`` (matplotlib is imported here only, so the rest of the analysis runs without
it). The output is deterministic: fixed ``svg.hashsalt``, no date in the SVG metadata, fixed sizes and colours
(one colour per system, the same in every figure).

* ``latency_ecdf_<profile>``: ECDF of per-frame latency, one line per system, all usable seeds pooled, log x
  axis in ms. Lines with more than 2000 distinct values are drawn through 2000 evenly spaced ranks (the shape
  is exact to 1/2000 in the y direction). Latencies <= 0 cannot be drawn on a log axis and are counted in the
  legend.
* ``latency_time_<profile>``: latency against wall-clock time since the source started (t0), one panel per
  system, for the lowest usable seed (named in the panel title). Each point is a frame at its display time.
  Shaded spans are freezes (from the display of the last frame before the gap to the first after it); tick
  marks at the bottom are runs of skipped frames, with a bar as long as the run, placed where those frames
  would have been displayed at the latency of the last shown frame before them. A panel of more than 5000
  frames has its points rasterised inside the SVG (axes and text stay vector; a 10-minute drift cell would
  otherwise be megabytes of vector dots).
* ``ttff``: time to first frame, bars of the median over seeds per profile and system, error bars the bootstrap
  CI across seeds (none drawn with one seed).
* ``cpu_per_viewer``: server CPU (ms per viewer-second) against the number of viewers N, one line per
  system, from cpu.csv (medians over repeated rows).
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import Any

ECDF_MAX_POINTS = 2000
RASTER_POINTS = 5000
_RC = {
    "svg.hashsalt": "moq-eval",
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "path.simplify": False,
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return matplotlib, plt


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "_"


def _colours(systems: list[str]) -> dict[str, Any]:
    _, plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {s: cmap(i % 10) for i, s in enumerate(systems)}


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    _, plt = _plt()
    paths = []
    svg = out_dir / f"{stem}.svg"
    fig.savefig(svg, format="svg", metadata={"Date": None})
    png = out_dir / f"{stem}.png"
    fig.savefig(png, format="png", metadata={"Software": None})
    plt.close(fig)
    paths += [svg, png]
    return paths


def make_all(run) -> list[Path]:
    """Draw every figure of ``run`` (a summary.Run); returns the files written."""
    matplotlib, plt = _plt()
    out_dir = Path(run.run_dir) / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles = run.summary.get("profiles", {})
    all_systems: list[str] = []
    for p in profiles.values():
        for s in p["systems"]:
            if s not in all_systems:
                all_systems.append(s)
    if run.cpu:
        for r in run.cpu:
            if r["system"] not in all_systems:
                all_systems.append(r["system"])
    colours = _colours(all_systems)
    written: list[Path] = []
    with matplotlib.rc_context(_RC):
        for profile in profiles:
            written += latency_ecdf(run, profile, colours, out_dir)
            written += latency_over_time(run, profile, colours, out_dir)
        if profiles:
            written += ttff_bars(run, colours, out_dir)
        if run.cpu:
            written += cpu_per_viewer(run, colours, out_dir)
    return written


def _ok_cells(run, profile: str, system: str):
    return sorted((c for c in run.cells_of(profile, system) if c.ok), key=lambda c: c.seed)


def latency_ecdf(run, profile: str, colours, out_dir: Path) -> list[Path]:
    from . import stats

    _, plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = 0
    for system in run.systems(profile):
        cells = _ok_cells(run, profile, system)
        lat = [f.latency_ms for c in cells for f in c.frames]
        positive = [x for x in lat if x > 0]
        if not positive:
            continue
        xs, ps = stats.ecdf(positive)
        n = len(lat)
        # Scale so that the y value is the fraction of all frames, the non-positive ones included (they sit left).
        base = (n - len(positive)) / n
        ps = [base + p * len(positive) / n for p in ps]
        if len(xs) > ECDF_MAX_POINTS:
            idx = sorted({round(i * (len(xs) - 1) / (ECDF_MAX_POINTS - 1)) for i in range(ECDF_MAX_POINTS)})
            xs = [xs[i] for i in idx]
            ps = [ps[i] for i in idx]
        xs = [xs[0]] + xs  # the vertical rise from the fraction below the smallest drawn value
        ps = [base] + ps
        label = f"{system} ({len(cells)} seed{'s' if len(cells) != 1 else ''}, {n} frames)"
        if n != len(positive):
            label += f", {n - len(positive)} ≤ 0 ms not drawn"
        ax.step(xs, ps, where="post", color=colours[system], label=label, linewidth=1.4)
        drawn += 1
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("glass-to-glass latency (ms, log scale)")
    ax.set_ylabel("fraction of frames ≤ x")
    ax.set_ylim(0, 1.01)
    ax.set_title(f"{profile}: latency ECDF, seeds pooled")
    if drawn:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no usable cells", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    return _save(fig, out_dir, f"latency_ecdf_{_safe(profile)}")


def _plain_log_ticks(axis) -> None:
    """Label a log axis 10, 20, 50, 100, ... instead of 10^1, 10^2."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _skip_positions(cell) -> list[tuple[float, float]]:
    """Per skip run, the wall-clock ms span over which its frames would have been displayed at the latency of the
    last shown frame before the run."""
    if not cell.skips:
        return []
    by_number = sorted(cell.frames, key=lambda f: f.frame)
    numbers = [f.frame for f in by_number]
    interval = cell.parameters["frame_interval_ms"]
    t0 = cell.source["t0_unix_ms"]
    out = []
    for a, b in cell.skips:
        i = bisect.bisect_left(numbers, a) - 1
        lat = by_number[max(i, 0)].latency_ms
        out.append((t0 + a * interval + lat, t0 + (b + 1) * interval + lat))
    return out


def latency_over_time(run, profile: str, colours, out_dir: Path) -> list[Path]:
    _, plt = _plt()
    systems = run.systems(profile)
    fig, axes = plt.subplots(len(systems), 1, figsize=(8, 1.9 + 1.7 * len(systems)), squeeze=False, sharex=True)
    for ax, system in zip(axes[:, 0], systems):
        cells = _ok_cells(run, profile, system)
        if not cells:
            failed = [c for c in run.cells_of(profile, system)]
            why = failed[0].reason if failed else "no cells"
            ax.set_title(f"{system}: no usable seed ({why})", fontsize=8, loc="left")
            ax.set_yticks([])
            continue
        c = cells[0]
        t0 = c.source["t0_unix_ms"]
        xs = [(f.display_unix_ms - t0) / 1000.0 for f in c.frames]
        ys = [f.latency_ms for f in c.frames]
        for fz in c.freezes:
            ax.axvspan((fz.start_unix_ms - t0) / 1000.0, (fz.end_unix_ms - t0) / 1000.0, color="tab:red",
                       alpha=0.22, linewidth=0)
        # past RASTER_POINTS frames the points are embedded as an image in the SVG (axes and text stay vector)
        ax.plot(xs, ys, ".", markersize=1.6, color=colours[system], rasterized=len(xs) > RASTER_POINTS)
        skips = [((a - t0) / 1000.0, (b - t0) / 1000.0) for a, b in _skip_positions(c)]
        if skips:
            tr = ax.get_xaxis_transform()
            # a tick where each run of skipped frames starts, a bar as long as the run
            ax.vlines([a for a, _ in skips], 0, 0.07, transform=tr, color="black", linewidth=0.6)
            ax.hlines([0.02] * len(skips), [a for a, _ in skips], [b for _, b in skips], transform=tr,
                      color="black", linewidth=2.0)
        m = c.metrics
        ax.set_title(
            f"{system}, seed {c.seed}: p50 {m['latency_p50_ms']:.0f} ms, {m['freeze_count']} freezes "
            f"({m['freeze_total_ms'] / 1000:.2f} s, shaded), {m['skipped']} skipped (ticks)",
            fontsize=8, loc="left",
        )
        ax.set_ylabel("latency (ms)")
        ax.set_ylim(bottom=min(0.0, min(ys)))
    axes[-1, 0].set_xlabel("wall-clock time since the source started (s)")
    fig.suptitle(f"{profile}: latency over time", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, f"latency_time_{_safe(profile)}")


def ttff_bars(run, colours, out_dir: Path) -> list[Path]:
    _, plt = _plt()
    profiles = run.profiles()
    systems: list[str] = []
    for p in profiles:
        for s in run.systems(p):
            if s not in systems:
                systems.append(s)
    width = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.35 * len(profiles) * max(len(systems), 1)), 4))
    for j, system in enumerate(systems):
        xs, hs, ex, ey, lo, hi = [], [], [], [], [], []
        for i, p in enumerate(profiles):
            sv = run.summary["profiles"][p]["systems"].get(system)
            if sv is None or sv["metrics"]["ttff_ms"]["median"] is None:
                continue
            agg = sv["metrics"]["ttff_ms"]
            med = agg["median"] / 1000.0
            x = i - 0.4 + width * (j + 0.5)
            xs.append(x)
            hs.append(med)
            if agg["ci"] is not None:
                ex.append(x)
                ey.append(med)
                lo.append(med - agg["ci"][0] / 1000.0)
                hi.append(agg["ci"][1] / 1000.0 - med)
        if xs:
            ax.bar(xs, hs, width=width * 0.92, color=colours[system], label=system)
        if ex:
            ax.errorbar(ex, ey, yerr=[lo, hi], fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.set_xticks(range(len(profiles)))
    ax.set_xticklabels(profiles, rotation=20, ha="right")
    ax.set_ylabel("time to first frame (s)")
    ax.set_title("Time to first frame: median over seeds\nerror bars: bootstrap CI across seeds (none with one seed)",
                 fontsize=9)
    if systems:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, "ttff")


def cpu_per_viewer(run, colours, out_dir: Path) -> list[Path]:
    _, plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    systems: list[str] = []
    for r in run.cpu:
        if r["system"] not in systems:
            systems.append(r["system"])
    ns = sorted({r["viewers"] for r in run.cpu})
    for system in systems:
        rows = sorted((r for r in run.cpu if r["system"] == system), key=lambda r: r["viewers"])
        ax.plot([r["viewers"] for r in rows], [r["cpu_s_per_viewer_s"] * 1000.0 for r in rows], "o-",
                color=colours[system], label=system, markersize=3.5, linewidth=1.3)
    if ns and ns[-1] / ns[0] >= 10:
        ax.set_xscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("viewers N")
    ax.set_ylabel("server CPU ms per viewer-second")
    ax.set_ylim(bottom=0)
    ax.set_title("Server CPU per viewer (loopback)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, "cpu_per_viewer")
