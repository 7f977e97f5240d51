"""Every --flag in every rendered engine, router, proxy and master command, in every
backend, variant and ci scenario, is accepted by the upstream release the chart pins."""

from __future__ import annotations

import pytest

from pdgen import flag_catalog, manifests
from tests.charts.helpers import ci_values, render, scenarios

# Containers that run an upstream program the catalog must cover; anything else (etcd,
# nats, the download job, the smoke test) is not an engine command.
CHECKED = {"prefill", "decode", "server", "router", "mooncake-master", "frontend", "proxy", "datasystem", "engine"}


def _containers(obj):
    spec = obj.get("spec", {})
    templates = []
    if obj["kind"] == "LeaderWorkerSet":
        lwt = spec["leaderWorkerTemplate"]
        templates = [lwt.get("leaderTemplate"), lwt["workerTemplate"]]
    elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        templates = [spec["template"]]
    elif obj["kind"] == "Pod":
        templates = [{"spec": spec}]
    elif obj["kind"] in ("RoleBasedGroup", "DisaggregatedSet"):
        # Each role's pods as the controller resolves them (templateRef + patches).
        group = manifests.Obj(obj["kind"], obj["metadata"]["name"], obj, None, 0)
        templates = [t for role in manifests.group_roles(group) for _, t in role.templates]
    elif obj["kind"] == "DynamoGraphDeployment":
        # The operator builds the pods; the commands are each service's mainContainer.
        names = {"frontend": "frontend", "prefill": "prefill", "decode": "decode"}
        for service in spec["services"].values():
            role = names.get(service.get("subComponentType") or service["componentType"], "server")
            yield dict(service["extraPodSpec"]["mainContainer"], name=role)
    for template in filter(None, templates):
        yield from template["spec"].get("containers", [])


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: f"{s[0]}:{s[1] or 'defaults'}")
def test_every_rendered_flag_exists_in_the_pinned_release(scenario):
    chart, ci = scenario
    checked = 0
    for obj in render(chart, ci_values(chart, ci)):
        for c in _containers(obj):
            found = flag_catalog.tool_for(c.get("command", []) + c.get("args", []))
            if c["name"] in CHECKED:
                assert found, f"{obj['kind']}/{obj['metadata']['name']} {c['name']}: command not in the catalog"
            if found:
                tool, args = found
                assert flag_catalog.unknown_flags(tool, args) == [], (
                    f"{obj['kind']}/{obj['metadata']['name']} container {c['name']}: not in {tool} "
                    f"{flag_catalog.version(tool)}")
                checked += 1
    assert checked >= 1


def test_the_check_catches_a_renamed_flag():
    assert flag_catalog.unknown_flags("sglang.launch_server", ["--tp-size", "2", "--tensor-parallel-degree", "2"]) == [
        "--tensor-parallel-degree"]
    assert flag_catalog.unknown_flags("sglang.launch_server", ["--disaggregation-decode-tp", "2"]) == [
        "--disaggregation-decode-tp"]  # gone after 0.5.5
    assert flag_catalog.unknown_flags("vllm.serve", ["--max_model_len=4", "--kv-transfer-config.kv_role=kv_both",
                                                 "--swap-space", "4"]) == ["--swap-space"]
    assert flag_catalog.unknown_flags("mooncake_master", ["--rpc_port=1", "--noenable_http_metadata_server",
                                                      "--rpc-port=1"]) == ["--rpc-port"]
    assert flag_catalog.tool_for(["sh", "-c", "echo"]) is None
    # datasystem_worker's gflags, single dash or double, behind the image's entry script
    assert flag_catalog.tool_for(["/home/yuanrong/worker_entry.sh", "-worker_address=h:1"]) == (
        "datasystem_worker", ["-worker_address=h:1"])
    assert flag_catalog.unknown_flags("datasystem_worker", ["-worker_address=h:1", "--etcd_address=e:2",
                                                        "-unix_socket_dir=/x"]) == ["--unix_socket_dir"]


def test_catalog_is_current_with_the_reference():
    import subprocess
    import sys

    from tests.conftest import ROOT
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_flag_catalog.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
