"""A Mooncake store client as an engine uses one, for the data-plane test: `put KEY SIZE`
writes SIZE bytes and then holds its segment (the value lives there) until killed; `get KEY
SIZE` reads it back and checks the bytes. Addresses come from the rendered config: LMCache's
lmcache.yaml (extra_config) or the v0 connector's mooncake.json (MOONCAKE_CONFIG_PATH).

  store_client.py put|get --config lmcache.yaml|mooncake.json --host ADDRESS --key K --size N
"""

from __future__ import annotations

import argparse
import sys
import time

import yaml


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("op", choices=["put", "get"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", required=True, help="this client's own address (local_hostname)")
    parser.add_argument("--key", required=True)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--segment", type=int, default=64 << 20, help="the shrunk global segment")
    args = parser.parse_args()
    config = yaml.safe_load(open(args.config))  # JSON is YAML too
    extra = config.get("extra_config", config)

    from mooncake.store import MooncakeDistributedStore

    store = MooncakeDistributedStore()
    rc = store.setup(args.host, extra["metadata_server"], args.segment, 16 << 20, extra["protocol"],
                     extra.get("device_name") or "", extra["master_server_address"])
    if rc != 0:
        print(f"setup failed: {rc}", flush=True)
        return 1
    value = bytes(i % 251 for i in range(args.size))
    if args.op == "put":
        rc = store.put(args.key, value)
        print(f"put {args.key}: {rc}", flush=True)
        if rc != 0:
            return 1
        print("holding", flush=True)
        while True:
            time.sleep(1)
    got = store.get(args.key)
    print(f"get {args.key}: {len(got)} bytes, {'equal' if got == value else 'DIFFERENT'}", flush=True)
    return 0 if got == value else 1


if __name__ == "__main__":
    sys.exit(main())
