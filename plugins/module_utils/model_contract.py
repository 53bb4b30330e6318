# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ensemble contract of a TensorRT-LLM release, kept as data, and what is made from it.

A contract (roles/repository/files/contracts/<release>.yml) records, for every model of
upstream's ``all_models/inflight_batcher_llm`` at one release, its tensors (name, data type,
dims, optional, reshape, allow_ragged_batch), parameters, batching, instance group and, for
the ensemble, its steps and maps. Values upstream leaves to ``tools/fill_template.py`` are
kept as ``${name}`` placeholders.

* :func:`render_model_config` writes a model's config.pbtxt from its contract, the
  placeholder values and the parameters;
* :func:`fill_placeholders` fills a user's own config.pbtxt as fill_template.py does, but
  reports what it could not fill instead of leaving it in place;
* :func:`contract_for_version` picks the contract of a ``tritonfleet_trtllm_version``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.parsing.convert_bool import boolean

PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ContractError(ValueError):
    """A contract or a value that cannot make a valid model configuration."""


# ------------------------------------------------------------------ versions
def release_matches(contract, version):
    """True when ``version`` (e.g. 0.7.1, 1.0.0rc3) is one of the releases ``contract`` covers.

    ``contract['versions']`` lists version prefixes: "0.7" covers 0.7 and 0.7.x, "1" every 1.x.
    """
    version = str(version or "").strip()
    for prefix in contract.get("versions") or []:
        prefix = str(prefix)
        if version == prefix or version.startswith(prefix + ".") or re.match(re.escape(prefix) + r"(rc|a|b|\.dev)", version):
            return True
    return False


def contract_for_version(contracts, version, pinned=None):
    """The contract for ``version`` among ``contracts`` (a list of contract dicts).

    ``pinned`` (a contract's ``release``) wins over the version. An empty version picks
    the newest contract (the last by release order). Raises ContractError naming the
    known releases when none matches.
    """
    if not contracts:
        raise ContractError("no contracts are known")
    ordered = sorted(contracts, key=lambda c: release_key(c["release"]))
    known = ", ".join("%s (%s)" % (c["release"], c.get("triton", "?")) for c in ordered)
    if pinned:
        for contract in ordered:
            if str(contract["release"]) == str(pinned):
                return contract
        raise ContractError("repository_contract '%s' is not a known release; known: %s" % (pinned, known))
    if not str(version or "").strip():
        return ordered[-1]
    for contract in ordered:
        if release_matches(contract, version):
            return contract
    raise ContractError(
        "tritonfleet_trtllm_version '%s' has no known ensemble contract; known releases: %s. "
        "Set tritonfleet_trtllm_version to one of them, or pin one with repository_contract." % (version, known))


def release_key(release):
    parts = []
    for piece in re.split(r"[.]", str(release)):
        parts.append(int(piece) if piece.isdigit() else 10 ** 6)
    return parts


# ------------------------------------------------------------- placeholders
def placeholders(text):
    """The placeholder names in ``text``, in order of first appearance."""
    seen = []
    for match in PLACEHOLDER_RE.finditer(text):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def format_value(value):
    """A value as fill_template.py would write it into a config: booleans lower case, lists comma-joined."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return str(value)


def fill_placeholders(text, values):
    """Fill ``${name}`` placeholders of ``text`` from ``values``.

    Returns ``(filled_text, unfilled)``: ``unfilled`` lists the placeholders that have no
    value (missing, null or empty), which stay in the text as they were.
    """
    unfilled = []

    def substitute(match):
        name = match.group(1)
        value = values.get(name)
        if value is None or (isinstance(value, str) and value == ""):
            if name not in unfilled:
                unfilled.append(name)
            return match.group(0)
        return format_value(value)

    return PLACEHOLDER_RE.sub(substitute, text), unfilled


# ---------------------------------------------------------------- rendering
def _quote(value):
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dims(values):
    return "[ %s ]" % ", ".join(str(v) for v in values) if values else "[ ]"


def _placeholder_value(value, values):
    """``(is_placeholder, value)``: a lone ``${name}`` looked up in ``values`` (None when unset), else the value itself."""
    match = PLACEHOLDER_RE.fullmatch(value) if isinstance(value, str) else None
    if match:
        return True, values.get(match.group(1))
    return False, value


def _resolve(value, values, where):
    """A contract value that may be a placeholder, filled from ``values``; a placeholder without value is an error."""
    is_placeholder, resolved = _placeholder_value(value, values)
    if is_placeholder and resolved is None:
        raise ContractError("%s: no value for %s" % (where, value))
    return resolved


def _tensor_lines(field, tensors, values, model):
    lines = ["%s [" % field]
    for index, tensor in enumerate(tensors):
        lines.append("  {")
        lines.append("    name: %s" % _quote(tensor["name"]))
        lines.append("    data_type: %s" % _resolve(tensor["data_type"], values, "%s %s %s" % (model, field, tensor["name"])))
        lines.append("    dims: %s" % _dims(tensor["dims"]))
        if "reshape" in tensor:
            lines.append("    reshape: { shape: %s }" % _dims(tensor["reshape"]))
        if tensor.get("optional"):
            lines.append("    optional: true")
        if tensor.get("allow_ragged_batch"):
            lines.append("    allow_ragged_batch: true")
        lines.append("  }%s" % ("," if index < len(tensors) - 1 else ""))
    lines.append("]")
    return lines


def effective_parameters(contract_parameters, defaults, explicit, placeholder_values):
    """The parameters a model's config carries: key -> string value.

    For each parameter of the release, the first that is set of: the user's ``explicit``
    value, the release's literal value (what upstream ships fixed, e.g. 0.7's
    add_special_tokens), the role's ``defaults`` value, the value of the release's placeholder. A parameter with none is left out, so the backend uses its own
    default (as with a template left unfilled). ``explicit`` keys the release does not have
    are kept, after the release's: the user asked for them. ``defaults`` keys it does not
    have are not: they belong to other releases.
    """
    def is_set(value):
        return value is not None and value != ""

    result = {}
    for key, upstream in (contract_parameters or {}).items():
        upstream = str(upstream)
        value = explicit.get(key)
        if not is_set(value) and not placeholders(upstream):
            value = upstream
        if not is_set(value):
            value = defaults.get(key)
        if not is_set(value):
            filled, unfilled = fill_placeholders(upstream, placeholder_values)
            value = None if unfilled else filled
        if is_set(value):
            result[key] = format_value(value)
    for key, value in explicit.items():
        if key not in result and key not in (contract_parameters or {}) and is_set(value):
            result[key] = format_value(value)
    return result


def placeholder_values_for(contract, structural, defaults_by_model, explicit_by_model):
    """Every placeholder a release's configs use -> the value the role renders for it.

    The structural values (batch size, decoupled mode, ...) first; then, for each parameter
    written as a lone placeholder, the value of that parameter, or None when the role leaves
    that parameter out. This is what a user's own upstream-layout directory is filled with
    (``repository_source: directory``).
    """
    values = dict(structural)
    for name, model in contract.get("models", {}).items():
        for key, upstream in (model.get("parameters") or {}).items():
            match = PLACEHOLDER_RE.fullmatch(str(upstream))
            if not match:
                continue
            known = False
            for source in (explicit_by_model.get(name) or {}, defaults_by_model.get(name) or {}):
                known = known or key in source
                value = source.get(key)
                if value is not None and value != "":
                    values.setdefault(match.group(1), value)
                    break
            else:
                if known:
                    # A parameter the role leaves out (null): its block is dropped from a user's file.
                    values.setdefault(match.group(1), None)
    return values


def render_model_config(name, model, placeholder_values, defaults=None, explicit=None, header=None):
    """config.pbtxt text of model ``name`` from its contract entry ``model``.

    ``placeholder_values`` fills the contract's ``${...}`` (max batch size, decoupled mode,
    queue settings, instance counts, logits data type, version_policy, dynamic_batching,
    ``<model>_instance_count`` for a count the release writes as a number); ``defaults``
    and ``explicit`` (key -> value) give the model's parameters (see
    :func:`effective_parameters`).
    """
    values = placeholder_values
    lines = []
    if header:
        lines.append("# %s" % header)
    lines.append("name: %s" % _quote(name))
    if model.get("platform"):
        lines.append("platform: %s" % _quote(model["platform"]))
    else:
        backend = model["backend"]
        # cpu mode serves tensorrt_llm on the Python backend whatever the release wrote.
        if values.get("%s_backend" % name):
            backend = values["%s_backend" % name]
        lines.append("backend: %s" % _quote(_resolve(backend, values, name + " backend")))
    lines.append("max_batch_size: %d" % int(_resolve(model.get("max_batch_size", "${triton_max_batch_size}"), values, name)))
    policy = values.get("version_policy")
    if policy:
        lines.append(version_policy_text(policy))
    if "decoupled" in model:
        decoupled = _resolve(model["decoupled"], values, name + " decoupled")
        lines.append("model_transaction_policy {")
        lines.append("  decoupled: %s" % ("true" if _boolean(decoupled, name + " decoupled") else "false"))
        lines.append("}")
    batching = model.get("dynamic_batching")
    if batching is not None and _boolean(values.get("dynamic_batching", True), "dynamic_batching"):
        lines.append("dynamic_batching {")
        if "preferred_batch_size" in batching:
            sizes = [int(_resolve(v, values, name + " preferred_batch_size")) for v in batching["preferred_batch_size"]]
            lines.append("  preferred_batch_size: %s" % _dims(sizes))
        if "max_queue_delay_microseconds" in batching:
            lines.append("  max_queue_delay_microseconds: %d" % int(
                _resolve(batching["max_queue_delay_microseconds"], values, name + " max_queue_delay_microseconds")))
        queue = (batching.get("default_queue_policy") or {}).get("max_queue_size")
        if queue is not None:
            queue_size = _placeholder_value(queue, values)[1]
            # 0 or unset: no queue limit, as upstream's backend treats it.
            if queue_size not in (None, "") and int(queue_size) > 0:
                lines.append("  default_queue_policy: { max_queue_size: %d }" % int(queue_size))
        lines.append("}")
    lines.extend(_tensor_lines("input", model.get("inputs", []), values, name))
    lines.extend(_tensor_lines("output", model.get("outputs", []), values, name))
    if model.get("steps"):
        lines.append("ensemble_scheduling {")
        lines.append("  step [")
        for index, step in enumerate(model["steps"]):
            lines.append("    {")
            lines.append("      model_name: %s" % _quote(step["model"]))
            lines.append("      model_version: %d" % int(step.get("version", -1)))
            for field, mapping in (("input_map", step.get("inputs", {})), ("output_map", step.get("outputs", {}))):
                for key, value in mapping.items():
                    lines.append("      %s {" % field)
                    lines.append("        key: %s" % _quote(key))
                    lines.append("        value: %s" % _quote(value))
                    lines.append("      }")
            lines.append("    }%s" % ("," if index < len(model["steps"]) - 1 else ""))
        lines.append("  ]")
        lines.append("}")
    group = model.get("instance_group")
    if group:
        lines.append("instance_group [")
        lines.append("  {")
        count = group.get("count", 1)
        if not _placeholder_value(count, values)[0] and values.get("%s_instance_count" % name) is not None:
            count = values["%s_instance_count" % name]
        lines.append("    count: %d" % int(_resolve(count, values, name + " instance count")))
        lines.append("    kind: %s" % _resolve(group.get("kind", "KIND_CPU"), values, name + " instance kind"))
        lines.append("  }")
        lines.append("]")
    for key, value in effective_parameters(model.get("parameters"), defaults or {}, explicit or {}, values).items():
        lines.append("parameters: {")
        lines.append("  key: %s" % _quote(key))
        lines.append("  value: {")
        lines.append("    string_value: %s" % _quote(value))
        lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def version_policy_text(policy):
    if policy.get("latest") is not None:
        return "version_policy: { latest: { num_versions: %d } }" % int(policy["latest"]["num_versions"])
    if policy.get("specific") is not None:
        return "version_policy: { specific: { versions: %s } }" % _dims([int(v) for v in policy["specific"]["versions"]])
    return "version_policy: { all: { } }"


def _boolean(value, where):
    """Ansible's reading of a boolean; anything else is an error naming ``where``."""
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise ContractError("%s: '%s' is not a boolean" % (where, value))


BACKEND_LINE_RE = re.compile(r'^(\s*backend\s*:\s*)"[^"]*"', re.MULTILINE)
PARAMETER_BLOCK_RE = re.compile(
    r'parameters\s*:?\s*\{\s*key\s*:\s*"[^"]*"\s*[,;]?\s*value\s*:?\s*\{\s*string_value\s*:\s*"\$\{(\w+)\}"\s*[,;]?\s*\}'
    r'\s*[,;]?\s*\}[ \t]*\n?')


def drop_unset_parameters(text, values):
    """``text`` without the parameter blocks whose value is a lone placeholder set to None in ``values``.

    The built-in configs leave such parameters out so the backend uses its default; a
    user's file gets the same, instead of a placeholder the backend would read as text.
    """
    def keep(match):
        name = match.group(1)
        return "" if name in values and values[name] is None else match.group(0)

    return PARAMETER_BLOCK_RE.sub(keep, text)


def fill_repository(entries, values, user_keys=(), engine_backend=None):
    """Fill the config.pbtxt templates of a user's upstream-layout directory.

    ``entries`` are the models read from it (model, config_path, config text or None,
    files). Returns ``{"models": [...], "unused": [...]}``: per model its filled ``text``,
    the placeholders left ``unfilled``, ``missing`` (no config.pbtxt) and ``file_entries``
    (src, model, name) of its version directory's files; ``unused`` lists
    the ``user_keys`` (the user's own placeholder values) that match no placeholder of any
    file. ``engine_backend`` rewrites tensorrt_llm's backend line (cpu mode serves it on the
    Python backend, which some releases write literally as tensorrtllm).
    """
    models = []
    seen = set()
    for entry in entries:
        text = entry.get("config")
        result = dict(entry, missing=text is None, text="", unfilled=[],
                      file_entries=[{"src": "%s/%s" % (entry.get("version_path", ""), name), "model": entry["model"], "name": name}
                                    for name in entry.get("files", [])],
                      subdirs=sorted(set(name.rsplit("/", 1)[0] for name in entry.get("files", []) if "/" in name)))
        if text is not None:
            seen.update(placeholders(text))
            filled, unfilled = fill_placeholders(drop_unset_parameters(text, values), values)
            if engine_backend and entry["model"] == "tensorrt_llm":
                filled = BACKEND_LINE_RE.sub(lambda m: '%s"%s"' % (m.group(1), engine_backend), filled, count=1)
            result.update(text=filled, unfilled=unfilled)
            if unfilled:
                result["problem"] = "%s has %s" % (entry["config_path"], ", ".join("${%s}" % name for name in unfilled))
        models.append(result)
    unused = [key for key in user_keys if key not in seen]
    return {"models": models, "unused": unused}
