"""The player stand-in, run in the client namespace: follows the relay (a /watch URL) or a playlist (?src=)."""
import socket
import ssl
import sys
import time
import urllib.parse
import urllib.request

import _fake

url, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
u = urllib.parse.urlsplit(url)
q = urllib.parse.parse_qs(u.query)
end = time.monotonic() + seconds
f = open(out, "w")
f.write("frame,display_unix_ms\n")


def show(line: bytes) -> None:
    if line.strip().isdigit():
        f.write(f"{int(line)},{_fake.now_ms():.3f}\n")
        f.flush()


if u.path == "/watch":
    relay = urllib.parse.urlsplit(q["url"][0])
    s = socket.create_connection((relay.hostname, relay.port))
    s.sendall(b"GET /sub HTTP/1.0\r\n\r\n")
    s.settimeout(0.5)
    r = s.makefile("rb")
    head = True
    while time.monotonic() < end:
        try:
            line = r.readline()
        except (TimeoutError, socket.timeout):
            continue
        if not line:
            break
        if head:
            head = line.strip() != b""
            continue
        show(line)
else:
    ctx = ssl._create_unverified_context()
    base = f"https://{u.netloc}"
    src = q["src"][0]
    seen: set[str] = set()
    first = True
    while time.monotonic() < end:
        try:
            text = urllib.request.urlopen(base + src, context=ctx, timeout=2).read().decode()
        except OSError:
            time.sleep(0.2)
            continue
        names = [x for x in text.splitlines() if x and not x.startswith("#")]
        if first:  # join at the newest segment
            seen.update(names[:-1])
            first = False
        for name in names:
            if name not in seen:
                seen.add(name)
                seg = urllib.request.urlopen(base + src.rsplit("/", 1)[0] + "/" + name, context=ctx, timeout=2)
                for line in seg.read().splitlines():
                    show(line)
        time.sleep(0.2)
