{{/*
pd-common.engineWorkload: the objects of one engine role.
  nodesPerInstance == 1: a StatefulSet plus a headless Service of the same name, so each
    instance has its own DNS name (<name>-<i>.<name>) and peers reach its bootstrap port.
  nodesPerInstance > 1: a LeaderWorkerSet (leaderworkerset.x-k8s.io/v1); LWS injects
    LWS_LEADER_ADDRESS, LWS_GROUP_SIZE and LWS_WORKER_INDEX, which the leader and worker
    args use; the headless Service selects leaders only.
Parameters: root, component, role, leader (dict for pd-common.podTemplate), worker (dict
for the worker pods; multi-node only), ports (the leader's ports, exposed by the Service).
*/}}
{{- define "pd-common.engineWorkload" -}}
{{- $root := .root -}}
{{- $ctx := dict "root" $root "component" .component -}}
{{- $name := include "pd-common.componentName" $ctx -}}
{{- $nodes := int (default 1 .role.nodesPerInstance) -}}
{{- $base := dict "root" $root "component" .component "role" .role "engine" true -}}
{{- if eq $nodes 1 -}}
{{ include "pd-common.service" (merge (dict "ports" .ports "headless" true) $ctx) }}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  serviceName: {{ $name }}
  replicas: {{ int (default 1 .role.replicas) }}
  # Instances are independent; start them together instead of one by one.
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      {{- include "pd-common.selectorLabels" $ctx | nindent 6 }}
  template:
    {{- include "pd-common.podTemplate" (merge (deepCopy .leader) $base) | nindent 4 }}
{{- else -}}
{{- /* Named like the LWS, which then uses it as its pods' subdomain instead of creating
       its own; it selects leaders only, the pods that serve HTTP and bootstrap. */}}
{{ include "pd-common.service" (merge (dict "ports" .ports "headless" true "extraSelector" (dict "pdgen.io/instance-role" "leader")) $ctx) }}
---
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  replicas: {{ int (default 1 .role.replicas) }}
  startupPolicy: LeaderCreated
  leaderWorkerTemplate:
    size: {{ $nodes }}
    restartPolicy: RecreateGroupOnPodRestart
    leaderTemplate:
      {{- include "pd-common.podTemplate" (merge (deepCopy .leader) $base (dict "podLabels" (dict "pdgen.io/instance-role" "leader"))) | nindent 6 }}
    workerTemplate:
      {{- include "pd-common.podTemplate" (merge (deepCopy .worker) $base (dict "podLabels" (dict "pdgen.io/instance-role" "worker"))) | nindent 6 }}
{{- end -}}
{{- end -}}

{{/*
pd-common.instanceHosts: the DNS name of every instance of a role (its leader when
multi-node), one per line. StatefulSet pods are <name>-<i>.<name>; LWS leaders are
<name>-<i> under the Service of the same name.
*/}}
{{- define "pd-common.instanceHosts" -}}
{{- $name := include "pd-common.componentName" (dict "root" .root "component" .component) -}}
{{- range $i := until (int (default 1 .role.replicas)) }}
{{ printf "%s-%d.%s.%s.svc" $name $i $name $.root.Release.Namespace }}
{{- end }}
{{- end -}}
