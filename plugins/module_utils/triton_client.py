# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A Triton server as the tritonfleet.serving modules reach it, and how its readiness is read.

Contents:
  * guarded imports of ``tritonclient`` (http and grpc) and ``numpy``, and
    require_tritonclient() for a module's missing-library failure;
  * URL normalisation and a small client wrapper that hides the http/grpc
    differences (per-call timeouts, JSON-shaped answers);
  * a deadline and a poll-until loop on the monotonic clock;
  * model state from the repository index, and model load failures found in
    the server's log.

Text generation through the ensemble is in triton_generate.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import re
import time
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native, to_text

NUMPY_IMPORT_ERROR = None
try:
    # triton_generate's numpy (re-exported), checked by require_tritonclient(numpy_needed=True).
    import numpy as np  # noqa: F401 pylint: disable=unused-import
    HAS_NUMPY = True
except ImportError:
    np = None
    HAS_NUMPY = False
    NUMPY_IMPORT_ERROR = traceback.format_exc()

TRITONCLIENT_IMPORT_ERROR = None
try:
    from tritonclient.utils import InferenceServerException  # pylint: disable=unused-import
    HAS_TRITONCLIENT = True
except ImportError:
    HAS_TRITONCLIENT = False
    TRITONCLIENT_IMPORT_ERROR = traceback.format_exc()

    class InferenceServerException(Exception):  # noqa: N818 - mirrors tritonclient's name
        pass


def _import_client(protocol):
    """(tritonclient.<protocol> module or None, the traceback when it cannot be imported)."""
    try:
        return importlib.import_module('tritonclient.' + protocol), None
    except Exception:  # ImportError, or gevent/geventhttpclient, grpcio/protobuf failing to import
        return None, traceback.format_exc()


triton_http, TRITONCLIENT_HTTP_IMPORT_ERROR = _import_client('http')
HAS_TRITONCLIENT_HTTP = triton_http is not None
triton_grpc, TRITONCLIENT_GRPC_IMPORT_ERROR = _import_client('grpc')
HAS_TRITONCLIENT_GRPC = triton_grpc is not None


PROTOCOLS = ('http', 'grpc')
DEFAULT_PORTS = {'http': 8000, 'grpc': 8001}
SECURE_SCHEMES = ('https', 'grpcs')
KNOWN_SCHEMES = ('http', 'https', 'grpc', 'grpcs')


class TritonError(Exception):
    """An error talking to Triton; ``details`` carries partial results."""

    def __init__(self, msg, **details):
        super(TritonError, self).__init__(msg)
        self.msg = msg
        self.details = details


def require_tritonclient(module, protocol, numpy_needed=False):
    """fail_json with missing_required_lib() unless the client for ``protocol`` imports."""
    missing = [(library, error) for library, ok, error in (
        ('tritonclient[%s]' % protocol, HAS_TRITONCLIENT, TRITONCLIENT_IMPORT_ERROR),
        ('tritonclient[http]', protocol != 'http' or HAS_TRITONCLIENT_HTTP, TRITONCLIENT_HTTP_IMPORT_ERROR),
        ('tritonclient[grpc]', protocol != 'grpc' or HAS_TRITONCLIENT_GRPC, TRITONCLIENT_GRPC_IMPORT_ERROR),
    ) if not ok]
    if missing:
        library, error = missing[0]
        module.fail_json(msg=missing_required_lib(library, url='https://pypi.org/project/tritonclient/'),
                         exception=error)
    if numpy_needed and not HAS_NUMPY:
        module.fail_json(msg=missing_required_lib('numpy'), exception=NUMPY_IMPORT_ERROR)


def error_text(exc):
    """A one-line description of an exception (tritonclient's own message when it has one)."""
    msg = None
    message = getattr(exc, 'message', None)
    if callable(message):
        try:
            msg = message()
        except Exception:
            msg = None
    if not msg:
        msg = to_native(exc)
    if not msg:
        msg = exc.__class__.__name__
    return ' '.join(to_text(msg).split())


def one_line(text, limit=500):
    """Collapse whitespace (Triton reasons carry tracebacks) and cap the length."""
    text = ' '.join(to_text(text or '').split())
    if len(text) > limit:
        text = text[:limit - 3] + '...'
    return text


# --------------------------------------------------------------------------
# URLs and clients
# --------------------------------------------------------------------------

class Endpoint(object):
    """A normalised Triton endpoint.

    ``address`` is what tritonclient wants (``host:port`` plus an optional
    path prefix for http, never a scheme); ``base_url`` is the full URL for
    humans and for raw HTTP requests.
    """

    def __init__(self, protocol, host, port, path='', ssl=False):
        self.protocol = protocol
        self.host = host
        self.port = port
        self.path = path
        self.ssl = ssl

    @property
    def address(self):
        return '%s:%d%s' % (self.host, self.port, self.path)

    @property
    def base_url(self):
        if self.protocol == 'http':
            scheme = 'https' if self.ssl else 'http'
        else:
            scheme = 'grpcs' if self.ssl else 'grpc'
        return '%s://%s' % (scheme, self.address)

    def __repr__(self):
        return 'Endpoint(%s)' % self.base_url


def normalize_url(url, protocol):
    """Parse ``url`` for ``protocol`` ('http' or 'grpc') into an Endpoint.

    Accepts ``host``, ``host:port``, ``[v6]:port`` and the same with an
    ``http://``, ``https://``, ``grpc://`` or ``grpcs://`` scheme and a
    trailing slash.  A missing URL means ``127.0.0.1`` and a missing port the
    protocol's default (8000 http, 8001 grpc).  ``https``/``grpcs`` turn TLS
    on.  A path prefix is kept for http (reverse proxies) and refused for grpc.
    Raises ValueError.
    """
    if protocol not in PROTOCOLS:
        raise ValueError('protocol must be one of %s, got %r' % (', '.join(PROTOCOLS), protocol))
    text = to_text(url if url is not None else '').strip()
    if not text:
        text = '127.0.0.1'
    ssl = False
    match = re.match(r'^([A-Za-z][A-Za-z0-9+.-]*)://', text)
    if match:
        scheme = match.group(1).lower()
        if scheme not in KNOWN_SCHEMES:
            raise ValueError('unsupported URL scheme %r in %r (use http, https, grpc or grpcs)' % (scheme, url))
        ssl = scheme in SECURE_SCHEMES
        text = text[match.end():]
    hostport, sep, path = text.partition('/')
    path = ('/' + path).rstrip('/') if sep else ''
    if path and protocol == 'grpc':
        raise ValueError('a gRPC URL cannot have a path: %r' % (url,))
    if not hostport:
        raise ValueError('no host in URL %r' % (url,))
    if hostport.startswith('['):
        end = hostport.find(']')
        if end < 0:
            raise ValueError('unterminated IPv6 address in URL %r' % (url,))
        host = hostport[:end + 1]
        rest = hostport[end + 1:]
        if rest and not rest.startswith(':'):
            raise ValueError('cannot parse URL %r' % (url,))
        port_text = rest[1:] if rest else ''
    elif hostport.count(':') > 1:
        raise ValueError('write IPv6 addresses in brackets, e.g. [::1]:8000; got %r' % (url,))
    else:
        host, dummy, port_text = hostport.partition(':')
        if not host:
            raise ValueError('no host in URL %r' % (url,))
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError('invalid port %r in URL %r' % (port_text, url))
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[protocol]
    return Endpoint(protocol, host, port, path, ssl)


class TritonClient(object):
    """http/grpc tritonclient behind one interface with JSON-shaped answers.

    Every call takes an optional ``timeout`` (seconds); the grpc client gets
    it as ``client_timeout``, the http client applies its connection/network
    timeouts (set when it is built).  Errors propagate as raised by
    tritonclient (InferenceServerException, socket errors ...).
    """

    def __init__(self, endpoint, request_timeout=5.0, verbose=False):
        self.endpoint = endpoint
        self.protocol = endpoint.protocol
        self.request_timeout = request_timeout
        self.verbose = verbose
        if self.protocol == 'http':
            self.raw = triton_http.InferenceServerClient(
                url=endpoint.address, verbose=verbose, ssl=endpoint.ssl,
                connection_timeout=request_timeout, network_timeout=request_timeout)
        else:
            self.raw = triton_grpc.InferenceServerClient(
                url=endpoint.address, verbose=verbose, ssl=endpoint.ssl)

    def _timeout(self, timeout):
        return self.request_timeout if timeout is None else timeout

    def live(self, timeout=None):
        if self.protocol == 'grpc':
            return bool(self.raw.is_server_live(client_timeout=self._timeout(timeout)))
        return bool(self.raw.is_server_live())

    def ready(self, timeout=None):
        if self.protocol == 'grpc':
            return bool(self.raw.is_server_ready(client_timeout=self._timeout(timeout)))
        return bool(self.raw.is_server_ready())

    def model_ready(self, name, version='', timeout=None):
        version = to_text(version or '')
        if self.protocol == 'grpc':
            return bool(self.raw.is_model_ready(name, version, client_timeout=self._timeout(timeout)))
        return bool(self.raw.is_model_ready(name, version))

    def server_metadata(self, timeout=None):
        if self.protocol == 'grpc':
            data = self.raw.get_server_metadata(as_json=True, client_timeout=self._timeout(timeout))
        else:
            data = self.raw.get_server_metadata()
        data = data or {}
        return {
            'name': data.get('name', ''),
            'version': data.get('version', ''),
            'extensions': list(data.get('extensions') or []),
        }

    def repository_index(self, timeout=None):
        if self.protocol == 'grpc':
            data = self.raw.get_model_repository_index(as_json=True, client_timeout=self._timeout(timeout))
        else:
            data = self.raw.get_model_repository_index()
        return normalize_repository_index(data)

    def _long_http_call(self, call, timeout):
        """Run ``call(raw_http_client)`` allowing ``timeout`` seconds for the answer.

        The http client's network timeout is fixed when it is built, and a
        load answers only once the model is loaded (minutes for a large
        engine), so a longer call gets a client of its own.
        """
        timeout = self._timeout(timeout)
        if timeout <= self.request_timeout:
            return call(self.raw)
        raw = triton_http.InferenceServerClient(
            url=self.endpoint.address, verbose=self.verbose, ssl=self.endpoint.ssl,
            connection_timeout=self.request_timeout, network_timeout=timeout)
        try:
            return call(raw)
        finally:
            try:
                raw.close()
            except Exception:
                pass

    def load_model(self, name, timeout=None):
        """Load, or reload when loaded, model ``name`` (explicit model control); returns when Triton has finished.

        Triton loads the versions the model's version policy selects; a failed
        reload leaves the versions that were serving in place.
        """
        if self.protocol == 'grpc':
            self.raw.load_model(name, client_timeout=self._timeout(timeout))
        else:
            self._long_http_call(lambda raw: raw.load_model(name), timeout)

    def unload_model(self, name, unload_dependents=False, timeout=None):
        """Ask Triton to unload model ``name``; Triton answers at once and unloads in the background."""
        unload_dependents = bool(unload_dependents)
        if self.protocol == 'grpc':
            self.raw.unload_model(name, unload_dependents=unload_dependents, client_timeout=self._timeout(timeout))
        else:
            self._long_http_call(lambda raw: raw.unload_model(name, unload_dependents=unload_dependents), timeout)

    def close(self):
        try:
            self.raw.close()
        except Exception:
            pass


def make_client(protocol, url, request_timeout=5.0, verbose=False):
    """Build a TritonClient for ``url``/``protocol`` (see normalize_url)."""
    return TritonClient(normalize_url(url, protocol), request_timeout=request_timeout, verbose=verbose)


# --------------------------------------------------------------------------
# Deadlines and polling
# --------------------------------------------------------------------------

class Deadline(object):
    """An overall time budget on a monotonic clock."""

    def __init__(self, timeout, clock=time.monotonic):
        self.timeout = float(timeout)
        self._clock = clock
        self.start = clock()

    def elapsed(self):
        return self._clock() - self.start

    def remaining(self):
        return max(0.0, self.timeout - self.elapsed())

    def expired(self):
        return self.elapsed() >= self.timeout


class PollResult(object):
    def __init__(self, ok, value, elapsed, attempts):
        self.ok = ok
        self.value = value
        self.elapsed = elapsed
        self.attempts = attempts


def poll_until(check, timeout=None, interval=0.25, deadline=None, clock=time.monotonic, sleep=time.sleep):
    """Call ``check()`` until it returns a truthy value or the deadline passes.

    ``check`` runs at least once.  Between attempts it sleeps ``interval``
    seconds (never past the deadline).  Exceptions from ``check`` propagate,
    which is how a caller stops early.  Returns a PollResult with the last
    value, the elapsed seconds (float) and the number of attempts.
    """
    if deadline is None:
        if timeout is None:
            raise ValueError('poll_until needs a timeout or a deadline')
        deadline = Deadline(timeout, clock=clock)
    if interval <= 0:
        raise ValueError('interval must be > 0')
    attempts = 0
    while True:
        attempts += 1
        value = check()
        if value:
            return PollResult(True, value, deadline.elapsed(), attempts)
        remaining = deadline.remaining()
        if remaining <= 0:
            return PollResult(False, value, deadline.elapsed(), attempts)
        sleep(min(interval, remaining))


# --------------------------------------------------------------------------
# Model states
# --------------------------------------------------------------------------

def normalize_repository_index(data):
    """List of {name, version, state, reason} from an http (list) or grpc JSON ({models: [...]}) index.

    Missing fields are None (Triton leaves ``version``/``state`` out for a
    model that is in the repository but not loaded, e.g. in explicit mode).
    """
    if isinstance(data, dict):
        data = data.get('models') or []
    entries = []
    for item in data or []:
        if not isinstance(item, dict):
            continue
        entries.append({
            'name': to_text(item.get('name') or ''),
            'version': to_text(item['version']) if item.get('version') not in (None, '') else None,
            'state': to_text(item['state']) if item.get('state') else None,
            'reason': to_text(item.get('reason') or ''),
        })
    return entries


def _version_key(entry):
    version = entry.get('version') or ''
    return (1, int(version)) if version.isdigit() else (0, 0)


def model_status(index, name, version=None):
    """The state of model ``name`` (optionally one ``version``) in a normalised index.

    With no version: READY if any version is READY (the newest READY one is
    reported), else the most telling non-ready entry (a load error before an
    'unloaded' note).  ``index=None`` means the index could not be read.
    Returns {name, version, state, reason}; ``ready`` is left to the caller.
    """
    version = to_text(version) if version not in (None, '') else None
    if index is None:
        return {'name': name, 'version': version, 'state': None, 'reason': 'model repository index not available'}
    entries = [e for e in index if e['name'] == name and (version is None or e['version'] == version)]
    if not entries:
        where = ('version %s of %s' % (version, name)) if version else name
        return {'name': name, 'version': version, 'state': None,
                'reason': '%s is not in the model repository index' % where}
    ready = [e for e in entries if e['state'] == 'READY']
    if ready:
        best = sorted(ready, key=_version_key)[-1]
    else:
        def telling(entry):
            reason = (entry['reason'] or '').strip().lower()
            return (1 if reason and reason != 'unloaded' else 0, _version_key(entry))
        best = sorted(entries, key=telling)[-1]
    return {'name': name, 'version': best['version'] if best['version'] else version,
            'state': best['state'], 'reason': best['reason'] or ''}


# States of a model version that is loaded or on its way there or out.
LOADED_STATES = ('READY', 'LOADING', 'UNLOADING')


def model_entries(index, name, version=None):
    """The entries of a normalised index for model ``name`` (and ``version``), by version number."""
    version = to_text(version) if version not in (None, '') else None
    entries = [e for e in index or [] if e['name'] == name and (version is None or e['version'] == version)]
    return sorted(entries, key=_version_key)


def is_load_failure(status):
    """True when a status is a finished, failed load (UNAVAILABLE with an error reason)."""
    reason = (status.get('reason') or '').strip().lower()
    return status.get('state') == 'UNAVAILABLE' and bool(reason) and reason != 'unloaded'


def describe_model(status):
    """'name: STATE: reason' (version shown when known)."""
    label = status['name']
    if status.get('version'):
        label = '%s (version %s)' % (label, status['version'])
    state = status.get('state') or 'no state'
    reason = one_line(status.get('reason'))
    return '%s: %s: %s' % (label, state, reason) if reason else '%s: %s' % (label, state)


# --------------------------------------------------------------------------
# Server logs
# --------------------------------------------------------------------------

_LOAD_FAILURE = re.compile(r"failed to load '(?P<name>[^']+)'(?: version (?P<version>\d+))?: (?P<reason>.*)$")


_POLL_FAILURE = re.compile(r"Poll failed for model directory '(?P<name>[^']+)': (?P<reason>.*)$")


def log_poll_failures(lines):
    """Models whose repository directory Triton could not read (a config.pbtxt it cannot parse ...).

    A load request for such a model fails with only "failed to poll from
    model repository"; the reason is in the log.  list of {name, reason}
    (last per model).
    """
    found = {}
    order = []
    for line in lines:
        match = _POLL_FAILURE.search(line)
        if not match:
            continue
        reason = match.group('reason').strip()
        if reason.endswith('"'):
            reason = reason[:-1]
        name = match.group('name')
        if name not in found:
            order.append(name)
        found[name] = {'name': name, 'reason': reason.replace('\\n', '\n').replace('\\"', '"').strip()}
    return [found[name] for name in order]


def log_load_failures(lines):
    """Model load failures found in Triton log lines: list of {name, version, reason} (last per model)."""
    found = {}
    order = []
    for line in lines:
        match = _LOAD_FAILURE.search(line)
        if not match:
            continue
        reason = match.group('reason').strip()
        if reason.endswith('"'):
            reason = reason[:-1]
        reason = reason.replace('\\n', '\n').replace('\\"', '"')
        name = match.group('name')
        if name not in found:
            order.append(name)
        found[name] = {'name': name, 'version': match.group('version'), 'reason': reason.strip()}
    return [found[name] for name in order]
