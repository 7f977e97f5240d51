"""The LMCache example's mooncake_master, as rendered (`mooncake_master --rpc_port=...
--rpc_address=$(POD_IP) --metrics_port=... --enable_http_metadata_server=true ...`) from
mooncake-transfer-engine 0.3.13.post1: /health and /metrics on the metrics port, the HTTP
metadata server answering, and two store clients putting and getting a value through it
over TCP with the addresses of the rendered LMCache ConfigMap (segment shrunk to 64 MiB);
the master's metrics count the key. The v0 example's etcd and master the same way, with the
v0 connector's mooncake.json (etcd metadata)."""

from __future__ import annotations

import base64
import json
import pathlib
import re
import time
import urllib.request

import yaml

from tests.dataplane import harness
from tests.dataplane.conftest import PYTHON, need, show

CLIENT = pathlib.Path(__file__).with_name("store_client.py")


def test_mooncake_master_serves_the_rendered_store(release, tmp_path):
    need(harness.VENV / "bin" / "mooncake_master", "mooncake_master (mooncake-transfer-engine-non-cuda)")
    rel, ns = release("lmcache-qwen72b-tp8-pd.yaml")
    [master] = rel.by_component("mooncake-master")
    argv = harness.local_argv(master)
    show(argv)
    assert argv[0] == "mooncake_master" and f"--rpc_address={master.address}" in argv
    proc = ns.start("mooncake-master", argv, rendered=master)
    config = tmp_path / "lmcache.yaml"
    config.write_text(rel.object("ConfigMap", "qwen72b-pd-kv-config")["data"]["lmcache.yaml"])
    extra = yaml.safe_load(config.read_text())["extra_config"]
    assert extra["master_server_address"] == f"qwen72b-pd-mooncake-master:{master.ports['rpc']}"
    with ns.entered():
        try:
            metrics = f"http://{master.address}:{master.ports['metrics']}"
            harness.wait_http(metrics + "/health", timeout=30, what="master /health",
                              alive=lambda: proc.proc.poll() is None)
            # the HTTP metadata server the transfer engines register with answers (404: no such key)
            meta = f"http://{master.address}:{master.ports['http-metadata']}/metadata?key=pdgen-absent"
            assert harness.wait_http(meta, status=404, timeout=30, what="master HTTP metadata server") == 404
            env = {"MC_TCP_BIND_ADDRESS": "127.0.2.1"}
            writer = ns.start("store-put", [PYTHON, str(CLIENT), "put", "--config", str(config), "--host", "127.0.2.1",
                                            "--key", "pdgen-k", "--size", "65536"], env=env)
            deadline = time.monotonic() + 60
            while "holding" not in writer.tail() and time.monotonic() < deadline:
                assert writer.proc.poll() is None, writer.tail()
                time.sleep(0.3)
            assert "put pdgen-k: 0" in writer.tail(), writer.tail()
            reader = ns.start("store-get", [PYTHON, str(CLIENT), "get", "--config", str(config), "--host", "127.0.2.2",
                                            "--key", "pdgen-k", "--size", "65536"],
                              env={"MC_TCP_BIND_ADDRESS": "127.0.2.2"})
            assert reader.proc.wait(60) == 0, reader.tail()
            assert "65536 bytes, equal" in reader.tail()
            with urllib.request.urlopen(metrics + "/metrics", timeout=10) as resp:
                text = resp.read().decode()
            count = re.search(r"^master_key_count(?:\{[^}]*\})? (\S+)$", text, re.M)
            assert count and float(count.group(1)) >= 1, text[:2000]
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"mooncake master: {exc}")) from None


def test_v0_store_connector_works_through_the_rendered_etcd_and_master(release, tmp_path):
    """The v0 example (MooncakeStoreConnector, vLLM <= 0.10): its bundled etcd and its
    mooncake_master run with their rendered arguments, and two store clients set up from the
    rendered mooncake.json (metadata_server etcd://..., master_server_address) put and get a
    value; the transfer engines' metadata lands in that etcd."""
    from tests.cluster.controlplane import default_bin_dir
    etcd = default_bin_dir() / "etcd"
    need(etcd, "etcd (make cluster)")
    need(harness.VENV / "bin" / "mooncake_master", "mooncake_master (mooncake-transfer-engine-non-cuda)")
    rel, ns = release("ack-vllm-mooncake-v0-qwen7b.yaml")
    [etcd_c] = rel.by_component("etcd")
    [master] = rel.by_component("mooncake-master")
    config_map = next(o for o in rel.objects if o["kind"] == "ConfigMap" and "mooncake.json" in o.get("data", {}))
    config = json.loads(config_map["data"]["mooncake.json"])
    assert config["metadata_server"] == f"etcd://{etcd_c.pod.rsplit('-', 1)[0]}:{etcd_c.ports['client']}"
    assert config["master_server_address"].endswith(f"-mooncake-master:{master.ports['rpc']}")
    path = tmp_path / "mooncake.json"
    path.write_text(json.dumps(config))
    etcd_argv = harness.local_argv(etcd_c)
    show(etcd_argv)
    ns.start("etcd", [str(etcd), *etcd_argv[1:]], env=etcd_c.env, rendered=etcd_c)
    master_argv = harness.local_argv(master)
    show(master_argv)
    proc = ns.start("mooncake-master", master_argv, rendered=master)
    with ns.entered():
        try:
            harness.wait_port(etcd_c.address, etcd_c.ports["client"])
            harness.wait_http(f"http://{master.address}:{master.ports['metrics']}/health", timeout=30,
                              what="master /health", alive=lambda: proc.proc.poll() is None)
            writer = ns.start("store-put", [PYTHON, str(CLIENT), "put", "--config", str(path), "--host", "127.0.2.1",
                                            "--key", "pdgen-v0", "--size", "8192"],
                              env={"MC_TCP_BIND_ADDRESS": "127.0.2.1"})
            deadline = time.monotonic() + 60
            while "holding" not in writer.tail() and time.monotonic() < deadline:
                assert writer.proc.poll() is None, writer.tail()
                time.sleep(0.3)
            assert "put pdgen-v0: 0" in writer.tail(), writer.tail()
            reader = ns.start("store-get", [PYTHON, str(CLIENT), "get", "--config", str(path), "--host", "127.0.2.2",
                                            "--key", "pdgen-v0", "--size", "8192"],
                              env={"MC_TCP_BIND_ADDRESS": "127.0.2.2"})
            assert reader.proc.wait(60) == 0, reader.tail()
            assert "8192 bytes, equal" in reader.tail()
            # every key in etcd (the v3 JSON gateway; range "\0".."\0" is all of them)
            req = urllib.request.Request(f"http://{etcd_c.address}:{etcd_c.ports['client']}/v3/kv/range",
                                         data=json.dumps({"key": "AA==", "range_end": "AA==", "keys_only": True})
                                         .encode(), method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                keys = [base64.b64decode(k["key"]).decode() for k in json.load(resp).get("kvs", [])]
            assert any("127.0.2.1" in k for k in keys), keys  # the writer's segment, registered in etcd
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"v0 store: {exc}")) from None
