"""`pdgen up`, `pdgen diff` and `pdgen down` on the real control plane (kwok nodes and kubelets,
tests/cluster/conftest.py), with real helm.

- the whole path: up (progress, helm test, endpoint), diff (no change; a replica change is
  exactly that change; an image change restarts engine pods), an upgrade under a terminal
  (pty), down keeping the model claim, down --purge;
- failure paths, each with its reason and exit code: a missing Secret and a GPU shortage stop
  at preflight before anything is installed; the same shortage past preflight is
  FailedScheduling naming the resource; an image that cannot be pulled and a crash loop
  (kwok's fault images, tests/cluster/controlplane.py), with --atomic uninstalling a first
  install and rolling an upgrade back; an up interrupted by SIGINT, which the next up finishes."""

from __future__ import annotations

import json
import os
import pathlib
import pty
import re
import select
import signal
import subprocess
import threading
import time

import pytest
import yaml

from tests.cluster.conftest import PDGEN
from tests.cluster.controlplane import CRASH_LOOP_FAULT, FAULT_MESSAGE, IMAGE_PULL_FAULT
from tests.cluster.test_commands import SGLANG

STORAGE_CLASS = "pdgen-manual"


@pytest.fixture
def gpu_nodes(cluster):
    for i in range(3):
        cluster.node(f"up-gpu-{i}", {"nvidia.com/gpu": 8, "aliyun/erdma": 8, "cpu": 64, "memory": "512Gi"})
    cluster.node("up-cpu", {"cpu": 64, "memory": "512Gi"})
    yield cluster
    cluster.remove_nodes()
    # Other tests count the cluster's StorageClasses (test_commands: "the cluster has: none").
    for path in (f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}",
                 "/api/v1/persistentvolumes/pv-up-flow-model"):
        if cluster.cp.exists(path):
            cluster.cp.api("DELETE", path)


def _topology(tmp_path, name: str, *, download: bool = False, **roles) -> str:
    """The SGLang example as release NAME in namespace NAME; roles: spec keys merged in."""
    doc = yaml.safe_load(SGLANG.read_text())
    doc["metadata"].update(name=name, namespace=name)
    if download:
        doc["spec"]["model"]["source"] = {"download": {"from": "hf", "uri": "Qwen/Qwen2.5-7B-Instruct",
                                                       "storage": {"size": "20Gi",
                                                                   "storageClassName": STORAGE_CLASS}}}
    for key, value in roles.items():
        doc["spec"][key] = {**doc["spec"].get(key, {}), **value}
    path = tmp_path / f"{name}-{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _model_volume(cluster, namespace: str, download: bool, volume: bool = True) -> None:
    """What the model needs: the example's claim llm-model, bound; or, for a download, a
    StorageClass without a provisioner and (``volume``) a volume waiting for the release's claim."""
    cluster.namespace(namespace)
    if not download:
        from tests.cluster.test_commands import _claim
        _claim(cluster, namespace)
        return
    cluster.cp.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": STORAGE_CLASS},
                      "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate"})
    if not volume:
        return
    pv = f"pv-{namespace}-model"
    cluster.cp.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
                      "spec": {"capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteMany", "ReadOnlyMany",
                                                                                "ReadWriteOnce"],
                               "hostPath": {"path": f"/tmp/{pv}"}, "storageClassName": STORAGE_CLASS,
                               "persistentVolumeReclaimPolicy": "Retain",
                               "claimRef": {"namespace": namespace, "name": f"{namespace}-model"}}})


def _pdgen(cluster, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run([PDGEN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "KUBECONFIG": cluster.kubeconfig})


def _up(cluster, path: str, tmp_path, *flags: str) -> subprocess.CompletedProcess:
    return _pdgen(cluster, "up", path, "-o", str(tmp_path / "out"), "--stall", "8", *flags)


def _history(cluster, release: str) -> list[dict]:
    proc = cluster.helm("history", release, "-n", release, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else []


def _screen(raw: str) -> list[str]:
    """What a terminal shows after the output: each "cursor up, erase line" takes back a line."""
    lines: list[str] = []
    for part in re.split(r"(\x1b\[1A\x1b\[2K)", raw.replace("\r\n", "\n")):
        if part == "\x1b[1A\x1b[2K":
            lines.pop()
        elif part:
            lines += part.split("\n")[:-1] if part.endswith("\n") else part.split("\n")
    return lines


def _under_a_terminal(cluster, argv: list[str], timeout: float = 400) -> tuple[int, str]:
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True,
                            env={**os.environ, "KUBECONFIG": cluster.kubeconfig, "TERM": "xterm", "COLUMNS": "160"})
    os.close(secondary)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 1.0)
            if ready:
                try:
                    data = os.read(primary, 65536)
                except OSError:  # the other side closed: the process is done
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        return proc.wait(30), b"".join(chunks).decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)


def test_up_tests_and_reports_diff_shows_changes_and_down_keeps_the_model(gpu_nodes, tmp_path):
    cluster, name = gpu_nodes, "up-flow"
    _model_volume(cluster, name, download=True, volume=False)
    path = _topology(tmp_path, name, download=True)
    try:
        # The first up under a terminal. The model's volume comes 4 s late, so the pods wait
        # Pending and the block of role lines is redrawn in place until they are ready.
        later = threading.Timer(4.0, _model_volume, (cluster, name, True))
        later.start()
        code, raw = _under_a_terminal(cluster, [PDGEN, "up", path, "-o", str(tmp_path / "out"), "--stall", "30"])
        later.join()
        assert code == 0, raw
        assert f"installing {name}/{name} (chart sglang-mooncake " in raw
        assert "\x1b[1A\x1b[2K" in raw and re.search(r"decode\s+0/1\s+Pending", raw), raw
        screen = _screen(raw)
        for role in ("decode +1/1", "prefill +2/2", "router +1/1"):
            assert any(re.fullmatch(role + r"\s+ready", line) for line in screen), screen
        assert any(re.fullmatch(r"model-download\s+Job\s+done", line) for line in screen), screen
        # redrawn, not appended: no Pending line stays, and no timestamps (those are for logs)
        assert not any("Pending" in line or re.match(r"\[\s*\d+s\]", line) for line in screen), screen
        assert f"Ready: {name}/{name} revision 1, every role ready and `helm test` passed." in screen
        assert (tmp_path / "out" / name / "values.yaml").is_file()  # what was installed, kept

        same = _pdgen(cluster, "diff", path)
        assert (same.returncode, same.stdout) == (0, f"{name}/{name}: no change\n"), same.stdout + same.stderr

        # Two router pods: that field, and the disruption budget the chart adds for more than
        # one pod; nothing the server defaults, and no restart.
        more = _topology(tmp_path, name, download=True, router={"replicas": 2})
        changed = _pdgen(cluster, "diff", more, "--format", "json")
        assert changed.returncode == 1, changed.stdout + changed.stderr
        [doc] = json.loads(changed.stdout)
        assert doc["diff"]["objects"] == [
            {"object": f"Deployment/{name}-router", "state": "changed", "component": "router", "restartsPods": False,
             "changes": [{"op": "~", "path": "spec.replicas", "old": 1, "new": 2}]},
            {"object": f"PodDisruptionBudget/{name}-router", "state": "new", "component": "router",
             "restartsPods": False, "changes": []}]
        assert doc["diff"]["restartsEngines"] == []
        text = _pdgen(cluster, "diff", more).stdout
        assert "warning: $.spec.routing.policy: cache-aware routing with 2 router replicas" in text  # validate's
        assert text.endswith(f"~ Deployment/{name}-router (no pod restarts)\n    ~ spec.replicas: 1 -> 2\n"
                             f"+ PodDisruptionBudget/{name}-router (new)\n"
                             f"Summary: {name}/{name}: 1 changed, 1 new, 0 removed; no engine pod restarts\n"), text

        # A second decode pod: sglang-router lists every decode URL in its arguments, so the
        # router restarts too, and diff says so, with the argument it gains.
        text = _pdgen(cluster, "diff", _topology(tmp_path, name, download=True, decode={"replicas": 2})).stdout
        assert f"~ StatefulSet/{name}-decode (no pod restarts)\n    ~ spec.replicas: 1 -> 2\n" in text
        assert f"~ Deployment/{name}-router (restarts router pods)" in text
        assert f"+--decode http://{name}-decode-1.{name}-decode.{name}.svc:8000" in text, text

        spec = yaml.safe_load(pathlib.Path(more).read_text())["spec"]
        retagged = _topology(tmp_path, name, download=True, router={"replicas": 2},
                             image={**spec.get("image", {}), "tag": "v0.5.23-retag"})
        text = _pdgen(cluster, "diff", retagged).stdout
        assert f"~ StatefulSet/{name}-decode (restarts decode pods: engines reload the model)" in text
        assert re.search(r"~ spec\.template\.spec\.containers\[decode\]\.image: \S+ -> \S+:v0\.5\.23-retag", text), text
        assert re.search(r"Summary: .*restarts engine pods of decode, prefill \(they reload the model\)", text), text

        # The upgrade (a new image everywhere: every workload rolls), its output to a log: one
        # timestamped line per change of a role, and up waits until no old pod is left.
        out = _up(cluster, retagged, tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        text = out.stdout
        assert f"upgrading {name}/{name} (chart sglang-mooncake " in text
        assert re.search(r"^\[\s*\d+s\] decode\s+1/1\s+ready$", text, re.M), text
        assert re.search(r"^\[\s*\d+s\] router\s+2/2\s+ready$", text, re.M), text
        assert "\x1b[" not in text
        assert f"Ready: {name}/{name} revision 2, every role ready and `helm test` passed." in text
        images = {c["image"] for p in cluster.pods(name, name) if "helm.sh/hook" not in p["metadata"].get(
            "annotations", {}) for c in p["spec"]["containers"] if c["image"].startswith("lmsysorg/sglang:")}
        assert images and all(i.endswith(":v0.5.23-retag") for i in images), images
        assert f"kubectl -n {name} port-forward svc/{name} 8000:8000" in text
        served = yaml.safe_load((tmp_path / "out" / name / "values.yaml").read_text())["model"]["servedName"]
        assert "curl http://localhost:8000/v1/completions" in text and f'"model": "{served}"' in text
        assert f"pdgen bench run --base-url http://localhost:8000 --model {served} --scenario chat" in text
        assert _pdgen(cluster, "diff", retagged).returncode == 0

        down = _pdgen(cluster, "down", path)
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"Removed {name}/{name}: no pod left." in down.stdout
        assert f"Kept PersistentVolumeClaim/{name}-model" in down.stdout and "--purge" in down.stdout
        assert cluster.objects(name, name) == [f"PersistentVolumeClaim/{name}-model"]
        again = _pdgen(cluster, "down", name, "-n", name)
        assert again.returncode == 1 and f"No release {name} in namespace {name}." in again.stdout
        purged = _pdgen(cluster, "down", name, "-n", name, "--purge")
        assert purged.returncode == 0 and f"Deleted PersistentVolumeClaim/{name}-model (--purge)." in purged.stdout
        cluster.wait_until("the model claim gone", lambda: cluster.objects(name, name) == [], timeout=60)
    finally:
        cluster.helm("uninstall", name, "-n", name, "--wait", check=False)


def test_a_missing_secret_stops_up_before_anything_is_installed(gpu_nodes, tmp_path):
    cluster, name = gpu_nodes, "up-secret"
    _model_volume(cluster, name, download=False)
    path = _topology(tmp_path, name, prefill={"env": {"HF_TOKEN": {"secretKeyRef": {"name": "hf", "key": "token"}}}})
    out = _up(cluster, path, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: $.spec.prefill.env.HF_TOKEN.secretKeyRef.name: Secret hf does not exist" in out.stdout
    assert f"{path}: not installed (fix the errors above)" in out.stdout
    assert _history(cluster, name) == []


def test_a_gpu_shortage_is_named_at_preflight_and_past_it_by_the_scheduler(gpu_nodes, tmp_path):
    """decode asks for 16 GPUs a pod; the nodes have 8."""
    cluster, name = gpu_nodes, "up-gpus"
    _model_volume(cluster, name, download=False)
    path = _topology(tmp_path, name, decode={"acceleratorsPerPod": 16, "parallelism": {"tensor": 4, "pipeline": 4}})
    out = _up(cluster, path, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Insufficient nvidia.com/gpu" in out.stdout and "$.spec.decode" in out.stdout
    assert _history(cluster, name) == []
    try:
        out = _up(cluster, path, tmp_path, "--skip-preflight")
        assert out.returncode == 1, out.stdout + out.stderr
        [failed] = [line for line in out.stdout.splitlines() if line.startswith("Failed at wait:")]
        assert f"decode: pod {name}-decode-0 is Pending: 0/4 nodes are available:" in failed
        assert "Insufficient nvidia.com/gpu" in failed
        assert "The release stays installed as it is: `pdgen status" in out.stdout
    finally:
        cluster.helm("uninstall", name, "-n", name, "--wait", check=False)


def test_image_pull_and_crash_loop_end_the_wait_and_atomic_puts_the_release_back(gpu_nodes, tmp_path):
    cluster, name = gpu_nodes, "up-faults"
    _model_volume(cluster, name, download=False)
    repo, tag = IMAGE_PULL_FAULT.rsplit(":", 1)
    unpullable = _topology(tmp_path, name, decode={"image": {"repository": repo, "tag": tag}})
    try:
        out = _up(cluster, unpullable, tmp_path, "--atomic")
        assert out.returncode == 1, out.stdout + out.stderr
        [failed] = [line for line in out.stdout.splitlines() if line.startswith("Failed at wait:")]
        assert f"decode: pod {name}-decode-0 container decode is ImagePullBackOff" in failed, failed
        assert "--atomic: uninstalled (it was a first install)" in out.stdout
        assert _history(cluster, name) == []

        good = _topology(tmp_path, name)
        assert _up(cluster, good, tmp_path).returncode == 0
        repo, tag = CRASH_LOOP_FAULT.rsplit(":", 1)
        crashing = _topology(tmp_path, name, router={"image": {"repository": repo, "tag": tag}})
        out = _up(cluster, crashing, tmp_path, "--atomic")
        assert out.returncode == 1, out.stdout + out.stderr
        [failed] = [line for line in out.stdout.splitlines() if line.startswith("Failed at wait:")]
        assert f"router: pod {name}-router-" in failed and "container router is CrashLoopBackOff" in failed
        assert f"last exit 1 (Error): {FAULT_MESSAGE}" in failed
        assert "--atomic: rolled back to revision 1, and every role is ready again" in out.stdout
        history = _history(cluster, name)
        assert [(h["revision"], h["status"]) for h in history][-1] == (3, "deployed")
        assert "Rollback to 1" in history[-1]["description"]
        assert _pdgen(cluster, "diff", good).returncode == 0  # back as the good revision was
    finally:
        cluster.helm("uninstall", name, "-n", name, "--wait", check=False)


def test_an_interrupted_up_leaves_a_release_the_next_up_finishes(gpu_nodes, tmp_path):
    cluster, name = gpu_nodes, "up-sigint"
    _model_volume(cluster, name, download=False)
    path = _topology(tmp_path, name)
    # pytest-xdist's workers ignore SIGINT, and a child inherits that (Python then never turns it
    # into KeyboardInterrupt): give pdgen the default disposition a shell gives it.
    proc = subprocess.Popen([PDGEN, "up", path, "-o", str(tmp_path / "out")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen += line
            if line.startswith("installing ") or not line:
                break
        assert "installing " in seen, seen + proc.stderr.read()
        proc.send_signal(signal.SIGINT)  # while helm installs: pdgen lets helm finish its write
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, seen + stdout + stderr
        # Never left pending-install (which would block every later helm operation on it).
        assert [h["status"] for h in _history(cluster, name)] in ([], ["deployed"]), _history(cluster, name)
        out = _up(cluster, path, tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        assert re.search(rf"Ready: {name}/{name} revision [12], ", out.stdout), out.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.helm("uninstall", name, "-n", name, "--wait", check=False)
