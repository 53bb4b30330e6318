import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.images import (
    FilterModule, docker_image_mirror, docker_image_pull_plan, docker_image_reference, docker_image_reference_problems,
    docker_images_found)

TRITON = "nvcr.io/nvidia/tritonserver:24.01-trtllm-python-py3"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_ngc_reference_is_split_into_its_parts():
    assert docker_image_reference(TRITON) == {
        "registry": "nvcr.io",
        "repository": "nvidia/tritonserver",
        "tag": "24.01-trtllm-python-py3",
        "digest": "",
        "name": "nvcr.io/nvidia/tritonserver",
        "reference": TRITON,
    }


@pytest.mark.parametrize("ref, registry, repository, tag, digest", [
    ("localhost:5000/x:y", "localhost:5000", "x", "y", ""),
    ("localhost/x", "localhost", "x", "", ""),
    ("127.0.0.1:5055/nvidia/tiny:1", "127.0.0.1:5055", "nvidia/tiny", "1", ""),
    ("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", ""),
    ("mirror.example.com/ngc/nvidia/tritonserver:24.01", "mirror.example.com", "ngc/nvidia/tritonserver", "24.01", ""),
    # Docker Hub: no '.' / ':' / localhost in the first component means it is a path
    ("ubuntu", "docker.io", "library/ubuntu", "", ""),
    ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", ""),
    ("nvidia/cuda:12.3.1-base-ubuntu22.04", "docker.io", "nvidia/cuda", "12.3.1-base-ubuntu22.04", ""),
    ("docker.io/busybox:1.36", "docker.io", "library/busybox", "1.36", ""),
    ("index.docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", ""),
    ("my_org/my-image__x.y:v1_A", "docker.io", "my_org/my-image__x.y", "v1_A", ""),
    ("a---b/c:1", "docker.io", "a---b/c", "1", ""),
    # digests, with and without a tag
    ("nvcr.io/nvidia/tritonserver@" + DIGEST, "nvcr.io", "nvidia/tritonserver", "", DIGEST),
    (TRITON + "@" + DIGEST, "nvcr.io", "nvidia/tritonserver", "24.01-trtllm-python-py3", DIGEST),
    ("busybox@sha512:" + "ab" * 64, "docker.io", "library/busybox", "", "sha512:" + "ab" * 64),
])
def test_valid_references(ref, registry, repository, tag, digest):
    parsed = docker_image_reference(ref)
    assert (parsed["registry"], parsed["repository"], parsed["tag"], parsed["digest"]) == (
        registry, repository, tag, digest)
    assert parsed["name"] == registry + "/" + repository
    # the fully qualified reference parses back to the same parts
    assert docker_image_reference(parsed["reference"]) == parsed


def test_tag_may_be_128_characters_and_not_more():
    assert docker_image_reference("x:" + "a" * 128)["tag"] == "a" * 128
    with pytest.raises(AnsibleFilterError, match="more than Docker's 128"):
        docker_image_reference("x:" + "a" * 129)


def test_pinning_is_required_on_request():
    assert docker_image_reference("nvcr.io/nvidia/tritonserver")["tag"] == ""
    with pytest.raises(AnsibleFilterError, match="has no tag or digest"):
        docker_image_reference("nvcr.io/nvidia/tritonserver", require_tag=True)
    # a digest pins the image just as well
    assert docker_image_reference("nvcr.io/nvidia/tritonserver@" + DIGEST, require_tag=True)["digest"] == DIGEST
    with pytest.raises(AnsibleFilterError, match="tag 'latest'"):
        docker_image_reference("busybox:latest", allow_latest=False)
    assert docker_image_reference("busybox:latest")["tag"] == "latest"


@pytest.mark.parametrize("ref, message", [
    ("", "is empty"),
    ("   ", "is empty"),
    (None, "must be a string"),
    (42, "must be a string"),
    ("nvcr.io/NVIDIA/tritonserver:24.01", r"must be lowercase \('nvidia'\)"),
    ("Ubuntu:22.04", "must be lowercase"),
    ("nvcr.io/nvidia/triton server:1", "whitespace"),
    ("nvcr.io/nvidia/tritonserver:24.01 ", "whitespace"),
    ("nvcr.io/nvidia/triton$server:1", "component 'triton\\$server' is invalid"),
    ("nvcr.io/nvidia/-tritonserver:1", "is invalid"),
    ("nvcr.io/nvidia/tritonserver_:1", "is invalid"),
    ("nvcr.io/nvidia//tritonserver:1", "empty path component"),
    ("nvcr.io/nvidia/tritonserver/:1", "empty path component"),
    ("nvcr.io/", "no repository"),
    ("nvcr.io/nvidia/tritonserver:", "empty tag"),
    ("nvcr.io/nvidia/tritonserver:.hidden", "tag '.hidden' is invalid"),
    ("nvcr.io/nvidia/tritonserver:24.01+1", "is invalid"),
    ("nvcr.io/nvidia/tritonserver@sha256:abc", "exactly 64 lowercase hex"),
    ("nvcr.io/nvidia/tritonserver@sha256:" + "A" * 64, "exactly 64 lowercase hex"),
    ("nvcr.io/nvidia/tritonserver@md5:" + "a" * 32, "sha256:<64 hex digits>"),
    ("https://nvcr.io/nvidia/tritonserver:1", "URL scheme"),
    ("bad_host.io/x:1", "registry 'bad_host.io' is not a host"),
    ("localhost:99999/x:1", "outside 1-65535"),
    ("a:b:c", "malformed"),
    (":1", "no repository name"),
    ("nvcr.io/" + "a" * 250 + ":1", "more than Docker's 255"),
])
def test_invalid_references_raise_clear_errors(ref, message):
    with pytest.raises(AnsibleFilterError, match=message):
        docker_image_reference(ref)


@pytest.mark.parametrize("ref, mirror, registry, expected", [
    (TRITON, "mirror.example.com:5000", "nvcr.io", "mirror.example.com:5000/nvidia/tritonserver:24.01-trtllm-python-py3"),
    (TRITON, "mirror.example.com/ngc", "nvcr.io", "mirror.example.com/ngc/nvidia/tritonserver:24.01-trtllm-python-py3"),
    ("nvcr.io/nvidia/tiny:1", "127.0.0.1:5055", "nvcr.io", "127.0.0.1:5055/nvidia/tiny:1"),
    ("nvcr.io/nvidia/tritonserver@" + DIGEST, "localhost:5000", "nvcr.io", "localhost:5000/nvidia/tritonserver@" + DIGEST),
    # other registries and an empty mirror are left alone, exactly as written
    ("ghcr.io/example/tool:1.0", "mirror.example.com:5000", "nvcr.io", "ghcr.io/example/tool:1.0"),
    ("ubuntu:22.04", "mirror.example.com:5000", "nvcr.io", "ubuntu:22.04"),
    (TRITON, "", "nvcr.io", TRITON),
    # Docker Hub images through a Hub mirror get their library/ prefix
    ("ubuntu:22.04", "hub.example.com", "docker.io", "hub.example.com/library/ubuntu:22.04"),
    ("index.docker.io/nvidia/cuda:12.3.1", "hub.example.com", "registry-1.docker.io", "hub.example.com/nvidia/cuda:12.3.1"),
])
def test_mirror_rewrites_only_the_mirrored_registry(ref, mirror, registry, expected):
    assert docker_image_mirror(ref, mirror, registry) == expected


@pytest.mark.parametrize("mirror, message", [
    ("https://mirror.example.com", "URL scheme"),
    ("mirror", "Docker Hub namespace"),
    ("mirror.example.com/", "trailing '/'"),
    ("mirror.example.com/NGC", "must be lowercase"),
    ("mirror .example.com", "without spaces"),
])
def test_bad_mirror_raises(mirror, message):
    with pytest.raises(AnsibleFilterError, match=message):
        docker_image_mirror(TRITON, mirror)


def test_problems_name_the_variable_and_suggest_a_fix():
    problems = docker_image_reference_problems(
        {
            "images_triton": "nvcr.io/nvidia/tritonserver",
            "images_build": TRITON,
            "images_extra": ["busybox:1.36", "busybox:latest", "Bad/Name:1", 7],
        },
        example_tag="24.01-trtllm-python-py3", latest_switch="images_allow_latest")
    assert problems == [
        "images_triton: 'nvcr.io/nvidia/tritonserver' has no tag or digest, so each pull may get a different image;"
        " pin one, e.g. 'nvcr.io/nvidia/tritonserver:24.01-trtllm-python-py3'"
        " (or nvcr.io/nvidia/tritonserver@sha256:<digest>)",
        "images_extra[1]: 'busybox:latest' uses the tag 'latest', which moves between pulls (and engines built in"
        " one image would run in another); pin a release tag such as ':24.01-trtllm-python-py3' or a digest,"
        " or set images_allow_latest: true",
        "images_extra[2]: image reference 'Bad/Name:1': repository component 'Bad' is invalid; components are"
        " lowercase letters and digits, joined by '.', '_', '__' or dashes; repository names must be lowercase"
        " ('bad')",
        "images_extra[3] must be an image reference string, got int 7",
    ]


def test_problems_allow_latest_and_untagged_when_asked():
    refs = {"images_triton": "busybox:latest", "images_build": "busybox"}
    assert docker_image_reference_problems(refs, require_tag=False, allow_latest=True) == []


def test_problems_check_the_mirror_and_the_rewritten_references():
    refs = {"images_triton": TRITON}
    assert docker_image_reference_problems(refs, mirror="mirror.example.com:5000") == []
    problems = docker_image_reference_problems(refs, mirror="https://mirror.example.com",
                                               mirror_label="images_registry_mirror")
    assert len(problems) == 1 and problems[0].startswith("images_registry_mirror: registry mirror")
    long_path = "/".join(["ngc"] * 60)
    problems = docker_image_reference_problems(refs, mirror="mirror.example.com/" + long_path,
                                               mirror_label="images_registry_mirror")
    assert len(problems) == 1 and "more than Docker's 255" in problems[0]
    assert problems[0].startswith("images_triton (through images_registry_mirror ")


def test_problems_need_a_mapping():
    with pytest.raises(AnsibleFilterError, match="expects a mapping"):
        docker_image_reference_problems([TRITON])


BUILD = "nvcr.io/nvidia/tensorrt-llm/release:0.7.1"


def test_pull_plan_has_one_entry_per_image_with_its_uses_and_lookup_name():
    plan = docker_image_pull_plan({"triton": TRITON, "build": BUILD,
                                   "extra": ["busybox:1.36", TRITON, "nvcr.io/nvidia/tiny@" + DIGEST]})
    assert plan == [
        {"reference": TRITON, "requested": TRITON, "uses": ["triton", "extra"], "registry": "nvcr.io",
         "name": "nvcr.io/nvidia/tritonserver", "lookup": "nvcr.io/nvidia/tritonserver:24.01-trtllm-python-py3"},
        {"reference": BUILD, "requested": BUILD, "uses": ["build"], "registry": "nvcr.io",
         "name": "nvcr.io/nvidia/tensorrt-llm/release", "lookup": "nvcr.io/nvidia/tensorrt-llm/release:0.7.1"},
        {"reference": "busybox:1.36", "requested": "busybox:1.36", "uses": ["extra"], "registry": "docker.io",
         "name": "docker.io/library/busybox", "lookup": "docker.io/library/busybox:1.36"},
        # a digest names the image whatever the tag says
        {"reference": "nvcr.io/nvidia/tiny@" + DIGEST, "requested": "nvcr.io/nvidia/tiny@" + DIGEST,
         "uses": ["extra"], "registry": "nvcr.io", "name": "nvcr.io/nvidia/tiny",
         "lookup": "nvcr.io/nvidia/tiny@" + DIGEST},
    ]


def test_pull_plan_pulls_through_the_mirror_and_keeps_what_was_asked_for():
    plan = docker_image_pull_plan({"triton": TRITON, "build": TRITON, "extra": ["ubuntu:22.04"]},
                                  "mirror.example.com:5000")
    mirrored = "mirror.example.com:5000/nvidia/tritonserver:24.01-trtllm-python-py3"
    assert [(e["reference"], e["requested"], e["uses"], e["registry"]) for e in plan] == [
        (mirrored, TRITON, ["triton", "build"], "mirror.example.com:5000"),
        ("ubuntu:22.04", "ubuntu:22.04", ["extra"], "docker.io"),
    ]
    assert plan[0]["lookup"] == mirrored
    # the same image written two ways is pulled once, under the first spelling asked for
    plan = docker_image_pull_plan({"triton": TRITON, "extra": ["mirror.example.com:5000/nvidia/tritonserver"
                                                               ":24.01-trtllm-python-py3"]},
                                  "mirror.example.com:5000")
    assert [(e["requested"], e["uses"]) for e in plan] == [(TRITON, ["triton", "extra"])]


@pytest.mark.parametrize("requested, message", [
    ([TRITON], "expects a mapping"),
    ({"triton": 7}, "image reference of triton must be a string"),
    ({"extra": ["Bad/Name:1"]}, "must be lowercase"),
])
def test_pull_plan_refuses_bad_input(requested, message):
    with pytest.raises(AnsibleFilterError, match=message):
        docker_image_pull_plan(requested)


def test_found_images_come_from_the_info_results_of_the_plan_loop():
    plan = docker_image_pull_plan({"triton": TRITON, "build": BUILD, "extra": ["busybox:1.36"]})
    results = [
        {"ansible_loop_var": "__images_image", "__images_image": plan[0],
         "images": [{"Id": "sha256:aaa", "RepoDigests": ["nvcr.io/nvidia/tritonserver@" + DIGEST]}]},
        # check mode before the pull: Docker lists nothing yet
        {"ansible_loop_var": "__images_image", "__images_image": plan[1], "images": []},
        {"item": plan[2], "images": [{"Id": "sha256:ccc", "RepoDigests": None}]},
    ]
    assert docker_images_found(plan, results) == {
        TRITON: {"reference": TRITON, "requested": TRITON, "id": "sha256:aaa",
                 "digests": ["nvcr.io/nvidia/tritonserver@" + DIGEST]},
        BUILD: {"reference": BUILD, "requested": BUILD, "id": "", "digests": []},
        "busybox:1.36": {"reference": "busybox:1.36", "requested": "busybox:1.36", "id": "sha256:ccc", "digests": []},
    }


def test_found_images_without_results_are_empty():
    plan = docker_image_pull_plan({"triton": TRITON})
    expected = {TRITON: {"reference": TRITON, "requested": TRITON, "id": "", "digests": []}}
    assert docker_images_found(plan) == expected
    assert docker_images_found(plan, [{"skipped": True, "item": None}]) == expected


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {
        "docker_image_reference", "docker_image_mirror", "docker_image_reference_problems",
        "docker_image_pull_plan", "docker_images_found"}
