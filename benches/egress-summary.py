#!/usr/bin/env python3
"""Summarises benches/egress-ab.sh output: per N and arm, the median over rounds of server CPU per Gb, latency,
delivery, datagrams per ACK and per send call; then each arm's CPU per Gb as a ratio to the first arm given
(or to --base). Markdown on stdout.

    python3 benches/egress-summary.py runs.jsonl [--base relay-noack]
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=3):
    if v is None:
        return "–"
    return f"{v:.{digits}f}"


def load_runs(path):
    runs = defaultdict(list)  # (n, arm) -> [run]
    arms = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("load") is None:
                continue
            runs[(r["n"], r["arm"])].append(r)
            if r["arm"] not in arms:
                arms.append(r["arm"])
    return runs, arms


def row(runs):
    load = [r["load"] for r in runs]
    server = [r.get("server") or {} for r in runs]
    expected = sum(x["objects_expected"] for x in load)
    received = sum(x["objects_received"] for x in load)
    rss = median(x.get("relay_peak_rss_bytes") for x in load)
    return {
        "cpu_per_gbit": median(x.get("relay_cpu_s_per_gbit") for x in load),
        "p50": median(x["latency_ms"]["p50"] for x in load),
        "p99": median(x["latency_ms"]["p99"] for x in load),
        "max": median(x["latency_ms"]["max"] for x in load),
        "delivered": received / expected if expected else None,
        "egress_mbps": median(x["egress_mbps"] for x in load),
        "per_ack": median(x.get("datagrams_per_ack") for x in load),
        "per_call": median(s.get("datagrams_per_send_call") for s in server),
        "rss": rss,
        "system_share": median(
            x["relay_system_cpu_s"] / (x["relay_user_cpu_s"] + x["relay_system_cpu_s"])
            if x.get("relay_system_cpu_s") is not None and x["relay_user_cpu_s"] + x["relay_system_cpu_s"] > 0
            else None
            for x in load
        ),
        "rounds": len(runs),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs")
    p.add_argument("--base", help="the arm ratios are taken against (default: the first arm in the file)")
    a = p.parse_args(argv)
    runs, arms = load_runs(a.runs)
    if not runs:
        print("no runs", file=sys.stderr)
        return 1
    base = a.base or arms[0]
    ns = sorted({n for n, _ in runs})
    print("| N | Arm | Server CPU per Gb | vs " + base + " | Latency p50 / p99 / max (ms) | Delivered "
          "| Kernel share of CPU | Datagrams per ACK | Datagrams per send call | Peak RSS | Rounds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        b = runs.get((n, base))
        base_cpu = row(b)["cpu_per_gbit"] if b else None
        for arm in arms:
            if (n, arm) not in runs:
                continue
            r = row(runs[(n, arm)])
            ratio = r["cpu_per_gbit"] / base_cpu if r["cpu_per_gbit"] and base_cpu else None
            rss = f"{r['rss'] / 1e6:.0f} MB" if r["rss"] else "–"
            delivered = f"{100 * r['delivered']:.2f} %" if r["delivered"] is not None else "–"
            print(f"| {n} | {arm} | {fmt(r['cpu_per_gbit'])} s | {fmt(ratio, 2)} | {fmt(r['p50'], 2)} / "
                  f"{fmt(r['p99'], 2)} / {fmt(r['max'], 2)} | {delivered} | "
                  f"{fmt(100 * r['system_share'], 0) + ' %' if r['system_share'] is not None else '–'} | "
                  f"{fmt(r['per_ack'], 1)} | "
                  f"{fmt(r['per_call'], 1)} | {rss} | {r['rounds']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
