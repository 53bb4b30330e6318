# shellcheck shell=bash
# Helpers shared by build_images.sh, registry.sh, packages.sh and smoke.sh (sourced, not run).
# shellcheck disable=SC2034  # the names below are used by the scripts that source this file

RESOURCES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$RESOURCES_DIR/../.." && pwd)
CACHE_DIR=${TRITONFLEET_RESOURCES_CACHE:-$RESOURCES_DIR/.cache}
INPUTS_LABEL=org.tritonfleet.inputs

# The images these scripts make. The stand-ins carry NGC's names under the
# tritonfleet-test/ prefix, so nothing here can be mistaken for (or shadow) a
# real NGC image on a machine that also has those.
IMAGE_DEBIAN=tritonfleet-test/debian:bookworm
IMAGE_FLEET_HOST=tritonfleet-test/fleet-host:bookworm
IMAGE_TRITON=tritonfleet-test/nvidia/tritonserver:24.01-trtllm-python-py3
IMAGE_TRTLLM=tritonfleet-test/nvidia/tensorrt-llm/release:0.7.1
IMAGE_REGISTRY=tritonfleet-test/registry:2
IMAGE_DCGM=tritonfleet-test/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04

# Run flags that let a fleet-host container boot systemd and run its own
# dockerd without --privileged (which these machines refuse) and without
# CAP_SYS_RESOURCE (which they do not grant). Add `-v VOLUME:/var/lib/docker`.
FLEET_HOST_RUN_FLAGS=(
  --cgroupns private
  --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add MKNOD --cap-add SYS_CHROOT --cap-add NET_RAW
  --cap-add SYS_PTRACE --cap-add AUDIT_WRITE --cap-add SETFCAP
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp:exec
  --stop-signal RTMIN+3 -e container=docker
)

log() { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$(basename "$0" .sh)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_cmd() {  # need_cmd COMMAND HINT
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"
}

# Make sure the Docker engine answers; start Debian's dockerd when it does not
# and we are allowed to (root, TRITONFLEET_START_DOCKERD not 0).
ensure_docker() {
  need_cmd docker "install Debian's docker.io"
  docker info >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && [ "${TRITONFLEET_START_DOCKERD:-1}" != 0 ] && command -v dockerd >/dev/null 2>&1; then
    log "the Docker engine is not running; starting dockerd (log: /var/log/dockerd.log)"
    (nohup dockerd >/var/log/dockerd.log 2>&1 &)
    local i
    for i in $(seq 1 60); do
      docker info >/dev/null 2>&1 && { log "dockerd is up after ${i}s"; return 0; }
      sleep 1
    done
    die "dockerd did not come up within 60 s; see /var/log/dockerd.log"
  fi
  die "the Docker engine is not reachable (docker info fails); start it: (nohup dockerd >/var/log/dockerd.log 2>&1 &)"
}

# sha256 over a description of inputs. Arguments are "file:PATH" (the path
# relative to the repository root and the file's sha256 are hashed, so moving
# the checkout changes nothing), "dir:PATH" (every file under it, sorted) or
# "text:STRING".
inputs_hash() {
  local arg path f
  for arg in "$@"; do
    case $arg in
      file:*)
        path=${arg#file:}
        [ -f "$path" ] || die "input file $path is missing"
        printf 'file %s %s\n' "$(realpath --relative-to="$REPO_ROOT" "$path")" "$(sha256sum <"$path" | cut -d' ' -f1)"
        ;;
      dir:*)
        path=${arg#dir:}
        [ -d "$path" ] || die "input directory $path is missing"
        while IFS= read -r -d '' f; do
          # The mode matters too: an entrypoint that lost its x bit is another image.
          printf 'file %s %s %s\n' "$(realpath --relative-to="$REPO_ROOT" "$f")" "$(stat -c %a "$f")" \
            "$(sha256sum <"$f" | cut -d' ' -f1)"
        done < <(find "$path" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z)
        ;;
      text:*) printf 'text %s\n' "${arg#text:}" ;;
      *) die "inputs_hash: bad argument $arg" ;;
    esac
  done | sha256sum | cut -d' ' -f1
}

index_flat_repo() {  # index_flat_repo DIR LABEL [HEADER ...]: Packages, Packages.gz and an unsigned Release
  local dir=$1 label=$2 f line
  shift 2
  (
    cd "$dir" || exit
    dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages
    gzip -9nc Packages >Packages.gz
    {
      echo "Origin: tritonfleet"
      echo "Label: $label"
      for line in "$@"; do echo "$line"; done
      echo "Architectures: $(dpkg --print-architecture) all"
      echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
      echo "SHA256:"
      for f in Packages Packages.gz; do
        printf ' %s %s %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
      done
    } >Release
  )
}

image_label() {  # image_label IMAGE -> value of the inputs label, empty when absent
  docker image inspect -f "{{ index .Config.Labels \"$INPUTS_LABEL\" }}" "$1" 2>/dev/null | sed 's/^<no value>$//'
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }

human_size() {  # human_size IMAGE
  docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }'
}

# fleet_host_wait NAME [SECONDS]: wait until systemd in the fleet-host container
# NAME has finished booting ("running"; "degraded" is reported with the failed units).
fleet_host_wait() {
  local name=$1 timeout=${2:-60} i state=
  for ((i = 0; i < timeout * 2; i++)); do
    [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] ||
      die "fleet host $name is not running; docker logs $name"
    # PID 1 is the init script until it has remounted the cgroups and exec'd systemd.
    if [ "$(docker exec "$name" cat /proc/1/comm 2>/dev/null)" = systemd ]; then
      state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
      case $state in
        running) return 0 ;;
        degraded)
          log "fleet host $name is degraded; failed units:"
          docker exec "$name" systemctl --failed --no-legend >&2 || true
          return 0 ;;
      esac
    fi
    sleep 0.5
  done
  die "fleet host $name did not finish booting within ${timeout} s (state '${state:-unknown}')"
}
