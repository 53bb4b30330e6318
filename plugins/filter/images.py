# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that parse, check and mirror container image references.

The `images` role pulls what users write in `images_triton`, `images_build`
and `images_extra`. A reference without a tag, with a moving tag, or one
Docker would read differently from what the user meant (a mirror host that
Docker takes for a Docker Hub namespace) has to be refused before any host
is touched, and the error has to say which variable is wrong and how to fix
it. The grammar below is Docker's (distribution's `reference` package):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ registry "/" ] path-component ( "/" path-component )*
    registry   := host [ ":" port ]      first component only, and only when it
                                          holds "." or ":" or is "localhost"
    path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := "sha256:" 64 hex | "sha512:" 128 hex

A name without a registry is on Docker Hub (`docker.io`), and a one-component
Docker Hub name lives under `library/`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

DEFAULT_REGISTRY = "docker.io"
# Names Docker treats as Docker Hub itself.
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
NAME_MAX_LENGTH = 255
TAG_MAX_LENGTH = 128

_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = r"(?:%s(?:\.%s)*|\[[0-9a-fA-F:.]+\])" % (_HOST_LABEL, _HOST_LABEL)
REGISTRY_RE = re.compile(r"^%s(?::[0-9]+)?$" % _HOST)
PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,%d}$" % (TAG_MAX_LENGTH - 1))
DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}
HEX_RE = re.compile(r"^[0-9a-f]+$")


def _looks_like_registry(component):
    """Docker's rule: the first component names a registry only if it could not be a path."""
    return "." in component or ":" in component or component == "localhost"


def _text(value, what):
    if not isinstance(value, str):
        raise AnsibleFilterError("%s must be a string, got %s %r" % (what, type(value).__name__, value))
    return value


def _check_registry(registry, ref):
    if not REGISTRY_RE.match(registry):
        raise AnsibleFilterError(
            "image reference %r: registry %r is not a host name or address with an optional :port"
            % (ref, registry))
    port = registry.rpartition(":")[2] if not registry.endswith("]") and ":" in registry else None
    if port is not None and not 0 < int(port) < 65536:
        raise AnsibleFilterError("image reference %r: port %s of registry %r is outside 1-65535"
                                 % (ref, port, registry))


def _check_path(path, ref):
    for component in path.split("/"):
        if not component:
            raise AnsibleFilterError("image reference %r has an empty path component (a leading, trailing "
                                     "or doubled '/')" % ref)
        if not PATH_COMPONENT_RE.match(component):
            hint = ""
            if component.lower() != component and PATH_COMPONENT_RE.match(component.lower()):
                hint = "; repository names must be lowercase (%r)" % component.lower()
            raise AnsibleFilterError(
                "image reference %r: repository component %r is invalid; components are lowercase letters and "
                "digits, joined by '.', '_', '__' or dashes%s" % (ref, component, hint))


def _check_tag(tag, ref):
    if not tag:
        raise AnsibleFilterError("image reference %r has an empty tag after ':'" % ref)
    if len(tag) > TAG_MAX_LENGTH:
        raise AnsibleFilterError("image reference %r: tag is %d characters long, more than Docker's %d"
                                 % (ref, len(tag), TAG_MAX_LENGTH))
    if not TAG_RE.match(tag):
        raise AnsibleFilterError(
            "image reference %r: tag %r is invalid; a tag is letters, digits, '_', '.' and '-', "
            "and does not start with '.' or '-'" % (ref, tag))


def _check_digest(digest, ref):
    algorithm, sep, hex_part = digest.partition(":")
    if not sep or algorithm not in DIGEST_HEX_LENGTH:
        raise AnsibleFilterError("image reference %r: digest %r is not of the form sha256:<64 hex digits>"
                                 % (ref, digest))
    want = DIGEST_HEX_LENGTH[algorithm]
    if len(hex_part) != want or not HEX_RE.match(hex_part):
        raise AnsibleFilterError("image reference %r: digest %r needs exactly %d lowercase hex digits after '%s:'"
                                 % (ref, digest, want, algorithm))


def docker_image_reference(ref, require_tag=False, allow_latest=True):
    """Parse an image reference the way Docker does.

    Returns a dict with ``registry`` (``docker.io`` when none is given),
    ``repository`` (the path, ``library/`` prefixed for one-component Docker
    Hub names), ``tag`` and ``digest`` (empty strings when absent), ``name``
    (``registry/repository``, no tag or digest) and ``reference`` (the fully
    qualified reference). ``require_tag`` refuses a reference that pins
    neither a tag nor a digest; ``allow_latest=False`` refuses the tag
    ``latest``.
    """
    ref = _text(ref, "image reference")
    if not ref.strip():
        raise AnsibleFilterError("image reference is empty")
    if ref != ref.strip() or any(c.isspace() for c in ref):
        raise AnsibleFilterError("image reference %r contains whitespace" % ref)
    if "://" in ref:
        raise AnsibleFilterError("image reference %r has a URL scheme; write registry/repository:tag "
                                 "without http:// or https://" % ref)

    rest, _sep, digest = ref.partition("@")
    if _sep:
        _check_digest(digest, ref)

    # A ':' after the last '/' starts the tag; one before it belongs to the registry's port.
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = ""
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        _check_tag(tag, ref)

    if not rest:
        raise AnsibleFilterError("image reference %r has no repository name" % ref)
    first, sep, remainder = rest.partition("/")
    if sep and _looks_like_registry(first):
        registry, path = first, remainder
        _check_registry(registry, ref)
    else:
        registry, path = DEFAULT_REGISTRY, rest
        if ":" in first:  # only reachable without '/': a tag check already ran; keep the message clear
            raise AnsibleFilterError("image reference %r is malformed" % ref)
    if registry.lower() in DOCKER_HUB_ALIASES:
        registry = DEFAULT_REGISTRY
    if not path:
        raise AnsibleFilterError("image reference %r names registry %r but no repository" % (ref, registry))
    _check_path(path, ref)
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "library/" + path

    name = "%s/%s" % (registry, path)
    if len(name) > NAME_MAX_LENGTH:
        raise AnsibleFilterError("image reference %r: the name is %d characters long, more than Docker's %d"
                                 % (ref, len(name), NAME_MAX_LENGTH))
    if require_tag and not tag and not digest:
        raise AnsibleFilterError("image reference %r has no tag or digest; pin one, e.g. %s:<tag> or %s@sha256:<digest>"
                                 % (ref, ref, ref))
    if not allow_latest and tag == "latest":
        raise AnsibleFilterError("image reference %r uses the tag 'latest', which moves between pulls; "
                                 "pin a release tag or a digest" % ref)
    full = name + (":" + tag if tag else "") + ("@" + digest if digest else "")
    return {
        "registry": registry,
        "repository": path,
        "tag": tag,
        "digest": digest,
        "name": name,
        "reference": full,
    }


def _parse_mirror(mirror):
    """Split ``host[:port][/path]`` and check Docker would read it as a registry."""
    mirror = _text(mirror, "registry mirror")
    if "://" in mirror:
        raise AnsibleFilterError("registry mirror %r has a URL scheme; write host[:port][/path] without "
                                 "http:// or https://" % mirror)
    if any(c.isspace() for c in mirror) or mirror.endswith("/") or not mirror:
        raise AnsibleFilterError("registry mirror %r must be host[:port][/path], without spaces or a "
                                 "trailing '/'" % mirror)
    host, _sep, path = mirror.partition("/")
    _check_registry(host, mirror)
    if not _looks_like_registry(host):
        raise AnsibleFilterError(
            "registry mirror %r: Docker reads %r as a Docker Hub namespace, not a registry, because it has "
            "no '.' and no ':port' and is not localhost; use a fully qualified name or add the port "
            "(e.g. %s:5000)" % (mirror, host, host))
    if path:
        _check_path(path, mirror)
    return host, path


def docker_image_mirror(ref, mirror, registry="nvcr.io"):
    """Rewrite ``ref`` to ``mirror`` when its registry is ``registry``.

    ``mirror`` is ``host[:port]`` optionally followed by a path that is put in
    front of the repository (``mirror.example.com/ngc``). References of other
    registries, and every reference when ``mirror`` is empty, come back
    unchanged. Tag and digest are kept.
    """
    parsed = docker_image_reference(ref)
    if mirror is None or mirror == "":
        return ref
    host, path = _parse_mirror(mirror)
    registry = _text(registry, "mirrored registry")
    wanted = registry.lower()
    if wanted in DOCKER_HUB_ALIASES:
        wanted = DEFAULT_REGISTRY
    if parsed["registry"].lower() != wanted:
        return ref
    rewritten = "%s/%s%s" % (host, path + "/" if path else "", parsed["repository"])
    if parsed["tag"]:
        rewritten += ":" + parsed["tag"]
    if parsed["digest"]:
        rewritten += "@" + parsed["digest"]
    # The result must still be a reference Docker reads as intended (length, registry).
    check = docker_image_reference(rewritten)
    if check["registry"] != host:
        raise AnsibleFilterError("mirroring %r to %r gives %r, which Docker would not pull from %r"
                                 % (ref, mirror, rewritten, host))
    return rewritten


def _labelled(refs):
    """(label, value) pairs; a list value gives label[0], label[1] ..."""
    if not isinstance(refs, dict):
        raise AnsibleFilterError("docker_image_reference_problems expects a mapping of variable name to "
                                 "reference (or list of references), got %s" % type(refs).__name__)
    for label, value in refs.items():
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                yield "%s[%d]" % (label, index), item
        else:
            yield label, value


def docker_image_reference_problems(refs, require_tag=True, allow_latest=False, example_tag=None,
                                    latest_switch=None, mirror="", registry="nvcr.io",
                                    mirror_label="mirror"):
    """Return one human-readable problem per bad reference (empty when all are fine).

    ``refs`` maps a variable name to a reference or a list of references; each
    problem starts with the variable name (``images_extra[1]`` for list
    items). ``example_tag`` is suggested for a reference without a tag;
    ``latest_switch`` names the variable that allows ``latest``. With
    ``mirror`` set, the mirror is checked too (reported under
    ``mirror_label``) and so is every reference after rewriting.
    """
    problems = []
    good = []
    for label, value in _labelled(refs):
        if not isinstance(value, str):
            problems.append("%s must be an image reference string, got %s %r" % (label, type(value).__name__, value))
            continue
        try:
            parsed = docker_image_reference(value)
        except AnsibleFilterError as error:
            problems.append("%s: %s" % (label, error.message))
            continue
        if require_tag and not parsed["tag"] and not parsed["digest"]:
            suggestion = "%s:%s" % (value, example_tag) if example_tag else "%s:<tag>" % value
            problems.append(
                "%s: %r has no tag or digest, so each pull may get a different image; pin one, e.g. %r "
                "(or %s@sha256:<digest>)" % (label, value, suggestion, value))
            continue
        if not allow_latest and parsed["tag"] == "latest":
            how = ", or set %s: true" % latest_switch if latest_switch else ""
            example = " such as %r" % (":" + example_tag) if example_tag else ""
            problems.append(
                "%s: %r uses the tag 'latest', which moves between pulls (and engines built in one image would "
                "run in another); pin a release tag%s or a digest%s" % (label, value, example, how))
            continue
        good.append((label, value))
    if mirror:
        try:
            _parse_mirror(mirror)
        except AnsibleFilterError as error:
            problems.append("%s: %s" % (mirror_label, error.message))
            return problems
        for label, value in good:
            try:
                docker_image_mirror(value, mirror, registry)
            except AnsibleFilterError as error:
                problems.append("%s (through %s %r): %s" % (label, mirror_label, mirror, error.message))
    return problems


def _entries(requested):
    """(use, reference) pairs of ``{use: reference or list of references}``, in order."""
    if not isinstance(requested, dict):
        raise AnsibleFilterError("docker_image_pull_plan expects a mapping of use to reference (or list of "
                                 "references), got %s" % type(requested).__name__)
    for use, value in requested.items():
        for ref in (value if isinstance(value, (list, tuple)) else [value]):
            yield use, _text(ref, "image reference of %s" % use)


def docker_image_pull_plan(requested, mirror="", registry="nvcr.io"):
    """One entry per distinct image to pull, in the order first asked for.

    ``requested`` maps what an image is for (``triton``, ``build``,
    ``extra``) to a reference or a list of references. Each reference is
    rewritten to ``mirror`` as `docker_image_mirror` does; references that
    end up the same are pulled once, and their entry lists every use. An
    entry has ``reference`` (after the mirror rewrite), ``requested`` (as
    first written), ``uses``, ``registry``, ``name`` and ``lookup``: the name
    community.docker looks the image up by, ``name:tag``, or ``name@digest``
    when the reference pins a digest.
    """
    plan = []
    by_reference = {}
    for use, ref in _entries(requested):
        reference = docker_image_mirror(ref, mirror, registry)
        entry = by_reference.get(reference)
        if entry is None:
            parsed = docker_image_reference(reference)
            entry = {
                "reference": reference,
                "requested": ref,
                "uses": [],
                "registry": parsed["registry"],
                "name": parsed["name"],
                # a reference without a tag is pulled (and listed) as :latest
                "lookup": parsed["name"] + ("@" + parsed["digest"] if parsed["digest"]
                                            else ":" + (parsed["tag"] or "latest")),
            }
            by_reference[reference] = entry
            plan.append(entry)
        if use not in entry["uses"]:
            entry["uses"].append(use)
    return plan


def docker_images_found(plan, results=None):
    """What Docker lists for each entry of a pull plan, by reference.

    ``results`` are the ``results`` of a ``community.docker.docker_image_info``
    task looped over ``plan`` (each result carries its plan entry under its
    ``ansible_loop_var``). Returns ``{reference: {reference, requested, id,
    digests}}``; an image Docker does not list (check mode before a pull,
    a skipped task) has an empty ``id`` and no ``digests``.
    """
    listed = {}
    for result in results or []:
        entry = result.get(result.get("ansible_loop_var", "item")) if isinstance(result, dict) else None
        if isinstance(entry, dict) and "reference" in entry and entry["reference"] not in listed:
            listed[entry["reference"]] = (result.get("images") or [{}])[0] or {}
    found = {}
    for entry in plan:
        image = listed.get(entry["reference"], {})
        found[entry["reference"]] = {
            "reference": entry["reference"],
            "requested": entry["requested"],
            "id": image.get("Id") or "",
            "digests": list(image.get("RepoDigests") or []),
        }
    return found


class FilterModule(object):
    def filters(self):
        return {
            "docker_image_reference": docker_image_reference,
            "docker_image_mirror": docker_image_mirror,
            "docker_image_reference_problems": docker_image_reference_problems,
            "docker_image_pull_plan": docker_image_pull_plan,
            "docker_images_found": docker_images_found,
        }
