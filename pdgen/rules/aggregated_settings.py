"""aggregated-settings: settings that only mean something when KV moves between roles are
absent in aggregated mode.

PASS::

    mode: aggregated
    server: {replicas: 1}

FAIL::

    mode: aggregated
    routing: {selectiveDisaggregation: {prefillThresholdInputTokens: 512}}
    # -> there is no prefill role to send long prompts to

Source: the aggregated baseline is one engine per replica (seed cache-test-guide, non-PD mode).
"""

from __future__ import annotations

from pdgen import backends
from pdgen.findings import Level

ID = "aggregated-settings"
LEVEL = Level.ERROR


def check(ctx):
    spec = ctx.spec
    if spec["mode"] != "aggregated":
        return
    if "selectiveDisaggregation" in spec["routing"]:
        yield ("spec", "routing", "selectiveDisaggregation"), "aggregated mode has no prefill role to route to"
    for key in ("mooncakeStore", "lmcache", "datasystem"):
        if key in spec.get("kvCache", {}):
            yield ("spec", "kvCache", key), (f"kvCache.{key} configures KV transfer between roles; "
                                             "aggregated mode has none")
    if "router" in spec and not backends.of(spec).router_in_aggregated:
        yield ("spec", "router"), (f"in aggregated mode the Service reaches the servers directly; backend "
                                   f"{spec['backend']} renders no router in front of 'server'")
    if spec["transport"]["protocol"] == "rdma":
        yield (("spec", "transport", "protocol"), "aggregated mode moves no KV between pods; rdma only adds "
               "device and privilege requirements", Level.WARNING)
