"""The LMCache example's mooncake_master, as rendered (`mooncake_master --rpc_port=...
--rpc_address=$(POD_IP) --metrics_port=... --enable_http_metadata_server=true ...`) from
mooncake-transfer-engine 0.3.13.post1: /health and /metrics on the metrics port, the HTTP
metadata server answering, and two store clients putting and getting a value through it
over TCP with the addresses of the rendered LMCache ConfigMap (segment shrunk to 64 MiB);
the master's metrics count the key."""

from __future__ import annotations

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
                                            "--key", "pdgen-k", "--size", "65536"], env={"MC_TCP_BIND_ADDRESS": "127.0.2.2"})
            assert reader.proc.wait(60) == 0, reader.tail()
            assert "65536 bytes, equal" in reader.tail()
            with urllib.request.urlopen(metrics + "/metrics", timeout=10) as resp:
                text = resp.read().decode()
            count = re.search(r"^master_key_count(?:\{[^}]*\})? (\S+)$", text, re.M)
            assert count and float(count.group(1)) >= 1, text[:2000]
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"mooncake master: {exc}")) from None
