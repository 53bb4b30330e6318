#!/usr/bin/env bash
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# GPU smoke test of the collection's paths that need no Docker and no TensorRT-LLM, for a GPU host
# that has only python3 (with numpy; torch optional) and the wheels in <repo>/.whl:
#   ansible-core (py3-none-any) and nvidia-pytriton (tritonserver + the Python backend and its stubs).
#
#   1. installs .whl/*.whl into $H100_SMOKE_SITE (/tmp/site) and links the repo as
#      $H100_SMOKE_COLL/ansible_collections/tritonfleet/serving (/tmp/coll);
#   2. saves `nvidia-smi -q -x` and runs the gpu_facts module as Ansible does (script + args file);
#   3. lays out two Triton instances with the triton_instances filter (own HTTP/gRPC/metrics ports
#      and Python-backend shm prefixes) and starts both on GPU 0 with the process_service module;
#      the model is a Python-backend KIND_GPU model that computes with torch on its GPU when torch
#      imports inside the stub, and says so (numpy on the CPU otherwise);
#   4. waits for /v2/health/ready, infers once on each over HTTP, runs triton_metrics against each
#      /metrics (request success >= 1, GPU memory total > 0, same GPU uuid as gpu_facts);
#   5. stops both with process_service state=stopped and checks /dev/shm holds none of their regions.
#
# Results: $OUT (default <repo>/tests/output/h100_smoke): results.json, gpu_facts.json, logs.txt,
# summary.txt, console.txt, nvidia-smi-q.xml. Exit status 0 only when every check passed.
#
# Environment:
#   H100_SMOKE_CPU=1        KIND_CPU model and no GPU assertions: checks the logic on a host without GPU
#   H100_SMOKE_PYTHON       interpreter (python3); its site-packages are what the backend stub sees
#   H100_SMOKE_PORT_BASE    first port (18100); instance i uses base+10i, +1, +2
#   H100_SMOKE_KEEP=1       keep the work directory (model repository, args files, full server logs)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
py=${H100_SMOKE_PYTHON:-python3}
site_dir=${H100_SMOKE_SITE:-/tmp/site}
coll=${H100_SMOKE_COLL:-/tmp/coll}
out=${OUT:-$repo/tests/output/h100_smoke}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/h100_smoke.XXXXXX")
[ "${H100_SMOKE_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

die() {
  echo "h100_smoke: FAILED: $*" | tee -a "$out/console.txt" >&2
  exit 1
}

: >"$out/console.txt"
log() { echo "$*" | tee -a "$out/console.txt"; }

log "h100_smoke: repo $repo, python $(command -v "$py") ($("$py" -V 2>&1)), out $out, work $work"

# 1. wheels and the collection ------------------------------------------------------------------
shopt -s nullglob
wheels=("$repo"/.whl/*.whl)
shopt -u nullglob
if [ ${#wheels[@]} -gt 0 ]; then
  log "installing ${#wheels[@]} wheel(s) into $site_dir: $(basename -a "${wheels[@]}" | tr '\n' ' ')"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site_dir" \
    "${wheels[@]}" 2>&1 | grep -v 'Running pip as the' | tee -a "$out/console.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || die "pip install of .whl/*.whl failed"
else
  log "no wheels in $repo/.whl; expecting ansible-core and nvidia-pytriton in $site_dir already"
fi
[ -x "$site_dir/pytriton/tritonserver/bin/tritonserver" ] ||
  die "$site_dir/pytriton/tritonserver/bin/tritonserver missing (put the nvidia-pytriton wheel in .whl/)"

link=$coll/ansible_collections/tritonfleet/serving
mkdir -p "$(dirname "$link")"
if [ -e "$link" ] && [ ! -L "$link" ]; then
  die "$link exists and is not a symlink"
fi
ln -sfn "$repo" "$link"
export PYTHONPATH=$site_dir:$coll
export PYTHONUNBUFFERED=1
"$py" -c 'import ansible.module_utils.basic, ansible.release as r; print("ansible-core", r.__version__)' 2>&1 |
  tee -a "$out/console.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "ansible-core is not importable from $site_dir"

# 2. raw nvidia-smi output, kept next to what gpu_facts made of it --------------------------------
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -q -x >"$out/nvidia-smi-q.xml" 2>&1 || log "nvidia-smi -q -x failed (rc=$?), see nvidia-smi-q.xml"
  nvidia-smi 2>&1 | tee -a "$out/console.txt"
else
  log "nvidia-smi not found on PATH"
  rm -f "$out/nvidia-smi-q.xml"
fi

# 3.-5. the rest, in Python -------------------------------------------------------------------------
args=(--site "$site_dir" --out "$out" --work "$work")
[ "${H100_SMOKE_CPU:-0}" = 1 ] && args+=(--cpu)
"$py" "$repo/tests/gpu/h100_smoke.py" "${args[@]}" 2>&1 | tee -a "$out/console.txt"
rc=${PIPESTATUS[0]}
[ "${H100_SMOKE_KEEP:-0}" = 1 ] && log "work directory kept: $work"
exit "$rc"
