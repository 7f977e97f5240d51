"""name-length: every object a release makes gets a name its controller accepts. The topology's
name is the release name and the prefix of every object; the controllers then add their own
parts and enforce limits that `helm install` never checks:

- a StatefulSet's name goes into its pods' controller-revision-hash label (`<name>-<hash>`,
  at most 63 characters), so it may have at most 52; a LeaderWorkerSet's per-group worker
  StatefulSets (`<name>-<group>`) and a RoleBasedGroup's per-role workloads (`<rbg>-<role>`)
  too;
- a Service's name is a DNS-1035 label: at most 63.

So the name may be only as long as the longest suffix the backend's chart adds in the chosen
form leaves room for: pdgen/data/name_limits.json, made by scripts/name_limits.py from real
renders of every chart scenario (a LeaderWorkerSet counted with up to 1,000 groups). `pdgen
lint` checks the same limits on any manifest (pdgen/lint/names.py).

PASS::

    metadata: {name: qwen7b-pd}

FAIL::

    metadata: {name: the-team-that-serves-qwen-for-the-whole-company-pd}   # 50 characters
    # -> the StatefulSet <name>-prefill would be 58 characters, over the 52 a StatefulSet may have

Source: kubernetes/kubernetes#64023 (a StatefulSet over 52 characters makes no pods: the
controller-revision-hash label value is too long); apps/v1 and core/v1 name validation.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from pdgen.findings import Level

ID = "name-length"
LEVEL = Level.ERROR


@functools.cache
def limits() -> dict:
    return json.loads(resources.files("pdgen").joinpath("data/name_limits.json").read_text(encoding="utf-8"))


def check(ctx):
    name = ctx.topology["metadata"]["name"]
    spec = ctx.spec
    backend, form = spec["backend"], spec["deployment"]["form"]
    forms = limits().get(backend, {})
    # A form no chart scenario renders (e.g. the Dynamo operator's graph) is held to the
    # tightest of the backend's.
    table: dict = forms.get(form) or min(forms.values(), key=lambda t: min(e["maxLength"] for e in t.values()),
                                         default={})
    multinode = form == "disaggregatedset" or any(spec[r]["nodesPerInstance"] > 1
                                                  for r in ("prefill", "decode", "server") if r in spec)
    entries = [table[k] for k in ("always", "perGroup") if k in table and (k == "always" or multinode)]
    for entry in sorted(entries, key=lambda e: e["maxLength"])[:1]:
        if len(name) <= entry["maxLength"]:
            return
        longest = entry["longest"].replace("<name>", name)
        yield ("metadata", "name"), (
            f"{name} is {len(name)} characters; backend {backend} in form {form} makes {longest} "
            f"({len(longest)} characters), over the {entry['limit']} allowed for {entry['what']}: use a name of "
            f"at most {entry['maxLength']} characters")
