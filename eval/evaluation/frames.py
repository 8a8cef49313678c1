"""The latency join and the per-cell frame metrics (standard library only).

A cell directory holds ``source.json`` (``t0_unix_ms``, ``fps``), ``frames.csv`` (``frame,display_unix_ms``, one
row per frame shown, in the order shown), ``viewer.json`` (``start_unix_ms``), ``netem.json`` and ``cell.json``.
``analyse_cell`` turns it into a ``CellResult``; it never raises for a bad cell, it marks the result failed
and says why: frames.csv missing, empty or without a usable row; source.json missing, torn or without t0/fps; or
cell.json carrying an ``error`` (the run says the cell did not complete, so its frames are a partial measurement).
A missing viewer.json or netem.json only loses the time to first frame or the bytes (a warning).

Definitions, as implemented:

* Join: frame n was captured (released by the pacer) at ``capture(n) = t0_unix_ms + n * 1000 / fps``;
  ``latency(n) = display_unix_ms(n) - capture(n)``. Only the first display of a frame number counts: later rows
  with the same number are counted as ``duplicates`` and are not latency samples, not freeze boundaries and not
  delivered frames. Rows whose frame number is >= source.json ``frames_sent`` (when that is > 0) cannot be
  frames the pacer sent (a misread stamp) and are dropped and counted as ``invalid_frame_numbers``.
* Latency: p50/p95/p99 (``stats.percentile``, linear interpolation), max, min and mean over the joined frames.
* Time to first frame: the earliest ``display_unix_ms`` minus viewer.json ``start_unix_ms``.
* Freezes: consecutive shown frames (distinct frame numbers, file order) whose display times are more than
  ``freeze_threshold_ms`` apart (default 100 ms, three frame intervals at 30 fps). ``freeze_count`` counts them;
  ``freeze_total_ms`` sums ``gap - 1000 / fps`` (the time the picture stood still beyond its own frame interval).
* Skipped frames: frame numbers between the lowest and highest shown frame number that were never shown (also
  reported as runs of consecutive numbers). They are counted separately from freezes: a skip with no gap in
  display time is not a freeze, a freeze with no missing frame is not a skip, and a skip that also leaves a gap
  counts once in each.
* Delivered %: distinct shown frames / (highest - lowest + 1) * 100.
* Drift: the least-squares slope of latency against capture time, in ms of latency per minute, with its standard
  error, over the frames displayed at least ``drift_startup_s`` (default 10 s) after the first frame was
  displayed, so that the start-up catch-up is excluded. Needs three such frames, else None.
* Bytes on the wire (netem.json, IP packet bytes counted by eval-netem; "down" is the server-to-viewer direction):
  ``wire_bytes = down.bytes_out + up.bytes_out`` is what crossed the emulated link in both directions (what left
  the impairment, after loss and queue drops); ``viewer_bytes = down.bytes_out`` is the viewer-bound part.
  ``offered_bytes = down.bytes_in + up.bytes_in`` (what the endpoints put into the link, dropped packets
  included) is reported alongside.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import stats

DEFAULT_FREEZE_MS = 100.0
DEFAULT_DRIFT_STARTUP_S = 10.0

_SEED_DIR = re.compile(r"^seed(\d+)$")


@dataclass(frozen=True)
class Frame:
    frame: int
    capture_unix_ms: float
    display_unix_ms: float

    @property
    def latency_ms(self) -> float:
        return self.display_unix_ms - self.capture_unix_ms


@dataclass(frozen=True)
class Freeze:
    """A gap between two consecutively shown frames longer than the threshold."""

    after_frame: int
    before_frame: int
    start_unix_ms: float  # display time of the last frame before the gap
    end_unix_ms: float  # display time of the first frame after it
    frozen_ms: float  # gap minus one frame interval

    @property
    def gap_ms(self) -> float:
        return self.end_unix_ms - self.start_unix_ms


@dataclass
class CellResult:
    path: str
    profile: str | None
    system: str | None
    seed: int | None
    ok: bool = False
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)
    freezes: list[Freeze] = field(default_factory=list)
    skips: list[tuple[int, int]] = field(default_factory=list)  # inclusive runs [first, last] of skipped frames
    warnings: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    cell: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] | None = None
    viewer: dict[str, Any] | None = None
    netem: dict[str, Any] | None = None

    def fail(self, reason: str) -> "CellResult":
        self.ok = False
        self.reason = reason
        return self

    def skip_runs(self) -> list[tuple[int, int]]:
        """The skipped frame numbers as inclusive runs [first, last], ascending."""
        return list(self.skips)

    @property
    def skipped_frames(self) -> list[int]:
        """Every skipped frame number, ascending."""
        return [n for a, b in self.skips for n in range(a, b + 1)]

    def to_json(self) -> dict[str, Any]:
        """Everything but the frames (those go to latency.csv)."""
        return {
            "path": self.path,
            "profile": self.profile,
            "system": self.system,
            "seed": self.seed,
            "ok": self.ok,
            "reason": self.reason,
            "parameters": self.parameters,
            "metrics": self.metrics,
            "freezes": [
                {
                    "after_frame": f.after_frame,
                    "before_frame": f.before_frame,
                    "start_unix_ms": f.start_unix_ms,
                    "end_unix_ms": f.end_unix_ms,
                    "gap_ms": f.gap_ms,
                    "frozen_ms": f.frozen_ms,
                }
                for f in self.freezes
            ],
            "skip_runs": [list(r) for r in self.skip_runs()],
            "warnings": self.warnings,
        }


def _read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(content, None) or (None, why not)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, f"{path.name} missing"
    except OSError as e:
        return None, f"{path.name} unreadable: {e}"
    if not text.strip():
        return None, f"{path.name} empty"
    try:
        data = json.loads(text)
    except ValueError as e:
        return None, f"{path.name} is not valid JSON: {e}"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, None


def _number(d: dict[str, Any] | None, key: str) -> float | None:
    if d is None:
        return None
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def read_frames_csv(path: Path) -> tuple[list[tuple[int, float]] | None, str | None, int]:
    """Rows (frame, display_unix_ms) in file order, or (None, reason). Also the number of malformed rows skipped.

    The header is ``frame,display_unix_ms``; columns are found by name, and a file without a header is read as
    those two columns in that order. A malformed row (a torn last line of a killed player, say) is skipped and
    counted, not fatal.
    """
    try:
        f = path.open(newline="")
    except FileNotFoundError:
        return None, "frames.csv missing", 0
    except OSError as e:
        return None, f"frames.csv unreadable: {e}", 0
    rows: list[tuple[int, float]] = []
    malformed = 0
    with f:
        reader = csv.reader(f)
        fi, di = 0, 1
        first = True
        for rec in reader:
            if not rec or all(not c.strip() for c in rec):
                continue
            if first:
                first = False
                names = [c.strip().lower() for c in rec]
                if "frame" in names or "display_unix_ms" in names:
                    if "frame" not in names or "display_unix_ms" not in names:
                        return None, f"frames.csv header {rec!r} lacks frame or display_unix_ms", 0
                    fi, di = names.index("frame"), names.index("display_unix_ms")
                    continue
            try:
                n_f = float(rec[fi])
                d = float(rec[di])
            except (IndexError, ValueError):
                malformed += 1
                continue
            if not (math.isfinite(n_f) and math.isfinite(d)) or n_f != int(n_f) or n_f < 0:
                malformed += 1
                continue
            rows.append((int(n_f), d))
    if not rows:
        return None, "frames.csv has no frame rows" + (f" ({malformed} malformed)" if malformed else ""), malformed
    return rows, None, malformed


def _location(path: Path) -> tuple[str | None, str | None, int | None]:
    """(profile, system, seed) from .../<profile>/<system>/seed<k>."""
    m = _SEED_DIR.match(path.name)
    if not m:
        return None, None, None
    return path.parent.parent.name or None, path.parent.name or None, int(m.group(1))


def analyse_cell(
    path: str | Path,
    profile: str | None = None,
    system: str | None = None,
    seed: int | None = None,
    freeze_threshold_ms: float = DEFAULT_FREEZE_MS,
    drift_startup_s: float = DEFAULT_DRIFT_STARTUP_S,
) -> CellResult:
    """Analyse one cell directory. Never raises for bad cell content: the result is marked failed with a reason."""
    path = Path(path)
    loc = _location(path)
    res = CellResult(
        path=str(path),
        profile=profile if profile is not None else loc[0],
        system=system if system is not None else loc[1],
        seed=seed if seed is not None else loc[2],
        parameters={"freeze_threshold_ms": freeze_threshold_ms, "drift_startup_excluded_s": drift_startup_s},
    )
    try:
        _analyse(path, res, freeze_threshold_ms, drift_startup_s)
    except Exception as e:  # a bug or a file shape nobody foresaw must not stop the other cells
        res.fail(f"analysis error: {type(e).__name__}: {e}")
    return res


def _analyse(path: Path, res: CellResult, freeze_threshold_ms: float, drift_startup_s: float) -> None:
    cell, why = _read_json(path / "cell.json")
    if cell is None:
        res.warnings.append(why or "cell.json unusable")
    else:
        res.cell = cell
        for key, have in (("profile", res.profile), ("system", res.system), ("seed", res.seed)):
            v = cell.get(key)
            if v is not None and have is not None and not isinstance(v, dict) and str(v) != str(have):
                res.warnings.append(f"cell.json {key}={v!r} but the directory says {have!r}")

    res.netem, why = _read_json(path / "netem.json")
    if res.netem is None:
        res.warnings.append(f"{why}: no bytes on the wire")
    res.viewer, why = _read_json(path / "viewer.json")
    if res.viewer is None:
        res.warnings.append(f"{why}: no time to first frame")
    res.metrics.update(_wire_metrics(res.netem, res.warnings))

    rows, why, malformed = read_frames_csv(path / "frames.csv")
    if malformed:
        res.warnings.append(f"frames.csv: {malformed} malformed rows skipped")
    cell_error = None
    if cell is not None:
        cell_error = cell.get("error")
        run = cell.get("run")
        if isinstance(run, dict) and isinstance(run.get("warnings"), list):
            res.warnings.extend(f"run: {w}" for w in run["warnings"])
    if rows is None:
        res.fail(why + (f"; cell.json error: {cell_error}" if cell_error else ""))
        return
    if cell_error:
        # The run recorded that the cell did not complete (a step or a wait failed before the viewer's end):
        # whatever frames were logged are a partial measurement and would bias the per-seed values.
        res.fail(f"cell.json error: {cell_error} ({len(rows)} frames.csv rows not used)")
        return

    res.source, why = _read_json(path / "source.json")
    if res.source is None:
        res.fail(f"{why}: capture times unknown")
        return
    t0 = _number(res.source, "t0_unix_ms")
    fps = _number(res.source, "fps")
    if t0 is None:
        res.fail("source.json has no numeric t0_unix_ms")
        return
    if fps is None or fps <= 0:
        res.fail("source.json has no positive fps")
        return
    interval = 1000.0 / fps
    res.parameters["fps"] = fps
    res.parameters["frame_interval_ms"] = interval

    # A frame number the pacer never sent is a misread stamp, not a frame: it is dropped (and counted), so that
    # it cannot invent skips or a latency. Only checked once source.json has its final frames_sent (> 0).
    frames_sent = _number(res.source, "frames_sent")
    invalid = 0
    if frames_sent is not None and frames_sent > 0:
        kept = [(n, d) for n, d in rows if n < frames_sent]
        invalid = len(rows) - len(kept)
        if invalid:
            res.warnings.append(f"{invalid} rows with a frame number >= frames_sent ({int(frames_sent)}) dropped")
        if not kept:
            res.fail(f"all {len(rows)} frames.csv rows have frame numbers >= frames_sent ({int(frames_sent)})")
            return
        rows = kept

    # The join: first display of each frame number only.
    seen: set[int] = set()
    frames: list[Frame] = []
    duplicates = 0
    reordered = 0
    backwards = 0
    highest = -1
    prev_display: float | None = None
    for n, d in rows:
        if prev_display is not None and d < prev_display:
            backwards += 1
        prev_display = d
        if n in seen:
            duplicates += 1
            continue
        seen.add(n)
        if n < highest:
            reordered += 1
        highest = max(highest, n)
        frames.append(Frame(n, t0 + n * interval, d))
    res.frames = frames
    if backwards:
        res.warnings.append(f"frames.csv: display time goes backwards {backwards} times")

    lat = [f.latency_ms for f in frames]
    negative = sum(1 for x in lat if x < 0)
    if negative:
        res.warnings.append(f"{negative} frames displayed before they were captured (clock problem?)")

    m = res.metrics
    m["rows"] = len(rows) + invalid
    m["invalid_frame_numbers"] = invalid
    m["frames_shown"] = len(frames)
    m["duplicates"] = duplicates
    m["reordered"] = reordered
    lo = min(f.frame for f in frames)
    hi = max(f.frame for f in frames)
    m["first_frame"] = lo
    m["last_frame"] = hi
    m["frames_sent"] = int(frames_sent) if frames_sent is not None else None
    span = hi - lo + 1
    numbers = sorted(seen)
    res.skips = [(a + 1, b - 1) for a, b in zip(numbers, numbers[1:]) if b > a + 1]
    m["skipped"] = span - len(frames)
    m["skip_runs"] = len(res.skips)
    m["delivered_pct"] = 100.0 * len(frames) / span

    m["latency_p50_ms"] = stats.percentile(lat, 50)
    m["latency_p95_ms"] = stats.percentile(lat, 95)
    m["latency_p99_ms"] = stats.percentile(lat, 99)
    m["latency_max_ms"] = max(lat)
    m["latency_min_ms"] = min(lat)
    m["latency_mean_ms"] = stats.mean(lat)

    first_display = min(f.display_unix_ms for f in frames)
    start = _number(res.viewer, "start_unix_ms")
    if start is None:
        m["ttff_ms"] = None
        if res.viewer is not None:
            res.warnings.append("viewer.json has no numeric start_unix_ms: no time to first frame")
    else:
        m["ttff_ms"] = first_display - start

    freezes = []
    for a, b in zip(frames, frames[1:]):
        gap = b.display_unix_ms - a.display_unix_ms
        if gap > freeze_threshold_ms:
            freezes.append(Freeze(a.frame, b.frame, a.display_unix_ms, b.display_unix_ms, gap - interval))
    res.freezes = freezes
    m["freeze_count"] = len(freezes)
    m["freeze_total_ms"] = math.fsum(f.frozen_ms for f in freezes)
    m["freeze_longest_ms"] = max((f.frozen_ms for f in freezes), default=0.0)
    m["displayed_span_s"] = (max(f.display_unix_ms for f in frames) - first_display) / 1000.0

    cutoff = first_display + drift_startup_s * 1000.0
    late = [f for f in frames if f.display_unix_ms >= cutoff]
    m["drift_n"] = len(late)
    m["drift_ms_per_min"] = None
    m["drift_se_ms_per_min"] = None
    if len(late) >= 3:  # distinct frame numbers, so distinct capture times
        fit = stats.linregress([f.capture_unix_ms for f in late], [f.latency_ms for f in late])
        m["drift_ms_per_min"] = fit.slope * 60000.0
        m["drift_se_ms_per_min"] = fit.slope_se * 60000.0 if fit.slope_se is not None else None
    else:
        res.warnings.append(f"only {len(late)} frames after the first {drift_startup_s:g} s: no drift")

    res.ok = True
    res.reason = None


def _wire_metrics(netem: dict[str, Any] | None, warnings: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "wire_bytes": None,
        "viewer_bytes": None,
        "offered_bytes": None,
        "dropped_loss": None,
        "dropped_queue": None,
    }
    if netem is None:
        return out
    down = netem.get("down") if isinstance(netem.get("down"), dict) else None
    up = netem.get("up") if isinstance(netem.get("up"), dict) else None
    if down is None or up is None:
        warnings.append("netem.json lacks a down or up object: no bytes on the wire")
        return out

    def total(key: str) -> float | None:
        a, b = _number(down, key), _number(up, key)
        return None if a is None or b is None else a + b

    out["viewer_bytes"] = _number(down, "bytes_out")
    out["wire_bytes"] = total("bytes_out")
    out["offered_bytes"] = total("bytes_in")
    out["dropped_loss"] = total("dropped_loss")
    out["dropped_queue"] = total("dropped_queue")
    if out["wire_bytes"] is None or out["viewer_bytes"] is None:
        warnings.append("netem.json lacks numeric bytes_out: no bytes on the wire")
    return out
