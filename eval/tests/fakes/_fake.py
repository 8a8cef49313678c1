"""What the stand-ins share."""

import json
import os
import signal
import sys
import time

FPS = 30
FINGERPRINT = "ab" * 32


def now_ms() -> float:
    return time.time() * 1000


def args(argv: list[str]) -> dict[str, str | bool]:
    """--key value / --flag pairs (unknown flags are fine: these are stand-ins)."""
    out: dict[str, str | bool] = {}
    pos: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                out[a[2:]] = argv[i + 1]
                i += 2
                continue
            out[a[2:]] = True
        else:
            pos.append(a)
        i += 1
    out["_pos"] = pos  # type: ignore[assignment]
    return out


def write_json(path: str, data: object) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def exit_on_sigterm(cleanup=None) -> None:
    def handler(signum, frame):
        print(f"{os.path.basename(sys.argv[0])}: SIGTERM", file=sys.stderr, flush=True)
        if cleanup:
            cleanup()
        sys.exit(0)

    signal.signal(signal.SIGTERM, handler)
