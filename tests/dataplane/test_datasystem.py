"""The yuanrong example's datasystem worker as the chart renders it, through the image's
worker_entry.sh (the wheel's copy, openyuanrong-datasystem 0.8.1) with the datasystem_worker
of the same wheel, and the rendered etcd: the worker registers in etcd, two processes set and
get a key through it at the engines' rendered DS_WORKER_ADDR, and SIGTERM to the script stops
the worker cleanly, leaving etcd."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import signal
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


# In the wheel: the image's /home/yuanrong scripts (dscli generate_docker_entryfile).
ENTRY = "docker_entryfile/daemonset"
IMAGE_UID = 1002  # the worker image's user yuanrong (k8s/docker/dockerfile/datasystem.Dockerfile, docker_build.sh)


def image_home(worker_bin: pathlib.Path, into: pathlib.Path) -> pathlib.Path:
    """/home/yuanrong as the worker image lays it out: the entry scripts, datasystem/bin and
    datasystem/lib, the user's .bashrc."""
    home = into / "yuanrong"
    (home / "datasystem" / "bin").mkdir(parents=True)
    for script in (worker_bin.parent / ENTRY).iterdir():
        (home / script.name).write_bytes(script.read_bytes())
        (home / script.name).chmod(0o755)
    (home / "datasystem" / "bin" / "datasystem_worker").symlink_to(worker_bin)
    (home / "datasystem" / "lib").symlink_to(worker_bin.parent / "lib")
    (home / ".bashrc").write_text("")
    return home


def test_datasystem_worker_runs_through_the_images_entry_script(release, tmp_path):
    """Review 3, defect 1: the DaemonSet runs /home/yuanrong/worker_entry.sh, which runs under
    set -e and, right after starting datasystem_worker, does `mkdir ${STATUS_FILE_PATH%/*}`:
    with STATUS_FILE_PATH unset the container exited 1. Here the rendered command runs through
    that script from the 0.8.1 wheel, as the image runs it: /home/yuanrong laid out as the image
    has it (a tmpfs over /home in the namespace's own mount namespace), as the image's user
    (uid 1002), the service-account token where the kubelet mounts it. SIGTERM goes to the
    script alone, as the kubelet sends it to PID 1: its trap (check_taint.sh) stops the worker."""
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
    for var in ("WORKER_LOG_DIR", "STATUS_FILE_PATH", "HEALTH_CHECK_PATH", "READY_CHECK_PATH", "LIVENESS_CHECK_PATH",
                "POD_MEMORY_LIMIT_MB", "SHARE_MEMORY_SIZE", "NODE_ID", "NAMESPACE"):
        assert ds.env.get(var), f"{var} is not set: worker_entry.sh needs it"
    # Volumes: the rendered mount paths, in the container's place (env values too).
    env = dict(ds.env)
    for directory in (rel.volumes, *rel.volumes.iterdir()):  # the image's user walks to its volumes
        directory.chmod(0o755)
    for mount, local in sorted(ds.mounts.items(), key=lambda m: -len(m[0])):
        os.chown(local, IMAGE_UID, IMAGE_UID)
        env = {k: v.replace(mount, str(local)) if v.startswith(mount) else v for k, v in env.items()}
    # The one change to the rendered env: this machine has 24 GB, the example's node far more
    # (SHARE_MEMORY_SIZE must fit POD_MEMORY_LIMIT_MB, the node's allocatable without a limit).
    env["SHARE_MEMORY_SIZE"] = str(min(int(env["SHARE_MEMORY_SIZE"]), int(env["POD_MEMORY_LIMIT_MB"]) // 2))
    argv = [a.replace(f"-shared_memory_size_mb={ds.env['SHARE_MEMORY_SIZE']}",
                      f"-shared_memory_size_mb={env['SHARE_MEMORY_SIZE']}") for a in argv]
    staged = image_home(worker_bin, tmp_path / "image-home")
    token = tmp_path / "serviceaccount"
    token.mkdir()
    (token / "token").write_text("not-a-real-token")
    (token / "ca.crt").write_text("")
    env.update({"HOME": "/home/yuanrong", "PATH": "/home/yuanrong/datasystem/bin:/usr/local/bin:/usr/bin:/bin",
                "IMAGE_HOME": str(staged), "SA": str(token), "IMAGE_UID": str(IMAGE_UID)})
    # In the namespace's own mount namespace (ip netns exec makes one): the image's /home and
    # the kubelet's token mount, then the entry script as the image's user.
    setup = ('mount -t tmpfs tmpfs /home && mkdir /home/yuanrong && cp -rL "$IMAGE_HOME"/. /home/yuanrong/ && '
             'chown -R "$IMAGE_UID:$IMAGE_UID" /home/yuanrong && mkdir -p /var/run/secrets/kubernetes.io && '
             'mount -t tmpfs tmpfs /var/run/secrets/kubernetes.io && '
             'mkdir /var/run/secrets/kubernetes.io/serviceaccount && '
             'cp "$SA"/* /var/run/secrets/kubernetes.io/serviceaccount/ && '
             'cd /home/yuanrong/datasystem && '  # the image's WORKDIR
             'exec setpriv --reuid "$IMAGE_UID" --regid "$IMAGE_UID" --clear-groups "$0" "$@"')
    show(argv)
    entry = ns.start("datasystem-worker", ["bash", "-c", setup, *argv], env=env, rendered=ds)
    address = next(a.split("=", 1)[1] for a in argv if a.startswith("-worker_address="))
    [engine] = rel.by_component("decode")
    assert engine.env["DS_WORKER_ADDR"] == address  # the engines reach the worker of their node
    logs = pathlib.Path(env["WORKER_LOG_DIR"])
    with ns.entered():
        try:
            etcd_at = f"{etcd_c.address}:{etcd_c.ports['client']}"
            # The rendered readiness probe: the worker's ready file.
            ready = pathlib.Path(env["READY_CHECK_PATH"])
            assert ds.probes["readinessProbe"]["exec"]["command"] == ["test", "-f", ds.env["READY_CHECK_PATH"]]
            deadline = time.monotonic() + 90
            while not ready.exists():
                assert entry.proc.poll() is None, f"the entry script exited {entry.proc.returncode}"
                assert time.monotonic() < deadline, "the worker never wrote its ready file"
                time.sleep(0.5)
            deadline = time.monotonic() + 60
            while f"/datasystem/cluster/{address}" not in _safe_keys(etcd_at):
                assert entry.proc.poll() is None, f"the entry script exited {entry.proc.returncode}"
                assert time.monotonic() < deadline, f"the worker never registered {address} in etcd"
                time.sleep(0.5)
            # What the script did: its log, the status file the taint check reads.
            assert "start worker" in (logs / "container.log").read_text()
            assert pathlib.Path(env["STATUS_FILE_PATH"].replace("$(WORKER_LOG_DIR)", str(logs))).exists() or \
                (logs / "worker-status").exists()
            pull = {"DS_WORKER_ADDR": engine.env["DS_WORKER_ADDR"]}
            put = ns.start("ds-set", [PYTHON, str(CLIENT), "set", "pdgen_key", "kv-from-prefill"], env=pull)
            assert put.proc.wait(60) == 0, put.tail()
            get = ns.start("ds-get", [PYTHON, str(CLIENT), "get", "pdgen_key", "kv-from-prefill"], env=pull)
            assert get.proc.wait(60) == 0, get.tail()
            time.sleep(6)  # one routine taint check (every 5 s) must not stop it
            assert entry.proc.poll() is None, "the entry script exited after its routine check"
            os.kill(entry.proc.pid, signal.SIGTERM)  # the kubelet signals PID 1, the script
            assert entry.proc.wait(60) == 0, f"the entry script exited {entry.proc.returncode}"
            assert "[HANDLE_TERM]Notify worker to begin graceful exit" in (logs / "container.log").read_text()
            assert "worker_stop_status:ready" in (logs / "worker-status").read_text()  # the worker's own stop
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
