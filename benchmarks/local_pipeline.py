"""Measure the local default deployment and print the figures.

  cold converge      site.yml on an empty state root
  no-op re-run       site.yml again (must report changed=0)
  start -> ready     restart one server; from the start its supervisor recorded to the moment
                     triton_health sees every model ready (and the health module's own share)
  tokens/s           streamed tokens through the ensemble, 1 and 8 concurrent streams

Usage: .venv/bin/python benchmarks/local_pipeline.py [--keep] [--tokens N]
It uses its own state root and a free port range, and tears down afterwards.
"""

import argparse
import json
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from local_deploy import Deployment, free_port_base  # noqa: E402  (shared with the integration tests)


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def run_module(name, args):
    """Run a collection module the way Ansible does (args file) and return its JSON result."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, PYTHONPATH=str(REPO / ".collections"))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.tritonfleet.serving.plugins.modules." + name,
                           handle.name], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    os.unlink(handle.name)
    return json.loads(proc.stdout)


def stream_tokens(url, prompt, tokens, results):
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    responses = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))

    def tensor(name, value, dtype):
        numpy_type = {"BYTES": np.object_, "INT32": np.int32, "BOOL": np.bool_}[dtype]
        array = np.array([[value]], dtype=numpy_type)
        inp = grpcclient.InferInput(name, list(array.shape), dtype)
        inp.set_data_from_numpy(array)
        return inp

    inputs = [tensor("text_input", prompt.encode(), "BYTES"), tensor("max_tokens", tokens, "INT32"),
              tensor("min_length", tokens, "INT32"), tensor("stream", True, "BOOL")]
    start = time.monotonic()
    first = None
    count = 0
    client.async_stream_infer("ensemble", inputs, enable_empty_final_response=True)
    while True:
        result, error = responses.get(timeout=300)
        if error is not None:
            raise RuntimeError(error)
        final = result.get_response().parameters.get("triton_final_response")
        if result.as_numpy("text_output") is not None and result.as_numpy("text_output").size:
            count += 1
            first = first or time.monotonic() - start
        if final is not None and final.bool_param:
            break
    client.stop_stream()
    results.append((count, first, time.monotonic() - start))


def throughput(dep, streams, tokens):
    urls = ["127.0.0.1:%d" % (dep.port_base + 10 * (i % 2) + 1) for i in range(streams)]
    results = []
    threads = [threading.Thread(target=stream_tokens, args=(u, "The fleet serves", tokens, results)) for u in urls]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    total = sum(r[0] for r in results)
    first_tokens = sorted(r[1] for r in results if r[1] is not None)
    if len(first_tokens) < len(results):
        sys.exit("%d of %d streams returned no token" % (len(results) - len(first_tokens), len(results)))
    ttft = first_tokens[len(first_tokens) // 2]
    return total / wall, total, wall, ttft


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the deployment running")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per stream")
    opts = parser.parse_args()

    root = pathlib.Path(tempfile.mkdtemp(prefix="tritonfleet-bench-")) / "root"
    dep = Deployment(root, free_port_base())
    try:
        cold, cold_s = timed(dep.playbook)
        if cold.rc != 0:
            sys.exit("cold converge failed:\n%r" % cold)
        noop, noop_s = timed(dep.playbook)
        print("cold site.yml converge      %7.1f s  (changed=%d)" % (cold_s, cold.changed))
        print("no-op site.yml re-run       %7.1f s  (changed=%d)" % (noop_s, noop.changed))

        state = json.loads((root / "servers" / "run" / "triton0.json").read_text())
        env = dict(item.decode().split("=", 1) for item in
                   pathlib.Path("/proc/%d/environ" % state["pid"]).read_bytes().split(b"\0") if b"=" in item)
        restart = run_module("process_service", dict(
            name="triton0", command=state["argv"], environment=env, chdir=str(root / "servers"),
            run_dir=str(root / "servers" / "run"), log_file=state["log_file"], state="restarted",
            fingerprint_paths=[str(root / "model_repository")], ports=state["ports"], start_grace=0))
        if restart.get("failed"):
            sys.exit("restart failed: %s" % restart)
        started_at = json.loads((root / "servers" / "run" / "triton0.json").read_text())["started_at"]
        health = run_module("triton_health", dict(url="127.0.0.1:%d" % (dep.port_base + 1), protocol="grpc",
                                                  models=["preprocessing", "tensorrt_llm", "postprocessing",
                                                          "ensemble"], timeout=300, interval=0.1))
        ready_at = time.time()
        if health.get("failed"):
            sys.exit("health failed: %s" % health)
        # The module's elapsed leaves out the time before it began polling; the
        # supervisor's start stamp does not.
        print("server start -> ready       %7.2f s  (4 models; triton_health polled %.2f s of it)"
              % (ready_at - started_at, health["elapsed"]))

        for streams in (1, 8):
            rate, total, wall, ttft = throughput(dep, streams, opts.tokens)
            print("tokens/s, %d stream(s)       %7.1f    (%d tokens in %.2f s, median TTFT %.0f ms)"
                  % (streams, rate, total, wall, ttft * 1000))
    finally:
        if not opts.keep:
            dep.playbook("playbooks/teardown.yml")


if __name__ == "__main__":
    main()
