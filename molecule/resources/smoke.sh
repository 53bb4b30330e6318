#!/usr/bin/env bash
# End-to-end check of the resources, by hand, outside molecule:
#   images (build_images.sh) -> registry with the stand-ins (registry.sh) ->
#   apt repository (packages.sh) -> a fleet-host container boots systemd ->
#   docker.io installed from the flat repository only -> insecure-registries
#   -> docker login + pull through the network gateway -> in the fleet host:
#   tiny checkpoint, a v0.7 build.py build (Baichuan2 flags) and a
#   convert_checkpoint.py + trtllm-build build (tp 2) in the TRT-LLM stand-in,
#   then the Triton stand-in serving a Python model, reached from this host
#   through two published ports.
#
# Usage: smoke.sh [--keep]      --keep leaves the fleet host running
# Environment: TRITONFLEET_REGISTRY_PASSWORD (default: a random one for this run),
#   TRITONFLEET_SMOKE_PORT (this host's port for the Triton HTTP endpoint, default 18000)
# The fleet host and its volume are removed at the end; the registry is
# stopped again if this script started it. Images and the apt repository stay.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep=0
[ "${1:-}" = --keep ] && keep=1
HOST=tritonfleet-smoke-host
PORT=${TRITONFLEET_SMOKE_PORT:-18000}
APT_DIR=$CACHE_DIR/apt-repo
if [ -z "${TRITONFLEET_REGISTRY_PASSWORD:-}" ]; then
  TRITONFLEET_REGISTRY_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
fi
export TRITONFLEET_REGISTRY_PASSWORD

step_started=$(date +%s.%N)
step() {
  log "[$(awk -v a="$step_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1f s", b - a }')] $*"
}
in_host() { docker exec "$HOST" bash -c "$1"; }

ensure_docker
registry_was_running=0
[ "$(docker inspect -f '{{.State.Running}}' tritonfleet-registry 2>/dev/null)" = true ] && registry_was_running=1
cleanup() {
  if [ $keep = 0 ]; then
    docker rm -f "$HOST" >/dev/null 2>&1 || true
    docker volume rm "$HOST-docker" >/dev/null 2>&1 || true
  fi
  if [ $registry_was_running = 0 ]; then "$RESOURCES_DIR/registry.sh" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "images"
"$RESOURCES_DIR/build_images.sh"
step "registry"
"$RESOURCES_DIR/registry.sh" start
"$RESOURCES_DIR/registry.sh" push
step "apt repository"
"$RESOURCES_DIR/packages.sh" "$APT_DIR"

step "starting fleet host $HOST"
docker rm -f "$HOST" >/dev/null 2>&1 || true
docker volume rm "$HOST-docker" >/dev/null 2>&1 || true
docker run -d --name "$HOST" --hostname fleet-smoke "${FLEET_HOST_RUN_FLAGS[@]}" \
  -v "$HOST-docker:/var/lib/docker" -v "$APT_DIR:/srv/tritonfleet-apt:ro" \
  -p "127.0.0.1:$PORT:8000" "$IMAGE_FLEET_HOST" >/dev/null
fleet_host_wait "$HOST"
gateway=$(in_host "ip route" | awk '/^default/ { print $3; exit }')
registry=$gateway:5000
step "systemd is up; gateway $gateway"

step "installing docker.io and python3-requests from file:/srv/tritonfleet-apt only"
# shellcheck disable=SC2016  # expanded inside the fleet host
in_host '
  set -euo pipefail
  echo "deb [trusted=yes] file:/srv/tritonfleet-apt ./" >/etc/apt/sources.list.d/tritonfleet.list
  only="-o Dir::Etc::SourceList=/etc/apt/sources.list.d/tritonfleet.list -o Dir::Etc::SourceParts=-"
  apt-get update -qq $only
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $only docker.io python3-requests >/dev/null
  systemctl is-active --quiet docker'
step "docker $(in_host 'docker version --format {{.Server.Version}}') runs in $HOST"

in_host "printf '{\"insecure-registries\": [\"%s\"]}\n' '$registry' >/etc/docker/daemon.json && systemctl restart docker"
printf '%s' "$TRITONFLEET_REGISTRY_PASSWORD" |
  docker exec -i "$HOST" docker login --username tritonfleet --password-stdin "$registry" >/dev/null 2>&1 ||
  die "docker login $registry failed in $HOST"
triton=$registry/nvidia/tritonserver:24.01-trtllm-python-py3
trtllm=$registry/nvidia/tensorrt-llm/release:0.7.1
in_host "docker pull -q '$triton' && docker pull -q '$trtllm'" >/dev/null
step "pulled $triton and $trtllm through the gateway"

step "tiny checkpoint and two stand-in builds in $HOST"
in_host "
  set -euo pipefail
  mkdir -p /srv/build/ckpt /srv/build/engine-build-py /srv/build/work /srv/build/engine-trtllm-build
  docker run --rm -v /srv/build:/b '$trtllm' \
    python3 /opt/tritonfleet/standin/cpu_reference_cli.py --generate_tiny_checkpoint /b/ckpt >/dev/null
  docker run --rm -w /app/tensorrt_llm/examples/baichuan -v /srv/build/ckpt:/tritonfleet/checkpoint:ro \
    -v /srv/build/engine-build-py:/tritonfleet/output '$trtllm' \
    python3 /app/tensorrt_llm/examples/baichuan/build.py --model_dir /tritonfleet/checkpoint \
      --output_dir /tritonfleet/output --world_size 1 --tp_size 1 --pp_size 1 --model_version v2_7b \
      --dtype float16 --parallel_build --use_inflight_batching --enable_context_fmha \
      --use_gemm_plugin float16 --use_gpt_attention_plugin float16
  docker run --rm -w /app/tensorrt_llm/examples/llama -v /srv/build/ckpt:/tritonfleet/checkpoint:ro \
    -v /srv/build/work:/tritonfleet/work -v /srv/build/engine-trtllm-build:/tritonfleet/output '$trtllm' sh -c '
      set -e
      python3 /app/tensorrt_llm/examples/llama/convert_checkpoint.py --model_dir /tritonfleet/checkpoint \
        --output_dir /tritonfleet/work/trtllm-checkpoint --tp_size 2 --pp_size 1 --dtype float16
      trtllm-build --checkpoint_dir /tritonfleet/work/trtllm-checkpoint --output_dir /tritonfleet/output \
        --max_batch_size 8 --max_input_len 256 --max_seq_len 512 --gemm_plugin float16 \
        --gpt_attention_plugin float16 --remove_input_padding enable --paged_kv_cache enable \
        --context_fmha enable --workers 2'
  if docker run --rm -e TRITONFLEET_STANDIN_FAIL=1 -v /srv/build:/b '$trtllm' \
      trtllm-build --checkpoint_dir /b/work/trtllm-checkpoint --output_dir /b/failed >/dev/null 2>&1; then
    echo 'TRITONFLEET_STANDIN_FAIL=1 did not fail the build' >&2; exit 1
  fi
  docker run --rm -v /srv/build:/b '$trtllm' python3 -c '
import json, sys
sys.path.insert(0, \"/opt/tritonfleet/standin\")
import cpu_reference
for name in (\"engine-build-py\", \"engine-trtllm-build\"):
    config = cpu_reference.read_engine_config(\"/b/\" + name)
    print(\"    %-20s version %s, mapping %s, %s\" % (name, config[\"version\"], json.dumps(config[\"pretrained_config\"][\"mapping\"], sort_keys=True), config[\"tritonfleet_standin\"][\"tool\"]))
'"

step "Triton stand-in in $HOST, published on 127.0.0.1:$PORT of this host"
in_host "
  set -euo pipefail
  mkdir -p /srv/models/add_one/1
  cat >/srv/models/add_one/config.pbtxt <<'EOF'
name: \"add_one\"
backend: \"python\"
max_batch_size: 0
input [ { name: \"X\", data_type: TYPE_FP32, dims: [ -1 ] } ]
output [ { name: \"Y\", data_type: TYPE_FP32, dims: [ -1 ] } ]
EOF
  cat >/srv/models/add_one/1/model.py <<'EOF'
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor(
            'Y', pb_utils.get_input_tensor_by_name(r, 'X').as_numpy() + np.float32(1))]) for r in requests]
EOF
  docker run -d --name triton0 -p 8000:8000 --shm-size 256m -v /srv/models:/models:ro '$triton' \
    tritonserver --model-repository=/models >/dev/null"
for _ in $(seq 1 240); do
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/v2/health/ready" || true)
  [ "$code" = 200 ] && break
  sleep 0.25
done
if [ "$code" != 200 ]; then
  in_host 'docker logs --tail 30 triton0' >&2 || true
  die "http://127.0.0.1:$PORT/v2/health/ready answered '$code'"
fi
step "http://127.0.0.1:$PORT/v2/health/ready answers 200"
answer=$(curl -s -m 10 "http://127.0.0.1:$PORT/v2/models/add_one/infer" \
  -d '{"inputs": [{"name": "X", "datatype": "FP32", "shape": [2], "data": [41, 1]}]}')
case $answer in
  *'"data":[42.0,2.0]'*) step "add_one([41, 1]) = [42, 2] through the nested Triton" ;;
  *) die "unexpected answer: $answer" ;;
esac
step "all checks passed"
