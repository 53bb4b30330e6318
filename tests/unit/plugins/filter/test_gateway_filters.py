import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.gateway import (
    FilterModule, duplicates, gateway_frontends, gateway_server_name, gateways_available)

GROUPS = [{"name": "default", "http_port": 8080, "grpc_port": 8081},
          {"name": "llama", "http_port": 9080, "grpc_port": 9081, "ensemble": "tensorrt_llm_bls"}]


def layout(*ports):
    return [{"name": "triton%d" % i, "http_port": p, "grpc_port": p + 1, "metrics_port": p + 2} for i, p in enumerate(ports)]


HOSTVARS = {
    "a1": {"tritonfleet_servers": layout(8000, 8010), "tritonfleet_address": "10.0.0.1"},
    "a2": {"tritonfleet_servers": layout(8000), "ansible_host": "10.0.0.2", "servers_listen_address": "0.0.0.0"},
    "b1": {"tritonfleet_servers": layout(8000), "tritonfleet_model_group": "llama", "servers_listen_address": "10.1.0.5"},
    "local": {"tritonfleet_servers": layout(7000), "ansible_connection": "local"},
    "down": {},
    "other": {"tritonfleet_servers": layout(8000), "tritonfleet_model_group": "mistral"},
}


def test_servers_stand_behind_their_model_group_with_the_address_the_gateway_reaches():
    view = gateway_frontends(GROUPS, HOSTVARS, ["a1", "a2", "b1", "local", "down", "other"])
    default, llama = view["frontends"]
    assert [(s["name"], s["address"], s["http_port"], s["grpc_port"]) for s in default["servers"]] == [
        ("a1.triton0", "10.0.0.1", 8000, 8001), ("a1.triton1", "10.0.0.1", 8010, 8011),
        ("a2.triton0", "10.0.0.2", 8000, 8001), ("local.triton0", "127.0.0.1", 7000, 7001)]
    assert default["ensemble"] == "ensemble" and llama["ensemble"] == "tensorrt_llm_bls"
    # a host listening on one address is reached there
    assert [(s["name"], s["address"]) for s in llama["servers"]] == [("b1.triton0", "10.1.0.5")]
    assert view["unknown_layout"] == ["down"]
    assert view["unserved"] == [{"host": "other", "model_group": "mistral"}]
    assert view["unverified"] == []


def test_servers_that_did_not_pass_verification_stay_out():
    # a fresh host whose ROUGE gate failed still has its layout in hostvars, and the verify role's mark
    hostvars = dict(HOSTVARS, a1=dict(HOSTVARS["a1"], tritonfleet_servers_unverified=["triton1"]),
                    a2=dict(HOSTVARS["a2"], tritonfleet_servers_unverified=[]))
    view = gateway_frontends(GROUPS, hostvars, ["a1", "a2"])
    assert [s["name"] for s in view["frontends"][0]["servers"]] == ["a1.triton0", "a2.triton0"]
    assert view["unverified"] == [{"host": "a1", "server": "triton1"}]


def test_a_group_nobody_serves_has_no_servers():
    view = gateway_frontends([{"name": "empty", "http_port": 1, "grpc_port": 2}], HOSTVARS, ["a1"])
    assert view["frontends"][0]["servers"] == []
    assert view["unserved"] == [{"host": "a1", "model_group": "default"}]


@pytest.mark.parametrize("bad", ["default", [{"http_port": 1}], ["x"]])
def test_malformed_model_groups_are_refused(bad):
    with pytest.raises(AnsibleFilterError, match="gateway_model_groups"):
        gateway_frontends(bad, HOSTVARS, ["a1"])


@pytest.mark.parametrize("host, server", [("a b", "triton0"), ("h", "t;rm"), ("h/x", "t")])
def test_names_haproxy_would_refuse_are_refused(host, server):
    with pytest.raises(AnsibleFilterError, match="cannot name an HAProxy server"):
        gateway_server_name(host, server)


def test_server_names_join_host_and_server():
    assert gateway_server_name("fleet-a1.example.com", "triton0") == "fleet-a1.example.com.triton0"


def test_duplicates_names_each_repeated_value_once():
    assert duplicates([8080, 8081, 8080, 8404, 8080, 8081]) == [8080, 8081]
    assert duplicates([]) == []
    with pytest.raises(AnsibleFilterError):
        duplicates("8080")


def test_only_gateways_that_run_are_used():
    hostvars = {"g1": {"tritonfleet_gateway": {"available": True}}, "g2": {"tritonfleet_gateway": {"available": "false"}},
                "g3": {}}
    assert gateways_available(["g1", "g2", "g3", "absent"], hostvars) == ["g1"]


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"gateway_frontends", "gateway_server_name", "gateways_available", "duplicates"}
