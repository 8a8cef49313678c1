import csv
import json
import os
import socket
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation import cpu  # noqa: E402

# moq-load's JSON line (benches/src/load.rs), 50 subscribers for 20 s.
MOQ_LOAD = (
    '{"subscribers":50,"fps":30,"frame_size":10800,"seconds":20.01,"objects_sent":600,"objects_expected":30000,'
    '"objects_received":29700,"loss":0.010000,"skipped_groups":0,"egress_mbps":128.3,"latency_ms":{"p50":0.412,'
    '"p90":0.800,"p99":1.900,"max":4.000},"relay_cpu_s":1.250,"relay_cpu_s_per_gbit":0.4870,'
    '"relay_peak_rss_bytes":31457280,"load_cpu_s":3.100,"load_cpu_s_per_gbit":1.2076}'
)


class ParseTest(unittest.TestCase):
    def test_stat(self):
        # A command name with a space and a paren; utime 250, stime 50 ticks at 100 Hz.
        stat = "1234 (we ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10"
        self.assertAlmostEqual(cpu.parse_stat_cpu(stat, 100), 3.0)

    def test_own_cpu_grows(self):
        before = cpu.cpu_seconds(os.getpid())
        t = time.process_time()
        while time.process_time() - t < 0.2:
            pass
        self.assertGreater(cpu.cpu_seconds(os.getpid()), before + 0.1)

    def test_json_line(self):
        self.assertEqual(cpu.last_json_line("noise\n{\"a\": 1}\n{bad\n")["a"], 1)
        with self.assertRaises(ValueError):
            cpu.last_json_line("nothing here")

    def test_moq_row(self):
        row = cpu.moq_row(50, json.loads(MOQ_LOAD))
        self.assertEqual(row["system"], "moq")
        self.assertEqual(row["cpu_seconds"], 1.25)
        self.assertEqual(row["wall_seconds"], 20.01)
        self.assertEqual(row["bytes_sent"], round(128.3e6 / 8 * 20.01))
        self.assertAlmostEqual(row["delivered_pct"], 99.0)
        with self.assertRaises(ValueError):
            cpu.moq_row(1, json.loads(MOQ_LOAD.replace('"relay_cpu_s":1.250', '"relay_cpu_s":null')))

    def test_hls_row(self):
        report = {"bytes": 6500000, "requests": 1200, "errors": 0, "viewers_ok": 9}
        row = cpu.hls_row("ll-hls", 10, report, 0.8, 21.5)
        self.assertEqual(row, {"system": "ll-hls", "viewers": 10, "cpu_seconds": 0.8, "wall_seconds": 21.5,
                               "bytes_sent": 6500000, "delivered_pct": 90.0})

    def test_csv(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "cpu.csv"
            cpu.write_csv(path, [cpu.moq_row(50, json.loads(MOQ_LOAD)),
                                 cpu.hls_row("hls-2s", 1, {"bytes": 10, "viewers_ok": 1}, 0.5, 20.0)])
            with path.open() as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(list(rows[0]), cpu.COLUMNS)
            self.assertEqual(rows[0]["system"], "moq")
            self.assertEqual(float(rows[1]["delivered_pct"]), 100.0)
            self.assertEqual(path.read_text().splitlines()[0],
                             "system,viewers,cpu_seconds,wall_seconds,bytes_sent,delivered_pct")

    def test_free_port(self):
        port = cpu.free_port()
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))


if __name__ == "__main__":
    unittest.main()
