#!/usr/bin/env bash
# make test's integration and molecule tests in two lanes at once: the tests
# that drive Docker (marked `docker`: image builds, registries, the molecule
# fleets), which mostly wait on containers, beside the local tritonserver
# deployments, which mostly use the CPU. Each lane is one pytest process, so
# every file keeps its module-scoped deployment and its order. (pytest-xdist's
# loadgroup would do this, but with pytest 9 it no longer groups.) Tests
# marked `second_lane` join the Docker lane to even out the lanes' lengths.
set -u
cd "$(dirname "$0")/.." || exit 2
bin=${BIN:-.venv/bin}
mkdir -p tests/output
docker_log=tests/output/pytest-docker-lane.log

"$bin/pytest" -q --durations=15 --ignore=tests/unit -m "docker or second_lane" "$@" >"$docker_log" 2>&1 &
docker_lane=$!
"$bin/pytest" -q --durations=15 --ignore=tests/unit -m "not docker and not second_lane" "$@"
local_status=$?
wait "$docker_lane"
docker_status=$?

echo "---- the Docker lane ($docker_log) ----"
cat "$docker_log"
echo "lanes: local exit $local_status, docker exit $docker_status"
[ "$local_status" -eq 0 ] && [ "$docker_status" -eq 0 ]
