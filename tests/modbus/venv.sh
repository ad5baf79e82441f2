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

exec bash "$here/../venv.sh" "$requirements" "$venv" "modbus venv"
