#!/usr/bin/env bash
# ansible-test must run from .../ansible_collections/<namespace>/<name>:
# copy the tracked files there and run the sanity tests on them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/tritonfleet/serving"
mkdir -p "$dest"
(cd "$repo" && git ls-files --cached --others --exclude-standard -z | xargs -0 cp --parents -t "$dest")
cd "$dest"

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
"$repo/.venv/bin/ansible-test" sanity --venv --python "$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no "$@"
