#!/usr/bin/env bash
# Critical-DM1-to-ticket latency (issue 6): `fleetcare run` on the embedded
# broker; red-stop DM1s for new trucks are timed until their alert arrives
# (sent once the ticket is committed), first on an idle service, then while
# the MQTT benchmark's fleet (bench/mqtt.sh's recording) is published.
#
#   bench/alerts.sh [TRUCKS] [DAYS]      (default 5000 trucks, 1 day)
set -euo pipefail
cd "$(dirname "$0")/.."
trucks=${1:-5000}
days=${2:-1}
work=${WORK:-/var/tmp/fleetcare-bench}/mqtt-$trucks-$days
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# FLEETCARE_BIN_DIR: measure fleetcare, mqtt_bench and alert_latency from
# that directory instead of building release ones.
if [ -n "${FLEETCARE_BIN_DIR:-}" ]; then
  dir=$FLEETCARE_BIN_DIR
else
  cargo build --release --quiet --bin fleetcare --example mqtt_bench --example alert_latency
  dir="$CARGO_TARGET_DIR/release"
fi
bin="$dir/fleetcare"
ex="$dir"
[ -x "$dir/examples/alert_latency" ] && ex="$dir/examples"
mkdir -p "$work"
rec="$work/rec.jsonl"
if [ ! -s "$rec" ]; then
  "$bin" simulate --trucks "$trucks" --days "$days" --seed 1 --out "$rec" >/dev/null
fi
rm -rf "$work/alerts-data"
mkdir -p "$work/alerts-data"
cat > "$work/alerts.toml" <<CONF
[mqtt]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
CONF
# Tickets are opened only for registered trucks: register the ones
# alert_latency names (--run idle, --run load).
{
  echo "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot"
  for run in idle load; do
    for i in $(seq 0 199); do printf 'LAT-%s-%05d,latency,compactor-c12,,2024-01-01,bench\n' "$run" "$i"; done
  done
} > "$work/latency-vehicles.csv"
"$bin" --data "$work/alerts-data" --config "$work/alerts.toml" vehicles import "$work/latency-vehicles.csv" >/dev/null
"$bin" --data "$work/alerts-data" --config "$work/alerts.toml" run > "$work/run.out" &
run=$!
trap 'kill $run 2>/dev/null || true' EXIT
until grep -q '^fleetcare ready' "$work/run.out"; do sleep 0.1; done
mqtt=$(sed -n 's/.*mqtt=\([^ ]*\).*/\1/p' "$work/run.out")
echo "idle:"
"$ex/alert_latency" --broker "$mqtt" --count 100 --run idle | sed 's/^/  /'
echo "under load ($(wc -l < "$rec") messages published as fast as the broker takes them):"
"$ex/mqtt_bench" publish --broker "$mqtt" --recording "$rec" | sed 's/^/  load: /' &
load=$!
"$ex/alert_latency" --broker "$mqtt" --count 200 --run load | sed 's/^/  /'
wait "$load"
kill -TERM "$run"; wait "$run" || true
