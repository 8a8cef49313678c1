import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import synth  # noqa: E402
from evaluation import frames  # noqa: E402

T0 = synth.T0


def capture(n, fps=25):
    return T0 + n * 1000.0 / fps


def designed_rows():
    """25 fps (40 ms frames). Frames 0-6 at 200 ms latency; 7 and 8 never shown (the player jumps ahead, so the
    display gap stays 40 ms: a skip without a freeze); 9-14 at 120 ms; frame 15 arrives 340 ms after 14 (one
    freeze, 300 ms frozen); 15-19 at 420 ms; frame 16 is logged twice."""
    rows = []
    for n in range(0, 7):
        rows.append((n, capture(n) + 200))
    for n in range(9, 15):
        rows.append((n, capture(n) + 120))
    for n in range(15, 20):
        rows.append((n, capture(n) + 420))
        if n == 16:
            rows.append((16, capture(16) + 440))  # duplicate, later
    return rows


class FrameJoinTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def designed_cell(self):
        return synth.write_cell(
            self.root / "cells" / "lossy" / "hls" / "seed3",
            designed_rows(),
            start_unix_ms=T0 - 500,
            netem=synth.netem(down_out=5_000_000, up_out=200_000, down_in=5_100_000, up_in=210_000),
            cell={"system": "hls", "profile": "lossy", "seed": 3, "duration": 60},
        )

    def test_known_metrics(self):
        r = frames.analyse_cell(self.designed_cell())
        self.assertTrue(r.ok, r.reason)
        self.assertEqual((r.profile, r.system, r.seed), ("lossy", "hls", 3))
        m = r.metrics
        self.assertEqual(m["rows"], 19)
        self.assertEqual(m["frames_shown"], 18)
        self.assertEqual(m["duplicates"], 1)
        self.assertEqual(m["skipped"], 2)
        self.assertEqual(r.skipped_frames, [7, 8])
        self.assertEqual(r.skip_runs(), [(7, 8)])
        self.assertAlmostEqual(m["delivered_pct"], 90.0)
        self.assertEqual((m["first_frame"], m["last_frame"]), (0, 19))
        # 18 latencies: 6 x 120, 7 x 200, 5 x 420.
        self.assertAlmostEqual(m["latency_p50_ms"], 200.0, places=3)
        self.assertAlmostEqual(m["latency_p95_ms"], 420.0, places=3)
        self.assertAlmostEqual(m["latency_max_ms"], 420.0, places=3)
        self.assertAlmostEqual(m["latency_min_ms"], 120.0, places=3)
        self.assertAlmostEqual(m["latency_mean_ms"], 4220.0 / 18, places=3)
        # the duplicate (latency 440) is not a sample
        self.assertEqual(len(r.frames), 18)
        self.assertEqual([f.frame for f in r.frames if f.frame == 16], [16])
        self.assertAlmostEqual([f.latency_ms for f in r.frames if f.frame == 16][0], 420.0, places=3)
        self.assertAlmostEqual(m["ttff_ms"], 700.0, places=3)
        self.assertEqual(m["freeze_count"], 1)
        self.assertAlmostEqual(m["freeze_total_ms"], 300.0, places=3)
        fz = r.freezes[0]
        self.assertEqual((fz.after_frame, fz.before_frame), (14, 15))
        self.assertAlmostEqual(fz.gap_ms, 340.0, places=3)
        self.assertEqual(m["wire_bytes"], 5_200_000)
        self.assertEqual(m["viewer_bytes"], 5_000_000)
        self.assertEqual(m["offered_bytes"], 5_310_000)
        self.assertEqual(r.parameters["freeze_threshold_ms"], 100.0)

    def test_misread_frame_number_is_dropped(self):
        d = self.designed_cell()
        with (d / "frames.csv").open("a") as f:
            f.write(f"5000000,{T0 + 2000:.3f}\n")  # beyond frames_sent (100000): a misread stamp
        r = frames.analyse_cell(d)
        self.assertTrue(r.ok, r.reason)
        self.assertEqual(r.metrics["invalid_frame_numbers"], 1)
        self.assertEqual(r.metrics["skipped"], 2)
        self.assertEqual(r.metrics["last_frame"], 19)
        self.assertEqual(r.metrics["rows"], 20)

    def test_freeze_threshold_is_a_parameter(self):
        d = self.designed_cell()
        self.assertEqual(frames.analyse_cell(d, freeze_threshold_ms=400).metrics["freeze_count"], 0)
        # at 30 ms every 40 ms frame interval is a freeze of 40 - 40 = 0 ms, and the long one is still 300 ms
        r = frames.analyse_cell(d, freeze_threshold_ms=30)
        self.assertEqual(r.metrics["freeze_count"], 17)
        self.assertAlmostEqual(r.metrics["freeze_total_ms"], 300.0, places=3)

    def test_drift_excludes_startup(self):
        fps = 30
        rows = []
        for n in range(60 * fps):
            c = T0 + n * 1000.0 / fps
            t = (c - T0) / 1000.0
            # startup: latency falls from 3100 ms to 104.5 ms over 9 s; then grows 0.5 ms/s = 30 ms/min
            lat = 100 + 0.5 * t + (3000 * (1 - t / 9) if t < 9 else 0)
            rows.append((n, c + lat))
        d = synth.write_cell(self.root / "cells" / "p" / "moq" / "seed1", rows, fps=fps, start_unix_ms=T0)
        r = frames.analyse_cell(d)
        self.assertTrue(r.ok, r.reason)
        self.assertAlmostEqual(r.metrics["drift_ms_per_min"], 30.0, places=3)
        self.assertLess(r.metrics["drift_se_ms_per_min"], 1e-3)
        # every frame displayed 10 s or more after the first (which was at 3.1 s), none before
        self.assertEqual(r.metrics["drift_n"], sum(1 for _, disp in rows if disp >= T0 + 3100 + 10000))
        with_startup = frames.analyse_cell(d, drift_startup_s=0)
        self.assertLess(with_startup.metrics["drift_ms_per_min"], 0.0)
        self.assertEqual(r.metrics["freeze_count"], 0)
        self.assertEqual(r.metrics["skipped"], 0)

    def test_missing_frames_csv_fails_cleanly(self):
        d = synth.write_cell(self.root / "cells" / "p" / "moq" / "seed1", None, start_unix_ms=T0,
                             cell={"error": "player crashed"})
        r = frames.analyse_cell(d)
        self.assertFalse(r.ok)
        self.assertIn("frames.csv missing", r.reason)
        self.assertIn("player crashed", r.reason)
        self.assertEqual(r.frames, [])
        self.assertFalse(r.to_json()["ok"])

    def test_cell_error_fails_even_with_frames(self):
        d = synth.write_cell(self.root / "cells" / "p" / "hls" / "seed1", synth.constant_rows(100, 10),
                             start_unix_ms=T0, cell={"error": "ReadyTimeout: viewer"})
        r = frames.analyse_cell(d)
        self.assertFalse(r.ok)
        self.assertIn("ReadyTimeout: viewer", r.reason)
        self.assertIn("10 frames.csv rows not used", r.reason)

    def test_empty_and_torn_frames_csv(self):
        d = synth.write_cell(self.root / "a" / "seed1", [], start_unix_ms=T0)
        r = frames.analyse_cell(d)
        self.assertFalse(r.ok)
        self.assertIn("no frame rows", r.reason)
        (d / "frames.csv").write_text("")
        self.assertFalse(frames.analyse_cell(d).ok)
        # a torn last line is skipped, not fatal
        (d / "frames.csv").write_text(f"frame,display_unix_ms\n0,{T0 + 50}\n1,{T0 + 90}\n2,")
        r = frames.analyse_cell(d)
        self.assertTrue(r.ok, r.reason)
        self.assertEqual(r.metrics["frames_shown"], 2)
        self.assertTrue(any("malformed" in w for w in r.warnings))

    def test_bad_source_fails_cleanly(self):
        d = synth.write_cell(self.root / "b" / "seed1", synth.constant_rows(100, 10), start_unix_ms=T0)
        (d / "source.json").write_text('{"t0_unix_ms": 12')  # torn write
        r = frames.analyse_cell(d)
        self.assertFalse(r.ok)
        self.assertIn("source.json", r.reason)
        (d / "source.json").unlink()
        self.assertFalse(frames.analyse_cell(d).ok)

    def test_missing_viewer_and_netem_are_not_failures(self):
        d = synth.write_cell(self.root / "c" / "seed1", synth.constant_rows(100, 10))
        r = frames.analyse_cell(d)
        self.assertTrue(r.ok, r.reason)
        self.assertIsNone(r.metrics["ttff_ms"])
        self.assertIsNone(r.metrics["wire_bytes"])
        self.assertAlmostEqual(r.metrics["latency_p99_ms"], 100.0, places=3)
        self.assertIsNone(r.metrics["drift_ms_per_min"])  # 10 frames = 0.4 s, nothing after 10 s


if __name__ == "__main__":
    unittest.main()
