#!/usr/bin/env bash
# MQTT ingest benchmark (issues 4, 20): a simulated fleet published with
# QoS 1 through the embedded broker and through Mosquitto; for each broker,
# first what only counts and discards, then fleetcare's own live path
# (store, fsync, acknowledgement after storage). Prints messages/s end to
# end, CAN frames/s and peak RSS of the serving process, and the CPU time
# the serving process (by thread) and the publisher used: on 2 cores the
# three share the machine.
# On the embedded broker the publisher talks to fleetcare's edge, as
# gateways do with `fleetcare run`: the edge hands each message to the
# writer and acknowledges it once stored (discard: at once, unstored).
# With Mosquitto the discard-only side is a QoS 1 subscriber.
#
#   bench/mqtt.sh [TRUCKS] [DAYS]        (default 5000 trucks, 1 day)
#
# The publisher is mqtt_bench's lean pipelined client (it stands in for
# gateways on hardware of their own, so it should take as little of this
# machine as it can); PUBLISH_CLIENT=rumqttc publishes through the code of
# `fleetcare simulate --mqtt` instead.
#
# Needs the mosquitto binary for the Mosquitto half (skipped without it).
set -euo pipefail
cd "$(dirname "$0")/.."
trucks=${1:-5000}
days=${2:-1}
work=${WORK:-/var/tmp/fleetcare-bench}/mqtt-$trucks-$days
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# FLEETCARE_BIN_DIR: measure fleetcare and mqtt_bench from that directory
# instead of building release ones.
if [ -n "${FLEETCARE_BIN_DIR:-}" ]; then
  bin=$FLEETCARE_BIN_DIR/fleetcare
  bench=$FLEETCARE_BIN_DIR/mqtt_bench
  [ -x "$FLEETCARE_BIN_DIR/examples/mqtt_bench" ] && bench=$FLEETCARE_BIN_DIR/examples/mqtt_bench
else
  cargo build --release --quiet --bin fleetcare --example mqtt_bench
  bin="$CARGO_TARGET_DIR/release/fleetcare"
  bench="$CARGO_TARGET_DIR/release/examples/mqtt_bench"
fi
mkdir -p "$work"
rec="$work/rec.jsonl"
if [ ! -s "$rec" ]; then
  "$bin" simulate --trucks "$trucks" --days "$days" --seed 1 --out "$rec" >/dev/null
fi
# Messages that reach fleetcare: the recording's garbage includes topics
# with MQTT wildcards, which the publisher skips, and topics outside the
# subscription `fleet/+/+/+` (other prefix, other depth), which no broker
# forwards to it; the embedded broker's edge hands those to the writer
# (dead letters, as from any trusted client on loopback) and refuses only
# alerts topics.
read -r n n_edge < <(python3 -c '
import json, sys
n = n_edge = 0
for line in open(sys.argv[1]):
    try:
        t = json.loads(line)["topic"]
    except Exception:
        continue
    if not t or "+" in t or "#" in t or "\0" in t:
        continue
    levels = t.split("/")
    if len(levels) == 4 and levels[0] == "fleet":
        n += 1
    if not (len(levels) == 3 and levels[0] == "fleet" and levels[2] == "alerts"):
        n_edge += 1
print(n, n_edge)' "$rec")
echo "recording: $trucks trucks x $days days, $(wc -l < "$rec") lines, $n messages the subscription matches ($n_edge through the embedded broker's edge), $(du -h "$rec" | cut -f1)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# run_one MODE BROKER(embedded|mqtt://…) LABEL [SERVE FLAGS…]
run_one() {
  local mode=$1 broker=$2 label=$3 out="$work/serve.out" expect=$n
  shift 3
  [ "$broker" = embedded ] && expect=$n_edge
  rm -rf "$work/data"
  : > "$out"
  "$bench" serve --mode "$mode" --broker "$broker" --expect "$expect" --data "$work/data" \
    --prefix fleet "$@" >"$out" &
  local serve=$!
  pids+=("$serve")
  until grep -q '^ready' "$out"; do
    kill -0 "$serve" 2>/dev/null || { echo "serve died"; cat "$out"; exit 1; }
    sleep 0.1
  done
  local addr
  addr=$(sed -n 's/^ready mqtt=//p' "$out")
  "$bench" publish --broker "$addr" --recording "$rec" --client "${PUBLISH_CLIENT:-pipelined}" | sed "s/^/  $label publisher: /"
  # serve prints its figures, then serves on (for the publisher's last
  # PUBACKs) until told to stop.
  until grep -q '^\(discard\|store\):' "$out"; do
    kill -0 "$serve" 2>/dev/null || { echo "serve died"; cat "$out"; exit 1; }
    sleep 0.1
  done
  kill -TERM "$serve" 2>/dev/null || true
  wait "$serve" || true
  grep -v '^ready' "$out" | sed "s/^/  $label /"
}

echo "embedded broker (fleetcare's edge, rumqttd behind it, in the serving process):"
run_one discard embedded embedded
run_one store embedded embedded
# [mqtt] embedded_ack = "on_receipt": see docs/decisions.md.
run_one store embedded "embedded (ack on receipt)" --ack-on-receipt

mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [ -x "$mosquitto_bin" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/mosquitto"
  cat > "$work/mosquitto/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 0
log_dest none
CONF
  "$mosquitto_bin" -c "$work/mosquitto/mosquitto.conf" &
  pids+=("$!")
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
  echo "Mosquitto $("$mosquitto_bin" -h | head -1 | awk '{print $3}') on port $port:"
  run_one discard "mqtt://127.0.0.1:$port" mosquitto
  run_one store "mqtt://127.0.0.1:$port" mosquitto
else
  echo "Mosquitto half skipped: no mosquitto binary"
fi
