# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Local processes and their log files: shared by the supervisor and the health checks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os


def process_running(pid):
    """True while process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        if getattr(exc, 'errno', None) != errno.EPERM:  # EPERM: it exists, owned by someone else
            return False
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            stat = handle.read()
        # the state follows the ')' that closes the command name
        state = stat[stat.rindex(b')') + 2:stat.rindex(b')') + 3]
        if state in (b'Z', b'X'):
            return False
    except (IOError, OSError, ValueError):
        pass
    return True


def tail_file(path, lines=40, block_size=8192, max_bytes=4 * 1024 * 1024):
    """The last ``lines`` lines of ``path`` as text (undecodable bytes replaced).

    Reads backwards in blocks, at most ``max_bytes``.  A missing or
    unreadable file raises (OSError/IOError); callers decide what that means.
    """
    if lines <= 0:
        return []
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        pos = end
        chunks = []
        newlines = 0
        while pos > 0 and newlines <= lines and end - pos < max_bytes:
            size = min(block_size, pos, max_bytes - (end - pos))
            pos -= size
            handle.seek(pos)
            chunk = handle.read(size)
            chunks.append(chunk)
            newlines += chunk.count(b'\n')
    data = b''.join(reversed(chunks))
    text = data.decode('utf-8', 'replace')
    result = text.splitlines()
    if pos > 0 and result:
        result = result[1:]  # the first line is probably cut
    return [line.rstrip('\r') for line in result[-lines:]]
