"""pdgen's proxy, as the vLLM examples render it, in front of stand-in engines:

- p2p (MooncakeConnector hand-over): engines that speak the connector's protocol (a
  prefill's bootstrap server answers /query; a decode checks the request's
  kv_transfer_params and asks the named bootstrap server for the engine, as vLLM's decode
  does before it pulls the KV);
- store hand-over (v0-etcd, ascend): two real llama-servers (make e2e-bench builds them).

In both, the chart's own helm-test script runs, verbatim, against the release's Service, and
an engine that goes away gives a JSON 502/503, never a bare 500."""

from __future__ import annotations

import json
import pathlib
import time
import urllib.error
import urllib.request

import pytest
import yaml

from tests.conftest import ROOT
from tests.dataplane import harness
from tests.dataplane.conftest import PYTHON, need, records, show, standin

LLAMA = ROOT / ".tools" / "llama"


def post(url: str, body: dict, timeout: float = 60) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def helm_test(rel: harness.Release, ns: harness.Namespace, release: str) -> harness.Running:
    """The rendered helm-test pod's own command and env, run in the namespace to the end."""
    pod = rel.object("Pod", f"{release}-test")
    c = pod["spec"]["containers"][0]
    env = {e["name"]: str(e["value"]) for e in c["env"]}
    argv = [*c["command"], *c["args"]]
    show(argv[:2] + ["<the chart's test script>"])
    run = ns.start("helm-test", argv, env=env, rendered=f"Pod/{release}-test")
    run.proc.wait(timeout=120)
    return run


def health_once_down(base: str, role: str, timeout: float = 30) -> dict:
    """The proxy's /health body once it reports ``role`` down (it checks each side on a
    period): 503, naming the instance that is down."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
            if exc.code == 503 and body[role]["down"]:
                return body
        assert time.monotonic() < deadline, f"/health still {body} {timeout:.0f} s after the {role} side stopped"
        time.sleep(0.5)


def _proxy(rel: harness.Release, ns: harness.Namespace) -> tuple[harness.Container, harness.Running]:
    [router] = rel.by_component("router")
    argv = harness.local_argv(router)
    assert argv[0] == "python3" and argv[1].endswith("/pd_proxy.py") and pathlib.Path(argv[1]).is_file()
    show(argv)
    return router, ns.start("proxy", argv, rendered=router)


@pytest.mark.parametrize("example,release_name", [("vllm-mooncake-p2p-qwen7b.yaml", "vllm-p2p-pd"),
                                                  # lmcache hands over p2p too (MooncakeConnector first)
                                                  ("lmcache-qwen72b-tp8-pd.yaml", "qwen72b-pd")])
def test_p2p_proxy_hands_over_with_the_mooncake_protocol(release, tmp_path, example, release_name):
    need(PYTHON, "the data-plane venv")
    rel, ns = release(example)
    record = tmp_path / "requests.jsonl"
    served = yaml.safe_load((ROOT / "examples" / example).read_text())["spec"]["model"]
    model = served.get("servedName", served["name"])
    for c in rel.by_component("prefill"):
        standin(ns, "vllm-mooncake", c, role="prefill", record=record, bootstrap="bootstrap", model=model)
    for c in rel.by_component("decode"):
        standin(ns, "vllm-mooncake", c, role="decode", record=record, model=model)
    router, proxy = _proxy(rel, ns)
    base = f"http://{router.address}:{router.ports['http']}"
    with ns.entered():
        try:
            harness.wait_http(base + "/health", timeout=60, what="proxy /health",
                              alive=lambda: proxy.proc.poll() is None)
            for i in range(3):
                status, body = post(base + "/v1/completions", {"model": model, "prompt": f"p{i}", "max_tokens": 4})
                assert status == 200, body
            gen = [r for r in records(record) if r["path"] == "/v1/completions"]
            decodes = [r for r in gen if r["role"] == "decode"]
            assert len(decodes) == 3
            for d in decodes:
                assert d["checked"] == {"missing": [], "engine_found": True}, d
                params = d["body"]["kv_transfer_params"]
                [pre] = [r for r in gen if r["role"] == "prefill" and
                         r["body"]["kv_transfer_params"]["transfer_id"] == params["transfer_id"]]
                assert pre["body"]["max_tokens"] == 1 and pre["body"]["kv_transfer_params"]["do_remote_decode"]
                assert params["remote_bootstrap_addr"].endswith(":8998")
                assert pre["headers"]["x-request-id"] == d["headers"]["x-request-id"]
            run = helm_test(rel, ns, release_name)
            assert run.proc.returncode == 0, run.tail()
            assert "models:" in run.tail() and "generated:" in run.tail()
            for c in rel.by_component("decode"):
                ns.stop(next(r for r in ns.running if r.label == f"standin-{c.pod}"))
            status, body = post(base + "/v1/completions", {"model": model, "prompt": "x", "max_tokens": 2})
            assert status in (502, 503) and json.loads(body)["error"]["type"] in ("bad_gateway", "service_unavailable")
            down = health_once_down(base, "decode")
            assert down["status"] == "unavailable" and down["prefill"]["healthy"], down
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"{example}: {exc}")) from None


@pytest.mark.parametrize("example,release_name", [("ack-vllm-mooncake-v0-qwen7b.yaml", "vllm-mooncake-pd"),
                                                  ("yuanrong-vllm-ascend-qwen7b-2hosts.yaml", "yr-qwen-pd")])
def test_store_proxy_serves_through_two_llama_servers_and_the_helm_test_passes(release, example, release_name):
    need(PYTHON, "the data-plane venv")
    servers = sorted(LLAMA.glob("venv/**/llama-server"))
    model = LLAMA / "smollm2.gguf"
    if not servers or not model.is_file():
        pytest.fail("llama-server is not installed: run `make e2e-bench`")
    rel, ns = release(example)
    served = yaml.safe_load((ROOT / "examples" / example).read_text())["spec"]["model"]
    name = served.get("servedName", served["name"])
    for c in rel.by_component("prefill") + rel.by_component("decode"):
        # A GPU engine's stand-in: llama-server on the pod's address and rendered port.
        ns.start(f"llama-{c.pod}", [str(servers[0]), "-m", str(model), "--alias", name, "--host", c.address,
                                    "--port", str(c.ports["http"]), "-c", "2048", "-np", "2", "-t", "1"])
    router, proxy = _proxy(rel, ns)
    assert "--handover" in proxy.argv and proxy.argv[proxy.argv.index("--handover") + 1] == "store"
    base = f"http://{router.address}:{router.ports['http']}"
    with ns.entered():
        try:
            harness.wait_http(base + "/health", timeout=120, what="proxy /health (both llama-servers up)",
                              alive=lambda: proxy.proc.poll() is None)
            status, body = post(base + "/v1/chat/completions", {"model": name, "max_tokens": 8, "messages": [
                {"role": "user", "content": "Say hello"}], "stream": True})
            assert status == 200 and b"data: [DONE]" in body, body[-300:]
            run = helm_test(rel, ns, release_name)
            assert run.proc.returncode == 0, run.tail()
            llama = [r for r in ns.running if r.label.startswith("llama-") and "decode" in r.label]
            for r in llama:
                ns.stop(r)
            status, body = post(base + "/v1/completions", {"model": name, "prompt": "x", "max_tokens": 2})
            assert status in (502, 503) and "error" in json.loads(body), (status, body)
            down = health_once_down(base, "decode")
            assert down["status"] == "unavailable" and down["prefill"]["healthy"], down
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"{example}: {exc}")) from None


def test_aggregated_service_and_helm_test_reach_the_engines(release):
    """No proxy in aggregated mode: the Service goes straight to the engines. A llama-server
    stands in for each `vllm serve` pod; the rendered probes and the chart's test script,
    which calls the Service by its rendered name, pass against it."""
    example = "qwen72b-tp8-aggregated.yaml"
    servers = sorted(LLAMA.glob("venv/**/llama-server"))
    model = LLAMA / "smollm2.gguf"
    if not servers or not model.is_file():
        pytest.fail("llama-server is not installed: run `make e2e-bench`")
    rel, ns = release(example)
    assert not rel.by_component("router")
    served = yaml.safe_load((ROOT / "examples" / example).read_text())["spec"]["model"]
    name = served.get("servedName", served["name"])
    engines = rel.by_component("server")
    assert engines and all(c.argv[:2] == ["vllm", "serve"] and c.probes for c in engines)
    for c in engines:
        ns.start(f"llama-{c.pod}", [str(servers[0]), "-m", str(model), "--alias", name, "--host", c.address,
                                    "--port", str(c.ports["http"]), "-c", "2048", "-np", "2", "-t", "1"])
    with ns.entered():
        try:
            for c in engines:
                for probe in c.probes.values():
                    get = probe["httpGet"]
                    harness.wait_http(f"http://{c.address}:{c.ports.get(get['port'], get['port'])}{get['path']}",
                                      timeout=120, what=f"{c.pod} {get['path']}")
            [release_name] = {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in rel.objects
                              if o["kind"] == "Service"}
            run = helm_test(rel, ns, release_name)
            assert run.proc.returncode == 0, run.tail()
            assert "generated:" in run.tail()
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"{example}: {exc}")) from None
