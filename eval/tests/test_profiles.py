import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation import profiles  # noqa: E402
from evaluation.profiles import PROFILES, STREAM_MBIT, Link, ge_params  # noqa: E402


def parse_spec(spec: str) -> dict[str, str]:
    """The SPEC grammar of eval/README.md, strictly: comma-separated key=value, known keys, each once."""
    if spec == "":
        return {}
    out = {}
    for part in spec.split(","):
        key, _, value = part.partition("=")
        assert key in {"delay", "jitter", "loss", "ge", "rate", "buffer", "dip"}, key
        assert key not in out, f"{key} twice"
        out[key] = value
    return out


class SpecStringTest(unittest.TestCase):
    def test_exact_strings(self):
        self.assertEqual(PROFILES["lan"].specs(), ("", ""))
        bb = "delay=25ms,loss=1%,rate=20mbit,buffer=125000"
        self.assertEqual(PROFILES["broadband"].specs(), (bb, bb))
        self.assertEqual(
            PROFILES["long-haul-bloated"].specs(),
            ("delay=100ms,loss=0.1%,rate=3.12mbit,buffer=390000,dip=20s+60s@2.08mbit", "delay=100ms,loss=0.1%"),
        )
        self.assertEqual(
            PROFILES["long-haul-small"].specs(),
            ("delay=100ms,loss=0.1%,rate=3.12mbit,buffer=19500,dip=20s+60s@2.08mbit", "delay=100ms,loss=0.1%"),
        )
        ge = "delay=10ms,ge=0.5102%/25%"
        self.assertEqual(PROFILES["bursty"].specs(), (ge, ge))

    def test_every_spec_parses_with_units(self):
        units = {"delay": r"\d+(\.\d+)?ms", "jitter": r"\d+(\.\d+)?ms", "loss": r"\d+(\.\d+)?%",
                 "ge": r"\d+(\.\d+)?%/\d+(\.\d+)?%", "rate": r"\d+(\.\d+)?mbit", "buffer": r"\d+",
                 "dip": r"\d+(\.\d+)?s\+\d+(\.\d+)?s@\d+(\.\d+)?mbit"}
        for p in PROFILES.values():
            for spec in p.specs():
                for k, v in parse_spec(spec).items():
                    self.assertRegex(v, f"^{units[k]}$", f"{p.name}: {k}={v}")

    def test_derived_numbers(self):
        self.assertAlmostEqual(STREAM_MBIT, 2.6)
        self.assertGreaterEqual(STREAM_MBIT, profiles.VIDEO_MBIT + profiles.AUDIO_MBIT)
        bb = PROFILES["broadband"]
        self.assertEqual(bb.rtt_ms, 50)
        self.assertEqual(bb.down.buffer_bytes, 20e6 * 0.05 / 8)
        for name, seconds in (("long-haul-bloated", 1.0), ("long-haul-small", 0.05)):
            p = PROFILES[name]
            self.assertEqual(p.rtt_ms, 200)
            self.assertAlmostEqual(p.down.rate_mbit, 1.2 * STREAM_MBIT)
            self.assertAlmostEqual(p.down.dip_mbit, 0.8 * STREAM_MBIT)
            self.assertEqual((p.down.dip_start_s, p.down.dip_len_s), (20, 60))
            self.assertEqual(p.down.buffer_bytes, round(1.2 * STREAM_MBIT * 1e6 * seconds / 8))
            self.assertIsNone(p.up.rate_mbit)
        self.assertEqual(PROFILES["bursty"].rtt_ms, 20)

    def test_params_carry_specs(self):
        for p in PROFILES.values():
            d = p.params()
            self.assertEqual((d["down"]["spec"], d["up"]["spec"]), p.specs())
            self.assertEqual(d["name"], p.name)

    def test_number_formatting(self):
        self.assertEqual(Link(delay_ms=25.0).spec(), "delay=25ms")
        self.assertEqual(Link(jitter_ms=2.5, loss_pct=0.25).spec(), "jitter=2.5ms,loss=0.25%")
        self.assertEqual(Link().spec(), "")


class GilbertElliottTest(unittest.TestCase):
    def test_formulas(self):
        p, r = ge_params(0.02, 4)
        self.assertAlmostEqual(r, 0.25)
        self.assertAlmostEqual(p, 0.02 * 0.25 / 0.98)
        self.assertAlmostEqual(p / (p + r), 0.02)
        with self.assertRaises(ValueError):
            ge_params(0, 4)

    def test_bursty_spec_gives_two_percent_and_bursts_of_four(self):
        spec = parse_spec(PROFILES["bursty"].down_spec())
        m = re.fullmatch(r"([\d.]+)%/([\d.]+)%", spec["ge"])
        p, r = float(m.group(1)) / 100, float(m.group(2)) / 100
        self.assertAlmostEqual(p / (p + r), 0.02, places=5)  # stationary loss from the rounded string
        self.assertAlmostEqual(1 / r, 4.0)  # mean run of the bad state
        link = PROFILES["bursty"].down
        self.assertAlmostEqual(link.ge_mean_loss(), 0.02, places=5)
        self.assertAlmostEqual(link.ge_mean_burst(), 4.0)

    def test_simulated_chain(self):
        """The chain itself, simulated: 2 % of packets lost, in bursts of 4 on average."""
        import random

        link = PROFILES["bursty"].down
        p, r = link.ge_p_pct / 100, link.ge_r_pct / 100
        rng = random.Random(1)
        bad, lost, bursts, n = False, 0, 0, 400_000
        for _ in range(n):
            if bad:
                lost += 1
                bad = rng.random() >= r
            else:
                bad = rng.random() < p
                bursts += bad
        self.assertAlmostEqual(lost / n, 0.02, delta=0.002)
        self.assertAlmostEqual(lost / bursts, 4.0, delta=0.25)


if __name__ == "__main__":
    unittest.main()
