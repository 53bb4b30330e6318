#!/usr/bin/env bash
# Build the local images of the molecule fleet tests (no Docker Hub, no NGC):
#
#   debian        tritonfleet-test/debian:bookworm             debootstrap --variant=minbase + docker import
#   fleet-host    tritonfleet-test/fleet-host:bookworm         systemd "GPU host minus the GPU", no Docker
#   tritonserver  tritonfleet-test/nvidia/tritonserver:24.01-trtllm-python-py3   CPU Triton stand-in
#   tensorrt-llm  tritonfleet-test/nvidia/tensorrt-llm/release:0.7.1             CPU TRT-LLM build stand-in
#   registry      tritonfleet-test/registry:2                   Debian's docker-registry with htpasswd auth
#   dcgm-exporter tritonfleet-test/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04   DCGM exporter stand-in
#
# Each image carries the label org.tritonfleet.inputs = sha256 of its inputs
# (its recipe files, the repository files copied into it, the pins, the ID of
# its base image); an image whose label matches is not rebuilt, so a rerun
# takes seconds. Rebuilding a base rebuilds the images on top of it.
#
# Usage: build_images.sh [--force] [IMAGE...]     IMAGE: the short names above; default all
#        (--force rebuilds the images named, and so the ones built on them)
#        build_images.sh --list                    print the image names
# Environment:
#   TRITONFLEET_DEBIAN_MIRROR    Debian mirror (default http://deb.debian.org/debian)
#   TRITONFLEET_RESOURCES_CACHE  work directory (default molecule/resources/.cache)
#   TRITONFLEET_START_DOCKERD=0  do not start dockerd when it is not running
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIRROR=${TRITONFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ALL=(debian fleet-host tritonserver tensorrt-llm registry dcgm-exporter)
# The Python packages the stand-in Triton image serves the project's models with
# (roles/repository/files/*: numpy, safetensors, tokenizers via transformers'
# AutoTokenizer), at the pins of requirements.txt, which also constrains
# everything they pull in.
TRITON_PACKAGES=(nvidia-pytriton numpy tokenizers transformers safetensors huggingface_hub PyYAML)
# cpu mode's tensorrt_llm model (model.py, cpu_engine_runtime.py, cpu_engine_format.py), which the
# Triton stand-in's `tensorrtllm` backend serves gpu-mode repositories with.
TRTLLM_CPU_MODEL=$REPO_ROOT/roles/repository/files/tensorrt_llm_cpu
# The CPU reference builder, its tiny checkpoint and command line, and what
# they import: the engine format (the file itself, not the module_utils link
# to it: cp -a would copy the link) and hashing.
CPU_BUILDER_FILES=("$REPO_ROOT"/plugins/module_utils/{cpu_reference,cpu_tiny_checkpoint,cpu_reference_cli,hashing}.py
  "$TRTLLM_CPU_MODEL/cpu_engine_format.py")

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

force=0
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --force) force=1 ;;
    --list)
      printf '%s\n' "$IMAGE_DEBIAN" "$IMAGE_FLEET_HOST" "$IMAGE_TRITON" "$IMAGE_TRTLLM" "$IMAGE_REGISTRY" "$IMAGE_DCGM"
      exit 0 ;;
    -h|--help) usage; exit 0 ;;
    debian|fleet-host|tritonserver|tensorrt-llm|registry|dcgm-exporter) targets+=("$1") ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
# --force rebuilds the images named (all by default); images on top of them
# follow because their base's ID changed.
declare -A forced=()
if [ $force = 1 ]; then
  for t in "${targets[@]}"; do forced[$t]=1; done
fi

# An image is checked (and rebuilt when stale) together with every base below it.
declare -A wanted=()
for t in "${targets[@]}"; do
  case $t in
    debian) wanted[debian]=1 ;;
    fleet-host|registry|dcgm-exporter) wanted[debian]=1; wanted[$t]=1 ;;
    tritonserver) wanted[debian]=1; wanted[tritonserver]=1 ;;
    tensorrt-llm) wanted[debian]=1; wanted[tritonserver]=1; wanted[tensorrt-llm]=1 ;;
  esac
done

ensure_docker
mkdir -p "$CACHE_DIR/logs"
# One build at a time per cache directory (parallel molecule scenarios).
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
  log "another build_images.sh holds $CACHE_DIR/.lock; waiting for it"
  flock 9
fi

CLEANUP=()
cleanup() {
  local item
  for item in "${CLEANUP[@]}"; do eval "$item" || true; done
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

SUMMARY=()
SUPERSEDED=()  # IDs of images replaced by this run, removed at the end once untagged
record() {  # record IMAGE RESULT SECONDS
  SUMMARY+=("$(printf '%-62s %-11s %7ss %8s' "$1" "$2" "$3" "$(human_size "$1")")")
}

# run_logged NAME FILTER COMMAND...: the full output goes to .cache/logs/NAME.log,
# lines matching FILTER are shown as progress; on failure the log's tail is shown.
run_logged() {
  local name=$1 filter=$2 logfile="$CACHE_DIR/logs/$1.log" rc=0
  shift 2
  : >"$logfile"
  set +e
  "$@" 2>&1 | tee -a "$logfile" | { grep --line-buffered -E "$filter" || true; } | sed -u 's/^/    /' >&2
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    log "'$*' failed with status $rc; last lines of $logfile:"
    tail -n 40 "$logfile" | sed 's/^/    | /' >&2
    die "building $name failed"
  fi
}

# ensure_image SHORT IMAGE HASH BUILD_FUNCTION
ensure_image() {
  local short=$1 image=$2 hash=$3 build=$4 started old
  if [ -z "${forced[$short]:-}" ] && [ "$(image_label "$image")" = "$hash" ]; then
    log "$image is up to date (inputs ${hash:0:12})"
    record "$image" up-to-date 0.0
    return 0
  fi
  log "building $image (inputs ${hash:0:12}; log: $CACHE_DIR/logs/$short.log)"
  old=$(image_id "$image") && SUPERSEDED+=("$old")
  started=$(now)
  "$build" "$short" "$image" "$hash"
  [ "$(image_label "$image")" = "$hash" ] || die "$image was built but does not carry the label $INPUTS_LABEL=$hash"
  log "built $image in $(elapsed "$started") s ($(human_size "$image"))"
  record "$image" built "$(elapsed "$started")"
}

# Remove DIR, unmounting anything debootstrap may have left mounted below it.
remove_tree() {
  local dir=$1 mnt
  [ -e "$dir" ] || return 0
  while read -r mnt; do
    [ -n "$mnt" ] && umount -l "$mnt"
  done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
  rm -rf --one-file-system "$dir"
}

build_debian() {
  local short=$1 image=$2 hash=$3 rootfs="$CACHE_DIR/debian-rootfs"
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  need_cmd debootstrap "apt-get install debootstrap"
  remove_tree "$rootfs"
  CLEANUP+=("remove_tree '$rootfs'")
  run_logged "$short" '^(I: (Retrieving InRelease|Checking component|Found additional|Installing core|Unpacking required|Configuring required|Unpacking the base|Configuring the base|Base system)|E: |W: )' \
    "$RESOURCES_DIR/images/debian/mkrootfs.sh" "$rootfs" "$MIRROR"
  log "importing the root file system ($(du -sh "$rootfs" | cut -f1)) as $image"
  tar -C "$rootfs" --numeric-owner -cf - . | docker import \
    --change "LABEL $INPUTS_LABEL=$hash" \
    --change "LABEL org.tritonfleet.image=debian" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase bookworm $MIRROR" - "$image" >/dev/null
  remove_tree "$rootfs"
}

# docker_build SHORT IMAGE HASH CONTEXT: legacy builder (Debian's docker.io has no buildx).
docker_build() {
  local short=$1 image=$2 hash=$3 context=$4
  run_logged "$short" '^(Step [0-9]+/[0-9]+ :|Successfully tagged)' \
    env DOCKER_BUILDKIT=0 docker build --pull=false --rm --force-rm \
      --label "$INPUTS_LABEL=$hash" --label "org.tritonfleet.image=$short" -t "$image" "$context"
  # Intermediate stages of multi-stage builds stay behind as dangling images.
  docker image prune -f --filter "label=org.tritonfleet.stage" >/dev/null
  rm -rf "$context"
}

# A fresh build context: the image's directory plus any extra files.
make_context() {  # make_context SHORT [FILE...] -> prints the context directory
  local short=$1 context="$CACHE_DIR/context/$1" f
  shift
  rm -rf "$context"
  mkdir -p "$context"
  cp -a "$RESOURCES_DIR/images/$short/." "$context/"
  for f in "$@"; do cp -a "$f" "$context/"; done
  echo "$context"
}

build_fleet_host() {
  docker_build "$1" "$2" "$3" "$(make_context "$1")"
}

build_registry() {
  docker_build "$1" "$2" "$3" "$(make_context "$1")"
}

# The lines of requirements.txt that pin TRITON_PACKAGES (names compared as pip does).
triton_requirements() {
  local pkg line found
  for pkg in "${TRITON_PACKAGES[@]}"; do
    found=0
    while IFS= read -r line; do
      local name=${line%%[=<>~!; \[]*}
      if [ "$(normalize "$name")" = "$(normalize "$pkg")" ]; then
        # shellcheck disable=SC2001  # trailing blanks: sed says it more plainly than expansions
        echo "${line%%#*}" | sed 's/[[:space:]]*$//'
        found=1
      fi
    done < <(grep -v -E '^[[:space:]]*(#|-|$)' "$REPO_ROOT/requirements.txt")
    [ $found = 1 ] || die "requirements.txt pins no $pkg"
  done
}
normalize() { echo "$1" | tr '[:upper:]_.' '[:lower:]--'; }

build_tritonserver() {
  local short=$1 image=$2 hash=$3 context pyver
  # The stand-in tensorrtllm backend serves with cpu mode's model files (copied, not duplicated).
  context=$(make_context "$short" "$TRTLLM_CPU_MODEL")
  mkdir -p "$context/wheels"
  triton_requirements >"$context/wheels/requirements.txt"
  # All of requirements.txt constrains the dependencies they pull in (pip takes no extras there).
  grep -v -E '^[[:space:]]*(#|-|$)' "$REPO_ROOT/requirements.txt" | sed 's/\[[^]]*\]//' >"$context/constraints.txt"
  log "downloading wheels on this host for: $(tr '\n' ' ' <"$context/wheels/requirements.txt")"
  # Wheels for Debian 12's Python 3.11 on x86_64 (manylinux, glibc 2.36).
  local pip_target=()
  pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ "$pyver" != 3.11 ] || [ "$(uname -m)" != x86_64 ]; then
    pip_target=(--python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_36_x86_64
      --platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform linux_x86_64)
  fi
  run_logged "$short-wheels" '^(Saved|Successfully downloaded|ERROR)' \
    python3 -m pip download --only-binary=:all: --dest "$context/wheels" "${pip_target[@]}" \
      -r "$context/wheels/requirements.txt" -c "$context/constraints.txt"
  log "$(find "$context/wheels" -name '*.whl' | wc -l) wheels, $(du -sh "$context/wheels" | cut -f1)"
  docker_build "$short" "$image" "$hash" "$context"
}

build_dcgm_exporter() {
  docker_build "$1" "$2" "$3" "$(make_context "$1" "$RESOURCES_DIR/standin/dcgm_exporter_standin.py")"
}

build_tensorrt_llm() {
  docker_build "$1" "$2" "$3" "$(make_context "$1" "$RESOURCES_DIR/standin/trtllm_standin.py" "${CPU_BUILDER_FILES[@]}")"
}

started_all=$(now)
# Each hash is computed only after the base below it is final (its ID is an input).
if [ -n "${wanted[debian]:-}" ]; then
  hash=$(inputs_hash "file:$RESOURCES_DIR/images/debian/mkrootfs.sh" "text:mirror=$MIRROR" 'text:import=LANG,CMD')
  ensure_image debian "$IMAGE_DEBIAN" "$hash" build_debian
fi
base=$(image_id "$IMAGE_DEBIAN") || die "$IMAGE_DEBIAN is missing; run: $0 debian"
if [ -n "${wanted[fleet-host]:-}" ]; then
  hash=$(inputs_hash "dir:$RESOURCES_DIR/images/fleet-host" "text:base=$base")
  ensure_image fleet-host "$IMAGE_FLEET_HOST" "$hash" build_fleet_host
fi
if [ -n "${wanted[tritonserver]:-}" ]; then
  hash=$(inputs_hash "dir:$RESOURCES_DIR/images/tritonserver" "file:$REPO_ROOT/requirements.txt" \
    "dir:$TRTLLM_CPU_MODEL" "text:packages=${TRITON_PACKAGES[*]}" "text:base=$base")
  ensure_image tritonserver "$IMAGE_TRITON" "$hash" build_tritonserver
fi
if [ -n "${wanted[tensorrt-llm]:-}" ]; then
  triton=$(image_id "$IMAGE_TRITON") || die "$IMAGE_TRITON is missing"
  hash=$(inputs_hash "dir:$RESOURCES_DIR/images/tensorrt-llm" "file:$RESOURCES_DIR/standin/trtllm_standin.py" \
    "${CPU_BUILDER_FILES[@]/#/file:}" "text:base=$triton")
  ensure_image tensorrt-llm "$IMAGE_TRTLLM" "$hash" build_tensorrt_llm
fi
if [ -n "${wanted[registry]:-}" ]; then
  hash=$(inputs_hash "dir:$RESOURCES_DIR/images/registry" "text:base=$base")
  ensure_image registry "$IMAGE_REGISTRY" "$hash" build_registry
fi
if [ -n "${wanted[dcgm-exporter]:-}" ]; then
  hash=$(inputs_hash "dir:$RESOURCES_DIR/images/dcgm-exporter" "file:$RESOURCES_DIR/standin/dcgm_exporter_standin.py" \
    "text:base=$base")
  ensure_image dcgm-exporter "$IMAGE_DCGM" "$hash" build_dcgm_exporter
fi

# Newest first: an old image can go only after the old images built on it.
for ((i = ${#SUPERSEDED[@]} - 1; i >= 0; i--)); do
  id=${SUPERSEDED[i]}
  if [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
    if docker rmi "$id" >/dev/null 2>&1; then log "removed the superseded image ${id#sha256:}"; fi
  fi
done

log "done in $(elapsed "$started_all") s:"
printf '    %s\n' "${SUMMARY[@]}" >&2
