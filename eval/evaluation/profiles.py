"""The emulated networks: one Profile per network, each a down (server to client) and an up (client to server) Link.

eval-netem applies a Link as a SPEC string (eval/README.md): ``delay=25ms,jitter=5ms,loss=1%,ge=0.5%/20%,
rate=20mbit,buffer=62500,dip=20s+60s@2.4mbit``; the empty string is no impairment. Times in a ``dip`` count from
eval-netem's start, which is the start of the cell (the servers start after it, the viewer a few seconds later).

The profiles (RTT = both directions' delay):

* ``lan``: no impairment at all (both SPECs empty): the floor of each system.
* ``broadband``: 50 ms RTT (25 ms each way), 1 % Bernoulli loss in *both* directions (the up direction carries
  the ACKs, requests and, for MoQ, the QUIC acknowledgements: a lossy access link loses those too), 20 Mb/s each
  way with a drop-tail buffer of one bandwidth-delay product (20e6 b/s * 0.05 s / 8 = 125000 bytes).
* ``long-haul-bloated`` and ``long-haul-small``: 200 ms RTT (100 ms each way) and 0.1 % loss both ways; the down
  link runs at 1.2x the stream (STREAM_MBIT) with a 60 s dip to 0.8x starting 20 s into the cell, so during the
  dip the stream does not fit and each system must either queue (latency grows) or drop. The up link has no
  rate limit (it is not the bottleneck). They differ only in the down buffer: ``bloated`` holds 1 s at the
  nominal link rate (1.5 s during the dip), ``small`` 50 ms.
* ``bursty``: Gilbert-Elliott loss in both directions (independent chains) with 2 % mean loss and bursts of 4
  packets on average: bad-to-good r = 1/4 = 25 %, good-to-bad p = 0.02 * r / (1 - 0.02) = 0.5102 %; the
  stationary loss p / (p + r) is then 2 % and the mean bad-state run 1 / r = 4 packets. 10 ms each way, no rate
  limit: lan-like apart from the bursts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Video bitrate of the clip (eval-clip), Mb/s.
VIDEO_MBIT = 2.5
#: Audio bitrate of the clip (Opus), Mb/s.
AUDIO_MBIT = 0.064
#: The stream's rate on the wire, Mb/s: video + audio = 2.564, rounded up to 2.6 for the fMP4 boxes and the
#: transport's framing. The long-haul profiles' rates are multiples of it.
STREAM_MBIT = 2.6

#: Long-haul down link: this multiple of STREAM_MBIT, dipping to LONG_HAUL_DIP_FACTOR.
LONG_HAUL_FACTOR = 1.2
LONG_HAUL_DIP_FACTOR = 0.8
LONG_HAUL_DIP_START_S = 20.0
LONG_HAUL_DIP_LEN_S = 60.0

#: Bursty: the Gilbert-Elliott chain's targets.
BURSTY_MEAN_LOSS = 0.02
BURSTY_MEAN_BURST = 4.0


def _num(x: float) -> str:
    """A number for a SPEC: at most 4 decimals, no trailing zeros (20 -> "20", 3.12 -> "3.12")."""
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


def ge_params(mean_loss: float, mean_burst: float) -> tuple[float, float]:
    """Gilbert-Elliott transition probabilities (p good-to-bad, r bad-to-good), as fractions, for a stationary loss
    rate ``mean_loss`` and a mean burst (bad-state run) of ``mean_burst`` packets, every packet in bad lost.

    The bad state's run length is geometric with mean 1/r, so r = 1/mean_burst; the stationary share of bad is
    p / (p + r) = mean_loss, so p = mean_loss * r / (1 - mean_loss)."""
    if not 0 < mean_loss < 1 or mean_burst < 1:
        raise ValueError("mean_loss must be in (0, 1) and mean_burst at least 1")
    r = 1.0 / mean_burst
    p = mean_loss * r / (1.0 - mean_loss)
    return p, r


@dataclass(frozen=True)
class Link:
    """One direction's impairment. Zero / None means "not applied"."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    #: Bernoulli loss, percent.
    loss_pct: float = 0.0
    #: Gilbert-Elliott good-to-bad and bad-to-good per packet, percent (both 0: off).
    ge_p_pct: float = 0.0
    ge_r_pct: float = 0.0
    rate_mbit: float | None = None
    #: Drop-tail queue in front of the rate limit, bytes.
    buffer_bytes: int | None = None
    #: A rate change: from dip_start_s for dip_len_s at dip_mbit (None: no dip).
    dip_start_s: float | None = None
    dip_len_s: float | None = None
    dip_mbit: float | None = None

    def spec(self) -> str:
        """The eval-netem SPEC of this direction, e.g. ``delay=25ms,loss=1%,rate=20mbit,buffer=125000``."""
        parts = []
        if self.delay_ms:
            parts.append(f"delay={_num(self.delay_ms)}ms")
        if self.jitter_ms:
            parts.append(f"jitter={_num(self.jitter_ms)}ms")
        if self.loss_pct:
            parts.append(f"loss={_num(self.loss_pct)}%")
        if self.ge_p_pct or self.ge_r_pct:
            parts.append(f"ge={_num(self.ge_p_pct)}%/{_num(self.ge_r_pct)}%")
        if self.rate_mbit:
            parts.append(f"rate={_num(self.rate_mbit)}mbit")
        if self.buffer_bytes:
            parts.append(f"buffer={int(self.buffer_bytes)}")
        if self.dip_mbit is not None:
            parts.append(f"dip={_num(self.dip_start_s or 0)}s+{_num(self.dip_len_s or 0)}s@{_num(self.dip_mbit)}mbit")
        return ",".join(parts)

    def ge_mean_loss(self) -> float:
        """Stationary loss of the Gilbert-Elliott chain, fraction (0 without one)."""
        p, r = self.ge_p_pct / 100, self.ge_r_pct / 100
        return p / (p + r) if p + r > 0 else 0.0

    def ge_mean_burst(self) -> float:
        """Mean burst (bad-state run) of the chain, packets (0 without one)."""
        return 100.0 / self.ge_r_pct if self.ge_r_pct else 0.0


@dataclass(frozen=True)
class Profile:
    name: str
    #: One line for tables and cell.json.
    summary: str
    down: Link = field(default_factory=Link)
    up: Link = field(default_factory=Link)

    @property
    def min_seconds(self) -> float:
        """The shortest cell that sees the whole profile: past the end of a dip (plus 10 s of recovery), else 0."""
        ends = [
            (link.dip_start_s or 0) + (link.dip_len_s or 0) + 10
            for link in (self.down, self.up)
            if link.dip_mbit is not None
        ]
        return max(ends, default=0.0)

    @property
    def rtt_ms(self) -> float:
        return self.down.delay_ms + self.up.delay_ms

    def specs(self) -> tuple[str, str]:
        """(down SPEC, up SPEC) for eval-netem's --down and --up."""
        return self.down.spec(), self.up.spec()

    def down_spec(self) -> str:
        return self.down.spec()

    def up_spec(self) -> str:
        return self.up.spec()

    def params(self) -> dict[str, Any]:
        """Every parameter, for cell.json."""
        down, up = self.specs()
        return {
            "name": self.name,
            "summary": self.summary,
            "rtt_ms": self.rtt_ms,
            "min_seconds": self.min_seconds,
            "stream_mbit": STREAM_MBIT,
            "down": asdict(self.down) | {"spec": down},
            "up": asdict(self.up) | {"spec": up},
        }


def _bdp_bytes(rate_mbit: float, rtt_ms: float) -> int:
    return round(rate_mbit * 1e6 * rtt_ms / 1e3 / 8)


def _long_haul(name: str, buffer_s: float, what: str) -> Profile:
    rate = round(STREAM_MBIT * LONG_HAUL_FACTOR, 4)
    dip = round(STREAM_MBIT * LONG_HAUL_DIP_FACTOR, 4)
    down = Link(
        delay_ms=100,
        loss_pct=0.1,
        rate_mbit=rate,
        buffer_bytes=round(rate * 1e6 * buffer_s / 8),
        dip_start_s=LONG_HAUL_DIP_START_S,
        dip_len_s=LONG_HAUL_DIP_LEN_S,
        dip_mbit=dip,
    )
    return Profile(
        name,
        f"200 ms RTT, 0.1 % loss, {_num(rate)} Mb/s ({LONG_HAUL_FACTOR}x the stream) dipping to {_num(dip)} Mb/s "
        f"({LONG_HAUL_DIP_FACTOR}x) for {_num(LONG_HAUL_DIP_LEN_S)} s at {_num(LONG_HAUL_DIP_START_S)} s, {what}",
        down=down,
        up=Link(delay_ms=100, loss_pct=0.1),
    )


def _bursty() -> Profile:
    p, r = ge_params(BURSTY_MEAN_LOSS, BURSTY_MEAN_BURST)
    link = Link(delay_ms=10, ge_p_pct=round(p * 100, 4), ge_r_pct=round(r * 100, 4))
    return Profile(
        "bursty",
        f"20 ms RTT, Gilbert-Elliott loss both ways: {_num(BURSTY_MEAN_LOSS * 100)} % mean, "
        f"bursts of {_num(BURSTY_MEAN_BURST)} packets on average",
        down=link,
        up=link,
    )


_BROADBAND = Link(delay_ms=25, loss_pct=1, rate_mbit=20, buffer_bytes=_bdp_bytes(20, 50))

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile("lan", "no impairment"),
        Profile(
            "broadband",
            "50 ms RTT, 1 % random loss both ways, 20 Mb/s each way, one-BDP buffer (125000 bytes)",
            down=_BROADBAND,
            up=_BROADBAND,
        ),
        _long_haul("long-haul-bloated", 1.0, "1 s buffer (bloated)"),
        _long_haul("long-haul-small", 0.05, "50 ms buffer"),
        _bursty(),
    ]
}


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})") from None
