#!/usr/bin/env bash
# Run an ansible-test command on this collection: tests/ansible-test.sh sanity|units [ansible-test options]
#
# ansible-test must run from .../ansible_collections/<namespace>/<name>:
# copy the tracked (and untracked, not ignored) files there, links as links,
# and run it on them.
#   sanity: in ansible-test's own virtual environments (--venv).
#   units:  in the project's .venv (--local), which already holds what the unit
#           tests import (requirements.txt) and pytest-xdist (requirements-dev.txt);
#           ansible-test runs tests/unit/plugins/{modules,module_utils} with only
#           ansible.module_utils importable, as a managed host would have it.
set -euo pipefail
command=${1:?usage: $0 sanity|units [ansible-test options]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="$repo/.venv/bin"
python_version=$("$bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/tritonfleet/serving"
mkdir -p "$dest"
(cd "$repo" && git ls-files --cached --others --exclude-standard -z | xargs -0 cp --no-dereference --parents -t "$dest")
cd "$dest"

case "$command" in
  sanity)
    # ansible-test bootstraps pip in its venvs with a script from ci-files.testing.ansible.com,
    # which closed networks cannot reach. Stand in for it: ensurepip, then pip from PyPI.
    cache="$HOME/.ansible/test/cache"
    mkdir -p "$cache"
    for version in 24_2 25_0 25_1 25_2 25_3; do
      [ -e "$cache/get_pip_$version.py" ] || cat > "$cache/get_pip_$version.py" <<'PY'
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
PY
    done
    "$bin/ansible-test" sanity --venv --python "$python_version" --color no "$@"
    ;;
  units)
    # --local runs `python3.X -m pytest` from PATH: make that the project's venv.
    status=0
    PATH="$bin:$PATH" "$bin/ansible-test" units --local --python "$python_version" --color no "$@" || status=$?
    # ansible-test runs pytest once per context (modules, module_utils, controller):
    # one line for all of them, from the JUnit files those runs wrote.
    "$bin/python" - tests/output/junit/*-units.xml <<'PY' || true
import sys
import xml.etree.ElementTree as ET

totals = dict(tests=0, failures=0, errors=0, skipped=0)
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
passed = totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"]
print("ansible-test units: %d passed, %d failed, %d errors, %d skipped"
      % (passed, totals["failures"], totals["errors"], totals["skipped"]))
PY
    exit "$status"
    ;;
  *)
    echo "$0: unknown command '$command' (sanity or units)" >&2
    exit 2
    ;;
esac
