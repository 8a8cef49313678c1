"""Synthetic cell and run directories for the analysis tests (not a test module itself)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parents[1]
if str(EVAL_DIR) not in sys.path:
    sys.path.insert(0, str(EVAL_DIR))

T0 = 1_700_000_000_000.0


def write_cell(
    d: Path,
    rows: list[tuple[int, float]] | None,
    t0: float = T0,
    fps: float = 25,
    start_unix_ms: float | None = None,
    netem: dict | None = None,
    cell: dict | None = None,
) -> Path:
    """A cell directory; rows are (frame, display_unix_ms) in file order; None rows = no frames.csv."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "source.json").write_text(json.dumps({"t0_unix_ms": t0, "fps": fps, "frames_sent": 100000,
                                               "max_late_ms": 0.5}))
    if rows is not None:
        lines = ["frame,display_unix_ms"] + [f"{n},{t:.3f}" for n, t in rows]
        (d / "frames.csv").write_text("\n".join(lines) + "\n")
    if start_unix_ms is not None:
        (d / "viewer.json").write_text(json.dumps({"start_unix_ms": start_unix_ms, "player": "synthetic"}))
    if netem is not None:
        (d / "netem.json").write_text(json.dumps(netem))
    if cell is not None:
        (d / "cell.json").write_text(json.dumps(cell))
    return d


def constant_rows(latency_ms: float, frames: int, fps: float = 25, t0: float = T0) -> list[tuple[int, float]]:
    return [(n, t0 + n * 1000.0 / fps + latency_ms) for n in range(frames)]


def netem(down_out: int, up_out: int, down_in: int | None = None, up_in: int | None = None) -> dict:
    def direction(bytes_in: int, bytes_out: int, spec: str) -> dict:
        return {"packets_in": bytes_in // 1000, "packets_out": bytes_out // 1000, "bytes_in": bytes_in,
                "bytes_out": bytes_out, "dropped_loss": 0, "dropped_queue": 0, "spec": spec}

    return {
        "down": direction(down_in if down_in is not None else down_out, down_out, "delay=25ms,loss=1%"),
        "up": direction(up_in if up_in is not None else up_out, up_out, "delay=25ms"),
    }
