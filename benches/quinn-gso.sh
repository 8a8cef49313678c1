#!/usr/bin/env bash
# The GSO batch experiment of docs/performance.md, outside the repository: builds moq-relay and quic-fanout
# against quinn with larger send batches per connection (MAX_TRANSMIT_SEGMENTS 10 -> 44 segments per sendmsg,
# MAX_TRANSMIT_DATAGRAMS 20 -> 88 per driver poll; 44 x 1452 bytes stays under the 64 KB a GSO send may carry).
# Those are private constants of quinn (quinn-rs/quinn#2189 asks to relax them), so this patches a copy of the
# quinn release in Cargo.lock from cargo's registry and builds a copy of this checkout's tracked files with
# [patch.crates-io]. Nothing of it is what we ship.
#
#   benches/quinn-gso.sh [OUT]      # default /tmp/moq-gso; binaries in OUT/ws/target/release
#   GSO_BIN=OUT/ws/target/release benches/egress-ab.sh --arms "relay relay-gso fanout fanout-gso" ...
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-/tmp/moq-gso}"
VERSION="$(awk '/^name = "quinn"$/ { getline; gsub(/"/, "", $3); print $3 }' "$ROOT/Cargo.lock")"
(cd "$ROOT" && cargo fetch --quiet)
SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/quinn-"$VERSION" | head -1)"
[ -d "$SRC" ] || { echo "quinn $VERSION not in cargo's registry" >&2; exit 1; }

rm -rf "$OUT/quinn" "$OUT/ws"
mkdir -p "$OUT/ws"
cp -r "$SRC" "$OUT/quinn"
sed -i 's/^const MAX_TRANSMIT_DATAGRAMS: usize = 20;/const MAX_TRANSMIT_DATAGRAMS: usize = 88;/;
        s/^const MAX_TRANSMIT_SEGMENTS: usize = 10;/const MAX_TRANSMIT_SEGMENTS: usize = 44;/' \
  "$OUT/quinn/src/connection.rs"
for c in "MAX_TRANSMIT_DATAGRAMS: usize = 88" "MAX_TRANSMIT_SEGMENTS: usize = 44"; do
  grep -q "$c" "$OUT/quinn/src/connection.rs" || { echo "quinn $VERSION: could not set $c" >&2; exit 1; }
done

(cd "$ROOT" && git ls-files -z | tar --null -cf - -T -) | tar -xf - -C "$OUT/ws"
printf '\n[patch.crates-io]\nquinn = { path = "%s" }\n' "$OUT/quinn" >> "$OUT/ws/Cargo.toml"
(cd "$OUT/ws" && cargo build --release -p moq-relay -p moq-bench)
echo "GSO_BIN=$OUT/ws/target/release"
