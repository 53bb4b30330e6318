# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What each attribute means, once for every module of the collection. A module
    # that changes things states its own support and details next to its options;
    # read-only and facts modules take INFO_MODULE / FACTS instead.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Runs with C(--check) and reports the change a normal run would make, without making it.
  diff_mode:
    description:
      - With C(--diff), returns what changed (in check mode, what would change) as before and after text.
  platform:
    description: Systems the module runs on.
    support: N/A
    platforms: posix
"""

    # A module that only reads: check mode is a normal run.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so check mode runs exactly as a normal run does and returns the same results.
      - C(changed) is always V(false).
  diff_mode:
    support: N/A
    details:
      - The module changes nothing, so there is nothing to diff.
"""

    # A module that sets host facts (use together with INFO_MODULE when it only reads).
    FACTS = r"""
options: {}
attributes:
  facts:
    description: Returns C(ansible_facts), which update the host's facts for the rest of the play.
    support: full
"""

    # The modules of the engine action group (meta/runtime.yml).
    ACTIONGROUP_ENGINE = r"""
options: {}
attributes:
  action_group:
    description: One C(module_defaults) entry, C(group/tritonfleet.serving.engine), can set this module's options.
    support: full
    membership:
      - tritonfleet.serving.engine
"""
