import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation import cells, netns, systems  # noqa: E402
from evaluation.netns import ReadyTimeout, Supervisor, line_matching, wait_for  # noqa: E402


def gone(pid: int) -> bool:
    return not netns._alive(pid)


def wait_gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.02)
    return gone(pid)


class SupervisorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_teardown_kills_only_its_own(self):
        outsider = subprocess.Popen(["sleep", "60"])
        try:
            sup = Supervisor()
            mine = sup.start("sleep", ["sleep", "60"], log_dir=self.dir)
            # A grandchild in the same group (what a browser or a shell leaves behind).
            shell = sup.start("shell", ["sh", "-c", "sleep 60 & echo $! > grandchild; wait"], log_dir=self.dir,
                              cwd=self.dir)
            wait_for(lambda: (self.dir / "grandchild").exists() and (self.dir / "grandchild").read_text().strip(),
                     5, "the grandchild's pid")
            grandchild = int((self.dir / "grandchild").read_text())
            self.assertEqual(os.getpgid(mine.pid), mine.pid)  # its own group
            self.assertNotEqual(os.getpgid(mine.pid), os.getpgrp())
            self.assertEqual(os.getpgid(grandchild), shell.pid)
            sup.teardown(grace=2)
            self.assertIsNotNone(mine.popen.poll())
            self.assertIsNotNone(shell.popen.poll())
            self.assertTrue(wait_gone(grandchild), "the grandchild survived")
            self.assertEqual(sup.procs, [])
            self.assertIsNone(outsider.poll(), "an unrelated process was killed")
            sup.teardown()  # twice is harmless
        finally:
            outsider.kill()
            outsider.wait()

    def test_sigterm_ignored_gets_sigkill(self):
        sup = Supervisor()
        p = sup.start("stubborn", [sys.executable, "-c",
                                   "import signal,time,sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                   "print('up', flush=True)\ntime.sleep(60)"], log_dir=self.dir)
        wait_for(line_matching(p.out, "^up"), 5, "it to start")
        t = time.monotonic()
        sup.stop(p, grace=0.5)
        self.assertEqual(p.popen.returncode, -signal.SIGKILL)
        self.assertLess(time.monotonic() - t, 4)

    def test_pipe_and_logs(self):
        sup = Supervisor()
        a = sup.start("producer", [sys.executable, "-c", "import sys\nprint('hello');print('oops', file=sys.stderr)"],
                      log_dir=self.dir, pipe_stdout=True)
        b = sup.start("consumer", ["tr", "a-z", "A-Z"], log_dir=self.dir, stdin_from=a)
        wait_for(lambda: b.popen.poll() is not None, 5, "the consumer to finish")
        self.assertEqual((self.dir / "consumer.out").read_text(), "HELLO\n")
        self.assertEqual((self.dir / "producer.log").read_text(), "oops\n")
        self.assertIsNone(a.out)
        rec = b.record()
        self.assertEqual(rec["argv"], ["tr", "a-z", "A-Z"])
        self.assertEqual(rec["returncode"], 0)
        sup.teardown()

    def test_start_failure_is_clear(self):
        with self.assertRaisesRegex(RuntimeError, "cannot start ghost"):
            Supervisor().start("ghost", ["/nonexistent/binary"], log_dir=self.dir)


class WaitTest(unittest.TestCase):
    def test_wait_for(self):
        t = time.monotonic()
        self.assertEqual(wait_for(lambda: time.monotonic() - t > 0.1 and "yes", 2, "time"), "yes")
        with self.assertRaisesRegex(ReadyTimeout, "timed out after 0.2 s waiting for nothing"):
            wait_for(lambda: False, 0.2, "nothing")

    def test_dead_process_fails_fast(self):
        with tempfile.TemporaryDirectory() as d:
            sup = Supervisor()
            p = sup.start("dies", ["sh", "-c", "echo broken >&2; exit 3"], log_dir=Path(d))
            t = time.monotonic()
            expect = r"^dies exited \(status 3\) while waiting for a ready line\n--- dies stderr:\nbroken$"
            with self.assertRaisesRegex(ReadyTimeout, expect):
                wait_for(line_matching(p.log, "ready"), 10, "a ready line", [p])
            self.assertLess(time.monotonic() - t, 5)
            sup.teardown()

    def test_line_matching(self):
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "log"
            cond = line_matching(f, r"^ready (\S+)")
            self.assertIsNone(cond())
            f.write_text("starting\nready https://10.99.0.1:8443\n")
            self.assertEqual(cond().group(1), "https://10.99.0.1:8443")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/health": b"ok\n", "/metrics": b"# HELP x\nmoq_relay_announcements_total 1\n",
                "/playlist": b"#EXTM3U\n#EXTINF:2.0,\na\n#EXTINF:2.0,\nb\n"}.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(body or b"no")

    def log_message(self, *a):
        pass


class HttpAndStepsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def test_http_get(self):
        self.assertEqual(netns.http_get(f"{self.url}/health"), (200, b"ok\n"))
        self.assertEqual(netns.http_get(f"{self.url}/nope")[0], 404)
        self.assertEqual(netns.http_get("http://127.0.0.1:1/")[0], 0)

    def test_runner_steps(self):
        """The step machinery of a cell, in the root namespace, with stand-ins for the binaries."""
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            sup = Supervisor()
            r = cells._Runner(sup, d / "logs")
            ready = systems.Ready("stderr", "moq-relay ready:", timeout=5)
            r.do(systems.Start("relay", [sys.executable, "-c", "import sys,time\nprint('moq-relay ready: quic=x', "
                                         "file=sys.stderr, flush=True)\ntime.sleep(60)"], ready=ready))
            r.do(systems.WaitHttp("health", f"{self.url}/health", None))
            r.do(systems.WaitHttp("announce", f"{self.url}/metrics", None,
                                  pattern=r"^moq_relay_announcements_total [1-9]"))
            r.do(systems.WaitHttp("playlist", f"{self.url}/playlist", None, pattern="^#EXTINF", min_count=2))
            with self.assertRaises(ReadyTimeout):
                r.do(systems.WaitHttp("3 segments", f"{self.url}/playlist", None, pattern="^#EXTINF", min_count=3,
                                      timeout=0.5))
            r.do(systems.Fetch("fp", f"{self.url}/health", None, d / "fp.txt"))
            self.assertEqual((d / "fp.txt").read_text(), "ok\n")
            r.do(systems.Start("src", ["printf", "1\\n2\\n"], pipe_stdout=True))
            r.do(systems.Start("sink", ["cat"], stdin_from="src"))
            r.do(systems.ViewerStart(d / "viewer.json", "test"))
            self.assertAlmostEqual(json.loads((d / "viewer.json").read_text())["start_unix_ms"],
                                   time.time() * 1000, delta=5000)
            r.do(systems.Pause(0.01, "a moment"))
            wait_for(lambda: r.procs["sink"].popen.poll() is not None, 5, "sink")
            self.assertEqual((d / "logs" / "sink.out").read_text(), "1\n2\n")
            relay = r.procs["relay"]
            self.assertTrue(relay.alive())
            cells.stop_cell(cells.RunContext(d, d, systems.Bins(d), netns.Topology("x"), sup, d, d, d, d), r)
            self.assertFalse(relay.alive())
            self.assertEqual([s["step"] for s in r.steps][:2], ["Start", "WaitHttp"])


class TopologyTextTest(unittest.TestCase):
    def test_names_and_wrapper(self):
        t = netns.Topology(4242)
        self.assertEqual((t.server, t.client), ("moqev4242s", "moqev4242c"))
        self.assertEqual(netns.Topology().server, f"moqev{os.getpid()}s")
        self.assertEqual(netns.chromium_wrapper_text("moqev1c"),
                         '#!/bin/sh\nexec ip netns exec moqev1c /usr/bin/chromium "$@"\n')
        self.assertEqual(netns.chromium_wrapper_text("n", extra=["--x=1"]),
                         '#!/bin/sh\nexec ip netns exec n /usr/bin/chromium \'--x=1\' "$@"\n')
        self.assertEqual(netns.in_ns("n", ["a", "b"]), ["ip", "netns", "exec", "n", "a", "b"])
        self.assertEqual(netns.in_ns(None, ["a"]), ["a"])

    def test_stale(self):
        names = [f"moqev{os.getpid()}s", "moqev999999999c", "other", "moqevXs"]
        self.assertEqual(netns.stale_namespaces(names), ["moqev999999999c"])


if __name__ == "__main__":
    unittest.main()
