import contextlib
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation import cells, profiles, systems  # noqa: E402
from evaluation.cells import Cell, parse_args, plan  # noqa: E402

QUICK = ["moq-cli", "moq-browser", "ll-hls", "hls-2s"]
ALL_SYSTEMS = ["moq-cli", "moq-browser", "moq-cli-ws", "ll-hls", "ll-hls-tuned", "hls-2s", "hls-6s"]
ALL_PROFILES = ["lan", "broadband", "long-haul-bloated", "long-haul-small", "bursty"]


def bad_args(argv):
    with contextlib.redirect_stderr(io.StringIO()), unittest.TestCase().assertRaises(SystemExit):
        parse_args(argv)


class PlanTest(unittest.TestCase):
    def test_quick(self):
        for argv in (["--quick"], []):
            a = parse_args(argv)
            self.assertEqual(a.mode, "quick")
            self.assertFalse(a.cpu)
            p = plan(a)
            self.assertEqual(len(p), 8)
            self.assertEqual({c.profile for c in p}, {"lan", "broadband"})
            self.assertEqual([c.system for c in p[:4]], QUICK)
            self.assertTrue(all(c.seconds == 45 and c.seed == 1 and not c.drift for c in p))

    def test_full(self):
        a = parse_args(["--full"])
        self.assertTrue(a.cpu)
        self.assertEqual(a.viewers, [1, 10, 50, 100, 150, 200])
        p = plan(a)
        main = [c for c in p if not c.drift]
        drift = [c for c in p if c.drift]
        self.assertEqual(len(main), 5 * 7 * 5)
        self.assertEqual({(c.profile, c.system, c.seed) for c in main},
                         {(pr, s, k) for pr in ALL_PROFILES for s in ALL_SYSTEMS for k in range(1, 6)})
        self.assertTrue(all(c.seconds == 120 for c in main))
        self.assertEqual([(c.profile, c.system, c.seconds) for c in drift], [("lan", s, 600) for s in ALL_SYSTEMS])
        self.assertEqual(p[-7:], drift)  # drift cells last
        # Systems side by side: each (seed, profile) block holds every system before the next block starts.
        self.assertEqual([c.system for c in main[:7]], ALL_SYSTEMS)
        self.assertEqual(len({c.rel for c in p}), len(p))

    def test_smoke(self):
        a = parse_args(["--smoke"])
        p = plan(a)
        self.assertEqual([(c.profile, c.system, c.seconds, c.seed) for c in p], [("lan", s, 15, 1) for s in QUICK])
        self.assertFalse(a.cpu)

    def test_overrides(self):
        a = parse_args(["--full", "--profiles", "lan,bursty", "--systems", "moq-cli,hls-6s", "--seeds", "2",
                        "--seconds", "30", "--drift-seconds", "0", "--no-cpu", "--viewers", "1,5"])
        p = plan(a)
        self.assertEqual(len(p), 2 * 2 * 2)
        self.assertTrue(all(c.seconds == 30 for c in p))
        self.assertFalse(a.cpu)
        self.assertEqual(a.viewers, [1, 5])
        a = parse_args(["--quick", "--cpu", "--drift-seconds", "60", "--out", "/tmp/x"])
        self.assertTrue(a.cpu)
        self.assertEqual(a.out, Path("/tmp/x"))
        self.assertEqual(len([c for c in plan(a) if c.drift]), 4)
        self.assertEqual(parse_args(["--systems", "hls-2s,moq-cli,hls-2s"]).systems, ["hls-2s", "moq-cli"])
        a = parse_args(["--smoke", "--no-install", "--no-build"])
        self.assertTrue(a.no_install and a.no_build)

    def test_drift_systems(self):
        a = parse_args(["--full", "--drift-systems", "moq-browser,ll-hls-tuned"])
        drift = [c for c in plan(a) if c.drift]
        self.assertEqual([(c.system, c.seconds) for c in drift], [("moq-browser", 600), ("ll-hls-tuned", 600)])
        bad_args(["--drift-systems", "dash"])

    def test_drift_only(self):
        a = parse_args(["--full", "--drift-only", "--drift-systems", "moq-cli,hls-6s", "--no-analyse"])
        self.assertEqual([(c.label, c.seconds) for c in plan(a)],
                         [("lan-drift/moq-cli/seed1", 600), ("lan-drift/hls-6s/seed1", 600)])
        self.assertTrue(a.no_analyse)
        self.assertFalse(parse_args(["--full"]).no_analyse)
        self.assertEqual(parse_args(["--min-clip-seconds", "700"]).min_clip_seconds, 700)
        bad_args(["--min-clip-seconds", "0"])
        # Drift cells are what --drift-only keeps: without any it is a mistake.
        bad_args(["--quick", "--drift-only"])
        bad_args(["--full", "--drift-only", "--drift-seconds", "0"])

    def test_a_long_haul_cell_holds_the_whole_dip(self):
        a = parse_args(["--full", "--seeds", "1", "--seconds", "20", "--drift-seconds", "0"])
        by_profile = {c.profile: c.seconds for c in plan(a)}
        # The dip runs from 20 s for 60 s; 10 s of recovery after it.
        self.assertEqual(by_profile["long-haul-small"], 90)
        self.assertEqual(by_profile["long-haul-bloated"], 90)
        self.assertEqual(by_profile["lan"], 20)
        self.assertEqual(by_profile["bursty"], 20)
        # Longer cells than the dip need are left alone.
        self.assertTrue(all(c.seconds == 120 for c in plan(parse_args(["--full"])) if not c.drift))

    def test_bad_arguments(self):
        bad_args(["--profiles", "moon"])
        bad_args(["--systems", "moq-cli,dash"])
        bad_args(["--quick", "--full"])
        bad_args(["--seeds", "0"])
        bad_args(["--seconds", "-3"])
        bad_args(["--viewers", "1,x"])

    def test_every_name_is_known(self):
        for mode in cells.MODES.values():
            for p in mode["profiles"]:
                profiles.get(p)
            for s in mode["systems"]:
                systems.get(s)

    def test_cell_paths(self):
        c = Cell("hls-2s", "broadband", 3, 45)
        self.assertEqual(c.rel, Path("cells/broadband/hls-2s/seed3"))
        d = Cell("moq-cli", "lan", 1, 600, drift=True)
        self.assertEqual(d.rel, Path("cells/lan-drift/moq-cli/seed1"))
        self.assertEqual(d.profile_dir, "lan-drift")

    def test_clip_length(self):
        p = plan(parse_args(["--full"]))
        # The longest pacer (a 600 s hls-6s drift cell: 18 s of warm-up + 20 s margin) plus 30 s.
        self.assertEqual(cells.clip_seconds(p), 600 + 18 + 20 + 30)
        self.assertEqual(cells.clip_seconds(plan(parse_args(["--smoke"]))), 15 + 6 + 20 + 30)
        self.assertGreaterEqual(cells.clip_seconds([], cpu_seconds=20), 20 + 30)


class QuickResultTest(unittest.TestCase):
    def test_join(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "source.json").write_text(json.dumps({"t0_unix_ms": 1000.0, "fps": 30}))
            (d / "viewer.json").write_text(json.dumps({"start_unix_ms": 900.0}))
            # frames 0..9 shown 100 ms after capture, frame 5 twice, a torn last line
            rows = [f"{n},{1000 + n * 1000 / 30 + 100}" for n in range(10)] + ["5,99999", "7,"]
            (d / "frames.csv").write_text("frame,display_unix_ms\n" + "\n".join(rows) + "\n")
            q = cells.quick_result(d)
            self.assertEqual(q["frames"], 10)
            self.assertAlmostEqual(q["p50_ms"], 100.0)
            self.assertAlmostEqual(q["ttff_ms"], 200.0)
            self.assertIn("p50 100 ms", cells.describe(q))
            self.assertEqual(cells.smoke_problems(d.parent, []), [])

    def test_missing(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(cells.quick_result(Path(d)), {"frames": 0, "p50_ms": None, "ttff_ms": None})

    def test_smoke_problems(self):
        with tempfile.TemporaryDirectory() as d:
            run = Path(d)
            good, empty = Cell("moq-cli", "lan", 1, 15), Cell("hls-2s", "lan", 1, 15)
            g = run / good.rel
            g.mkdir(parents=True)
            (g / "source.json").write_text(json.dumps({"t0_unix_ms": 1000.0, "fps": 30}))
            (g / "frames.csv").write_text("frame,display_unix_ms\n" + "".join(
                f"{n},{1000 + n * 1000 / 30 + 80}\n" for n in range(60)))
            (g / "viewer.json").write_text(json.dumps({"start_unix_ms": 1000.0}))
            e = run / empty.rel
            e.mkdir(parents=True)
            (e / "cell.json").write_text(json.dumps({"error": "timed out waiting for eval-origin"}))
            problems = cells.smoke_problems(run, [good, empty])
            self.assertEqual(len(problems), 1, problems)
            self.assertIn("lan/hls-2s/seed1: no frames (timed out waiting for eval-origin)", problems[0])


if __name__ == "__main__":
    unittest.main()
