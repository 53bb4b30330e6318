# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``tensorrtllm`` backend of the CPU stand-in Triton image: a Python-based backend.

Triton (>= 23.07) serves a model whose config.pbtxt says
``backend: "tensorrtllm"`` with ``<backend-directory>/tensorrtllm/model.py``
when there is no ``libtriton_tensorrtllm.so``. This file stands where NGC's
``-trtllm-python-py3`` image has the TensorRT-LLM backend, so the gpu-mode
model repository the project renders (upstream's ``tensorrt_llm`` config:
its tensor names, ``gpt_model_path``, decoupled) loads unchanged.

It serves the engine with the project's CPU reference runtime, the same code
cpu mode serves with: ``tritonfleet_cpu_model.py``, ``cpu_engine_runtime.py``
and ``cpu_engine_format.py`` next to this file are copies of
roles/repository/files/tensorrt_llm_cpu/{model.py,cpu_engine_runtime.py,cpu_engine_format.py},
made when the image is built; the engine format (file names, config layout)
is the one ``cpu_engine_format.py`` defines. Before loading, it checks what the real
backend would refuse:

* the MPI world (OMPI_COMM_WORLD_SIZE/RANK, set by ``mpirun``; one rank
  without it) must be the engine's tp * pp, from the engine's config.json
  (v0.7 ``builder_config.tensor_parallel/pipeline_parallel``, else
  ``pretrained_config.mapping``), as TensorRT-LLM's ``WorldConfig`` asserts;
* every rank needs a GPU of its own among those the container sees (the
  ``nvidia-smi -L`` the NVIDIA Container Toolkit put into it; rank r takes
  GPU r);
* the GPU-only parameters must have values the backend accepts.

Rank 0 serves; ranks > 0 only load (the launcher starts them with the
``tensorrt_llm`` model alone and no endpoints).
"""

import json
import os
import subprocess
import sys

import triton_python_backend_utils as pb_utils

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import cpu_engine_format as engine_format  # noqa: E402
import tritonfleet_cpu_model as cpu_model  # noqa: E402

NVIDIA_SMI = "/usr/bin/nvidia-smi"
_CHOICES = {
    "gpt_model_type": ("V1", "inflight_batching", "inflight_fused_batching"),
    "batch_scheduler_policy": ("max_utilization", "guaranteed_no_evict"),
}


def _mpi_world():
    """(rank, size) of this process in its MPI job; (0, 1) outside mpirun."""
    return int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")), int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))


def _engine_layout(engine_dir):
    """(tp, pp) the engine was built for, read as the TensorRT-LLM runtime of its era reads it."""
    path = os.path.join(engine_dir, engine_format.ENGINE_CONFIG)
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError("[TensorRT-LLM][ERROR] cannot read the engine configuration %s: %s" % (path, exc))
    # v0.7 engines say it in builder_config (the stand-in's build.py writes it
    # too); later ones, and the CPU engine format, in pretrained_config.mapping.
    builder = config.get("builder_config") or {}
    if "tensor_parallel" in builder:
        return int(builder["tensor_parallel"]), int(builder.get("pipeline_parallel", 1))
    try:
        return engine_format.engine_mapping(config)
    except (KeyError, TypeError, ValueError):
        return 1, 1  # one rank, as TensorRT-LLM assumes; loading the engine then says what is wrong


def _visible_gpus():
    """The ``nvidia-smi -L`` lines of the GPUs this container sees ([] without the toolkit's nvidia-smi)."""
    if not os.access(NVIDIA_SMI, os.X_OK):
        return []
    proc = subprocess.run([NVIDIA_SMI, "-L"], capture_output=True, text=True, check=False)
    return [line for line in proc.stdout.splitlines() if line.startswith("GPU ")] if proc.returncode == 0 else []


def _check_parameters(parameters, model_name):
    for name, choices in _CHOICES.items():
        value = cpu_model._parameter(parameters, name)
        if value is not None and value not in choices:
            raise ValueError("model %s: parameter %s must be one of %s, got %r"
                             % (model_name, name, ", ".join(choices), value))
    fraction = cpu_model._parameter(parameters, "kv_cache_free_gpu_mem_fraction")
    if fraction is not None:
        try:
            ok = 0.0 < float(fraction) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("model %s: parameter kv_cache_free_gpu_mem_fraction must be a number in (0, 1], got %r"
                             % (model_name, fraction))


class TritonPythonModel(cpu_model.TritonPythonModel):
    """``tensorrt_llm`` on the stand-in ``tensorrtllm`` backend."""

    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters") or {}
        model_name = args.get("model_name", "tensorrt_llm")
        _check_parameters(parameters, model_name)
        engine_dir = cpu_model._parameter(parameters, "gpt_model_path")
        if engine_dir is None:
            raise ValueError("model %s: parameter gpt_model_path is not set; set it to the TensorRT-LLM engine "
                             "directory" % model_name)
        rank, world_size = _mpi_world()
        tp_size, pp_size = _engine_layout(engine_dir)
        if world_size != tp_size * pp_size:
            raise ValueError(
                "[TensorRT-LLM][ERROR] Assertion failed: mpiSize == tp * pp: the engine in %s was built for "
                "tp %d x pp %d = %d rank(s), but this server runs as %d MPI rank(s). Start one tritonserver per "
                "rank under mpirun (upstream's launch_triton_server.py --world_size %d)."
                % (engine_dir, tp_size, pp_size, tp_size * pp_size, world_size, tp_size * pp_size))
        gpus = _visible_gpus()
        if rank >= len(gpus):
            raise ValueError(
                "[TensorRT-LLM][ERROR] CUDA runtime error in cudaSetDevice(%d): invalid device ordinal: rank %d of "
                "%d needs GPU %d, but this container sees %d GPU(s) (NVIDIA_VISIBLE_DEVICES=%s). Give the "
                "container one GPU per rank (device_requests / --gpus)."
                % (rank, rank, world_size, rank, len(gpus), os.environ.get("NVIDIA_VISIBLE_DEVICES", "unset")))
        pb_utils.Logger.log_info("model %s: TensorRT-LLM stand-in, MPI rank %d of %d on %s"
                                 % (model_name, rank, world_size, gpus[rank]))
        super().initialize(args)
