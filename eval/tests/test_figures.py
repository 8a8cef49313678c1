import contextlib
import importlib.util
import io
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import synth  # noqa: E402
from evaluation import summary  # noqa: E402
from test_summary import make_run  # noqa: E402

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


class FiguresTest(unittest.TestCase):
    @unittest.skipUnless(HAVE_MPL, "matplotlib not importable by this interpreter")
    def test_files_and_determinism(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = make_run(Path(tmp))
            # a freeze and two skips in one cell, so the shaded spans and ticks are drawn
            rows = [r for r in synth.constant_rows(250.0, 50) if r[0] not in (20, 21)]
            rows = [(n, t + (400.0 if n >= 30 else 0.0)) for n, t in rows]
            synth.write_cell(run_dir / "cells" / "lossy" / "moq-cli" / "seed1", rows, start_unix_ms=synth.T0)
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(summary.main([str(run_dir)]), 0)
            fig = run_dir / "figures"
            names = sorted(p.name for p in fig.iterdir())
            for stem in ("latency_ecdf_lossy", "latency_ecdf_clean", "latency_time_lossy", "latency_time_clean",
                         "ttff", "cpu_per_viewer"):
                self.assertIn(stem + ".svg", names)
                self.assertIn(stem + ".png", names)
            first = {n: (fig / n).read_bytes() for n in names}
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(summary.main([str(run_dir)]), 0)
            for n in names:
                self.assertEqual(first[n], (fig / n).read_bytes(), n)
            svg = first["latency_time_lossy.svg"].decode()
            self.assertNotIn("<dc:date>", svg)
            self.assertGreater(svg.count("<path"), 10)

    @unittest.skipIf(HAVE_MPL, "matplotlib is importable here")
    def test_skipped_without_matplotlib(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = make_run(Path(tmp))
            with contextlib.redirect_stdout(io.StringIO()) as out:
                self.assertEqual(summary.main([str(run_dir)]), 0)
            self.assertIn("figures skipped", out.getvalue())
            self.assertFalse((run_dir / "figures").exists())


if __name__ == "__main__":
    unittest.main()
