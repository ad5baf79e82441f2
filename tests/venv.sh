#!/usr/bin/env bash
# Creates or updates a Python venv for a test peer and prints its
# interpreter (everything else goes to stderr):
#
#   python="$(bash tests/venv.sh REQUIREMENTS VENV LABEL)"
#
# REQUIREMENTS (`name==version` pins) is installed only when some pin is not
# already there, so a warm run costs a second and needs no network. A venv
# whose interpreter no longer runs (e.g. its base Python was removed) is
# rebuilt; anything else at VENV is left alone. LABEL prefixes messages.
# PYTHON picks the interpreter that creates the venv (default python3).
set -euo pipefail

requirements="$1"
venv="$2"
label="${3:-venv}"

if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    if [[ -f "$venv/pyvenv.cfg" ]]; then
        echo "$label: rebuilding the broken venv $venv" >&2
        rm -rf -- "$venv"
    else
        echo "$label: $venv exists and is not a Python venv" >&2
        exit 2
    fi
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv" >&2
fi

# Every `name==version` of the requirements installed at exactly that version?
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
    echo "$label: installing $requirements into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check -r "$requirements" >&2
    "$venv/bin/python" -m pip check >/dev/null
    satisfied || { echo "$label: $requirements still not satisfied in $venv" >&2; exit 2; }
fi
echo "$venv/bin/python"
