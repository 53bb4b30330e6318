# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: upstream_model_repository
author: tritonfleet maintainers (@tritonfleet)
version_added: "0.2.0"
short_description: read a model repository in upstream's all_models/inflight_batcher_llm layout
description:
  - Reads, on the controller, C(<directory>/<model>/config.pbtxt) (a template with C(${name}) placeholders, as
    tensorrtllm_backend ships them) and lists the files of C(<directory>/<model>/1/) for each of O(models).
  - A model whose directory or config.pbtxt is missing is returned with C(config) null, so a preflight can
    name every missing file at once.
options:
  _terms:
    description: The directory (absolute path on the controller).
    required: true
    type: list
    elements: path
  models:
    description: The models to read.
    type: list
    elements: str
    default: [preprocessing, tensorrt_llm, postprocessing, ensemble]
  version_dir:
    description: The version directory of upstream's layout whose files are listed.
    type: str
    default: "1"
seealso:
  - plugin: tritonfleet.serving.fill_placeholders
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Show which placeholders the user's ensemble template has
  ansible.builtin.debug:
    msg: >-
      {{ (query('tritonfleet.serving.upstream_model_repository', '/srv/tensorrtllm_backend/all_models/inflight_batcher_llm',
                models=['ensemble']) | first).config | regex_findall('\$\{(\w+)\}') }}
"""

RETURN = r"""
_raw:
  description: One entry per model.
  type: list
  elements: dict
  contains:
    model:
      description: The model's name.
      type: str
    config_path:
      description: Path of its config.pbtxt.
      type: str
    config:
      description: The text of its config.pbtxt; null when it is missing.
      type: str
    version_path:
      description: Path of its version directory.
      type: str
    files:
      description: Paths relative to the version directory of every regular file in it, sorted.
      type: list
      elements: str
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.lookup import LookupBase


def read_model(directory, model, version_dir="1"):
    config_path = os.path.join(directory, model, "config.pbtxt")
    version_path = os.path.join(directory, model, version_dir)
    entry = {"model": model, "config_path": config_path, "config": None, "version_path": version_path, "files": []}
    if os.path.isfile(config_path):
        with open(config_path, "rb") as handle:
            entry["config"] = to_text(handle.read(), errors="surrogate_or_strict")
    for root, dirs, files in os.walk(version_path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.isfile(path) and not name.endswith(".pyc"):
                entry["files"].append(os.path.relpath(path, version_path))
    return entry


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        models = self.get_option("models")
        version_dir = self.get_option("version_dir")
        result = []
        for term in terms:
            directory = to_native(term)
            if not os.path.isabs(directory):
                raise AnsibleLookupError("%s is not an absolute path" % directory)
            try:
                result.extend(read_model(directory, model, version_dir) for model in models)
            except (OSError, UnicodeError) as exc:
                raise AnsibleLookupError("cannot read %s: %s" % (directory, to_native(exc)))
        return result
