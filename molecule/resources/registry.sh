#!/usr/bin/env bash
# The private registry of the molecule fleet: Debian's docker-registry with
# htpasswd auth (image tritonfleet-test/registry:2, see build_images.sh),
# serving the CPU stand-in images under NGC's names; beside it, in the same
# container, a public registry with anonymous pulls (as NGC serves its public
# images) for the GPU probe's CUDA base image.
#
# Usage: registry.sh start     run container tritonfleet-registry on 0.0.0.0:PORT (private) and
#                              0.0.0.0:PUBLIC_PORT (public), wait until /v2/ answers 401 and 200
#        registry.sh push      log in, push the two stand-ins, log out:
#                                localhost:PORT/nvidia/tritonserver:24.01-trtllm-python-py3
#                                localhost:PORT/nvidia/tensorrt-llm/release:0.7.1
#                              and push, anonymously, the Debian base as the probe image and the
#                              DCGM exporter stand-in (NGC serves both publicly):
#                                localhost:PUBLIC_PORT/nvidia/cuda:12.4.1-base-ubuntu22.04
#                                localhost:PUBLIC_PORT/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04
#        registry.sh status [NETWORK]   say whether it runs, and the address fleet hosts on NETWORK
#                                       (default bridge) use
#        registry.sh stop      remove the container (the pushed images stay in volume tritonfleet-registry-data)
#        registry.sh purge     stop, and remove that volume too
# Environment:
#   TRITONFLEET_REGISTRY_PASSWORD  password of user `tritonfleet` (required by start and push; never printed)
#   TRITONFLEET_REGISTRY_PORT      published port (default 5000)
#   TRITONFLEET_REGISTRY_PUBLIC_PORT  published port of the public side (default 5001)
#
# Fleet-host containers reach the registry through their network's gateway,
# e.g. 172.17.0.1:5000 on the default bridge (`status` prints it); their
# dockerd needs that address under "insecure-registries" (plain HTTP).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=tritonfleet-registry
VOLUME=tritonfleet-registry-data
USER_NAME=tritonfleet
PORT=${TRITONFLEET_REGISTRY_PORT:-5000}
PUBLIC_PORT=${TRITONFLEET_REGISTRY_PUBLIC_PORT:-5001}
PUSHED=(
  "$IMAGE_TRITON nvidia/tritonserver:24.01-trtllm-python-py3"
  "$IMAGE_TRTLLM nvidia/tensorrt-llm/release:0.7.1"
)
# The GPU probe's image (gpu_host_probe_image): any image works whose
# nvidia-smi the toolkit injects; the stand-in one is Python, which the
# Debian base has. It shares its layer with the stand-ins above.
PUBLIC_PUSHED=(
  "$IMAGE_DEBIAN nvidia/cuda:12.4.1-base-ubuntu22.04"
  "$IMAGE_DCGM nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04"
)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

need_password() {
  [ -n "${TRITONFLEET_REGISTRY_PASSWORD:-}" ] || die "set TRITONFLEET_REGISTRY_PASSWORD (the password of registry user $USER_NAME)"
}

running() { [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ]; }

http_status() { curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:${1:-$PORT}/v2/" || true; }

# The gateway address of a Docker network (default: bridge), i.e. this host as its containers see it.
gateway() {
  local network=${1:-bridge} gw bridge_if
  gw=$(docker network inspect "$network" -f '{{ range .IPAM.Config }}{{ .Gateway }} {{ end }}' 2>/dev/null | awk '{ print $1 }')
  if [ -z "$gw" ]; then
    # The default bridge often records no gateway: read its interface's address.
    bridge_if=$(docker network inspect "$network" -f '{{ index .Options "com.docker.network.bridge.name" }}' 2>/dev/null)
    gw=$(ip -4 -o addr show dev "${bridge_if:-docker0}" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
  fi
  echo "${gw:-unknown}"
}

# Whether the running registry accepts TRITONFLEET_REGISTRY_PASSWORD (htpasswd -v reads it on stdin).
password_matches() {
  printf '%s\n' "$TRITONFLEET_REGISTRY_PASSWORD" |
    docker exec -i "$NAME" htpasswd -v -i /etc/docker/registry/htpasswd "$USER_NAME" >/dev/null 2>&1
}

# Remove the container, and its image when a rebuild left that image without a name.
remove_container() {
  local image
  image=$(docker inspect -f '{{.Image}}' "$NAME" 2>/dev/null) || return 0
  docker rm -f "$NAME" >/dev/null
  if [ "$(docker image inspect -f '{{len .RepoTags}}' "$image" 2>/dev/null)" = 0 ]; then
    docker rmi "$image" >/dev/null 2>&1 || true
  fi
}

start() {
  need_password
  ensure_docker
  docker image inspect "$IMAGE_REGISTRY" >/dev/null 2>&1 || die "$IMAGE_REGISTRY is missing; run build_images.sh registry"
  if running; then
    local reasons=()
    [ "$(docker inspect -f '{{.Image}}' "$NAME")" = "$(image_id "$IMAGE_REGISTRY")" ] || reasons+=("its image was rebuilt")
    [ "$(docker port "$NAME" 5000/tcp 2>/dev/null | head -n1)" = "0.0.0.0:$PORT" ] || reasons+=("it does not publish 0.0.0.0:$PORT")
    [ "$(docker port "$NAME" 5001/tcp 2>/dev/null | head -n1)" = "0.0.0.0:$PUBLIC_PORT" ] ||
      reasons+=("it does not publish 0.0.0.0:$PUBLIC_PORT")
    password_matches || reasons+=("it has another password")
    if [ ${#reasons[@]} = 0 ] && [ "$(http_status)" = 401 ] && [ "$(http_status "$PUBLIC_PORT")" = 200 ]; then
      log "$NAME is already running on 0.0.0.0:$PORT"
      return 0
    fi
    log "replacing $NAME: ${reasons[*]:-it does not answer on port $PORT}"
  fi
  remove_container
  log "starting $NAME on 0.0.0.0:$PORT (user $USER_NAME) and 0.0.0.0:$PUBLIC_PORT (public), storage volume $VOLUME"
  # -e NAME without a value: docker takes it from this environment, so the
  # password is in no command line.
  REGISTRY_PASSWORD=$TRITONFLEET_REGISTRY_PASSWORD docker run -d --name "$NAME" \
    --label org.tritonfleet.resource=registry \
    -p "0.0.0.0:$PORT:5000" -p "0.0.0.0:$PUBLIC_PORT:5001" \
    -e REGISTRY_USER="$USER_NAME" -e REGISTRY_PASSWORD \
    -v "$VOLUME:/var/lib/docker-registry" \
    "$IMAGE_REGISTRY" >/dev/null
  local i code public
  for i in $(seq 1 60); do
    code=$(http_status)
    public=$(http_status "$PUBLIC_PORT")
    if [ "$code" = 401 ] && [ "$public" = 200 ]; then
      log "$NAME answers 401 on http://127.0.0.1:$PORT/v2/ (auth required) and 200 on :$PUBLIC_PORT (public)" \
        "after ${i} tries; fleet hosts: $(gateway):$PORT, $(gateway):$PUBLIC_PORT"
      return 0
    fi
    running || break
    sleep 0.5
  done
  docker logs --tail 30 "$NAME" 2>&1 | sed 's/^/    | /' >&2 || true
  die "$NAME did not answer 401 on http://127.0.0.1:$PORT/v2/ and 200 on :$PUBLIC_PORT (last statuses '${code:-none}', '${public:-none}')"
}

push_one() {  # push_one SOURCE TARGET
  local source=$1 target=$2
  log "pushing $source as $target"
  docker tag "$source" "$target"
  if ! docker push "$target" 2>&1 | { grep -E '(Pushed|digest:|rror|denied|unauthorized)' || true; } |
    sed 's/^/    /' >&2; then
    die "docker push $target failed"
  fi
  docker rmi "$target" >/dev/null  # the tag only; the image stays
}

push() {
  need_password
  ensure_docker
  running || die "$NAME is not running; run: $0 start"
  local entry source
  for entry in "${PUSHED[@]}" "${PUBLIC_PUSHED[@]}"; do
    source=${entry%% *}
    docker image inspect "$source" >/dev/null 2>&1 || die "$source is missing; run build_images.sh"
  done
  # A private Docker client configuration: the login never lands in ~/.docker,
  # and is gone even if this script is interrupted.
  DOCKER_CONFIG=$(mktemp -d)
  export DOCKER_CONFIG
  trap 'docker logout "localhost:$PORT" >/dev/null 2>&1 || true; rm -rf "$DOCKER_CONFIG"' EXIT
  log "docker login localhost:$PORT as $USER_NAME"
  local out
  # (Its warning about credentials stored unencrypted concerns the temporary
  # configuration above; it is shown only when the login fails.)
  if ! out=$(printf '%s' "$TRITONFLEET_REGISTRY_PASSWORD" |
    docker login --username "$USER_NAME" --password-stdin "localhost:$PORT" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/    | /' >&2
    die "docker login to localhost:$PORT failed"
  fi
  for entry in "${PUSHED[@]}"; do
    push_one "${entry%% *}" "localhost:$PORT/${entry#* }"
  done
  docker logout "localhost:$PORT" >/dev/null
  log "pushed ${#PUSHED[@]} images; logged out"
  for entry in "${PUBLIC_PUSHED[@]}"; do
    push_one "${entry%% *}" "localhost:$PUBLIC_PORT/${entry#* }"
  done
  log "pushed ${#PUBLIC_PUSHED[@]} image(s) to the public side, without a login"
}

status() {
  ensure_docker
  if running; then
    log "$NAME runs: http://127.0.0.1:$PORT/v2/ answers $(http_status), :$PUBLIC_PORT $(http_status "$PUBLIC_PORT");" \
      "containers on network ${1:-bridge} use $(gateway "${1:-}"):$PORT and :$PUBLIC_PORT"
  else
    log "$NAME is not running"
    return 1
  fi
}

stop() {
  ensure_docker
  if docker inspect "$NAME" >/dev/null 2>&1; then
    remove_container
    log "removed $NAME (volume $VOLUME kept)"
  else
    log "$NAME is not there"
  fi
}

purge() {
  stop
  if docker volume inspect "$VOLUME" >/dev/null 2>&1; then
    docker volume rm "$VOLUME" >/dev/null
    log "removed volume $VOLUME"
  fi
}

case ${1:-} in
  start) start ;;
  push) push ;;
  status) status "${2:-}" ;;
  stop) stop ;;
  purge) purge ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
