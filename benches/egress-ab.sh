#!/usr/bin/env bash
# Relay egress, side by side: for each round, each N and each arm, a fresh server pinned to core 0 and the load
# pinned to core 1 (30 fps, --frame-size bytes per frame, one group per second). One JSON line per run on stdout:
#   {"arm":..., "round":..., "n":..., "load":<moq-load / quic-fanout load report>, "server":<server counters>}
# The arms alternate within each round, so slow drifts of the machine hit every arm alike.
#
#   benches/egress-ab.sh [--arms "relay fanout relay-ack fanout-ack"] [--n "1 10 50 100 150 200"]
#                        [--rounds 3] [--frame-size 40000] [--warmup 2] [--duration 10] > runs.jsonl
#   python3 benches/egress-summary.py runs.jsonl
#
# Arms: relay / fanout (moq-relay and quic-fanout with our defaults), relay-ack / fanout-ack (both ends ask for
# QUIC ACK frequency: --ack-threshold 16 --max-ack-delay 2ms), relay-before / fanout-before (the binaries in
# $BEFORE_BIN, with --ack-threshold 0: an older build to compare against), relay-gso / fanout-gso (the binaries in
# $GSO_BIN: built by benches/quinn-gso.sh against quinn with larger GSO batches), moq-dev (moq-dev's relay at $MOQ_DEV/target/release/moq-relay, docs/performance.md says how
# to build it). RELAY_FLAGS and FANOUT_FLAGS add flags to every relay / forwarder (and LOAD_FLAGS to every load) to try a
# variant. Binaries come from target/release (cargo build --release -p moq-relay -p moq-bench).
set -euo pipefail

ARMS="relay fanout relay-ack fanout-ack"
NS="1 10 50 100 150 200"
ROUNDS=3
FRAME=40000
WARMUP=2
DURATION=10
while [ $# -gt 0 ]; do
  case "$1" in
    --arms) ARMS="$2"; shift 2 ;;
    --n) NS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --frame-size) FRAME="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

BIN="${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release}"
for b in moq-relay moq-load quic-fanout; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: cargo build --release -p moq-relay -p moq-bench" >&2; exit 1; }
done
WORK="$(mktemp -d)"
SRV=""
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# A free UDP/TCP port on loopback (the kernel picks one; nothing else on this machine binds it in the meantime).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # file pattern
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "server did not start: $(cat "$1")" >&2; return 1
}

stop_server() {
  kill "$SRV" 2>/dev/null || true
  wait "$SRV" 2>/dev/null || true
  SRV=""
}

# Counters the relay exposes on /metrics, as JSON.
relay_counters() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '
    /^moq_relay_quic_[a-z_]+_total / { sub("moq_relay_quic_", "", $1); sub("_total", "", $1); v[$1] = $2 }
    END { printf "{\"datagrams_sent\":%d,\"send_calls\":%d,\"datagrams_per_send_call\":%.2f,\"acks_received\":%d}",
          v["datagrams_sent"], v["send_calls"], v["datagrams_sent"] / (v["send_calls"] ? v["send_calls"] : 1),
          v["acks_received"] }'
}

run_arm() { # arm n round
  local arm="$1" n="$2" round="$3" port http out load server="null" ack=() bin="$BIN"
  port="$(free_port)"
  out="$WORK/server.out"
  : > "$out"
  case "$arm" in *-ack) ack=(--ack-threshold 16 --max-ack-delay 2ms) ;; esac
  case "$arm" in *-before) ack=(--ack-threshold 0); bin="${BEFORE_BIN:?set BEFORE_BIN for a -before arm}" ;; esac
  case "$arm" in *-gso) bin="${GSO_BIN:?set GSO_BIN for a -gso arm (benches/quinn-gso.sh builds it)}" ;; esac
  local shape=(--subscribers "$n" --frame-size "$FRAME" --warmup "$WARMUP" --duration "$DURATION")
  case "$arm" in
    relay | relay-ack | relay-before | relay-gso)
      http="$(free_port)"
      # shellcheck disable=SC2086
      taskset -c 0 "$bin/moq-relay" --bind "127.0.0.1:$port" --http-bind "127.0.0.1:$http" --chat-prefix "" \
        "${ack[@]}" ${RELAY_FLAGS:-} > "$out" 2>&1 & SRV=$!
      wait_for "$out" "relay listening"
      # shellcheck disable=SC2086
      load="$(taskset -c 1 "$BIN/moq-load" --relay "moqt://localhost:$port/" --insecure "${shape[@]}" \
        --relay-pid "$SRV" "${ack[@]}" ${LOAD_FLAGS:-} 2>/dev/null)"
      server="$(relay_counters "$http")"
      ;;
    fanout | fanout-ack | fanout-before | fanout-gso)
      # shellcheck disable=SC2086
      taskset -c 0 "$bin/quic-fanout" forward --listen "127.0.0.1:$port" "${ack[@]}" ${FANOUT_FLAGS:-} \
        > "$out" 2>&1 & SRV=$!
      wait_for "$out" "listening"
      # shellcheck disable=SC2086
      load="$(taskset -c 1 "$BIN/quic-fanout" load --forwarder "127.0.0.1:$port" \
        --fingerprint "$(awk '/fingerprint/{print $2}' "$out")" "${shape[@]}" --relay-pid "$SRV" "${ack[@]}" \
        ${LOAD_FLAGS:-} 2>/dev/null)"
      for _ in $(seq 1 40); do grep -q forwarder_to_subscribers "$out" && break; sleep 0.05; done
      server="$(grep -o '"forwarder_to_subscribers":{[^}]*}' "$out" | sed 's/^"forwarder_to_subscribers"://' || true)"
      [ -n "$server" ] || server="null"
      ;;
    moq-dev)
      [ -x "${MOQ_DEV:-}/target/release/moq-relay" ] || { echo "moq-dev arm: set MOQ_DEV" >&2; return 1; }
      http="$(free_port)"
      taskset -c 0 "$MOQ_DEV/target/release/moq-relay" --server-bind "127.0.0.1:$port" --tls-generate localhost \
        --auth-public "" --web-http-listen "127.0.0.1:$http" > "$out" 2>&1 & SRV=$!
      sleep 1 # it prints nothing reliable when ready; the load retries nothing, so give it a second
      # shellcheck disable=SC2086
      load="$(taskset -c 1 "$BIN/moq-load" --relay "moqt://localhost:$port/" --insecure "${shape[@]}" \
        --relay-pid "$SRV" ${LOAD_FLAGS:-} 2>/dev/null)"
      ;;
    *) echo "unknown arm $arm" >&2; return 1 ;;
  esac
  stop_server
  echo "{\"arm\":\"$arm\",\"round\":$round,\"n\":$n,\"load\":${load:-null},\"server\":$server}"
}

for round in $(seq 1 "$ROUNDS"); do
  for n in $NS; do
    for arm in $ARMS; do
      echo "round $round, N=$n, $arm" >&2
      run_arm "$arm" "$n" "$round"
    done
  done
done
