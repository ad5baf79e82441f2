#!/usr/bin/env bash
# Replay benchmark (issue 3): simulate a fleet, replay the recording into a
# fresh store, and print messages/s, CAN frames/s, bytes on disk per
# truck-day and peak memory. Usage: bench/replay.sh [TRUCKS] [DAYS]
set -euo pipefail
cd "$(dirname "$0")/.."
trucks=${1:-1000}
days=${2:-30}
work=${WORK:-/var/tmp/fleetcare-bench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --bin fleetcare
bin="$CARGO_TARGET_DIR/release/fleetcare"
rec="$work/sim-$trucks-$days/rec.jsonl"
if [ ! -s "$rec" ]; then
  mkdir -p "$(dirname "$rec")"
  "$bin" simulate --trucks "$trucks" --days "$days" --seed 1 --out "$rec"
fi
rm -rf "$work/data"
echo "recording: $(du -h "$rec" | cut -f1), $(wc -l < "$rec") messages"
/usr/bin/time -f "peak RSS %M KB, %e s wall, %U s user, %S s system" \
  "$bin" --data "$work/data" replay "$rec"
bytes=$(du -sb "$work/data" | cut -f1)
echo "store: $bytes bytes on disk = $((bytes / (trucks * days))) bytes per truck-day"
du -sh "$work/data"/* | sed 's/^/  /'
