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

# A venv whose interpreter no longer runs (e.g. its base Python was removed)
# is rebuilt; anything else at that path is left alone.
if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    if [[ -f "$venv/pyvenv.cfg" ]]; then
        echo "crosscheck: rebuilding the broken venv $venv" >&2
        rm -rf -- "$venv"
    else
        echo "crosscheck: $venv exists and is not a Python venv; set CROSSCHECK_VENV" >&2
        exit 2
    fi
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi

# Every `name==version` of requirements.txt installed at exactly that version?
satisfied() {
    "$venv/bin/python" - "$requirements" <<'PY'
import importlib.metadata as md, sys
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, version = line.partition("==")
    try:
        if md.version(name) != version:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
PY
}
if ! satisfied; then
    echo "crosscheck: installing $requirements into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check -r "$requirements"
    "$venv/bin/python" -m pip check >/dev/null
    satisfied || { echo "crosscheck: $requirements still not satisfied in $venv" >&2; exit 2; }
fi

cd "$repo"
cargo build --bin fleetcare
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" = /* ]] || target_dir="$repo/$target_dir"
bin="$target_dir/debug/fleetcare"
[[ -x "$bin" ]] || { echo "crosscheck: no binary at $bin after cargo build" >&2; exit 2; }

status=0
FLEETCARE_BIN="$bin" "$venv/bin/python" "$here/crosscheck.py" "$@" || status=$?
echo "crosscheck: run.sh took $((SECONDS - start))s"
exit "$status"
