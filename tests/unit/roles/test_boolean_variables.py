# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every boolean of the argument specs is read through ``| bool``.

``-e name=false`` hands a role the STRING "false". Role argument validation
accepts it as a bool but leaves the variable as it was, so a template or a
``when:`` that tests the raw value sees a non-empty string: true. The only
safe reads are ``name | bool`` (``name | default(x) | bool`` too) and a
module option that is itself typed bool, because module argument validation
converts the string (an explicit allow-list below).

The scanner finds every variable of type bool in roles/*/meta/argument_specs.yml
and parses every Jinja expression of the collection with Jinja2's own parser:
templates, the ``{{ }}`` and ``{% %}`` of YAML values, and the bare expressions
of ``when``/``that``/``failed_when``/``changed_when``/``until``. Each read of a
tracked variable (a name, ``hostvars[h].name``, ``x['name']``,
``lookup('vars', 'name')``) must be the operand of the ``bool`` filter. Text
that only mentions a name (a message, a comment) is not a read.
"""

from __future__ import annotations

import ast
import collections
import functools
import pathlib
import re
import warnings

import jinja2
import jinja2.nodes as jn
import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]

Finding = collections.namedtuple("Finding", "path line variable how")

# Module options typed bool: module argument validation turns "false" into
# False, so `option: "{{ variable }}"` alone is a correct read. Keep each entry
# commented with the variable it carries; test_module_allow_list_is_typed_bool
# proves the type from the module's own documentation. Empty today: every
# role writes `| bool` there too.
MODULE_BOOL_OPTIONS = set()

# A boolean handed on unchanged under another name: (source, new name). The
# new name becomes tracked itself, so its reads are checked in turn. Empty
# today: a hand-over such as verify_stream's default reads `| bool` itself.
RE_EXPORTS = set()

# Keys whose string value Ansible evaluates as a bare Jinja expression.
BARE_EXPRESSION_KEYS = {"when", "changed_when", "failed_when", "until", "that"}

# Filters that leave a value's truth as it was: `x | default(true) | bool` is fine.
PASS_THROUGH_FILTERS = {"default", "d", "ansible.builtin.default"}
BOOL_FILTERS = {"bool", "ansible.builtin.bool"}
# Tests that look at whether a variable is set, not at its value.
PRESENCE_TESTS = {"defined", "undefined", "ansible.builtin.defined", "ansible.builtin.undefined"}

JINJA = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])


class _AnyTagLoader(yaml.SafeLoader):
    """Composes Ansible YAML (!unsafe, !vault ...): only the node tree is used."""


# ------------------------------------------------------------ what is tracked
def _bool_options(options, prefix=""):
    for name, spec in (options or {}).items():
        spec = spec or {}
        if spec.get("type") == "bool" or spec.get("elements") == "bool":
            yield prefix + name
        if spec.get("options"):
            yield from _bool_options(spec["options"], prefix + name + ".")


def spec_booleans(root=REPO_ROOT):
    """{variable: argument_specs file} for every bool option of every role's entry points."""
    found = {}
    for spec_file in sorted(root.glob("roles/*/meta/argument_specs.yml")):
        specs = yaml.safe_load(spec_file.read_text()).get("argument_specs") or {}
        for entry in specs.values():
            for name in _bool_options((entry or {}).get("options")):
                found.setdefault(name, spec_file.relative_to(root).as_posix())
    return found


def scanned_files(root=REPO_ROOT):
    """Every file the collection reads variables in (argument specs only describe them)."""
    patterns = ["roles/*/tasks/**/*", "roles/*/handlers/**/*", "roles/*/templates/**/*", "roles/*/vars/**/*",
                "roles/*/defaults/**/*", "roles/*/meta/main.yml", "playbooks/**/*.yml", "site.yml",
                "molecule/*/*.yml", "molecule/*/*/*.yml", "molecule/*/*/*/*.yml", "inventories/**/*.yml"]
    # molecule/resources/.cache holds the image builds' root file systems (a live /proc while one runs).
    files = set()
    for pattern in patterns:
        files.update(p for p in root.glob(pattern) if ".cache" not in p.relative_to(root).parts and p.is_file())
    return sorted(files)


# ------------------------------------------------------------ Jinja reads
def _parents(tree):
    parents = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in node.iter_child_nodes():
            parents[id(child)] = node
            stack.append(child)
    return parents


def _read_name(node, tracked):
    """The tracked variable this node reads, or None."""
    if isinstance(node, jn.Name) and node.ctx == "load" and node.name in tracked:
        return node.name
    if isinstance(node, jn.Getattr) and node.attr in tracked:
        return node.attr
    if isinstance(node, jn.Getitem) and isinstance(node.arg, jn.Const) and node.arg.value in tracked:
        return node.arg.value
    if (isinstance(node, jn.Call) and isinstance(node.node, jn.Name) and node.node.name in ("lookup", "query", "q")
            and len(node.args) >= 2 and isinstance(node.args[0], jn.Const) and node.args[0].value == "vars"):
        for arg in node.args[1:]:
            if isinstance(arg, jn.Const) and arg.value in tracked:
                return arg.value
    return None


def _is_safe_read(node, parents):
    """True when the value reaches Jinja only through `| bool` (or is only tested for presence)."""
    parent = parents.get(id(node))
    # default() answers with its operand or its argument: either way the value flows on unchanged.
    while (isinstance(parent, jn.Filter) and parent.name in PASS_THROUGH_FILTERS
           and (parent.node is node or any(arg is node for arg in parent.args))):
        node, parent = parent, parents.get(id(parent))
    if isinstance(parent, jn.Filter) and parent.node is node and parent.name in BOOL_FILTERS:
        return True
    return isinstance(parent, jn.Test) and parent.node is node and parent.name in PRESENCE_TESTS


def jinja_reads(source, tracked):
    """[(variable, jinja line, safe)] for every read of a tracked variable in a template source."""
    with warnings.catch_warnings():
        # Regex escapes in string literals ('\\S') are Ansible's business, not this scan's.
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = JINJA.parse(source)
    parents = _parents(tree)
    reads = []
    for node in tree.find_all(jn.Node):
        name = _read_name(node, tracked)
        if name is not None:
            reads.append((name, node.lineno, _is_safe_read(node, parents)))
    return reads


def pass_through(source):
    """The variable a template is nothing but (`{{ x }}`), else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = JINJA.parse(source.strip())
    except jinja2.TemplateSyntaxError:
        return None
    if len(tree.body) == 1 and isinstance(tree.body[0], jn.Output) and len(tree.body[0].nodes) == 1:
        only = tree.body[0].nodes[0]
        if isinstance(only, jn.Name):
            return only.name
    return None


# ------------------------------------------------------------ YAML walk
def _scalars(node, path=()):
    """(scalar node, key path) for every value (and key) of a composed YAML tree."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield key, path
                yield from _scalars(value, path + (key.value,))
            else:
                yield from _scalars(value, path + ("?",))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _scalars(item, path + (index,))
    elif isinstance(node, yaml.ScalarNode):
        yield node, path


def _line_of(lines, node, variable, jinja_line):
    """The file line of a read inside a YAML scalar (folded scalars lose their line breaks)."""
    first, last = node.start_mark.line, node.end_mark.line
    pattern = re.compile(r"(?<![\w])%s(?![\w])" % re.escape(variable))
    candidates = [n for n in range(first, min(last, len(lines) - 1) + 1) if pattern.search(lines[n])]
    guess = first + (1 if node.style in ("|", ">") else 0) + jinja_line - 1
    if not candidates:
        return guess + 1
    return min(candidates, key=lambda n: abs(n - guess)) + 1


def _module_of(path):
    """The module a task option belongs to: path (..., module, option)."""
    return path[-2] if len(path) >= 2 and isinstance(path[-2], str) else None


def scan_yaml(path, text, tracked, rel, module_options=frozenset(), re_exports=frozenset()):
    findings, exports = [], []
    lines = text.splitlines()
    for document in yaml.compose_all(text, Loader=_AnyTagLoader):
        if document is None:
            continue
        for node, key_path in _scalars(document):
            value = node.value
            if not isinstance(value, str):
                continue
            key = key_path[-1] if key_path else None
            list_key = next((k for k in reversed(key_path) if isinstance(k, str)), None)
            bare = node.tag.endswith(":str") and (key in BARE_EXPRESSION_KEYS or (
                isinstance(key, int) and list_key in BARE_EXPRESSION_KEYS))
            if bare and "{{" not in value and "{%" not in value:
                source = "{{ %s }}" % value
            elif "{{" in value or "{%" in value:
                source = value
            else:
                continue
            try:
                reads = jinja_reads(source, tracked)
            except jinja2.TemplateSyntaxError as err:
                findings.append(Finding(rel, node.start_mark.line + 1, "-", "Jinja does not parse: %s" % err))
                continue
            unsafe = [(name, line) for name, line, safe in reads if not safe]
            if not unsafe:
                continue
            whole = pass_through(source)
            if whole is not None and len(reads) == 1 and isinstance(key, str) and not bare:
                if (_module_of(key_path), key) in module_options:
                    exports.append(("module", _module_of(key_path), key))
                    continue
                if (whole, key) in re_exports:
                    exports.append(("re-export", whole, key))
                    continue
            for name, jinja_line in unsafe:
                how = "read without | bool"
                if whole is not None and isinstance(key, str):
                    how = "handed on raw as %s (neither | bool nor an allow-listed bool option)" % key
                elif isinstance(key, str) and (path.parent.name in ("vars", "defaults") or any(
                        part in ("vars", "set_fact", "ansible.builtin.set_fact") for part in key_path)):
                    how = "combined raw into %s" % key
                findings.append(Finding(rel, _line_of(lines, node, name, jinja_line), name, how))
    return findings, exports


def scan_template(text, tracked, rel):
    try:
        reads = jinja_reads(text, tracked)
    except jinja2.TemplateSyntaxError as err:
        return [Finding(rel, err.lineno, "-", "Jinja does not parse: %s" % err)]
    return [Finding(rel, line, name, "read without | bool") for name, line, safe in reads if not safe]


def scan(root=REPO_ROOT, tracked=None, module_options=None, re_exports=None):
    """(findings, allow-list entries used) over the whole collection."""
    tracked = set(spec_booleans(root) if tracked is None else tracked)
    module_options = MODULE_BOOL_OPTIONS if module_options is None else module_options
    re_exports = RE_EXPORTS if re_exports is None else re_exports
    tracked |= {new for old, new in re_exports if old in tracked}
    findings, used = [], []
    for path in scanned_files(root):
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        if "/templates/" in "/" + rel:
            found = scan_template(text, tracked, rel)
        elif path.suffix in (".yml", ".yaml"):
            found, exports = scan_yaml(path, text, tracked, rel, module_options, re_exports)
            used.extend(exports)
        else:
            continue
        findings.extend(found)
    return findings, used


@functools.lru_cache(maxsize=None)
def collection_scan():
    return scan()


def _report(findings):
    return "\n".join("%s:%s: %s %s" % (f.path, f.line, f.variable, f.how) for f in findings)


# ------------------------------------------------------------ the collection
SPEC_BOOLEANS = spec_booleans()


def test_the_argument_specs_have_booleans():
    # A scanner that tracks nothing passes trivially.
    assert len(SPEC_BOOLEANS) >= 15, SPEC_BOOLEANS
    assert "repository_decoupled" in SPEC_BOOLEANS


def test_booleans_are_top_level_variables():
    # Sub-options (`x.y`) are read as attributes of their parent, which this
    # scanner does not follow: extend it before adding one.
    assert [name for name in SPEC_BOOLEANS if "." in name] == []


@pytest.mark.parametrize("variable", sorted(SPEC_BOOLEANS))
def test_every_read_goes_through_bool(variable):
    findings, _used = collection_scan()
    mine = [f for f in findings if f.variable == variable]
    assert not mine, "%s (%s) is read raw; use `%s | bool`:\n%s" % (
        variable, SPEC_BOOLEANS[variable], variable, _report(mine))


def test_every_jinja_expression_parses():
    findings, _used = collection_scan()
    broken = [f for f in findings if f.variable == "-"]
    assert not broken, _report(broken)


def test_allow_lists_have_no_stale_entries():
    _findings, used = collection_scan()
    used_modules = {(module, option) for kind, module, option in used if kind == "module"}
    used_exports = {(old, new) for kind, old, new in used if kind == "re-export"}
    assert MODULE_BOOL_OPTIONS - used_modules == set()
    assert RE_EXPORTS - used_exports == set()


def _module_documentation(fqcn):
    namespace, collection, name = fqcn.split(".")
    if (namespace, collection) == ("tritonfleet", "serving"):
        source = (REPO_ROOT / "plugins" / "modules" / (name + ".py")).read_text()
    else:
        assert (namespace, collection) == ("ansible", "builtin"), fqcn
        import ansible.modules
        source = (pathlib.Path(ansible.modules.__file__).parent / (name + ".py")).read_text()
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and any(getattr(t, "id", "") == "DOCUMENTATION" for t in statement.targets):
            return yaml.safe_load(statement.value.value)
    raise AssertionError("no DOCUMENTATION in " + fqcn)


# The sample tree's entry too, so the check itself keeps running while the list is empty.
SAMPLE_MODULE_OPTIONS = {("tritonfleet.serving.triton_infer", "stream")}


@pytest.mark.parametrize("module,option", sorted(MODULE_BOOL_OPTIONS | SAMPLE_MODULE_OPTIONS))
def test_module_allow_list_is_typed_bool(module, option):
    assert _module_documentation(module)["options"][option]["type"] == "bool"


# ------------------------------------------------------------ the scanner itself
SAMPLE_SPEC = """\
argument_specs:
  main:
    options:
      demo_flag: {type: bool, default: true}
      demo_other: {type: bool, default: false}
      demo_name: {type: str}
"""

SAMPLE_TASKS = """\
---
- name: Fine
  ansible.builtin.debug:
    msg: "{{ 'on' if demo_flag | bool else 'off' }} demo_flag=false is only text"
  when:
    - demo_flag | bool
    - demo_other | default(false) | bool
    - demo_other is defined
- name: Bare when
  ansible.builtin.debug:
    msg: x
  when: demo_flag
- name: Raw in a condition
  ansible.builtin.debug:
    msg: "{{ 'on' if demo_other else 'off' }}"
- name: Raw through hostvars
  ansible.builtin.debug:
    msg: "{{ hostvars['h'].demo_flag }}"
- name: Allow-listed module option
  tritonfleet.serving.triton_infer:
    stream: "{{ demo_flag }}"
- name: Not an allow-listed option
  ansible.builtin.debug:
    msg: "{{ demo_flag }}"
- name: Re-exported, read raw
  ansible.builtin.debug:
    msg: x
  when: __demo_copy
"""

SAMPLE_VARS = """\
---
__demo_both: "{{ demo_flag | bool and demo_other | bool }}"
__demo_derived: >-
  {{ demo_name | length > 0
     and demo_other }}
__demo_via_lookup: "{{ lookup('vars', 'demo_flag') | bool }}"
__demo_default_only: "{{ demo_other | default(true) }}"
__demo_fallback: "{{ __demo_fact | default(demo_flag | default(true)) | bool }}"
__demo_fallback_raw: "{{ __demo_fact | default(demo_flag) }}"
__demo_copy: "{{ demo_other }}"
"""

SAMPLE_TEMPLATE = """\
{#- demo_flag in a comment -#}
{% if demo_flag | bool %}a{% endif %}
{{ policy(demo_other) }}
"""


@pytest.fixture
def sample_tree(tmp_path):
    (tmp_path / "roles/demo/meta").mkdir(parents=True)
    (tmp_path / "roles/demo/meta/argument_specs.yml").write_text(SAMPLE_SPEC)
    for rel, text in (("roles/demo/tasks/main.yml", SAMPLE_TASKS), ("roles/demo/vars/main.yml", SAMPLE_VARS),
                      ("roles/demo/templates/x/config.pbtxt.j2", SAMPLE_TEMPLATE)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_the_scanner_finds_raw_reads_and_accepts_bool_ones(sample_tree):
    assert spec_booleans(sample_tree) == {"demo_flag": "roles/demo/meta/argument_specs.yml",
                                          "demo_other": "roles/demo/meta/argument_specs.yml"}
    findings, used = scan(sample_tree, module_options=SAMPLE_MODULE_OPTIONS, re_exports={("demo_other", "__demo_copy")})
    found = sorted((f.path, f.line, f.variable) for f in findings)
    assert found == [
        ("roles/demo/tasks/main.yml", 12, "demo_flag"),
        ("roles/demo/tasks/main.yml", 15, "demo_other"),
        ("roles/demo/tasks/main.yml", 18, "demo_flag"),
        ("roles/demo/tasks/main.yml", 24, "demo_flag"),
        ("roles/demo/tasks/main.yml", 28, "__demo_copy"),
        ("roles/demo/templates/x/config.pbtxt.j2", 3, "demo_other"),
        ("roles/demo/vars/main.yml", 5, "demo_other"),
        ("roles/demo/vars/main.yml", 7, "demo_other"),
        ("roles/demo/vars/main.yml", 9, "demo_flag"),
    ], _report(findings)
    assert used == [("module", "tritonfleet.serving.triton_infer", "stream"), ("re-export", "demo_other", "__demo_copy")]
    how = {(f.path, f.line): f.how for f in findings}
    assert how[("roles/demo/vars/main.yml", 5)] == "combined raw into __demo_derived"
    assert how[("roles/demo/tasks/main.yml", 24)].startswith("handed on raw as msg")
