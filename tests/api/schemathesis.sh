#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API against its OpenAPI document
# (issue 6): schemathesis generates requests for every operation and fails
# on any 5xx answer.
#
#   tests/api/schemathesis.sh [extra schemathesis run options]
#
# It builds and starts examples/api_fixture.rs (the API tests' fixture: two
# fleets, tickets, alerts, stored messages) on a free port, then runs
# schemathesis twice: as admin (every endpoint allowed) and as an operator
# of one fleet (403s and 404s instead of data). Checks: not_a_server_error
# (the acceptance criterion) plus the document's own promises: statuses,
# content types and response bodies as documented. One worker: with more,
# hypothesis parses lambdas' source from several threads at once and
# CPython 3.11 can fail that with "AST constructor recursion depth
# mismatch", an error in the tool, not in the API.
#
# Environment: API_FUZZ_VENV (default /var/tmp/fleetcare-py-venv-api) holds
# requirements.txt, installed only when not already there; PYTHON picks the
# interpreter that creates it (default python3); API_FUZZ_MAX_EXAMPLES
# (default 50) bounds the examples per operation; CARGO_TARGET_DIR is
# respected when finding the built example.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${API_FUZZ_VENV:-/var/tmp/fleetcare-py-venv-api}"
requirements="$here/requirements.txt"
max_examples="${API_FUZZ_MAX_EXAMPLES:-50}"
start=$SECONDS

python="$(bash "$repo/tests/venv.sh" "$requirements" "$venv" schemathesis)"

cd "$repo"
cargo build --quiet --example api_fixture
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" = /* ]] || target_dir="$repo/$target_dir"
bin="$target_dir/debug/examples/api_fixture"
[[ -x "$bin" ]] || { echo "schemathesis: no example binary at $bin after cargo build" >&2; exit 2; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work"
}
trap cleanup EXIT

# The fixture prints one JSON line once it accepts connections.
mkfifo "$work/ready"
"$bin" >"$work/ready" 2>"$work/server.log" &
server_pid=$!
if ! read -r -t 120 ready <"$work/ready"; then
    echo "schemathesis: the fixture server printed no ready line within 120 s" >&2
    cat "$work/server.log" >&2
    exit 2
fi
field() { "$python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$ready" "$1"; }
base="http://$(field address)"

status=0
for who in admin operator; do
    echo "schemathesis: fuzzing $base as $who"
    "$(dirname "$python")/schemathesis" run "$base/api/v1/openapi.json" \
        --url "$base" \
        --header "Authorization: Bearer $(field "$who")" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$max_examples" \
        --seed 6 \
        --workers 1 \
        --suppress-health-check all \
        "$@" || status=$?
done
if [[ "$status" != 0 ]]; then
    echo "schemathesis: the server log:" >&2
    tail -n 50 "$work/server.log" >&2
fi
echo "schemathesis: schemathesis.sh took $((SECONDS - start))s"
exit "$status"
