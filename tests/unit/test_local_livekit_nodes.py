"""The local stack's LiveKit nodes: their configs, their ports, and `make dev`'s LIVEKIT_NODES."""

from __future__ import annotations

import pytest
import yaml

from infra.local.dev import livekit_nodes_from_env
from infra.local.livekit import livekit_yaml, node_id_from_log
from infra.local.stack import LocalStack, StackOptions


def test_one_node_by_default_has_no_region_and_needs_no_redis(tmp_path):
    stack = LocalStack(StackOptions(run_dir=tmp_path))
    config = yaml.safe_load(stack.livekit_config().read_text())
    assert "region" not in config and "node_selector" not in config and "redis" not in config
    assert stack.livekit_urls == [stack.livekit_url] == ["ws://127.0.0.1:7880"]


def test_each_of_several_nodes_has_its_own_ports_region_and_the_shared_redis(tmp_path):
    opts = StackOptions(run_dir=tmp_path, livekit_nodes=2, redis_address="127.0.0.1:6390")
    stack = LocalStack(opts)
    configs = [yaml.safe_load(stack.livekit_config(n).read_text()) for n in range(2)]
    assert [c["port"] for c in configs] == [7880, 7890]
    assert [(c["rtc"]["tcp_port"], c["rtc"]["udp_port"]) for c in configs] == [
        (7881, 7882),
        (7891, 7892),
    ]
    assert [c["region"] for c in configs] == ["local-1", "local-2"]
    assert all(c["redis"] == {"address": "127.0.0.1:6390"} for c in configs)
    # Every node knows every region, so each places a new room on itself.
    for c in configs:
        assert c["node_selector"]["kind"] == "regionaware"
        assert [r["name"] for r in c["node_selector"]["regions"]] == ["local-1", "local-2"]
    # The API, the worker and the SIP service dial the balancer in front of the nodes.
    assert stack.livekit_url == "ws://127.0.0.1:7870"
    assert stack.livekit_urls == ["ws://127.0.0.1:7880", "ws://127.0.0.1:7890"]


def test_nodes_on_free_ports_never_share_a_port(tmp_path):
    opts = StackOptions.on_free_ports(tmp_path, livekit_nodes=3, redis_address="127.0.0.1:1")
    stack = LocalStack(opts)
    ports = [p for n in range(3) for p in stack.livekit_ports(n)]
    assert len(set(ports)) == len(ports) == 9
    assert opts.livekit_balancer_port not in ports


def test_several_nodes_without_redis_are_refused_saying_what_to_set(tmp_path):
    stack = LocalStack(StackOptions(run_dir=tmp_path, livekit_nodes=2))
    with pytest.raises(RuntimeError, match="redis_address"):
        stack.start_livekit()


def test_a_node_id_is_read_from_the_last_start_in_its_log(tmp_path):
    log = tmp_path / "livekit.log"
    log.write_text(
        'INFO starting LiveKit server {"portHttp": 1, "nodeID": "ND_first", "region": "x"}\n'
        "INFO something else\n"
        'INFO starting LiveKit server {"portHttp": 1, "nodeID": "ND_second"}\n'
    )
    assert node_id_from_log(log) == "ND_second"
    assert node_id_from_log(tmp_path / "missing.log") is None


def test_a_single_node_config_is_unchanged_by_the_new_options():
    assert livekit_yaml(1, 2, 3) == livekit_yaml(1, 2, 3, region=None, regions=())


@pytest.mark.parametrize("value", ["0", "ten", "-1", "12"])
def test_make_dev_refuses_a_bad_livekit_nodes_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("LIVEKIT_NODES", value)
    with pytest.raises(SystemExit, match=r"LIVEKIT_NODES .* 1 to 9"):
        livekit_nodes_from_env()


def test_make_dev_runs_one_node_unless_told(monkeypatch):
    monkeypatch.delenv("LIVEKIT_NODES", raising=False)
    assert livekit_nodes_from_env() == 1
    monkeypatch.setenv("LIVEKIT_NODES", "2")
    assert livekit_nodes_from_env() == 2
