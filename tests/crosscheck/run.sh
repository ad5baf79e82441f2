#!/usr/bin/env bash
# Cross-check `fleetcare decode` against pretty_j1939 (see README.md here).
#
#   tests/crosscheck/run.sh [crosscheck.py options, e.g. --seed 7 -n 5000]
#
# Environment: CROSSCHECK_VENV (default /var/tmp/fleetcare-crosscheck-venv)
# holds the Python packages of requirements.txt, installed only when they are
# not already there; PYTHON picks the interpreter that creates it (default
# python3); CARGO_TARGET_DIR is respected when finding the built binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${CROSSCHECK_VENV:-/var/tmp/fleetcare-crosscheck-venv}"
requirements="$here/requirements.txt"
start=$SECONDS

python="$(bash "$repo/tests/venv.sh" "$requirements" "$venv" crosscheck)"

cd "$repo"
cargo build --bin fleetcare
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" = /* ]] || target_dir="$repo/$target_dir"
bin="$target_dir/debug/fleetcare"
[[ -x "$bin" ]] || { echo "crosscheck: no binary at $bin after cargo build" >&2; exit 2; }

status=0
FLEETCARE_BIN="$bin" "$python" "$here/crosscheck.py" "$@" || status=$?
echo "crosscheck: run.sh took $((SECONDS - start))s"
exit "$status"
