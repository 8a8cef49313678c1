import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation import systems  # noqa: E402
from evaluation.systems import Bins, Env, Fetch, Pause, Start, ViewerStart, WaitHttp  # noqa: E402

B = Path("/r/target/release")
CELL = Path("/run/cells/lan/x/seed1")


def env(**kw) -> Env:
    d = dict(bins=Bins(B), web=Path("/r/web"), cell=CELL, clip=Path("/run/clip.mp4"), server_ns="nsS",
             client_ns="nsC", cert=Path("/run/tls/cert.pem"), key=Path("/run/tls/key.pem"),
             chromium=Path("/run/chromium.sh"), seconds=45, pacer_seconds=67)
    return Env(**(d | kw))


def starts(steps):
    return {s.name: s for s in steps if isinstance(s, Start)}


def S(*argv):
    return ["ip", "netns", "exec", "nsS", *argv]


def C(*argv):
    return ["ip", "netns", "exec", "nsC", *argv]


PACER = S(f"{B}/eval-pacer", "--clip", "/run/clip.mp4", "--source-out", f"{CELL}/source.json", "--seconds", "67")
RELAY = S(f"{B}/moq-relay", "--bind", "10.99.0.1:4443", "--http-bind", "10.99.0.1:4443", "--tls-generate",
          "10.99.0.1", "--overload-lag", "0s")


class MoqTest(unittest.TestCase):
    def test_moq_cli(self):
        sys_ = systems.get("moq-cli")
        steps = systems.server_steps(sys_, env())
        st = starts(steps)
        self.assertEqual(list(st), ["relay", "pacer", "pub"])
        self.assertEqual(st["relay"].argv, RELAY)
        self.assertEqual(st["relay"].ready.stream, "stderr")
        self.assertRegex("moq-relay ready: quic=10.99.0.1:4443 http=10.99.0.1:4443 fingerprint=ab",
                         st["relay"].ready.pattern)
        self.assertEqual(st["pacer"].argv, PACER)
        self.assertTrue(st["pacer"].pipe_stdout)
        self.assertEqual(st["pub"].argv, S(f"{B}/moq-pub", "http://10.99.0.1:4443/", "--namespace", "eval/clip",
                                           "--packaging", "cmaf"))
        self.assertEqual(st["pub"].stdin_from, "pacer")
        waits = [s for s in steps if isinstance(s, WaitHttp)]
        self.assertEqual([w.url for w in waits], ["http://10.99.0.1:4443/health", "http://10.99.0.1:4443/metrics"])
        self.assertTrue(all(w.ns == "nsS" for w in waits))
        fetch = [s for s in steps if isinstance(s, Fetch)][0]
        self.assertEqual((fetch.url, fetch.dest), ("http://10.99.0.1:4443/certificate.sha256",
                                                   CELL / "fingerprint.txt"))
        self.assertIsInstance(steps[-1], Pause)
        self.assertEqual(steps[-1].seconds, 2.0)
        # Order: the relay is up and announced before the keyframe wait; the pacer feeds pub.
        kinds = [type(s).__name__ + ":" + getattr(s, "name", getattr(s, "what", "")) for s in steps]
        self.assertLess(kinds.index("Start:relay"), kinds.index("Start:pacer"))
        self.assertLess(kinds.index("Start:pacer"), kinds.index("Start:pub"))

        v = systems.viewer_steps(sys_, env())
        self.assertIsInstance(v[0], ViewerStart)
        self.assertEqual(v[0].path, CELL / "viewer.json")
        vs = starts(v)
        self.assertEqual(vs["sub"].argv, C(f"{B}/moq-sub", "http://10.99.0.1:4443/", "--namespace", "eval/clip",
                                           "--duration", "45", "--keep-timestamps"))
        self.assertTrue(vs["sub"].pipe_stdout)
        self.assertEqual(vs["frames"].argv, C(f"{B}/eval-frames", "--out", f"{CELL}/frames.csv"))
        self.assertEqual(vs["frames"].stdin_from, "sub")

    def test_moq_browser(self):
        sys_ = systems.get("moq-browser")
        steps = systems.server_steps(sys_, env())
        st = starts(steps)
        self.assertEqual(list(st), ["relay", "origin", "pacer", "pub"])
        self.assertEqual(st["pub"].argv, S(f"{B}/moq-pub", "http://10.99.0.1:4443/", "--namespace", "eval/clip"))
        self.assertEqual(st["origin"].argv, S(f"{B}/eval-origin", "--bind", "10.99.0.1:8443", "--cert",
                                              "/run/tls/cert.pem", "--key", "/run/tls/key.pem", "--site",
                                              "/r/web/dist", "--fingerprint", f"{CELL}/fingerprint.txt"))
        self.assertEqual(st["origin"].ready.stream, "stdout")
        self.assertRegex("ready https://10.99.0.1:8443", st["origin"].ready.pattern)
        # The fingerprint file exists before the origin that serves it starts.
        names = [getattr(s, "name", None) or type(s).__name__ for s in steps]
        self.assertLess(names.index("Fetch"), names.index("origin"))
        v = systems.viewer_steps(sys_, env())
        self.assertEqual(len(v), 1)
        self.assertEqual(v[0].cwd, "/r/web")
        self.assertIsNone(v[0].ns)
        self.assertEqual(v[0].argv, [
            "node", "--import", "tsx", "scripts/eval-watch.ts", "--url",
            "https://10.99.0.1:8443/watch?name=eval/clip&url=https://10.99.0.1:4443"
            "&fingerprint-url=/relay/certificate.sha256&frames=1&chat=0",
            "--seconds", "45", "--out", str(CELL), "--chromium", "/run/chromium.sh"])


class HlsTest(unittest.TestCase):
    def test_hls(self):
        for name, t in (("hls-2s", 2), ("hls-6s", 6)):
            sys_ = systems.get(name)
            steps = systems.server_steps(sys_, env())
            st = starts(steps)
            self.assertEqual(list(st), ["origin", "pacer", "ffmpeg"])
            self.assertEqual(st["origin"].argv, S(f"{B}/eval-origin", "--bind", "10.99.0.1:8443", "--cert",
                                                  "/run/tls/cert.pem", "--key", "/run/tls/key.pem", "--site",
                                                  "/r/web/dist", "--hls-dir", f"{CELL}/hls"))
            self.assertEqual(st["ffmpeg"].argv, S(
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "mp4", "-i", "-", "-c", "copy", "-f", "hls",
                "-hls_time", str(t), "-hls_list_size", "10", "-hls_segment_type", "fmp4", "-hls_flags",
                "delete_segments+independent_segments+program_date_time", "-hls_segment_filename",
                f"{CELL}/hls/seg%05d.m4s", f"{CELL}/hls/live.m3u8"))
            self.assertEqual(st["ffmpeg"].stdin_from, "pacer")
            wait = steps[-1]
            self.assertIsInstance(wait, WaitHttp)
            self.assertEqual((wait.url, wait.min_count), ("https://10.99.0.1:8443/hls/live.m3u8", 3))
            self.assertGreater(wait.timeout, 3 * t)
            v = systems.viewer_steps(sys_, env())
            self.assertEqual(v[0].argv[5], "https://10.99.0.1:8443/eval-hls.html?src=/hls/live.m3u8&mode=hls")

    def test_ll_hls(self):
        for name, mode in (("ll-hls", "ll"), ("ll-hls-tuned", "ll-tuned")):
            sys_ = systems.get(name)
            steps = systems.server_steps(sys_, env())
            st = starts(steps)
            self.assertEqual(list(st), ["pacer", "origin"])
            self.assertEqual(st["origin"].argv, S(f"{B}/eval-origin", "--bind", "10.99.0.1:8443", "--cert",
                                                  "/run/tls/cert.pem", "--key", "/run/tls/key.pem", "--site",
                                                  "/r/web/dist", "--ll", "--part-ms", "333", "--segment-ms", "2000"))
            self.assertEqual(st["origin"].stdin_from, "pacer")
            self.assertEqual(steps[-1].url, "https://10.99.0.1:8443/ll/live.m3u8")
            v = systems.viewer_steps(sys_, env())
            self.assertEqual(v[0].argv[5], f"https://10.99.0.1:8443/eval-hls.html?src=/ll/live.m3u8&mode={mode}")


class OtherArgvTest(unittest.TestCase):
    def test_netem_clip_load(self):
        b = Bins(B)
        self.assertEqual(
            systems.netem_argv(b, "nsS", "nsC", "delay=25ms", "", 3, Path("/c/netem.json")),
            [f"{B}/eval-netem", "--ns-a", "nsS", "--ns-b", "nsC", "--addr-a", "10.99.0.1", "--addr-b", "10.99.0.2",
             "--down", "delay=25ms", "--up", "", "--seed", "3", "--stats", "/c/netem.json"])
        self.assertEqual(systems.clip_argv(b, 98, Path("/c/clip.mp4")),
                         [f"{B}/eval-clip", "--seconds", "98", "--out", "/c/clip.mp4"])
        self.assertEqual(systems.relay_argv(b, "127.0.0.1:5000"),
                         [f"{B}/moq-relay", "--bind", "127.0.0.1:5000", "--http-bind", "127.0.0.1:5000",
                          "--overload-lag", "0s"])
        self.assertEqual(systems.moq_load_argv(b, 5000, 50, 20, 1234),
                         [f"{B}/moq-load", "--relay", "http://127.0.0.1:5000/", "--subscribers", "50", "--fps", "30",
                          "--frame-size", "10800", "--group-size", "30", "--duration", "20", "--relay-pid", "1234"])
        self.assertEqual(systems.hls_load_argv(b, "https://127.0.0.1:5000/ll/live.m3u8", 10, 20),
                         [f"{B}/hls-load", "--url", "https://127.0.0.1:5000/ll/live.m3u8", "--viewers", "10",
                          "--seconds", "20"])

    def test_every_system_has_steps(self):
        for s in systems.SYSTEMS.values():
            steps = systems.server_steps(s, env())
            self.assertTrue(any(isinstance(x, Start) and x.name == "pacer" for x in steps), s.name)
            names = [x.name for x in steps if isinstance(x, Start)]
            for x in steps:
                if isinstance(x, Start) and x.stdin_from:
                    self.assertLess(names.index(x.stdin_from), names.index(x.name))
                    self.assertTrue(starts(steps)[x.stdin_from].pipe_stdout)
            self.assertTrue(systems.viewer_steps(s, env()))
            self.assertGreaterEqual(systems.pacer_seconds(s, 45), 45 + 10)

    def test_frame_size_matches_stream(self):
        # moq-load's frames (10800 B at 30 fps) carry the clip's rate.
        self.assertAlmostEqual(10800 * 8 * 30 / 1e6, 2.592)


if __name__ == "__main__":
    unittest.main()
