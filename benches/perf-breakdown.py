#!/usr/bin/env python3
"""Groups a flat `perf report` (self time per symbol) into cost categories, for the egress profile in
docs/performance.md:

    perf record -e cpu-clock -F 999 -p $(pidof moq-relay) -o relay.perf -- sleep 6
    perf report -i relay.perf --no-children --sort dso,symbol --stdio | python3 benches/perf-breakdown.py

Prints JSON: {"category": percent of samples, ...} and the top symbols of each category.
"""

import json
import re
import sys
from collections import defaultdict

# First match wins; patterns are matched against "dso symbol".
CATEGORIES = [
    ("encryption (AES-GCM, header protection)", r"ring|aes|gcm|ghash|chacha|PacketKey|HeaderProtection|seal|encrypt"),
    ("ACK and loss processing", r"on_ack_received|received_ack_of|on_packet_acked|detect_lost|ack_frequency"
     r"|RangeSet|ArrayRangeSet|remove_in_flight|loss_detection|pto_time|PendingAcks|on_ack"),
    ("congestion control and pacing", r"congestion|Bbr|Cubic|pacing|Pacer|MinMax|window"),
    ("packet and frame assembly", r"poll_transmit|write_stream_frames|PacketBuilder|packet_builder|Retransmits"
     r"|StreamsState|streams::|SendBuffer|send_buffer|populate_packet|finish_packet|PathData::sent|SentPacket"
     r"|space_can_send|can_send|frame::"),
    ("receive and decode", r"handle_decode|handle_packet|process_payload|process_decrypted|Endpoint::handle|decode"
     r"|PartialDecode|read_frames|Iter::"),
    ("timers and clocks", r"Timer|timer|Timespec|Instant|clock_gettime|vdso|\btime::"),
    ("allocation", r"malloc|free|realloc|_int_|unlink_chunk|alloc::|cfree|tcache|btree"),
    ("memory copies", r"memmove|memcpy|memset"),
    ("async runtime and wake-ups", r"tokio|mio|futures|waker|Waker|Notify|notify|epoll|park|wake"),
    ("MoQT (ours)", r"moq_"),
    ("quinn driver and other quinn", r"quinn"),
    ("kernel: UDP send/receive and syscalls", r"\[kernel"),
]


def main():
    totals = defaultdict(float)
    top = defaultdict(list)
    line_re = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*?)\s*(?:-\s+-\s*)?$")
    for line in sys.stdin:
        m = line_re.match(line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
        key = f"{dso} {sym}"
        cat = next((c for c, pat in CATEGORIES if re.search(pat, key)), "other")
        if "[kernel" in dso and cat not in ("kernel: UDP send/receive and syscalls",):
            cat = "kernel: UDP send/receive and syscalls"
        totals[cat] += pct
        if len(top[cat]) < 4:
            top[cat].append(f"{sym[:70]} {pct:.1f}%")
    out = {c: round(v, 1) for c, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    print(json.dumps({"percent": out, "top": {c: top[c] for c in out}}, indent=1))


if __name__ == "__main__":
    main()
