"""A datasystem KV client as an engine uses one: `set KEY VALUE` or `get KEY VALUE` (checks
the value) through the worker at DS_WORKER_ADDR (host:port), the engines' rendered env."""

from __future__ import annotations

import os
import sys


def main() -> int:
    op, key, value = sys.argv[1:4]
    from yr.datasystem.kv_client import KVClient

    host, port = os.environ["DS_WORKER_ADDR"].rsplit(":", 1)
    client = KVClient(host, int(port))
    client.init()
    if op == "set":
        client.set(key, value.encode())
        print(f"set {key}", flush=True)
        return 0
    [got] = client.get([key], convert_to_str=True)
    print(f"get {key}: {got!r}", flush=True)
    return 0 if got == value else 1


if __name__ == "__main__":
    sys.exit(main())
