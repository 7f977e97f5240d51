"""The kubernetes client, configured the way kubectl users expect: --kubeconfig (else
$KUBECONFIG, else ~/.kube/config, else in-cluster), --context, -n/--namespace (else the
context's namespace, else default)."""

from __future__ import annotations

from dataclasses import dataclass

from pdgen.errors import PdgenError


class ClusterError(PdgenError):
    """The cluster could not be reached or answered with an error pdgen cannot read."""


@dataclass
class Cluster:
    api: object          # kubernetes.client.ApiClient
    namespace: str
    context: str

    def typed(self, api: str):
        """One of the kubernetes client's typed APIs on this connection, by its class name
        (CoreV1Api, AppsV1Api, CustomObjectsApi, StorageV1Api, ...)."""
        from kubernetes import client
        return getattr(client, api)(self.api)

    def dynamic(self):
        from kubernetes import dynamic
        return dynamic.DynamicClient(self.api)


def connect(kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None) -> Cluster:
    from kubernetes import client, config

    try:
        if kubeconfig or not _in_cluster():
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = next((c for c in contexts if c["name"] == context), None) if context else active
            if context and chosen is None:
                raise ClusterError(f"no context {context!r} in the kubeconfig (known: "
                                   f"{', '.join(c['name'] for c in contexts)})")
            configuration = client.Configuration()
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
            name = chosen["name"] if chosen else ""
            default_ns = (chosen or {}).get("context", {}).get("namespace") or "default"
        else:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            name, default_ns = "in-cluster", _in_cluster_namespace()
    except config.ConfigException as exc:
        raise ClusterError(f"cannot load the kubeconfig: {exc}") from None
    except OSError as exc:
        raise ClusterError(f"cannot read the kubeconfig: {exc}") from None
    configuration.retries = 1
    return Cluster(client.ApiClient(configuration), namespace or default_ns, name)


def _in_cluster() -> bool:
    import os
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG") and not \
        os.path.exists(os.path.expanduser("~/.kube/config"))


def _in_cluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as fh:
            return fh.read().strip() or "default"
    except OSError:
        return "default"


def served(cluster: Cluster, api_version: str) -> dict[str, str] | None:
    """kind -> resource (plural) the API server serves for ``api_version``; None if not served."""
    if api_version == "v1":
        answer = api_call("discovery of v1", cluster.typed("CoreV1Api").get_api_resources)
    else:
        group, _, version = api_version.rpartition("/")
        answer = api_call(f"discovery of {api_version}", cluster.typed("CustomObjectsApi").get_api_resources,
                          group, version)
    if answer is None:
        return None
    return {r.kind: r.name for r in answer.resources if "/" not in r.name}


def api_call(what: str, call, *args, **kwargs):
    """A kubernetes client call; None for 404, ClusterError for anything else that fails."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call(*args, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise ClusterError(f"{what}: HTTP {exc.status} {exc.reason}: {_message(exc)}") from None
    except (HTTPError, OSError) as exc:
        raise ClusterError(f"{what}: cannot reach the API server: {exc}") from None


def _message(exc) -> str:
    import json
    try:
        return json.loads(exc.body).get("message", exc.body)
    except (TypeError, ValueError):
        return str(exc.body)
