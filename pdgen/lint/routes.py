"""Routes: every HTTP path a probe or the helm test calls is served by the program behind it.

The table is what each pinned program serves, from its upstream source. A program not in the
table (a shell, etcd, NATS) is not checked.

PASS:: every probe and helm-test call is a route the program behind it serves.
FAIL:: a probe or the helm test calls a path the pinned program does not serve.
"""

from __future__ import annotations

from pdgen import flag_catalog
from pdgen.findings import Finding, Level
from pdgen.lint.wiring import Index, build_index, split_host
from pdgen.manifests import Obj, containers

ID = "routes"
LEVEL = Level.ERROR
RULES = ("wiring.route",)

RULE = "wiring.route"

_OPENAI = {"GET /v1/models", "POST /v1/completions", "POST /v1/chat/completions"}

# catalog tool -> {"METHOD /path", ...} it serves, with where that comes from.
ROUTES: dict[str, tuple[set[str], str]] = {
    "pdgen.pd_proxy": (_OPENAI | {"GET /health", "GET /livez", "GET /metrics"},
                       "pdgen/pd_proxy.py Proxy.app (tests/lint/test_lint.py checks it)"),
    "sglang_router.launch_router": (
        _OPENAI | {"GET /health", "GET /health_generate", "GET /readiness", "GET /liveness", "POST /generate",
                   "GET /get_model_info", "GET /get_server_info", "POST /flush_cache", "GET /metrics"},
        "sglang-router 0.3.2 wheel, route strings of sglang_router_rs.abi3.so; /readiness and /liveness seen "
        "answering in the data-plane trial; /metrics on --prometheus-port (router_args.py)"),
    "dynamo.frontend": (_OPENAI | {"GET /health", "GET /live", "GET /metrics", "GET /v1/models/{model}/ready"},
                        "ai-dynamo 1.6.1 wheel (dynamo/frontend) and lib/runtime http service: /health, /live, "
                        "/v1/models, /v1/models/{model_id}/ready (a route string of dynamo/_core.abi3.so), "
                        "/metrics on --http-port"),
    # No GET /v1/models and no /health: vllm-ascend v0.23.0 (5cb98caa) serves only these.
    "vllm_ascend.load_balance_proxy_server_example": (
        {"POST /v1/completions", "POST /v1/chat/completions", "GET /healthcheck", "POST /reset_prefix_cache",
         "POST /instances/add", "POST /instances/remove"},
        "vllm-project/vllm-ascend v0.23.0 examples/disaggregated_prefill_v1/load_balance_proxy_server_example.py"),
    # The upstream example pdgen no longer renders; kept so a hand-written manifest using it
    # is checked too.
    "vllm.mooncake_connector_proxy": ({"POST /v1/completions", "POST /v1/chat/completions"},
                                      "vllm-project/vllm@4b5c627 examples/disaggregated/mooncake_connector/"
                                      "mooncake_connector_proxy.py"),
    "vllm.serve": (_OPENAI | {"GET /health", "GET /metrics", "GET /ping", "GET /version"},
                   "vllm-project/vllm v0.33.0 vllm/entrypoints/openai/api_server.py"),
    "sglang.launch_server": (_OPENAI | {"GET /health", "GET /health_generate", "GET /ready", "GET /metrics",
                                        "GET /get_model_info", "GET /get_server_info", "GET /model_info",
                                        "GET /server_info", "POST /generate"},
                             # /ready: 200 once tokenizer_manager.is_ready(), else 503 (read in the
                             # sglang-0.5.23 wheel; older releases have no /ready).
                             "sgl-project/sglang v0.5.23 python/sglang/srt/entrypoints/http_server.py"),
    # Workers serve only their system port (DYN_SYSTEM_PORT): /health and /live share one
    # handler (ai-dynamo/dynamo lib/runtime/src/system_status_server.rs).
    "dynamo.vllm": ({"GET /health", "GET /live", "GET /metrics"}, "ai-dynamo 1.6.1 system status server"),
    "dynamo.sglang": ({"GET /health", "GET /live", "GET /metrics"}, "ai-dynamo 1.6.1 system status server"),
    "mooncake_master": ({"GET /metrics", "GET /metrics/summary", "GET /health"},
                        "kvcache-ai/Mooncake mooncake-store/src/master.cpp (metrics port)"),
}

TEST_CALLS = "pdgen.io/test-calls"  # annotation on the helm-test pod: "GET /v1/models, POST /v1/completions"


def tool_of(container: dict) -> str | None:
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    found = flag_catalog.tool_for(argv)
    return found[0] if found else None


def serves(tool: str, call: str) -> bool:
    routes = ROUTES.get(tool)
    return routes is None or any(_matches(route, call) for route in routes[0])


def _matches(route: str, call: str) -> bool:
    """A "{name}" segment of ``route`` matches any one non-empty segment of ``call``."""
    want, got = route.split("/"), call.split("/")
    return len(want) == len(got) and all(
        w == g or (w.startswith("{") and w.endswith("}") and g) for w, g in zip(want, got, strict=True))


def check(objects: list[Obj], index: Index | None = None) -> list[Finding]:
    backends = (index or build_index(objects)).backends()  # Service name -> the containers behind it
    findings = []
    for obj in objects:
        for path, c, _ in containers(obj):
            tool = tool_of(c)
            if tool is None:
                continue
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                get = (c.get(probe) or {}).get("httpGet")
                if not get:
                    continue
                call = "GET " + str(get.get("path", "/")).split("?", 1)[0]
                if not serves(tool, call):
                    findings.append(obj.finding(path + (probe, "httpGet", "path"),
                                                f"{probe} calls {call}, which {tool} does not serve "
                                                f"({ROUTES[tool][1]})", RULE, container=c.get("name")))
        annotations = (obj.data.get("metadata") or {}).get("annotations") or {}
        if obj.kind == "Pod" and TEST_CALLS in annotations:
            findings += _test_calls(obj, annotations[TEST_CALLS], backends)
    return findings


def _test_calls(obj: Obj, calls: str, backends: dict[str, list[dict]]) -> list[Finding]:
    env = {e.get("name"): e.get("value", "") for c in (obj.data.get("spec") or {}).get("containers") or []
           for e in c.get("env") or []}
    base = str(env.get("BASE_URL", ""))
    host = base.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    _, service = split_host(host)
    findings = []
    for call in (c.strip() for c in str(calls).split(",") if c.strip()):
        for tool in filter(None, map(tool_of, backends.get(service, []))):
            if not serves(tool, call):
                findings.append(obj.finding(("metadata", "annotations", TEST_CALLS),
                                            f"helm test calls {call} on {base}, which {tool} behind Service "
                                            f"{service} does not serve ({ROUTES[tool][1]})", RULE))
    return findings
