"""rdma: RDMA requested means RDMA devices reach the pods.

With hostNetwork and no device-plugin resource the charts mount the node's /dev/infiniband,
but the container's device cgroup still blocks those device nodes unless the container is
privileged: the transfer engine then finds no NIC and silently uses TCP. So that
combination needs transport.rdma.privileged (the pod carries the reason in
pdgen.io/privileged). Engine pods on the host network bind their ports on the node, so the
charts keep every engine pod of the release on a node of its own (a required
podAntiAffinity); `pdgen plan` counts the nodes that takes.

IPC_LOCK (memory registration) is added by the charts whenever protocol is rdma, so it
cannot be forgotten; this rule checks what the topology must say itself.

PASS::

    transport: {protocol: rdma, rdma: {resourceName: rdma/hca}}

FAIL::

    transport: {protocol: rdma}
    # -> no device plugin resource and no hostNetwork: the transfer engine falls back or fails

FAIL::

    transport: {protocol: rdma, rdma: {hostNetwork: true}}
    # -> /dev/infiniband is mounted but the device cgroup blocks it: Mooncake falls back to TCP

Source: Mooncake docs (memlock / "Failed to register memory"); one prefill per node with a
fixed bootstrap port (sglang PR #20952); SGLang's LWS PD example
(docs/references/multi_node_deployment/lws_pd/lws-examples/p.yaml) runs hostNetwork RDMA
pods with privileged: true and IPC_LOCK.
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "rdma"
LEVEL = Level.ERROR


def check(ctx):
    t = ctx.spec["transport"]
    if t["protocol"] != "rdma":
        return
    rdma = t.get("rdma", {})
    if not rdma.get("resourceName") and not rdma.get("hostNetwork"):
        yield (("spec", "transport", "protocol"),
               "rdma needs the devices in the pods: set transport.rdma.resourceName (a device-plugin resource "
               "such as rdma/hca) or transport.rdma.hostNetwork: true")
    elif rdma.get("hostNetwork") and not rdma.get("resourceName") and not rdma.get("privileged"):
        yield (("spec", "transport", "rdma", "hostNetwork"),
               "hostNetwork mounts the node's /dev/infiniband, but without a device-plugin resource the container's "
               "device cgroup blocks it and the transfer engine silently falls back to TCP: set "
               "transport.rdma.resourceName (a device plugin such as rdma/hca) or transport.rdma.privileged: true")
