# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the repository's Python backend models.

The role copies this file into the version directory of each Python model
(preprocessing, postprocessing, tensorrt_llm_bls), next to its model.py.
The Triton utilities (``pb_utils``) exist only inside the server; the
helpers that need them take them as an argument, so a model's tests can put
a fake in its place.
"""

import os

try:  # only present inside the Triton Python backend stub
    # Re-exported to the models.
    import triton_python_backend_utils as pb_utils  # pylint: disable=unused-import
except ImportError:  # pragma: no cover - unit tests import the models' helpers directly
    pb_utils = None


TRUE_STRINGS = ("1", "true", "t", "yes", "y", "on")


def parse_bool(value, default=False):
    """Read a Triton string parameter as a boolean."""
    if value is None:
        return default
    text = str(value).strip().lower()
    if text == "":
        return default
    return text in TRUE_STRINGS


def flag_parameter(value, default):
    """A parameter upstream reads as "true"/"false" only: anything else (unset, an unfilled ``${...}``) is the default."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    return default


NUMPY_TYPES = {
    "TYPE_BOOL": "bool", "TYPE_UINT8": "uint8", "TYPE_UINT64": "uint64", "TYPE_INT32": "int32",
    "TYPE_INT64": "int64", "TYPE_FP16": "float16", "TYPE_FP32": "float32", "TYPE_STRING": "object",
}


def tensor_types(model_config, field):
    """name -> numpy dtype name of the config's ``input`` or ``output`` tensors, in config order."""
    return {entry["name"]: NUMPY_TYPES.get(entry.get("data_type"), None) for entry in model_config.get(field) or []}


def model_parameters(model_config):
    """Return the string parameters of a parsed model configuration."""
    params = {}
    for key, value in (model_config.get("parameters") or {}).items():
        if isinstance(value, dict):
            params[key] = value.get("string_value", "")
        else:
            params[key] = str(value)
    return params


def load_tokenizer(tokenizer_dir, tokenizer_type="auto", trust_remote_code=True):
    """Load an HF tokenizer from a local directory, never from the network."""
    if not tokenizer_dir or not os.path.isdir(tokenizer_dir):
        raise ValueError(f"tokenizer_dir {tokenizer_dir!r} is not a directory")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoTokenizer  # imported late: heavy, and offline first

    kwargs = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    if tokenizer_type == "llama":
        kwargs["legacy"] = False
    elif tokenizer_type not in ("auto", "t5", "", None):
        raise ValueError(f"unexpected tokenizer_type {tokenizer_type!r} (auto, llama or t5)")
    return AutoTokenizer.from_pretrained(tokenizer_dir, **kwargs)


def tokenizer_from_parameters(params):
    """The tokenizer a model's parameters name (tokenizer_dir, tokenizer_type, trust_remote_code)."""
    return load_tokenizer(
        params.get("tokenizer_dir", ""),
        params.get("tokenizer_type", "auto") or "auto",
        parse_bool(params.get("trust_remote_code"), True),
    )


def request_inputs(pb, request, names):
    """The named input tensors of a request as numpy arrays, None for those not sent."""
    inputs = {}
    for name in names:
        tensor = pb.get_input_tensor_by_name(request, name)
        inputs[name] = None if tensor is None else tensor.as_numpy()
    return inputs


def error_response(pb, model, error):
    """The response that answers one failed request; the model keeps serving."""
    return pb.InferenceResponse(output_tensors=[], error=pb.TritonError(f"{model}: {error}"))
