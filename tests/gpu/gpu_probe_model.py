# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Triton Python-backend model used by tests/gpu/h100_smoke.sh (copied to <repo>/gpu_probe/1/model.py).

INPUT0 (FP32 [-1]) -> OUTPUT0 = INPUT0 * 2 + 1 and DOT = sum(INPUT0 * INPUT0), computed with torch on
the instance's GPU when the instance is KIND_GPU and torch imports inside the stub; otherwise with
numpy on the CPU. DEVICE (UINT8 [-1]) holds a JSON document saying where and how it ran, and why it fell
back to the CPU when it did.

Tensors cross the stub through DLPack under numpy 2 (numpy.from_dlpack for inputs,
pb_utils.Tensor.from_dlpack for outputs) and through as_numpy()/pb_utils.Tensor(name, ndarray) under
numpy 1. The stub of nvidia-pytriton 0.7.0 (Triton 2.51) reads a numpy dtype's item size through an
older pybind11, which gets it wrong under numpy 2: as_numpy() then returns every element equal to the
first (zero strides, silently wrong values), and an ndarray output (BYTES too) gets a wrong byte size,
so the HTTP frontend answers 500 "output tensor shape does not match size of output". DLPack carries
shape and size itself, but numpy 1.26's capsule deleter rejects
the name the stub gives a consumed capsule, which kills the stub. DEVICE is therefore UINT8 (the
JSON's bytes) rather than BYTES. The project pins numpy 1.26.4; GPU images often ship numpy 2.
"""

import json
import os
import site

import numpy as np
import triton_python_backend_utils as pb_utils


NUMPY2 = int(np.__version__.split('.')[0]) >= 2
OUTPUT_API = 'dlpack' if NUMPY2 else 'as_numpy/Tensor(ndarray)'


def _output(name, array):
    array = np.ascontiguousarray(array)
    if NUMPY2:
        return pb_utils.Tensor.from_dlpack(name, array)
    return pb_utils.Tensor(name, array)


def _input(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if NUMPY2:
        return np.array(np.from_dlpack(tensor), dtype=np.float32, copy=True).ravel()
    return np.array(tensor.as_numpy(), dtype=np.float32, copy=True).ravel()


def _parameter(config, key):
    value = (config.get('parameters') or {}).get(key) or {}
    return value.get('string_value') or ''


class TritonPythonModel:

    def initialize(self, args):
        config = json.loads(args['model_config'])
        # PYTHONPATH already holds these (numpy must import before this file does);
        # addsitedir also runs their .pth files.
        for path in _parameter(config, 'site_dirs').split(os.pathsep):
            if path and os.path.isdir(path):
                site.addsitedir(path)
        self.kind = args.get('model_instance_kind', '')
        self.device_id = int(args.get('model_instance_device_id') or 0)
        self.info = {
            'instance_kind': self.kind,
            'instance_device_id': self.device_id,
            'pid': os.getpid(),
            'numpy': np.__version__,
            'torch': None,
            'device': 'cpu',
            'backend': 'numpy',
            'fallback_reason': '',
        }
        self.torch = None
        if self.kind != 'GPU':
            self.info['fallback_reason'] = 'instance kind is %s, not GPU' % (self.kind or 'unknown')
            return
        try:
            import torch
        except Exception as exc:  # pylint: disable=broad-except
            self.info['fallback_reason'] = 'import torch failed in the stub: %r' % (exc,)
            return
        self.info['torch'] = torch.__version__
        try:
            if not torch.cuda.is_available():
                self.info['fallback_reason'] = 'torch.cuda.is_available() is False in the stub'
                return
            device = torch.device('cuda', self.device_id)
            torch.cuda.set_device(device)
            # A real kernel at load time: a 1024x1024 matmul on the GPU.
            probe = torch.ones((1024, 1024), device=device)
            self.info['load_matmul_trace'] = float((probe @ probe).trace().item())
            self.info['gpu_name'] = torch.cuda.get_device_name(device)
            self.info['capability'] = '%d.%d' % torch.cuda.get_device_capability(device)
            self.info['torch_cuda'] = torch.version.cuda
            self.torch = torch
            self.device = device
            self.info['device'] = str(device)
            self.info['backend'] = 'torch'
        except Exception as exc:  # pylint: disable=broad-except
            self.info['fallback_reason'] = 'torch CUDA use failed in the stub: %r' % (exc,)

    def _compute(self, values):
        """Return (OUTPUT0, DOT, info) as contiguous float32 host arrays."""
        if self.torch is not None:
            tensor = self.torch.from_numpy(values).to(self.device)
            out = tensor * 2.0 + 1.0
            dot = self.torch.dot(tensor, tensor).reshape(1)
            self.torch.cuda.synchronize(self.device)
            info = dict(self.info, tensor_device=str(tensor.device), output_device=str(out.device),
                        memory_allocated=int(self.torch.cuda.memory_allocated(self.device)))
            # Copied back to host memory here, so the response needs no CUDA IPC between stub and server.
            return out.cpu().numpy(), dot.cpu().numpy(), info
        out = values * np.float32(2.0) + np.float32(1.0)
        dot = np.array([np.dot(values, values)], dtype=np.float32)
        return out, dot, dict(self.info)

    def execute(self, requests):
        responses = []
        for request in requests:
            values = _input(request, 'INPUT0')
            out, dot, info = self._compute(values)
            info['tensor_api'] = OUTPUT_API
            document = json.dumps(info, sort_keys=True).encode('utf-8')
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                _output('OUTPUT0', np.asarray(out, dtype=np.float32)),
                _output('DOT', np.asarray(dot, dtype=np.float32)),
                _output('DEVICE', np.frombuffer(document, dtype=np.uint8).copy()),
            ]))
        return responses
