"""eval/run end to end with stand-ins for the binaries (tests/fakes/): namespaces, ready checks, pipes, the
Chromium wrapper in the client namespace, cell files, the analysis, and teardown on SIGINT/SIGTERM.

Needs root, ip, /usr/bin/chromium and openssl, takes about two minutes, and must not run beside another
rehearsal (it looks for leftovers by the stand-ins' path): opt in with EVAL_REHEARSAL=1.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

EVAL = Path(__file__).resolve().parents[1]
FAKES = EVAL / "tests" / "fakes"
sys.path.insert(0, str(EVAL))

from evaluation import netns  # noqa: E402

ENABLED = os.environ.get("EVAL_REHEARSAL") == "1" and os.geteuid() == 0 and os.path.exists("/usr/bin/chromium")
ENV = dict(os.environ, EVAL_BIN_DIR=str(FAKES), EVAL_FFMPEG=str(FAKES / "ffmpeg"), EVAL_NODE=str(FAKES / "node"))


def leftovers() -> list[str]:
    """Processes still running a stand-in."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(FAKES) in cmd and netns._alive(int(pid)):
                out.append(f"{pid}: {cmd}")
    return out


@unittest.skipUnless(ENABLED, "rehearsal: root, Chromium and EVAL_REHEARSAL=1")
class RehearsalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cache = tempfile.TemporaryDirectory(prefix="eval-rehearsal-cache-")  # stand-in clips stay out of eval/
        ENV["EVAL_CACHE_DIR"] = cls.cache.name

    @classmethod
    def tearDownClass(cls):
        cls.cache.cleanup()

    def test_smoke(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "run"
            r = subprocess.run([str(EVAL / "run"), "--smoke", "--seconds", "8", "--no-install", "--no-build",
                                "--out", str(out)], env=ENV, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("smoke: ok", r.stdout)
            self.assertIn("[cell 4/4] lan/hls-2s/seed1:", r.stdout)
            meta = json.loads((out / "run.json").read_text())
            for ns in meta["namespaces"]:
                self.assertNotIn(ns, netns.ns_list())
            self.assertTrue((out / "summary.md").exists())
            for system in ("moq-cli", "moq-browser", "ll-hls", "hls-2s"):
                cell = out / "cells" / "lan" / system / "seed1"
                rec = json.loads((cell / "cell.json").read_text())
                self.assertEqual((rec["system"], rec["profile"], rec["seed"]), (system, "lan", 1))
                self.assertNotIn("error", rec)
                self.assertEqual(rec["run"]["warnings"], [], system)
                self.assertTrue(all(c["returncode"] is not None for c in rec["run"]["commands"]))
                self.assertEqual(set(json.loads((cell / "netem.json").read_text())), {"down", "up"})
                viewer = json.loads((cell / "viewer.json").read_text())
                if system != "moq-cli":
                    # The page came through the real Chromium, in the client namespace, over the self-signed
                    # origin certificate (the wrapper's SPKI pin).
                    self.assertTrue(viewer["chromium_ok"], system)
            self.assertEqual(leftovers(), [])

    def test_signals_tear_down(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig.name), tempfile.TemporaryDirectory() as d:
                out = Path(d) / "run"
                outsider = subprocess.Popen(["sleep", "120"])
                p = subprocess.Popen([str(EVAL / "run"), "--smoke", "--seconds", "60", "--no-install",
                                      "--no-build", "--out", str(out)], env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
                try:
                    relay_log = out / "cells" / "lan" / "moq-cli" / "seed1" / "logs" / "frames.log"
                    netns.wait_for(relay_log.exists, 60, "the first cell's viewer")
                    time.sleep(1)
                    meta = json.loads((out / "run.json").read_text())
                    for ns in meta["namespaces"]:
                        self.assertIn(ns, netns.ns_list())
                    p.send_signal(sig)
                    text, _ = p.communicate(timeout=60)
                    self.assertEqual(p.returncode, 128 + sig, text)
                    self.assertIn(f"{sig.name}: stopping", text)
                    for ns in meta["namespaces"]:
                        self.assertNotIn(ns, netns.ns_list())
                    self.assertEqual(leftovers(), [])
                    self.assertIsNone(outsider.poll(), "an unrelated process was killed")
                    rec = json.loads((out / "cells" / "lan" / "moq-cli" / "seed1" / "cell.json").read_text())
                    self.assertEqual({c["name"] for c in rec["run"]["commands"]},
                                     {"netem", "relay", "pacer", "pub", "sub", "frames"})
                finally:
                    if p.poll() is None:
                        os.killpg(p.pid, signal.SIGKILL)
                    outsider.kill()
                    outsider.wait()


if __name__ == "__main__":
    unittest.main()
