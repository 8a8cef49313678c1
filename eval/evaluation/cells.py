"""What a run is made of (``parse_args`` and ``plan``: the command line of eval/run and the cells it expands to)
and one cell end to end (``run_cell``).

A cell is one system x one network profile x one seed, in ``cells/<profile>/<system>/seed<k>/``. The 10-minute
drift cells (``--full``: one per system on the lan profile) are ``cells/lan-drift/<system>/seed1/``: the lan
network for ``--drift-seconds``; their cell.json says ``"network_profile": "lan", "drift": true``.

A cell: eval-netem between the namespaces with the profile's SPECs and the cell's seed (waiting for its ``ready``),
the system's server side in S (systems.server_steps), the viewer in C for the cell's duration
(systems.viewer_steps), then everything stopped (stop_cell): the pacer's consumer first, so that the pacer ends
by itself and writes source.json's final counts, the rest latest first, eval-netem last (it writes netem.json on
SIGTERM), and whatever is still inside the namespaces. cell.json records the system, profile, seed, duration,
every parameter of the profile and the system, and under ``run`` the exact commands, their exit codes, the waits
and timings (and, for a failed cell, ``error``: one line; ``run.error_detail``: with the failing process's stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from . import profiles, systems
from .netns import (
    Proc,
    ReadyTimeout,
    Supervisor,
    Topology,
    http_get,
    line_matching,
    wait_for,
    write_json,
)
from .systems import Bins, Env, Fetch, Pause, Start, ViewerStart, WaitHttp

QUICK_SYSTEMS = ["moq-cli", "moq-browser", "ll-hls", "hls-2s"]
DEFAULT_VIEWERS = [1, 10, 50, 100, 150, 200]

MODES: dict[str, dict] = {
    "quick": {"profiles": ["lan", "broadband"], "systems": QUICK_SYSTEMS, "seeds": 1, "seconds": 45.0,
              "drift_seconds": 0.0, "cpu": False},
    "full": {"profiles": list(profiles.PROFILES), "systems": list(systems.SYSTEMS), "seeds": 5, "seconds": 120.0,
             "drift_seconds": 600.0, "cpu": True},
    "smoke": {"profiles": ["lan"], "systems": QUICK_SYSTEMS, "seeds": 1, "seconds": 15.0, "drift_seconds": 0.0,
              "cpu": False},
}

#: How long after its own duration a viewer may take to finish (browser start-up, the last frames).
VIEWER_SLACK_S = 90.0


def _names(known: dict, what: str):
    def parse(s: str) -> list[str]:
        names = list(dict.fromkeys(x.strip() for x in s.split(",") if x.strip()))  # once each, in order
        bad = [n for n in names if n not in known]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(bad) or '(none given)'}; known: {', '.join(known)}")
        return names

    return parse


def _ints(s: str) -> list[int]:
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {s!r}") from None
    if not v or any(n <= 0 for n in v):
        raise argparse.ArgumentTypeError("viewer counts must be positive integers")
    return v


def _positive(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be positive: {s!r}")
    return v


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eval/run",
        description="MoQ against HLS and LL-HLS: every cell (system x network profile x seed) under the same "
        "paced source and emulated network, then the analysis (eval/README.md). Run as root.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="lan and broadband; moq-cli, moq-browser, ll-hls, hls-2s; 1 seed; 45 s cells (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="every profile and system, 5 seeds, 120 s cells, a 600 s drift cell per system on "
                      "lan, and the CPU sweep")
    mode.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                      help="CI: lan, one 15 s cell per quick system, then checks every cell delivered frames and "
                      "joined (non-zero exit otherwise)")
    p.add_argument("--profiles", type=_names(profiles.PROFILES, "profile"), help="comma-separated profiles")
    p.add_argument("--systems", type=_names(systems.SYSTEMS, "system"), help="comma-separated systems")
    p.add_argument("--seeds", type=int, help="seeds per (profile, system), 1..N")
    p.add_argument("--seconds", type=_positive, help="viewing time of a cell")
    p.add_argument("--drift-seconds", type=float, help="viewing time of the drift cell per system on lan (0: none)")
    p.add_argument("--drift-systems", type=_names(systems.SYSTEMS, "system"),
                   help="the systems that get a drift cell (default: every system of the run)")
    p.add_argument("--drift-only", action="store_true",
                   help="only the drift cells (a part of a run made in parts: eval/run-in-parts)")
    p.add_argument("--out", type=Path, help="run directory (default eval/results/<UTC date>-<short git sha>/)")
    p.add_argument("--no-install", action="store_true", help="do not apt-get / npm ci what is missing")
    p.add_argument("--no-build", action="store_true", help="do not cargo build / npm run build")
    p.add_argument("--cpu", action=argparse.BooleanOptionalAction, default=None,
                   help="the CPU sweep on loopback (default: on with --full)")
    p.add_argument("--viewers", type=_ints, default=None, help="viewer counts of the CPU sweep (1,10,50,100,150,200)")
    p.add_argument("--cpu-seconds", type=_positive, default=20.0, help="measured window of each CPU point")
    p.add_argument("--min-clip-seconds", type=_positive, default=None,
                   help="make (or take from eval/.cache) a clip at least this long: a run in parts makes its "
                   "longest clip once, in its first part")
    p.add_argument("--no-analyse", action="store_true",
                   help="do not run the analysis at the end (a part of a run made in parts: eval/run-in-parts)")
    p.add_argument("--dry-run", action="store_true", help="print the cells and exit (no root needed)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    args.mode = args.mode or "quick"
    for key, value in MODES[args.mode].items():
        if getattr(args, key, None) is None:
            setattr(args, key, list(value) if isinstance(value, list) else value)
    if args.viewers is None:
        args.viewers = list(DEFAULT_VIEWERS)
    if args.drift_systems is None:
        args.drift_systems = list(args.systems)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.drift_seconds < 0:
        p.error("--drift-seconds must not be negative")
    if args.drift_only and not args.drift_seconds:
        p.error("--drift-only needs --drift-seconds above 0 (or --full)")
    return args


@dataclass(frozen=True)
class Cell:
    system: str
    #: The network profile (profiles.PROFILES).
    profile: str
    seed: int
    seconds: float
    drift: bool = False

    @property
    def profile_dir(self) -> str:
        """The profile's name in the results tree (and cell.json's ``profile``)."""
        return f"{self.profile}-drift" if self.drift else self.profile

    @property
    def rel(self) -> Path:
        return Path("cells") / self.profile_dir / self.system / f"seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.profile_dir}/{self.system}/seed{self.seed}"


def plan(args: argparse.Namespace) -> list[Cell]:
    """The cells of a run, in the order they run: per seed, per profile, every system side by side (the machine
    is noisy: systems compared are measured close in time); the drift cells last. A cell views for ``--seconds``
    or its profile's min_seconds, whichever is longer (a long-haul cell must hold the whole rate dip). With
    ``--drift-only``, just the drift cells."""
    cells = [] if getattr(args, "drift_only", False) else [
        Cell(system, profile, seed, max(float(args.seconds), profiles.get(profile).min_seconds))
        for seed in range(1, args.seeds + 1)
        for profile in args.profiles
        for system in args.systems
    ]
    if args.drift_seconds and args.drift_seconds > 0:
        cells += [Cell(system, "lan", 1, float(args.drift_seconds), drift=True) for system in args.drift_systems]
    return cells


def clip_seconds(cells: list[Cell], cpu_seconds: float | None = None) -> int:
    """How long the run's clip must be: the longest pacer of any cell (or CPU point), plus 30 s."""
    longest = max((systems.pacer_seconds(systems.get(c.system), c.seconds) for c in cells), default=0.0)
    if cpu_seconds:
        longest = max(longest, systems.pacer_seconds(systems.get("hls-2s"), cpu_seconds + 15))
    return int(math.ceil(longest + 30))


# --- one cell ------------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    """What every cell of a run shares."""

    run_dir: Path
    web: Path
    bins: Bins
    topo: Topology
    sup: Supervisor
    clip: Path
    cert: Path
    key: Path
    chromium: Path
    git: str = ""


def _count(body: bytes, pattern: str | None) -> int:
    if pattern is None:
        return 1
    return len(re.findall(pattern, body.decode(errors="replace"), flags=re.MULTILINE))


def cell_env(cell: Cell, ctx: RunContext) -> Env:
    system = systems.get(cell.system)
    return Env(
        bins=ctx.bins,
        web=ctx.web,
        cell=ctx.run_dir / cell.rel,
        clip=ctx.clip,
        server_ns=ctx.topo.server,
        client_ns=ctx.topo.client,
        cert=ctx.cert,
        key=ctx.key,
        chromium=ctx.chromium,
        seconds=cell.seconds,
        pacer_seconds=systems.pacer_seconds(system, cell.seconds),
    )


def netem_step(cell: Cell, env: Env) -> Start:
    down, up = profiles.get(cell.profile).specs()
    argv = systems.netem_argv(env.bins, env.server_ns, env.client_ns, down, up, cell.seed, env.cell / "netem.json")
    return Start("netem", argv, ready=systems.Ready("stdout", r"^ready\b", timeout=20))


class _Runner:
    """Carries out steps, keeping every process it started and a record of what it did."""

    def __init__(self, sup: Supervisor, logs: Path):
        self.sup = sup
        self.logs = logs
        self.procs: dict[str, Proc] = {}
        #: name -> the name of the process whose stdout is its stdin
        self.fed_by: dict[str, str] = {}
        self.order: list[Proc] = []
        self.steps: list[dict] = []

    def do(self, step) -> None:
        t0 = time.monotonic()
        entry: dict = {"step": type(step).__name__, "at_unix_ms": round(time.time() * 1000, 1)}
        if isinstance(step, Start):
            src = self.procs[step.stdin_from] if step.stdin_from else None
            proc = self.sup.start(step.name, step.argv, log_dir=self.logs, stdin_from=src,
                                  pipe_stdout=step.pipe_stdout, cwd=step.cwd)
            self.procs[step.name] = proc
            if step.stdin_from:
                self.fed_by[step.name] = step.stdin_from
            self.order.append(proc)
            entry |= {"name": step.name, "pid": proc.pid}
            if step.ready:
                path = proc.log if step.ready.stream == "stderr" else proc.out
                wait_for(line_matching(path, step.ready.pattern), step.ready.timeout,
                         f"{step.name}'s ready line /{step.ready.pattern}/ on {step.ready.stream}", [proc])
        elif isinstance(step, WaitHttp):
            entry |= {"what": step.what, "url": step.url}

            def cond(step=step):
                status, body = http_get(step.url, step.ns)
                return status == 200 and _count(body, step.pattern) >= step.min_count

            wait_for(cond, step.timeout, f"{step.what} ({step.url})", self.live(), interval=0.25)
        elif isinstance(step, Fetch):
            entry |= {"what": step.what, "url": step.url, "dest": str(step.dest)}
            got: list[bytes] = []

            def fetched(step=step):
                status, body = http_get(step.url, step.ns)
                if status == 200:
                    got.append(body)
                return status == 200

            wait_for(fetched, 10, f"{step.what} ({step.url})", self.live(), interval=0.25)
            step.dest.write_bytes(got[-1])
        elif isinstance(step, Pause):
            entry |= {"seconds": step.seconds, "why": step.why}
            time.sleep(step.seconds)
        elif isinstance(step, ViewerStart):
            start = time.time() * 1000
            write_json(step.path, {"start_unix_ms": start, "viewer": step.viewer})
            entry |= {"start_unix_ms": start}
        else:
            raise TypeError(f"unknown step {step!r}")
        entry["took_s"] = round(time.monotonic() - t0, 3)
        self.steps.append(entry)

    def live(self) -> list[Proc]:
        return [p for p in self.order if not p.stopped]


def run_cell(cell: Cell, ctx: RunContext) -> dict:
    """Runs one cell; returns its quick result (quick_result) with ``error`` set if it failed. Never leaves a
    process of its own running."""
    system = systems.get(cell.system)
    profile = profiles.get(cell.profile)
    env = cell_env(cell, ctx)
    env.cell.mkdir(parents=True, exist_ok=True)
    if system.family == "hls":
        env.hls_dir.mkdir(exist_ok=True)  # ffmpeg's HLS muxer does not create it
    logs = env.cell / "logs"
    runner = _Runner(ctx.sup, logs)
    record: dict = {
        "system": cell.system,
        "profile": cell.profile_dir,
        "seed": cell.seed,
        "duration_s": cell.seconds,
        "moq": system.moq,
        "family": system.family,
        "network_profile": profile.name,
        "drift": cell.drift,
        "profile_parameters": profile.params(),
        "system_parameters": system.params(),
    }
    run: dict = {"git": ctx.git, "clip": str(ctx.clip), "pacer_seconds": env.pacer_seconds,
                 "server_ns": env.server_ns, "client_ns": env.client_ns, "warnings": []}
    error = None
    t_start = time.time()
    viewer_started = None
    try:
        runner.do(netem_step(cell, env))
        for step in systems.server_steps(system, env):
            runner.do(step)
        viewer_started = time.time()
        run["warmup_s"] = round(viewer_started - t_start, 3)
        vsteps = systems.viewer_steps(system, env)
        for step in vsteps:
            runner.do(step)
        last = runner.procs[[s for s in vsteps if isinstance(s, Start)][-1].name]
        wait_for(lambda: last.popen.poll() is not None, cell.seconds + VIEWER_SLACK_S, "the viewer to finish")
        if last.popen.returncode != 0:
            run["warnings"].append(f"viewer {last.name} exited with status {last.popen.returncode}")
        _snapshots(system, env)
    except ReadyTimeout as e:
        error = str(e)
    except Exception as e:  # noqa: BLE001 - a failed cell is recorded, the run goes on
        error = f"{type(e).__name__}: {e}"
    finally:
        run["viewer_seconds"] = round(time.time() - viewer_started, 3) if viewer_started else None
        early = [p.name for p in runner.order if p.popen.poll() is not None and p.name not in ("sub", "frames",
                                                                                             "watch")]
        if early:
            run["warnings"].append("exited before the end of the cell: " + ", ".join(
                f"{n} (status {runner.procs[n].popen.returncode})" for n in early))
        stop_cell(ctx, runner)
        stray = ctx.topo.kill_inside()
        if stray:
            run["warnings"].append(f"{len(stray)} stray processes ended inside the namespaces")
        run["commands"] = [p.record() for p in runner.order]
        run["steps"] = runner.steps
        run["start_unix_ms"] = round(t_start * 1000, 1)
        run["end_unix_ms"] = round(time.time() * 1000, 1)
        record["run"] = run
        if error:
            # One line for tables; the whole message (with the failing process's stderr) beside it.
            record["error"] = error.splitlines()[0]
            run["error_detail"] = error
        write_json(env.cell / "cell.json", record)
        _prune_hls(env.hls_dir)
    result = quick_result(env.cell)
    if error:
        result["error"] = error
    return result


def stop_cell(ctx: RunContext, runner: _Runner) -> None:
    """The pacer's consumer first: the pacer's next write fails, and it ends by itself, writing source.json's
    final counts (on SIGTERM it would just die); then the pacer if it has not; the rest latest first; eval-netem
    last, so that it counts everything (it writes netem.json on SIGTERM)."""
    order = runner.live()
    pacer = [p for p in order if p.name == "pacer"]
    fed = [p for p in order if runner.fed_by.get(p.name) == "pacer"]
    netem = [p for p in order if p.name == "netem"]
    if fed:
        ctx.sup.stop(fed, grace=5)
    if pacer:
        try:
            wait_for(lambda: pacer[0].popen.poll() is not None, 3, "the pacer to notice")
        except ReadyTimeout:
            pass
        ctx.sup.stop(pacer, grace=5)
    rest = [p for p in reversed(runner.live()) if p not in netem]
    if rest:
        ctx.sup.stop(rest, grace=5)
    if netem:
        ctx.sup.stop(netem, grace=10)


def _snapshots(system: systems.System, env: Env) -> None:
    """The servers' own counters at the end of the viewing: the relay's /metrics, the origin's /stats."""
    if system.moq:
        status, body = http_get(f"{systems.relay_url(env.addr, env.relay_port)}metrics", env.server_ns)
        if status == 200:
            (env.cell / "relay-metrics.txt").write_bytes(body)
    if system.family != "moq" or system.viewer == "browser":
        status, body = http_get(f"https://{env.addr}:{env.origin_port}/stats", env.server_ns)
        if status == 200:
            (env.cell / "origin-stats.json").write_bytes(body)


def _prune_hls(d: Path) -> None:
    """Drops the media segments ffmpeg left (the playlist and init segment stay): hls-6s cells would keep 20 MB."""
    if d.is_dir():
        for f in d.glob("*.m4s"):
            f.unlink(missing_ok=True)


# --- a cell's key result -------------------------------------------------------------------------------------


def quick_result(cell_dir: Path) -> dict:
    """Frames received and latency p50 by the plain join (frame n captured at t0 + n * 1000 / fps), and the time to
    first frame: for the progress line and the smoke check. The analysis proper is frames.py's."""
    out: dict = {"frames": 0, "p50_ms": None, "ttff_ms": None}
    rows = []
    try:
        with open(cell_dir / "frames.csv") as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) >= 2:
                    try:
                        rows.append((int(float(parts[0])), float(parts[1])))
                    except ValueError:
                        continue  # the header, a torn last line
    except OSError:
        return out
    out["frames"] = len({n for n, _ in rows})
    try:
        src = json.loads((cell_dir / "source.json").read_text())
        t0, fps = float(src["t0_unix_ms"]), float(src.get("fps") or 30)
    except (OSError, ValueError, KeyError, TypeError):
        return out
    if rows:
        seen, lat = set(), []
        for n, shown in rows:
            if n not in seen:
                seen.add(n)
                lat.append(shown - (t0 + n * 1000.0 / fps))
        out["p50_ms"] = statistics.median(lat)
        try:
            start = float(json.loads((cell_dir / "viewer.json").read_text())["start_unix_ms"])
            out["ttff_ms"] = min(s for _, s in rows) - start
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return out


def describe(result: dict) -> str:
    s = f"{result['frames']} frames"
    if result.get("p50_ms") is not None:
        s += f", p50 {result['p50_ms']:.0f} ms"
    if result.get("ttff_ms") is not None:
        s += f", first frame {result['ttff_ms']:.0f} ms"
    if result.get("error"):
        s += f", FAILED: {result['error'].splitlines()[0]}"
    return s


def smoke_problems(run_dir: Path, cells: list[Cell]) -> list[str]:
    """What makes a smoke run fail: a cell without frames, or whose latency join gives nothing plausible (the
    median between 0 and 30 s). Uses frames.py's join when it is there, the plain one otherwise."""
    try:
        from . import frames as frames_mod
    except ImportError:
        frames_mod = None
    problems = []
    for cell in cells:
        d = run_dir / cell.rel
        q = quick_result(d)
        if q["frames"] == 0:
            problems.append(f"{cell.label}: no frames" + (f" ({_cell_error(d)})" if _cell_error(d) else ""))
            continue
        p50 = q["p50_ms"]
        if frames_mod is not None and hasattr(frames_mod, "analyse_cell"):
            res = frames_mod.analyse_cell(d)
            if not getattr(res, "ok", True):
                problems.append(f"{cell.label}: the latency join failed: {getattr(res, 'reason', '?')}")
                continue
            p50 = getattr(res, "metrics", {}).get("latency_p50_ms", p50)
        if p50 is None or not 0 < p50 < 30000:
            problems.append(f"{cell.label}: implausible latency p50 {p50!r} ms (join broken?)")
    return problems


def _cell_error(d: Path) -> str | None:
    try:
        return json.loads((d / "cell.json").read_text()).get("error")
    except (OSError, ValueError):
        return None
