"""A Helm release as Helm stored it: the manifest of its latest revision, read from the
release Secret Helm's default storage driver writes (`sh.helm.release.v1.<release>.v<N>`,
labels owner=helm, name, status, version; `data.release` is base64 of the gzipped release
JSON: helm/helm pkg/storage/driver/secrets.go and util.go, the same in Helm 3 and 4). With it,
`pdgen status` knows what the release should have, not only what the cluster still shows."""

from __future__ import annotations

import base64
import binascii
import gzip
import json

from pdgen.cluster.client import Cluster, api_call


def manifest(cluster: Cluster, release: str, namespace: str) -> str | None:
    """The rendered manifest of the release's deployed revision (else its latest), or None
    when no Helm release of that name is stored in the namespace."""
    listed = api_call("list Helm release Secrets", cluster.typed("CoreV1Api").list_namespaced_secret, namespace,
                      label_selector=f"owner=helm,name={release}")
    items = [s for s in (listed.items if listed else []) if (s.data or {}).get("release")]
    if not items:
        return None

    def order(secret) -> tuple[bool, int]:
        labels = secret.metadata.labels or {}
        return labels.get("status") == "deployed", int(labels.get("version", "0") or 0)

    chosen = max(items, key=order)
    try:
        raw = base64.b64decode(base64.b64decode(chosen.data["release"]))
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return str(json.loads(raw).get("manifest") or "")
    except (binascii.Error, OSError, ValueError):
        return None
