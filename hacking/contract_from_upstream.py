"""Record the ensemble contract of a TensorRT-LLM release as data (maintainers' tool).

Reads the five config.pbtxt files of an upstream ``all_models/inflight_batcher_llm``
checkout (tensorrtllm_backend at a release tag, or TensorRT-LLM's ``triton_backend``),
parses each as Triton's ModelConfig and writes the facts the repository role renders
from: tensors, parameters and their placeholders, batching, instance groups and the
ensemble's steps. Upstream's comments and code are not carried over.

    .venv/bin/python hacking/contract_from_upstream.py CHECKOUT/all_models/inflight_batcher_llm \
        --release 0.7 --versions 0.7 --triton 24.01 \
        --source "triton-inference-server/tensorrtllm_backend v0.7.1" \
        > roles/repository/files/contracts/0.7.yml

Adding a release is running this, reviewing the diff against the previous release, and
adding the release to the contract table test (tests/unit/roles/test_model_contracts.py).
"""

import argparse
import pathlib
import re
import sys

import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

MODELS = ("preprocessing", "tensorrt_llm", "postprocessing", "ensemble", "tensorrt_llm_bls")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
TYPED_PLACEHOLDER = re.compile(r'name:\s*"([^"]+)"\s*\n\s*data_type:\s*\$\{(\w+)\}')
SENTINEL_BASE = 7_000_000


def parse(text):
    """ModelConfig of an upstream config with placeholders, plus what each unquoted placeholder was."""
    typed = dict(TYPED_PLACEHOLDER.findall(text))
    text = re.sub(r"(data_type:\s*)\$\{\w+\}", r"\1TYPE_FP32", text)
    text = re.sub(r"(decoupled:\s*)\$\{(\w+)\}", r'\1true', text)
    numbers = {}

    def number(match):
        value = SENTINEL_BASE + len(numbers)
        numbers[value] = match.group(1)
        return str(value)

    # Placeholders outside quotes are numbers (batch sizes, counts, queue settings).
    pieces = re.split(r'("(?:[^"\\]|\\.)*")', text)
    text = "".join(p if p.startswith('"') else PLACEHOLDER.sub(number, p) for p in pieces)
    config = model_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    return config, typed, numbers


def value_of(number, numbers):
    return "${%s}" % numbers[number] if number in numbers else number


def tensor(entry, typed):
    result = {
        "name": entry.name,
        "data_type": "${%s}" % typed[entry.name] if entry.name in typed else model_config_pb2.DataType.Name(entry.data_type),
        "dims": list(entry.dims),
    }
    if entry.HasField("reshape"):
        result["reshape"] = list(entry.reshape.shape)
    if getattr(entry, "optional", False):
        result["optional"] = True
    if getattr(entry, "allow_ragged_batch", False):
        result["allow_ragged_batch"] = True
    return result


def in_file_order(mapping, raw_text):
    """A protobuf map's items in the order the file writes their keys (maps keep none)."""
    def position(key):
        found = raw_text.find('key: "%s"' % key)
        return found if found >= 0 else len(raw_text)
    return {key: mapping[key] for key in sorted(mapping, key=position)}


def unique(path, tensors):
    """Tensors with exact repeats dropped (a release's file may declare one twice; Triton wants unique names)."""
    kept = []
    for entry in tensors:
        if entry in kept:
            sys.stderr.write("%s: %s is declared twice; recorded once\n" % (path, entry["name"]))
            continue
        if any(k["name"] == entry["name"] for k in kept):
            sys.exit("%s: %s is declared twice with different fields" % (path, entry["name"]))
        kept.append(entry)
    return kept


def model_contract(path, raw_text):
    config, typed, numbers = parse(raw_text)
    model = {}
    if config.platform:
        model["platform"] = config.platform
    else:
        model["backend"] = config.backend
    model["max_batch_size"] = value_of(config.max_batch_size, numbers)
    decoupled = re.search(r"decoupled:\s*(\$\{\w+\}|true|false)", raw_text)
    if config.HasField("model_transaction_policy"):
        model["decoupled"] = decoupled.group(1) if decoupled and decoupled.group(1).startswith("$") else config.model_transaction_policy.decoupled
    if config.HasField("dynamic_batching"):
        batching = config.dynamic_batching
        block = {"preferred_batch_size": [value_of(v, numbers) for v in batching.preferred_batch_size],
                 "max_queue_delay_microseconds": value_of(batching.max_queue_delay_microseconds, numbers)}
        if batching.HasField("default_queue_policy"):
            block["default_queue_policy"] = {"max_queue_size": value_of(batching.default_queue_policy.max_queue_size, numbers)}
        model["dynamic_batching"] = block
    model["inputs"] = unique(path, [tensor(t, typed) for t in config.input])
    model["outputs"] = unique(path, [tensor(t, typed) for t in config.output])
    if config.HasField("ensemble_scheduling"):
        model["steps"] = [{
            "model": step.model_name,
            "version": step.model_version,
            "inputs": in_file_order(dict(step.input_map), raw_text),
            "outputs": in_file_order(dict(step.output_map), raw_text),
        } for step in config.ensemble_scheduling.step]
    if config.instance_group:
        group = config.instance_group[0]
        model["instance_group"] = {"count": value_of(group.count, numbers),
                                   "kind": model_config_pb2.ModelInstanceGroup.Kind.Name(group.kind)}
    if config.parameters:
        model["parameters"] = in_file_order({key: config.parameters[key].string_value for key in config.parameters}, raw_text)
    code = "\n".join(line.split("#", 1)[0] for line in raw_text.splitlines())
    unknown = set(PLACEHOLDER.findall(code)) - set(_all_placeholders(model))
    if unknown:
        sys.exit("%s: placeholders not recorded: %s" % (path, sorted(unknown)))
    return model


def _all_placeholders(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _all_placeholders(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_placeholders(value)
    elif isinstance(node, str):
        yield from PLACEHOLDER.findall(node)


class ContractDumper(yaml.SafeDumper):
    """Tensors and short lists one per line, so a release's diff reads tensor by tensor."""

    def increase_indent(self, flow=False, indentless=False):
        # Sequences indented under their key, as yamllint's default wants.
        return super().increase_indent(flow, False)


def _represent_list(dumper, data):
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_dict(dumper, data):
    flow = "name" in data and "data_type" in data
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


ContractDumper.add_representer(list, _represent_list)
ContractDumper.add_representer(dict, _represent_dict)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("directory", type=pathlib.Path)
    parser.add_argument("--release", required=True, help="the contract's name, e.g. 0.7")
    parser.add_argument("--versions", nargs="+", required=True, help="version prefixes it covers")
    parser.add_argument("--triton", required=True, help="Triton release of that TensorRT-LLM release")
    parser.add_argument("--source", required=True, help="where the configs were read")
    args = parser.parse_args()
    contract = {
        "release": args.release,
        "versions": args.versions,
        "triton": args.triton,
        "source": args.source,
        "models": {},
    }
    for name in MODELS:
        path = args.directory / name / "config.pbtxt"
        contract["models"][name] = model_contract(path, path.read_text())
    sys.stdout.write("---\n# The ensemble contract of TensorRT-LLM %s, recorded from %s\n" % (args.release, args.source))
    sys.stdout.write("# by hacking/contract_from_upstream.py. Facts only; regenerate rather than edit.\n")
    sys.stdout.write(yaml.dump(contract, Dumper=ContractDumper, sort_keys=False, width=160))


if __name__ == "__main__":
    main()
