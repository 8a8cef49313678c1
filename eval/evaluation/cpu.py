"""The server's CPU per viewer, on plain loopback in the root namespace (no emulated network: the cost of serving,
not of the path). For each viewer count N a fresh server on a free 127.0.0.1 port:

* ``moq``: moq-relay, loaded by moq-load (one publisher, N subscriber connections, 30 fps of 10800-byte frames in
  groups of 30 = 2.6 Mb/s, the clip's rate); moq-load measures the relay's CPU (``--relay-pid``) over its window
  and reports ``relay_cpu_s``, ``seconds``, ``egress_mbps``, ``objects_expected``/``objects_received``.
* ``ll-hls``: eval-pacer | eval-origin --ll; ``hls-2s``: eval-pacer | ffmpeg -f hls, served by eval-origin. Loaded by
  hls-load (N HTTP/2 viewers following the playlist), which prints ``bytes``, ``requests``, ``errors``,
  ``viewers_ok``; the origin's CPU is its utime + stime from /proc/<pid>/stat before and after that window. For
  hls-2s ffmpeg's CPU over the same window is the packaging cost: reported (cpu.json, the terminal), not added.

``cpu.csv``: system,viewers,cpu_seconds,wall_seconds,bytes_sent,delivered_pct. ``cpu.json``: those rows plus each
point's raw load-tool report, packaging CPU and errors.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import systems
from .netns import Supervisor, http_get, line_matching, wait_for, write_json
from .systems import Bins

CPU_SYSTEMS = ["moq", "ll-hls", "hls-2s"]
COLUMNS = ["system", "viewers", "cpu_seconds", "wall_seconds", "bytes_sent", "delivered_pct"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``host`` (the relay takes both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found")


def parse_stat_cpu(stat: str, clk_tck: int) -> float:
    """utime + stime in seconds from a /proc/<pid>/stat line (the command name may hold spaces and parens)."""
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / clk_tck


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        return parse_stat_cpu(f.read(), os.sysconf("SC_CLK_TCK"))


def last_json_line(text: str) -> dict:
    """The last line of ``text`` that parses as a JSON object."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict):
                return v
    raise ValueError("no JSON line in the load tool's output")


def moq_row(viewers: int, report: dict) -> dict:
    """A cpu.csv row from moq-load's JSON line."""
    if report.get("relay_cpu_s") is None:
        raise ValueError("moq-load reported no relay_cpu_s (was --relay-pid the relay?)")
    seconds = float(report["seconds"])
    expected = float(report.get("objects_expected") or 0)
    received = float(report.get("objects_received") or 0)
    return {
        "system": "moq",
        "viewers": viewers,
        "cpu_seconds": float(report["relay_cpu_s"]),
        "wall_seconds": seconds,
        # moq-load counts the payload bytes its subscribers received: what the relay sent them.
        "bytes_sent": round(float(report["egress_mbps"]) * 1e6 / 8 * seconds),
        "delivered_pct": 100.0 * received / expected if expected else 0.0,
    }


def hls_row(system: str, viewers: int, report: dict, cpu: float, wall: float) -> dict:
    """A cpu.csv row from hls-load's JSON line and the origin's CPU over the window."""
    return {
        "system": system,
        "viewers": viewers,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "bytes_sent": int(report["bytes"]),
        "delivered_pct": 100.0 * float(report.get("viewers_ok", 0)) / viewers,
    }


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in COLUMNS})


@dataclass
class Sweep:
    sup: Supervisor
    bins: Bins
    site: Path
    clip: Path
    cert: Path
    key: Path
    out: Path
    seconds: float = 20.0
    log: Callable[[str], None] = print
    rows: list[dict] = field(default_factory=list)
    points: list[dict] = field(default_factory=list)

    def run(self, viewers: list[int], which: list[str] | None = None) -> list[dict]:
        which = which or CPU_SYSTEMS
        total = len(which) * len(viewers)
        i = 0
        for system in which:
            for n in viewers:
                i += 1
                point: dict = {"system": system, "viewers": n}
                d = self.out / "cpu" / system / f"n{n}"
                d.mkdir(parents=True, exist_ok=True)
                self.log(f"[cpu {i}/{total}] {system}, {n} viewers ...")
                started = len(self.sup.procs)
                try:
                    row = self.moq(n, d, point) if system == "moq" else self.hls(system, n, d, point)
                    self.rows.append(row)
                    point["row"] = row
                    extra = (f", packaging (ffmpeg) {point['packaging_cpu_seconds']:.2f} CPU-s"
                             if "packaging_cpu_seconds" in point else "")
                    self.log(f"[cpu {i}/{total}] {system}, {n} viewers: {row['cpu_seconds']:.2f} CPU-s over "
                             f"{row['wall_seconds']:.1f} s, {row['bytes_sent'] / 1e6:.1f} MB, "
                             f"{row['delivered_pct']:.1f} % delivered{extra}")
                except Exception as e:  # noqa: BLE001 - one failed point does not end the sweep
                    point["error"] = f"{type(e).__name__}: {e}"
                    self.log(f"[cpu {i}/{total}] {system}, {n} viewers: FAILED: {str(e).splitlines()[0]}")
                finally:
                    self.sup.stop(list(reversed(self.sup.procs[started:])), grace=5)
                self.points.append(point)
                write_csv(self.out / "cpu.csv", self.rows)
                write_json(self.out / "cpu.json", {"seconds": self.seconds, "rows": self.rows,
                                                   "points": self.points})
        return self.rows

    def moq(self, n: int, d: Path, point: dict) -> dict:
        port = free_port()
        relay = self.sup.start("relay", systems.relay_argv(self.bins, f"127.0.0.1:{port}"), log_dir=d / "logs")
        wait_for(line_matching(relay.log, r"moq-relay ready:"), 20, "moq-relay's ready line", [relay])
        load = self.sup.start("load", systems.moq_load_argv(self.bins, port, n, self.seconds, relay.pid),
                              log_dir=d / "logs")
        point["commands"] = [relay.argv, load.argv]
        wait_for(lambda: load.popen.poll() is not None, self.seconds + 90, "moq-load to finish", [relay])
        report = last_json_line(load.out.read_text())
        point["report"] = report
        return moq_row(n, report)

    def hls(self, system: str, n: int, d: Path, point: dict) -> dict:
        sys_ = systems.get(system)
        logs = d / "logs"
        port = free_port()
        bind = f"127.0.0.1:{port}"
        pacer_argv = systems.pacer_argv(self.bins, self.clip, d / "source.json",
                                        systems.pacer_seconds(sys_, self.seconds + 15))
        ffmpeg = None
        if sys_.family == "ll-hls":
            pacer = self.sup.start("pacer", pacer_argv, log_dir=logs, pipe_stdout=True)
            origin = self.sup.start("origin", systems.origin_argv(self.bins, bind, self.site, self.cert, self.key,
                                                                  ll=True), log_dir=logs, stdin_from=pacer)
            url, warm = f"https://{bind}/ll/live.m3u8", 1
        else:
            hls_dir = d / "hls"
            hls_dir.mkdir(exist_ok=True)
            origin = self.sup.start("origin", systems.origin_argv(self.bins, bind, self.site, self.cert, self.key,
                                                                  hls_dir=hls_dir), log_dir=logs)
            pacer = self.sup.start("pacer", pacer_argv, log_dir=logs, pipe_stdout=True)
            ffmpeg = self.sup.start("ffmpeg", systems.ffmpeg_hls_argv(self.bins, sys_.hls_time or 2, hls_dir),
                                    log_dir=logs, stdin_from=pacer)
            url, warm = f"https://{bind}/hls/live.m3u8", systems.HLS_WARM_SEGMENTS
        servers = [p for p in (pacer, origin, ffmpeg) if p]
        wait_for(line_matching(origin.out, r"^ready https://"), 20, "eval-origin's ready line", servers)

        def playlist_ready() -> bool:
            status, body = http_get(url)
            return status == 200 and body.decode(errors="replace").count("#EXTINF") >= warm

        wait_for(playlist_ready, 60, f"a playlist with {warm} segments ({url})", servers, interval=0.25)
        cpu0 = cpu_seconds(origin.pid)
        ff0 = cpu_seconds(ffmpeg.pid) if ffmpeg else 0.0
        t0 = time.monotonic()
        load = self.sup.start("load", systems.hls_load_argv(self.bins, url, n, self.seconds), log_dir=logs)
        point["commands"] = [p.argv for p in (*servers, load)]
        wait_for(lambda: load.popen.poll() is not None, self.seconds + 90, "hls-load to finish", servers)
        cpu1 = cpu_seconds(origin.pid)
        ff1 = cpu_seconds(ffmpeg.pid) if ffmpeg else 0.0
        wall = time.monotonic() - t0
        report = last_json_line(load.out.read_text())
        point["report"] = report
        if ffmpeg:
            point["packaging_cpu_seconds"] = ff1 - ff0
        return hls_row(system, n, report, cpu1 - cpu0, wall)
