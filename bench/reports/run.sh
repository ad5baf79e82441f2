#!/usr/bin/env bash
# Reports benchmark (issue 5): the four reports over a simulated fleet
# (1,000 trucks × 365 days by default), by fleetcare (release build) and by
# the same computation as DuckDB SQL and as pandas (reports.py), with wall
# time and peak RSS of each. Usage: bench/reports/run.sh [TRUCKS] [DAYS]
#
# The recording (~14 GB for 1,000 × 365) is deleted once replayed; the
# store is kept under $WORK and reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
trucks=${1:-1000}
days=${2:-365}
work=${WORK:-/var/tmp/fleetcare-bench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# FLEETCARE_BIN: measure that binary instead of building a release one.
if [ -n "${FLEETCARE_BIN:-}" ]; then
  bin=$FLEETCARE_BIN
else
  cargo build --release --quiet --bin fleetcare
  bin="$CARGO_TARGET_DIR/release/fleetcare"
fi
sim="$work/sim-$trucks-$days"
data="$work/data-$trucks-$days"
if [ ! -s "$sim/truth.json" ] || [ ! -d "$data/faults" ]; then
  rm -rf "$sim" "$data"
  mkdir -p "$sim"
  # The simulated period ends before today: services in the future are
  # refused by the import.
  start=$(date -u -d "-$((days + 1)) days" +%F)
  "$bin" simulate --trucks "$trucks" --days "$days" --seed 1 --start "$start" --out "$sim/rec.jsonl"
  /usr/bin/time -f "replay: peak RSS %M KB, %e s wall" "$bin" --data "$data" replay "$sim/rec.jsonl"
  rm -f "$sim/rec.jsonl"
  "$bin" --data "$data" vehicles import "$sim/vehicles.csv"
  "$bin" --data "$data" services import "$sim/services.csv"
fi
as_of=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["as_of"])' "$sim/truth.json")
venv="$work/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r bench/reports/requirements.txt
fi
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v "$@" > "$work/out-$label.txt" 2> "$work/time-$label.txt" || {
    cat "$work/time-$label.txt"; return 1; }
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$work/time-$label.txt" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$work/time-$label.txt" | awk '{print $NF}')
  printf "%-22s wall %8s  peak RSS %7d MB\n" "$label" "$wall" $((rss / 1024))
}
echo "store: $(du -sh "$data" | cut -f1), as of $as_of"
for r in due recurring trends parts; do
  measure "fleetcare-$r" "$bin" --data "$data" report "$r" --as-of "$as_of" --format json
done
measure duckdb "$venv/bin/python" bench/reports/reports.py --engine duckdb --data "$data" \
  --models models --as-of "$as_of" --out "$work/duckdb"
grep -h "duckdb" "$work/time-duckdb.txt" | grep -v Command | sed 's/^/  /'
measure pandas "$venv/bin/python" bench/reports/reports.py --engine pandas --data "$data" \
  --models models --as-of "$as_of" --out "$work/pandas"
grep -h "pandas" "$work/time-pandas.txt" | grep -v Command | sed 's/^/  /'
