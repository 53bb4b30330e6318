# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host-to-host copies of a directory (an engine, a checkpoint) without the controller in the data path.

The host that has the directory serves its files read-only over HTTP for a
limited time (``Share``), under a random token and with HTTP range requests;
each host that needs it downloads every file from there (``fetch``), resuming
a partial file after an interruption and checking each file against the
sha256 the source announced (an engine's manifest records them when it is
built). Only the Python standard library is needed on either side.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import re
import signal
import socket
import threading
import time

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote
from ansible.module_utils.urls import open_url

from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import file_sha256

CHUNK = 1 << 20
PARTIAL_SUFFIX = ".part"
INDEX = "index.json"
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class TransferError(Exception):
    pass


def list_files(root, known=None):
    """``[{path, size, sha256}]`` of every file under ``root`` (relative paths, sorted).

    ``known`` maps a relative path to the sha256 recorded earlier (an engine
    manifest's ``files``); those files are not read again when their size matches.
    """
    known = known or {}
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if name.endswith(PARTIAL_SUFFIX):
                continue
            rel = os.path.relpath(full, root)
            size = os.path.getsize(full)
            entry = known.get(rel)
            sha = entry["sha256"] if entry and entry.get("size") == size else file_sha256(full)
            files.append(dict(path=rel, size=size, sha256=sha))
    return sorted(files, key=lambda f: f["path"])


def _handler_class(root, files, token, activity):
    from ansible.module_utils.six.moves.BaseHTTPServer import BaseHTTPRequestHandler

    by_path = dict((f["path"], f) for f in files)
    index = json.dumps(dict(files=files)).encode()
    prefix = "/%s/" % token

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_HEAD(self):
            self.answer(send_body=False)

        def do_GET(self):
            self.answer(send_body=True)

        def answer(self, send_body):
            activity["last"] = time.time()
            activity["busy"] += 1
            try:
                self.respond(send_body)
            except (OSError, socket.error):
                pass
            finally:
                activity["busy"] -= 1
                activity["last"] = time.time()

        def respond(self, send_body):
            if not self.path.startswith(prefix):
                return self.plain(403, b"forbidden\n", send_body)
            from ansible.module_utils.six.moves.urllib.parse import unquote
            rel = unquote(self.path[len(prefix):])
            if rel == INDEX:
                return self.plain(200, index, send_body, "application/json")
            entry = by_path.get(rel)
            if entry is None:
                return self.plain(404, b"not shared\n", send_body)
            size = entry["size"]
            start, end = 0, size - 1
            wanted = RANGE.match(self.headers.get("Range", ""))
            if wanted:
                start = int(wanted.group(1))
                if wanted.group(2):
                    end = min(int(wanted.group(2)), size - 1)
                if start >= size and size > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
            length = max(end - start + 1, 0)
            self.send_response(206 if wanted else 200)
            if wanted:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not send_body:
                return None
            with open(os.path.join(root, rel), "rb") as handle:
                handle.seek(start)
                left = length
                while left > 0:
                    chunk = handle.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
            return None

        def plain(self, status, body, send_body, content_type="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

    return Handler


def serve(root, files, address, port, token, idle_timeout, lifetime, ready=None):
    """Serve ``files`` of ``root`` until ``idle_timeout`` s pass without a request, or ``lifetime`` s in all."""
    from ansible.module_utils.six.moves.socketserver import ThreadingMixIn
    from ansible.module_utils.six.moves.BaseHTTPServer import HTTPServer

    class Server(ThreadingMixIn, HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

    activity = dict(last=time.time(), busy=0)
    server = Server((address, port), _handler_class(root, files, token, activity))
    started = time.time()

    def watchdog():
        while True:
            time.sleep(0.5)
            now = time.time()
            idle = activity["busy"] == 0 and now - activity["last"] > idle_timeout
            if idle or now - started > lifetime:
                server.shutdown()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    if ready is not None:
        ready()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


class Share(object):
    """The serving process of one shared directory on this host, recorded in ``state_file``."""

    def __init__(self, state_file):
        self.state_file = state_file

    def recorded(self):
        try:
            with open(self.state_file) as handle:
                return json.load(handle)
        except (OSError, IOError, ValueError):
            return None

    @staticmethod
    def alive(pid):
        try:
            os.kill(pid, 0)
        except OSError as exc:
            return exc.errno == errno.EPERM
        try:
            with open("/proc/%d/stat" % pid) as handle:
                return handle.read().split(")")[-1].split()[0] != "Z"
        except (OSError, IOError):
            return True

    def running(self):
        state = self.recorded()
        if state and self.alive(int(state.get("pid", 0))):
            return state
        return None

    def stop(self, timeout=10):
        """Stop the recorded server; True when one was running."""
        state = self.running()
        if state:
            pid = int(state["pid"])
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
            deadline = time.time() + timeout
            while self.alive(pid) and time.time() < deadline:
                time.sleep(0.1)
            if self.alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if os.path.exists(self.state_file):
            os.remove(self.state_file)
        return state is not None

    def start(self, root, files, address, port, token, idle_timeout, lifetime):
        """Start a detached server (double fork) and wait until it accepts connections; returns its pid."""
        self.stop()
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the detached process
            os.close(read_end)
            try:
                os.setsid()
                if os.fork() != 0:
                    os._exit(0)
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                # Inherited descriptors (the connection's pipes) would keep Ansible waiting for this task.
                os.closerange(3, write_end)
                os.closerange(write_end + 1, 65536)

                def ready():
                    os.write(write_end, b"%d\n" % os.getpid())
                    os.close(write_end)

                serve(root, files, address, port, token, idle_timeout, lifetime, ready)
            except BaseException as exc:
                try:
                    os.write(write_end, ("error %s\n" % exc).encode())
                except OSError:
                    pass
            os._exit(0)
        os.close(write_end)
        os.waitpid(child, 0)
        answer = b""
        while True:
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            answer += chunk
        os.close(read_end)
        text = answer.decode(errors="replace").strip()
        if not text.isdigit():
            raise TransferError("could not serve %s on %s:%d: %s" % (root, address, port, text or "the server exited"))
        pid = int(text)
        os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
        with open(self.state_file, "w") as handle:
            json.dump(dict(pid=pid, root=root, address=address, port=port, files=len(files),
                           bytes=sum(f["size"] for f in files), started=time.time()), handle)
        return pid


def _open(url, timeout, start=0):
    headers = {"Range": "bytes=%d-" % start} if start else {}
    # Plain HTTP on the hosts' network, no proxy: the source is a host of the play.
    return open_url(url, headers=headers, timeout=timeout, use_proxy=False, follow_redirects="none")


def read_index(base_url, token, timeout):
    url = "%s/%s/%s" % (base_url.rstrip("/"), token, INDEX)
    try:
        with _open(url, timeout) as answer:
            return json.loads(answer.read().decode())["files"]
    except HTTPError as exc:
        raise TransferError("the source refused the list of files (HTTP %d): is it sharing under this token?" % exc.code)
    except (URLError, OSError, socket.timeout, ValueError, KeyError) as exc:
        raise TransferError("cannot read the list of files from %s: %s" % (base_url, getattr(exc, "reason", exc)))


def _resume_digest(path):
    """sha256 object over the bytes already in ``path`` (a partial download), and their count."""
    digest = hashlib.sha256()
    done = 0
    if os.path.exists(path):
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(4 << 20), b""):
                digest.update(chunk)
                done += len(chunk)
    return digest, done


def fetch_file(base_url, token, entry, dest, timeout, attempts):
    """Download one file into ``dest``; returns (bytes downloaded, resumed from byte N or 0)."""
    target = os.path.join(dest, entry["path"])
    partial = target + PARTIAL_SUFFIX
    os.makedirs(os.path.dirname(target), exist_ok=True)
    url = "%s/%s/%s" % (base_url.rstrip("/"), token, quote(entry["path"]))
    downloaded, resumed_from, last_error = 0, 0, None
    for attempt in range(attempts):
        digest, done = _resume_digest(partial)
        if done > entry["size"]:
            os.remove(partial)
            digest, done = hashlib.sha256(), 0
        if attempt == 0 and done:
            resumed_from = done
        try:
            if done < entry["size"]:
                with _open(url, timeout, done) as answer:
                    if done and answer.status != 206:
                        digest, done = hashlib.sha256(), 0
                        mode = "wb"
                    else:
                        mode = "ab"
                    with open(partial, mode) as handle:
                        for chunk in iter(lambda: answer.read(CHUNK), b""):
                            handle.write(chunk)
                            digest.update(chunk)
                            done += len(chunk)
                            downloaded += len(chunk)
            else:
                open(partial, "ab").close()
        except (URLError, HTTPError, OSError, socket.timeout, http_client.HTTPException) as exc:
            last_error = getattr(exc, "reason", exc)
            time.sleep(min(2 ** attempt, 10))
            continue
        if done != entry["size"]:
            last_error = "got %d of %d bytes" % (done, entry["size"])
            continue
        if digest.hexdigest() != entry["sha256"]:
            os.remove(partial)
            raise TransferError("%s: sha256 %s does not match the source's %s; the partial copy was removed"
                                % (entry["path"], digest.hexdigest()[:16], entry["sha256"][:16]))
        os.chmod(partial, 0o644)
        os.rename(partial, target)
        return downloaded, resumed_from
    raise TransferError("%s: %d attempt(s) failed, last: %s; the partial copy is kept and the next run resumes it"
                        % (entry["path"], attempts, last_error))


def receiving_dir(dest):
    """Where a copy that replaces ``dest`` is assembled (kept after an interruption, to resume)."""
    return dest.rstrip("/") + ".receiving"


def replace_dir(new, dest):
    """Put the directory ``new`` in place of ``dest``: two renames, then the old tree is removed."""
    import shutil
    old = dest.rstrip("/") + ".replaced"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.lexists(dest):
        os.rename(dest, old)
    os.rename(new, dest)
    shutil.rmtree(old, ignore_errors=True)


def fetch(base_url, token, dest, timeout=60, attempts=5):
    """Make ``dest`` hold every file the source at ``base_url`` shares, checked; returns a summary."""
    started = time.time()
    files = read_index(base_url, token, timeout)
    summary = dict(files=len(files), bytes=sum(f["size"] for f in files), downloaded=0, fetched=[],
                   resumed=[], already_present=[])
    for entry in files:
        target = os.path.join(dest, entry["path"])
        if os.path.isfile(target) and os.path.getsize(target) == entry["size"] and file_sha256(target) == entry["sha256"]:
            summary["already_present"].append(entry["path"])
            continue
        downloaded, resumed_from = fetch_file(base_url, token, entry, dest, timeout, attempts)
        summary["downloaded"] += downloaded
        summary["fetched"].append(entry["path"])
        if resumed_from:
            summary["resumed"].append(dict(path=entry["path"], from_byte=resumed_from))
    summary["seconds"] = round(time.time() - started, 3)
    return summary
