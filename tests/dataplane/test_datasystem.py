"""The yuanrong example's datasystem worker as the chart renders it (the image's
worker_entry.sh, which runs datasystem_worker with the rendered gflags; here the
datasystem_worker of openyuanrong-datasystem 0.8.1) with the rendered etcd: the worker
registers in etcd, two processes set and get a key through it at the engines' rendered
DS_WORKER_ADDR, and it stops cleanly on SIGTERM, leaving etcd."""

from __future__ import annotations

import base64
import json
import pathlib
import time
import urllib.request

from tests.cluster.controlplane import default_bin_dir
from tests.dataplane import harness
from tests.dataplane.conftest import PYTHON, need, show

CLIENT = pathlib.Path(__file__).with_name("ds_client.py")


def etcd_keys(address: str, prefix: str) -> list[str]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                       "range_end": base64.b64encode(end.encode()).decode(), "keys_only": True}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"http://{address}/v3/kv/range", data=body), timeout=5) as r:
        return [base64.b64decode(kv["key"]).decode() for kv in json.load(r).get("kvs", [])]


def test_datasystem_worker_registers_serves_and_stops(release, tmp_path):
    worker_bin = next(iter(sorted(harness.VENV.glob("lib/python*/site-packages/yr/datasystem/datasystem_worker"))),
                      None)
    need(worker_bin or harness.VENV / "datasystem_worker", "datasystem_worker (openyuanrong-datasystem)")
    etcd = default_bin_dir() / "etcd"
    need(etcd, "etcd (make cluster)")
    rel, ns = release("yuanrong-vllm-ascend-qwen7b-2hosts.yaml")
    [etcd_c] = rel.by_component("etcd")
    ns.start("etcd", [str(etcd), *harness.local_argv(etcd_c)[1:]], env=etcd_c.env, rendered=etcd_c)
    [ds] = rel.by_component("datasystem")
    argv = harness.local_argv(ds)
    assert argv[0] == "/home/yuanrong/worker_entry.sh"  # the image's entry: it runs datasystem_worker "$@"
    argv = [str(worker_bin), *argv[1:]]
    show(argv)
    lib = worker_bin.parent / "lib"
    state = tmp_path / "ds-state"
    worker = ns.start("datasystem-worker", argv + [f"-log_dir={state}/logs", f"-rocksdb_store_dir={state}/rocksdb"],
                      env={**ds.env, "LD_LIBRARY_PATH": str(lib)}, rendered=ds)
    address = next(a.split("=", 1)[1] for a in argv if a.startswith("-worker_address="))
    [engine] = rel.by_component("decode")
    assert engine.env["DS_WORKER_ADDR"] == address  # the engines reach the worker of their node
    with ns.entered():
        try:
            etcd_at = f"{etcd_c.address}:{etcd_c.ports['client']}"
            # The rendered readiness probe: the worker's ready file.
            [ready] = [a.split("=", 1)[1] for a in argv if a.startswith("-ready_check_path=")]
            assert ds.probes["readinessProbe"]["exec"]["command"] == ["test", "-f", next(
                a.split("=", 1)[1] for a in ds.argv if a.startswith("-ready_check_path="))]
            deadline = time.monotonic() + 60
            while not pathlib.Path(ready).exists():
                assert worker.proc.poll() is None, "the worker exited"
                assert time.monotonic() < deadline, "the worker never wrote its ready file"
                time.sleep(0.5)
            deadline = time.monotonic() + 60
            while f"/datasystem/cluster/{address}" not in _safe_keys(etcd_at):
                assert worker.proc.poll() is None, "the worker exited"
                assert time.monotonic() < deadline, f"the worker never registered {address} in etcd"
                time.sleep(0.5)
            env = {"DS_WORKER_ADDR": engine.env["DS_WORKER_ADDR"]}
            put = ns.start("ds-set", [PYTHON, str(CLIENT), "set", "pdgen_key", "kv-from-prefill"], env=env)
            assert put.proc.wait(60) == 0, put.tail()
            get = ns.start("ds-get", [PYTHON, str(CLIENT), "get", "pdgen_key", "kv-from-prefill"], env=env)
            assert get.proc.wait(60) == 0, get.tail()
            assert ns.stop(worker, timeout=30), "the worker did not stop on SIGTERM within 30 s"
            deadline = time.monotonic() + 30
            while f"/datasystem/cluster/{address}" in _safe_keys(etcd_at):
                assert time.monotonic() < deadline, "the stopped worker is still registered"
                time.sleep(0.5)
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"datasystem: {exc}")) from None


def _safe_keys(address: str) -> list[str]:
    try:
        return etcd_keys(address, "/datasystem/")
    except OSError:
        return []
