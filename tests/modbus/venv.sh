#!/usr/bin/env bash
# Creates or updates the Python venv that runs the Modbus test device
# (tests/modbus/server.py, for tests/modbus.rs) and prints its interpreter:
#
#   export FLEETCARE_TEST_PYTHON="$(bash tests/modbus/venv.sh)"
#
# Argument or FLEETCARE_PY_VENV: the venv (default /var/tmp/fleetcare-py-venv).
# requirements.txt beside this file is installed only when some pin is not
# already there, so a warm run costs a second and needs no network. PYTHON
# picks the interpreter that creates the venv (default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-${FLEETCARE_PY_VENV:-/var/tmp/fleetcare-py-venv}}"
requirements="$here/requirements.txt"

# A venv whose interpreter no longer runs (e.g. its base Python was removed)
# is rebuilt; anything else at that path is left alone.
if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    if [[ -f "$venv/pyvenv.cfg" ]]; then
        echo "modbus venv: rebuilding the broken venv $venv" >&2
        rm -rf -- "$venv"
    else
        echo "modbus venv: $venv exists and is not a Python venv" >&2
        exit 2
    fi
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv" >&2
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
    echo "modbus venv: installing $requirements into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check -r "$requirements" >&2
    "$venv/bin/python" -m pip check >/dev/null
    satisfied || { echo "modbus venv: $requirements still not satisfied in $venv" >&2; exit 2; }
fi
echo "$venv/bin/python"
