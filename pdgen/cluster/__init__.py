"""Commands that talk to a cluster (preflight, status, lint --server), on the kubernetes
client. Only the CLI calls this package; render, lint and plan stay offline."""

from pdgen.cluster.client import Cluster, ClusterError, connect

__all__ = ["Cluster", "ClusterError", "connect"]
