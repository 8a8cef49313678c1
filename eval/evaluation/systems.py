"""How each system is started: the server side in the server namespace S, the viewer in the client namespace C.

Everything here is pure: argv lists and step lists, built from an Env (paths and names of one cell); cells.py
carries the steps out. Every system is fed by the same paced source: ``eval-pacer --clip clip.mp4`` writes the
clip as a live fMP4 stream on stdout, piped (no shell) into the system's ingest:

* ``moq-cli``: moq-relay; eval-pacer | moq-pub --packaging cmaf; viewer moq-sub --keep-timestamps | eval-frames
  in C (the output keeps the clip's timeline, so that eval-frames can number the frames).
* ``moq-browser``: moq-relay; eval-pacer | moq-pub (LOC, the default); eval-origin serving web/dist and the
  relay's fingerprint; viewer the browser player (eval-watch, Chromium in C) on /watch.
* ``ll-hls`` / ``ll-hls-tuned``: eval-pacer | eval-origin --ll (parts of 333 ms, segments of 2 s); viewer
  hls.js on eval-hls.html with mode=ll (hls.js defaults) or mode=ll-tuned.
* ``hls-2s`` / ``hls-6s``: eval-pacer | ffmpeg -f hls (fMP4 segments of 2 or 6 s, 10 in the playlist); eval-origin
  serves them; viewer hls.js on eval-hls.html with mode=hls.

Before the viewer starts, every system's source has been running for a while, as a viewer joining a live stream
finds it: MoQ until the relay counts the announcement, then 2 s (the first group); LL-HLS until the playlist lists
one full segment; HLS until it lists three (hls.js starts three target durations from the live edge).
"""

from __future__ import annotations

import os

from dataclasses import dataclass, field
from pathlib import Path

from .netns import in_ns

SERVER_ADDR = "10.99.0.1"
CLIENT_ADDR = "10.99.0.2"
RELAY_PORT = 4443
ORIGIN_PORT = 8443
BROADCAST = "eval/clip"
#: The first keyframe's wait after the publisher is announced (the one plain sleep of a cell).
KEYFRAME_WAIT_S = 2.0
LL_PART_MS = 333
LL_SEGMENT_MS = 2000
HLS_LIST_SIZE = 10
#: Segments an HLS playlist lists before the viewer starts (hls.js's liveSyncDurationCount).
HLS_WARM_SEGMENTS = 3


@dataclass(frozen=True)
class System:
    name: str
    #: "moq", "ll-hls" or "hls".
    family: str
    #: "cli" (moq-sub | eval-frames) or "browser" (eval-watch).
    viewer: str
    summary: str
    #: moq-pub --packaging (None: its default, LOC).
    packaging: str | None = None
    #: ffmpeg -hls_time for "hls".
    hls_time: int | None = None
    #: eval-hls.html mode= for the HLS players.
    mode: str | None = None
    #: How a MoQ viewer reaches the relay: "quic" (raw QUIC / WebTransport) or "websocket" (QMux over TCP).
    transport: str = "quic"

    @property
    def moq(self) -> bool:
        return self.family == "moq"

    def params(self) -> dict:
        d = {"name": self.name, "family": self.family, "viewer": self.viewer, "summary": self.summary}
        if self.family == "moq":
            d["packaging"] = self.packaging or "loc"
            d["transport"] = self.transport
        if self.family == "ll-hls":
            d |= {"mode": self.mode, "part_ms": LL_PART_MS, "segment_ms": LL_SEGMENT_MS}
        if self.family == "hls":
            d |= {"mode": self.mode, "hls_time_s": self.hls_time, "hls_list_size": HLS_LIST_SIZE}
        return d


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in [
        System("moq-cli", "moq", "cli", "moq-relay, moq-pub (CMAF) and moq-sub", packaging="cmaf"),
        System("moq-browser", "moq", "browser", "moq-relay, moq-pub (LOC) and the browser player"),
        System("moq-cli-ws", "moq", "cli", "moq-cli with moq-sub over a WebSocket (QMux over TCP, head-of-line "
               "blocking): the browsers' fallback", packaging="cmaf", transport="websocket"),
        System("ll-hls", "ll-hls", "browser", "eval-origin LL-HLS (333 ms parts, 2 s segments), hls.js defaults",
               mode="ll"),
        System("ll-hls-tuned", "ll-hls", "browser", "eval-origin LL-HLS, hls.js tuned for latency",
               mode="ll-tuned"),
        System("hls-2s", "hls", "browser", "ffmpeg HLS, 2 s fMP4 segments, hls.js", hls_time=2, mode="hls"),
        System("hls-6s", "hls", "browser", "ffmpeg HLS, 6 s fMP4 segments, hls.js", hls_time=6, mode="hls"),
    ]
}


def get(name: str) -> System:
    try:
        return SYSTEMS[name]
    except KeyError:
        raise KeyError(f"unknown system {name!r} (known: {', '.join(SYSTEMS)})") from None


def startup_margin_s(system: System) -> float:
    """How much longer than the viewer the source runs: the warm-up before the viewer, its start-up, 10 s."""
    warm = HLS_WARM_SEGMENTS * system.hls_time if system.family == "hls" else KEYFRAME_WAIT_S
    return warm + 20


def pacer_seconds(system: System, seconds: float) -> float:
    return seconds + startup_margin_s(system)


# --- argv of each binary ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bins:
    """Where the binaries are (target/release) and the external tools."""

    dir: Path
    ffmpeg: str = "ffmpeg"
    node: str = "node"

    def __call__(self, name: str) -> str:
        return str(self.dir / name)


RUST_BINS = ["moq-relay", "moq-pub", "moq-sub", "eval-clip", "eval-pacer", "eval-netem", "eval-origin",
             "eval-frames"]
CPU_BINS = ["moq-relay", "moq-load", "eval-pacer", "eval-origin", "hls-load"]


def _s(x: float) -> str:
    return f"{x:g}"


def clip_argv(b: Bins, seconds: float, out: Path) -> list[str]:
    return [b("eval-clip"), "--seconds", _s(seconds), "--out", str(out)]


def netem_argv(b: Bins, ns_a: str, ns_b: str, down: str, up: str, seed: int, stats: Path,
               addr_a: str = SERVER_ADDR, addr_b: str = CLIENT_ADDR) -> list[str]:
    return [b("eval-netem"), "--ns-a", ns_a, "--ns-b", ns_b, "--addr-a", addr_a, "--addr-b", addr_b,
            "--down", down, "--up", up, "--seed", str(seed), "--stats", str(stats)]


def relay_argv(b: Bins, bind: str, tls_generate: str | None = None) -> list[str]:
    argv = [b("moq-relay"), "--bind", bind, "--http-bind", bind]
    if tls_generate:
        argv += ["--tls-generate", tls_generate]
    # Overload control off: the relay shares two cores with Chromium and the emulator, whose load would read as
    # the relay's own overload. EVAL_RELAY_ARGS adds flags (e.g. "--congestion bbr") for experiments.
    return argv + ["--overload-lag", "0s"] + os.environ.get("EVAL_RELAY_ARGS", "").split()


def pacer_argv(b: Bins, clip: Path, source_out: Path, seconds: float | None) -> list[str]:
    argv = [b("eval-pacer"), "--clip", str(clip), "--source-out", str(source_out)]
    return argv + (["--seconds", _s(seconds)] if seconds else [])


def pub_argv(b: Bins, url: str, broadcast: str, packaging: str | None) -> list[str]:
    argv = [b("moq-pub"), url, "--namespace", broadcast]
    return argv + (["--packaging", packaging] if packaging else [])


def sub_argv(b: Bins, url: str, broadcast: str, seconds: float) -> list[str]:
    # --keep-timestamps: the output keeps the clip's own timeline, so a frame's decode time x fps is its number.
    return [b("moq-sub"), url, "--namespace", broadcast, "--duration", _s(seconds), "--keep-timestamps"]


def frames_argv(b: Bins, out: Path) -> list[str]:
    return [b("eval-frames"), "--out", str(out)]


def origin_argv(b: Bins, bind: str, site: Path, cert: Path, key: Path, hls_dir: Path | None = None,
                ll: bool = False, fingerprint: Path | None = None, part_ms: int = LL_PART_MS,
                segment_ms: int = LL_SEGMENT_MS) -> list[str]:
    argv = [b("eval-origin"), "--bind", bind, "--cert", str(cert), "--key", str(key), "--site", str(site)]
    if hls_dir is not None:
        argv += ["--hls-dir", str(hls_dir)]
    if ll:
        argv += ["--ll", "--part-ms", str(part_ms), "--segment-ms", str(segment_ms)]
    if fingerprint is not None:
        argv += ["--fingerprint", str(fingerprint)]
    return argv


def ffmpeg_hls_argv(b: Bins, hls_time: int, out_dir: Path, input_format: str = "mp4") -> list[str]:
    """ffmpeg packaging the paced fMP4 on stdin into HLS (fMP4 segments), copying the streams. ``-f mp4`` reads a
    fragmented MP4 from a pipe (checked with ffmpeg 5.1: the moov comes first, no seeking needed)."""
    return [
        b.ffmpeg, "-hide_banner", "-loglevel", "error", "-f", input_format, "-i", "-", "-c", "copy",
        "-f", "hls", "-hls_time", str(hls_time), "-hls_list_size", str(HLS_LIST_SIZE),
        "-hls_segment_type", "fmp4", "-hls_flags", "delete_segments+independent_segments+program_date_time",
        "-hls_segment_filename", str(out_dir / "seg%05d.m4s"), str(out_dir / "live.m3u8"),
    ]


def watch_argv(b: Bins, url: str, seconds: float, out: Path, chromium: Path) -> list[str]:
    """The browser viewer; runs with cwd web/ (tsx resolves from there)."""
    return [b.node, "--import", "tsx", "scripts/eval-watch.ts", "--url", url, "--seconds", _s(seconds),
            "--out", str(out), "--chromium", str(chromium)]


def moq_load_argv(b: Bins, port: int, viewers: int, seconds: float, relay_pid: int) -> list[str]:
    return [b("moq-load"), "--relay", f"http://127.0.0.1:{port}/", "--subscribers", str(viewers), "--fps", "30",
            "--frame-size", "10800", "--group-size", "30", "--duration", _s(seconds), "--relay-pid",
            str(relay_pid)]


def hls_load_argv(b: Bins, url: str, viewers: int, seconds: float) -> list[str]:
    return [b("hls-load"), "--url", url, "--viewers", str(viewers), "--seconds", _s(seconds)]


def relay_url(addr: str = SERVER_ADDR, port: int = RELAY_PORT) -> str:
    return f"http://{addr}:{port}/"


def viewer_relay_url(system: System, env: "Env") -> str:
    """The relay URL a CLI viewer of ``system`` dials: the relay's HTTP port as ``ws://`` for the WebSocket."""
    if system.transport == "websocket":
        return f"ws://{env.addr}:{env.relay_port}/"
    return relay_url(env.addr, env.relay_port)


def moq_watch_url(addr: str = SERVER_ADDR, origin_port: int = ORIGIN_PORT, relay_port: int = RELAY_PORT) -> str:
    return (f"https://{addr}:{origin_port}/watch?name={BROADCAST}&url=https://{addr}:{relay_port}"
            "&fingerprint-url=/relay/certificate.sha256&frames=1&chat=0")


def hls_watch_url(system: System, addr: str = SERVER_ADDR, origin_port: int = ORIGIN_PORT) -> str:
    path = "/ll/live.m3u8" if system.family == "ll-hls" else "/hls/live.m3u8"
    return f"https://{addr}:{origin_port}/eval-hls.html?src={path}&mode={system.mode}"


def playlist_url(system: System, addr: str = SERVER_ADDR, origin_port: int = ORIGIN_PORT) -> str:
    path = "/ll/live.m3u8" if system.family == "ll-hls" else "/hls/live.m3u8"
    return f"https://{addr}:{origin_port}{path}"


# --- steps of a cell ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """Started means ready once a line of its stderr/stdout log matches ``pattern``."""

    stream: str
    pattern: str
    timeout: float = 20.0


@dataclass(frozen=True)
class Start:
    """Start a process. ``argv`` is complete (``ip netns exec`` included); ``stdin_from`` names an earlier Start
    whose stdout feeds this one (that one has ``pipe_stdout``)."""

    name: str
    argv: list[str]
    ns: str | None = None
    stdin_from: str | None = None
    pipe_stdout: bool = False
    cwd: str | None = None
    ready: Ready | None = None


@dataclass(frozen=True)
class WaitHttp:
    """Wait until GET ``url`` from ``ns`` answers 200 and its body has ``min_count`` lines matching ``pattern``."""

    what: str
    url: str
    ns: str | None
    pattern: str | None = None
    min_count: int = 1
    timeout: float = 20.0


@dataclass(frozen=True)
class Fetch:
    """GET ``url`` from ``ns`` (must answer 200) into ``dest``."""

    what: str
    url: str
    ns: str | None
    dest: Path


@dataclass(frozen=True)
class Pause:
    seconds: float
    why: str


@dataclass(frozen=True)
class ViewerStart:
    """Write viewer.json with start_unix_ms now (for players that do not write it themselves)."""

    path: Path
    viewer: str


Step = Start | WaitHttp | Fetch | Pause | ViewerStart


@dataclass(frozen=True)
class Env:
    """What a cell's commands are made of."""

    bins: Bins
    web: Path
    cell: Path
    clip: Path
    server_ns: str
    client_ns: str
    cert: Path
    key: Path
    chromium: Path
    seconds: float
    pacer_seconds: float
    addr: str = SERVER_ADDR
    relay_port: int = RELAY_PORT
    origin_port: int = ORIGIN_PORT
    extra: dict = field(default_factory=dict)

    @property
    def site(self) -> Path:
        return self.web / "dist"

    @property
    def hls_dir(self) -> Path:
        return self.cell / "hls"

    @property
    def fingerprint(self) -> Path:
        return self.cell / "fingerprint.txt"


def _srv(env: Env, name: str, argv: list[str], **kw) -> Start:
    return Start(name, in_ns(env.server_ns, argv), ns=env.server_ns, **kw)


def _pacer(env: Env) -> Start:
    argv = pacer_argv(env.bins, env.clip, env.cell / "source.json", env.pacer_seconds)
    return _srv(env, "pacer", argv, pipe_stdout=True)


def server_steps(system: System, env: Env) -> list[Step]:
    """The server side of ``system``, in order, ending when the viewer may start."""
    b, relay = env.bins, f"{env.addr}:{env.relay_port}"
    origin = f"{env.addr}:{env.origin_port}"
    http = relay_url(env.addr, env.relay_port)
    if system.family == "moq":
        steps: list[Step] = [
            _srv(env, "relay", relay_argv(b, relay, tls_generate=env.addr),
                 ready=Ready("stderr", r"moq-relay ready:")),
            WaitHttp("the relay's /health", f"{http}health", env.server_ns),
            Fetch("the relay's fingerprint", f"{http}certificate.sha256", env.server_ns, env.fingerprint),
        ]
        if system.viewer == "browser":
            steps.append(_srv(env, "origin", origin_argv(b, origin, env.site, env.cert, env.key,
                                                         fingerprint=env.fingerprint),
                              ready=Ready("stdout", r"^ready https://")))
        steps += [
            _pacer(env),
            _srv(env, "pub", pub_argv(b, http, BROADCAST, system.packaging), stdin_from="pacer"),
            WaitHttp("the publisher's announcement", f"{http}metrics", env.server_ns,
                     pattern=r"^moq_relay_announcements_total [1-9]"),
            Pause(KEYFRAME_WAIT_S, "the first keyframe"),
        ]
        return steps
    if system.family == "ll-hls":
        return [
            _pacer(env),
            _srv(env, "origin", origin_argv(b, origin, env.site, env.cert, env.key, ll=True), stdin_from="pacer",
                 ready=Ready("stdout", r"^ready https://")),
            WaitHttp("an LL-HLS playlist with a full segment", playlist_url(system, env.addr, env.origin_port),
                     env.server_ns, pattern=r"^#EXTINF", min_count=1, timeout=30),
        ]
    if system.family == "hls":
        assert system.hls_time
        return [
            _srv(env, "origin", origin_argv(b, origin, env.site, env.cert, env.key, hls_dir=env.hls_dir),
                 ready=Ready("stdout", r"^ready https://")),
            _pacer(env),
            _srv(env, "ffmpeg", ffmpeg_hls_argv(b, system.hls_time, env.hls_dir), stdin_from="pacer"),
            WaitHttp(f"an HLS playlist with {HLS_WARM_SEGMENTS} segments",
                     playlist_url(system, env.addr, env.origin_port), env.server_ns, pattern=r"^#EXTINF",
                     min_count=HLS_WARM_SEGMENTS, timeout=HLS_WARM_SEGMENTS * system.hls_time + 30),
        ]
    raise ValueError(f"no server side for family {system.family!r}")


def viewer_steps(system: System, env: Env) -> list[Step]:
    """The viewer in C, watching ``env.seconds``; the cell's viewing ends when the last Start exits."""
    b = env.bins
    if system.viewer == "cli":
        return [
            ViewerStart(env.cell / "viewer.json", "moq-sub"),
            Start("sub", in_ns(env.client_ns, sub_argv(b, viewer_relay_url(system, env), BROADCAST, env.seconds)),
                  ns=env.client_ns, pipe_stdout=True),
            Start("frames", in_ns(env.client_ns, frames_argv(b, env.cell / "frames.csv")), ns=env.client_ns,
                  stdin_from="sub"),
        ]
    if system.family == "moq":
        url = moq_watch_url(env.addr, env.origin_port, env.relay_port)
    else:
        url = hls_watch_url(system, env.addr, env.origin_port)
    return [Start("watch", watch_argv(b, url, env.seconds, env.cell, env.chromium), cwd=str(env.web))]
