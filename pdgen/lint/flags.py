"""Every --flag of an engine, router, proxy or master command exists in the pinned release.

PASS:: every --flag of a known engine, router, proxy or master command is one its pinned release accepts.
FAIL:: a flag the pinned release's parser does not know.
"""

from __future__ import annotations

from pdgen import flag_catalog
from pdgen.findings import Finding, Level
from pdgen.manifests import Obj, containers

ID = "flags"
LEVEL = Level.ERROR
RULES = ("flags.unknown",)

RULE = "flags.unknown"


def check(objects: list[Obj], index: object = None) -> list[Finding]:
    findings = []
    for obj in objects:
        for path, c, _ in containers(obj):
            command, args = [str(a) for a in c.get("command") or []], [str(a) for a in c.get("args") or []]
            found = flag_catalog.tool_for(command + args)
            if not found:
                continue
            tool, checked = found
            tokens = [("command", i, t) for i, t in enumerate(command)] + [("args", i, t) for i, t in enumerate(args)]
            for flag in dict.fromkeys(flag_catalog.unknown_flags(tool, checked)):
                # Point at the token when the flag is one; inside `sh -c "..."` it is not.
                at = next((path + (key, i) for key, i, t in tokens
                           if t.startswith("-") and flag_catalog.flag_name(tool, t) == flag), path)
                findings.append(obj.finding(at, f"{flag} is not a flag of {tool} {flag_catalog.version(tool)}", RULE,
                                            container=c.get("name")))
    return findings
