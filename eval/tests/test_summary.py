import contextlib
import csv
import io
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import synth  # noqa: E402
from evaluation import brief, summary  # noqa: E402

FRAMES = 50  # 2 s at 25 fps


def cell_json(system: str, profile: str, seed: int, params: dict) -> dict:
    """Shaped like the cell.json of evaluation/cells.py."""
    family = "moq" if system.startswith("moq") else ("ll-hls" if system == "ll-hls" else "hls")
    return {"system": system, "profile": profile, "seed": seed, "duration_s": 2, "moq": family == "moq",
            "family": family, "network_profile": profile, "drift": False, "profile_parameters": params,
            "system_parameters": {"name": system, "viewer": "cli" if family == "moq" else "browser"},
            "run": {"start_unix_ms": synth.T0 - 5000 * seed, "commands": [{"argv": ["x"], "status": 0}],
                    "warnings": ["viewer watch exited with status 1"] if seed == 2 else []}}


def make_run(root: Path) -> Path:
    """Profile "lossy": moq-cli at 200 / 300 ms (seeds 1, 2), hls at 2000 / 3000 ms, ll-hls seed 1 with no
    frames.csv. Profile "clean": one seed each, moq-cli 100 ms, hls 900 ms. Implied ratios: lossy
    median(2000, 3000) / median(200, 300) = 10 for p50 and p99, clean 9 with no CI."""
    run = root / "2025-01-01-abc1234"
    params = {"lossy": {"down": "delay=25ms,loss=1%", "up": "delay=25ms", "rate_mbit": 20},
              "clean": {"down": "", "up": "", "rate_mbit": 100}}
    lat = {("lossy", "moq-cli"): {1: 200.0, 2: 300.0}, ("lossy", "hls"): {1: 2000.0, 2: 3000.0},
           ("clean", "moq-cli"): {1: 100.0}, ("clean", "hls"): {1: 900.0}}
    for (profile, system), seeds in lat.items():
        for seed, ms in seeds.items():
            synth.write_cell(
                run / "cells" / profile / system / f"seed{seed}",
                synth.constant_rows(ms, FRAMES),
                start_unix_ms=synth.T0 - 1000 * seed,
                netem=synth.netem(down_out=1_000_000 * seed, up_out=100_000),
                cell=cell_json(system, profile, seed, params[profile]),
            )
    synth.write_cell(run / "cells" / "lossy" / "ll-hls" / "seed1", None, start_unix_ms=synth.T0,
                     cell=cell_json("ll-hls", "lossy", 1, params["lossy"]) | {"error": "ReadyTimeout: origin"})
    (run / "cpu.csv").write_text(
        "system,viewers,cpu_seconds,wall_seconds,bytes_sent,delivered_pct\n"
        "moq-relay,10,2.0,20.0,250000000,100.0\n"
        "moq-relay,100,15.0,20.0,2500000000,99.5\n"
        "hls-origin,10,4.0,20.0,250000000,100.0\n"
    )
    return run


class SummaryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.run_dir = make_run(Path(self.tmp.name))

    def tearDown(self):
        self.tmp.cleanup()

    def summarise(self, *extra):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            rc = summary.main([str(self.run_dir), "--no-figures", *extra])
        self.assertEqual(rc, 0, out.getvalue())
        return json.loads((self.run_dir / "summary.json").read_text()), out.getvalue()

    def test_ratio_implied_by_the_data(self):
        s, _ = self.summarise()
        lossy = s["profiles"]["lossy"]
        self.assertEqual(list(lossy["systems"]), ["moq-cli", "hls", "ll-hls"])  # MoQ first
        self.assertTrue(lossy["systems"]["moq-cli"]["moq"])
        self.assertFalse(lossy["systems"]["hls"]["moq"])
        hls = lossy["systems"]["hls"]["metrics"]["latency_p50_ms"]
        self.assertAlmostEqual(hls["median"], 2500.0, places=3)
        self.assertEqual(hls["n"], 2)
        self.assertLessEqual(hls["ci"][0], 2500.0)
        self.assertGreaterEqual(hls["ci"][1], 2500.0)
        ratios = {(r["numerator"], r["denominator"], r["metric"]): r for r in lossy["ratios"]}
        for metric in ("latency_p50_ms", "latency_p99_ms"):
            r = ratios[("hls", "moq-cli", metric)]
            self.assertAlmostEqual(r["ratio"], 10.0, places=6)
            lo, hi = r["ci"]
            self.assertLessEqual(lo, 10.0)
            self.assertGreaterEqual(hi, 10.0)
            self.assertGreaterEqual(lo, 2000.0 / 300.0 - 1e-6)  # the most extreme resamples
            self.assertLessEqual(hi, 3000.0 / 200.0 + 1e-6)
            # ll-hls failed: no samples, no ratio
            self.assertIsNone(ratios[("ll-hls", "moq-cli", metric)]["ratio"])
        self.assertNotIn(("moq-cli", "hls", "latency_p50_ms"), ratios)

    def test_brief_tables_carry_the_summary_numbers(self):
        s, _ = self.summarise()
        text = brief.render(s)
        self.assertIn("#### lossy", text)
        self.assertIn("#### clean", text)
        # lossy hls: median of 2000 and 3000 ms; its p50 cell shows the value and then the CI.
        lossy = text.split("#### lossy")[1].split("####")[0]
        lossy_hls = [line for line in lossy.splitlines() if line.startswith("| hls |")][0]
        self.assertIn("| 2.50 s [", lossy_hls)
        self.assertIn("| lossy | hls | moq-cli | 10.0x [", text)
        self.assertIn("| clean | hls | moq-cli | 9.0x | 9.0x |", text)
        self.assertIn("| lossy | 250 ms / 250 ms | 2.50 s / 2.50 s | – / – |", text)
        # CPU: moq-relay at 100 viewers, 15 CPU-s over 20 s = 0.0075 CPU-s per viewer-second = 7.50 ms.
        self.assertIn("| 100 | – | – | 7.50 | 0.75 |", text)
        self.assertIn("| ll-hls | 0 | – | – | – | – | – | – | – | – | – |", text)

    def test_one_seed_has_no_ci(self):
        s, _ = self.summarise()
        clean = s["profiles"]["clean"]
        agg = clean["systems"]["hls"]["metrics"]["latency_p50_ms"]
        self.assertAlmostEqual(agg["median"], 900.0, places=3)
        self.assertIsNone(agg["ci"])
        r = [r for r in clean["ratios"] if r["metric"] == "latency_p50_ms"][0]
        self.assertAlmostEqual(r["ratio"], 9.0, places=6)
        self.assertIsNone(r["ci"])

    def test_failed_cell_listed_and_parameters_stated(self):
        s, out = self.summarise()
        self.assertEqual(s["cells_total"], 7)
        self.assertEqual(s["cells_failed"], 1)
        failed = s["profiles"]["lossy"]["systems"]["ll-hls"]["failed"]
        self.assertEqual(failed, [{"seed": 1, "reason": "frames.csv missing; cell.json error: ReadyTimeout: origin"}])
        self.assertIn("failed lossy/ll-hls/seed1", out)
        p = s["profiles"]["lossy"]["parameters"]
        self.assertEqual(p["profile_parameters.down"], "delay=25ms,loss=1%")
        self.assertEqual(p["profile_parameters.rate_mbit"], 20)
        self.assertEqual(p["duration_s"], 2)
        for key in p:  # the execution record and the cell's identity are not parameters
            self.assertFalse(key.startswith("run.") or key in ("seed", "system", "error"), key)
        hls = s["profiles"]["lossy"]["systems"]["hls"]
        self.assertEqual(hls["parameters"]["system_parameters.viewer"], "browser")
        self.assertEqual(hls["parameters"]["family"], "hls")
        self.assertEqual(hls["varying_parameters"], {})
        cells = {(c["profile"], c["system"], c["seed"]): c for c in s["cells"]}
        self.assertIn("run: viewer watch exited with status 1", cells[("lossy", "hls", 2)]["warnings"])
        self.assertEqual(p["netem.down.spec"], "delay=25ms,loss=1%")  # the same in every cell that has netem.json
        self.assertEqual(s["analysis"]["freeze_threshold_ms"], 100.0)
        ttff = s["profiles"]["lossy"]["systems"]["moq-cli"]["metrics"]["ttff_ms"]
        self.assertAlmostEqual(ttff["median"], 1750.0, places=3)  # 1200 and 2300 ms
        wire = s["profiles"]["lossy"]["systems"]["hls"]["metrics"]["wire_bytes"]
        self.assertEqual(wire["values"], [1_100_000, 2_100_000])

    def test_outputs(self):
        s, _ = self.summarise()
        with (self.run_dir / "latency.csv").open() as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 6 * FRAMES)
        self.assertEqual(list(rows[0]), ["profile", "system", "seed", "frame", "capture_unix_ms",
                                         "display_unix_ms", "latency_ms"])
        hls = [float(r["latency_ms"]) for r in rows if r["system"] == "hls" and r["profile"] == "lossy"
               and r["seed"] == "2"]
        self.assertEqual(len(hls), FRAMES)
        self.assertTrue(all(abs(x - 3000.0) < 1e-2 for x in hls))
        md = (self.run_dir / "summary.md").read_text()
        self.assertIn("## Profile `lossy`", md)
        self.assertIn("| hls | moq-cli | 10.00 [", md)
        self.assertIn("| hls | moq-cli | 9.00 | 9.00 |", md)
        self.assertIn("## Failed cells", md)
        self.assertIn("## Server CPU", md)
        cpu = {(r["system"], r["viewers"]): r for r in s["cpu"]["rows"]}
        self.assertAlmostEqual(cpu[("moq-relay", 10)]["cpu_s_per_viewer_s"], 2.0 / (10 * 20.0))
        self.assertAlmostEqual(cpu[("moq-relay", 100)]["cpu_s_per_gb"], 15.0 / 20.0)
        self.assertIn("| moq-relay | 100 | 1 | 0.00750 | 0.75 | 99.5 |", md)

    def test_deterministic_and_moq_override(self):
        self.summarise()
        first = (self.run_dir / "summary.json").read_bytes()
        self.summarise()
        self.assertEqual(first, (self.run_dir / "summary.json").read_bytes())
        s, _ = self.summarise("--moq", "hls")
        r = [r for r in s["profiles"]["lossy"]["ratios"] if r["metric"] == "latency_p50_ms"]
        self.assertEqual({(x["numerator"], x["denominator"]) for x in r}, {("moq-cli", "hls"), ("ll-hls", "hls")})
        self.assertAlmostEqual([x for x in r if x["numerator"] == "moq-cli"][0]["ratio"], 0.1)

    def test_moq_rule(self):
        self.assertTrue(summary.is_moq("moq-browser", [], None))
        self.assertTrue(summary.is_moq("relay_moq", [], None))
        self.assertFalse(summary.is_moq("hls-2s", [], None))
        self.assertFalse(summary.is_moq("smoqy", [], None))
        self.assertTrue(summary.is_moq("hls", [], ["hls"]))

    def test_cli_from_eval_dir(self):
        res = subprocess.run([sys.executable, "-m", "evaluation.summary", str(self.run_dir), "--no-figures"],
                             cwd=synth.EVAL_DIR, capture_output=True, text=True, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("7 cells, 1 failed", res.stdout)
        bad = subprocess.run([sys.executable, "-m", "evaluation.summary", str(self.run_dir / "nope")],
                             cwd=synth.EVAL_DIR, capture_output=True, text=True, timeout=120)
        self.assertEqual(bad.returncode, 2)


if __name__ == "__main__":
    unittest.main()
