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
{{- $form := include "pd-common.form" $root -}}
{{- if eq $form "rolebasedgroup" -}}
{{- /* The pods are the RoleBasedGroup's (pd-common.group), under its s-<rbg>-<role>. */ -}}
{{- else if eq $form "disaggregatedset" -}}
{{- /* The pods are the DisaggregatedSet's (pd-common.group); their LeaderWorkerSets' names
       change with every revision, so this Service is what gives the role a stable name. */}}
{{ include "pd-common.service" (merge (dict "ports" .ports "headless" true "extraSelector" (ternary
    (dict "pdgen.io/instance-role" "leader") dict (gt $nodes 1))) $ctx) }}
{{- else if eq $nodes 1 -}}
{{ include "pd-common.service" (merge (dict "ports" .ports "headless" true) $ctx) }}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  serviceName: {{ $name }}
  {{- include "pd-common.replicas" .role | nindent 2 }}
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
{{ include "pd-common.service" (merge (dict "ports" .ports "headless" true "extraSelector"
    (dict "pdgen.io/instance-role" "leader")) $ctx) }}
---
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  {{- include "pd-common.replicas" .role | nindent 2 }}
  startupPolicy: LeaderCreated
  leaderWorkerTemplate:
    size: {{ $nodes }}
    restartPolicy: RecreateGroupOnPodRestart
    leaderTemplate:
      {{- include "pd-common.podTemplate" (merge (deepCopy .leader) $base (dict "podLabels"
          (dict "pdgen.io/instance-role" "leader"))) | nindent 6 }}
    workerTemplate:
      {{- include "pd-common.podTemplate" (merge (deepCopy .worker) $base (dict "podLabels"
          (dict "pdgen.io/instance-role" "worker"))) | nindent 6 }}
{{- end }}
{{ include "pd-common.autoscaler" (dict "root" $root "component" .component "role" .role "kind"
    (include "pd-common.scaleTarget" (dict "root" $root "kind" (ternary "StatefulSet" "LeaderWorkerSet"
    (eq $nodes 1))))) }}
{{ include "pd-common.disruptionBudget" (dict "root" $root "component" .component "role" .role) }}
{{- end -}}

{{/*
pd-common.scaleTarget: what an HPA scales in the release's form: the workload itself
(workloads), or the object with a scale subresource the group's controller makes per role
(rbg RoleBasedGroupScalingAdapter, lws DisaggregatedSetRoleScaler; both <group>-<role>, the
role's component name). Parameters: root, kind (the workloads form's).
*/}}
{{- define "pd-common.scaleTarget" -}}
{{- $form := include "pd-common.form" .root -}}
{{- if eq $form "rolebasedgroup" -}}RoleBasedGroupScalingAdapter
{{- else if eq $form "disaggregatedset" -}}DisaggregatedSetRoleScaler
{{- else -}}{{ .kind }}
{{- end -}}
{{- end -}}

{{/*
pd-common.instanceHosts: the DNS name of every instance of a role (its leader when
multi-node), one per line. StatefulSet pods are <name>-<i>.<name>; LWS leaders are
<name>-<i> under the Service of the same name; RoleBasedGroup pods <rbg>-<role>-<i> (leaders
<rbg>-<role>-<i>-0) under s-<rbg>-<role>, every replica, not only the first (the upstream
leader-worker example lists <rbg>-prefill-0 alone, which is an instance name, not a pod).
*/}}
{{- define "pd-common.instanceHosts" -}}
{{- $name := include "pd-common.componentName" (dict "root" .root "component" .component) -}}
{{- $svc := include "pd-common.roleService" (dict "root" .root "component" .component) -}}
{{- $form := include "pd-common.form" .root -}}
{{- if eq $form "disaggregatedset" -}}
{{- fail "pd-common.instanceHosts: a DisaggregatedSet's pods have no stable names; route through the role's Service" -}}
{{- end -}}
{{- $leader := ternary "-0" "" (and (eq $form "rolebasedgroup") (gt (int (default 1 .role.nodesPerInstance)) 1)) -}}
{{- range $i := until (int (default 1 .role.replicas)) }}
{{ printf "%s-%d%s.%s.%s.svc" $name $i $leader $svc $.root.Release.Namespace }}
{{- end }}
{{- end -}}

{{/*
pd-common.proxyInstanceArgs: pdgen's proxy's arguments for one role's instances: every
instance's own URL (--prefill URL [BOOTSTRAP] / --decode URL), or, when the role autoscales
or is a DisaggregatedSet's (whose pods have no stable names), the role's headless Service,
which the proxy resolves to its pods at every health check (--prefill-service /
--decode-service), so the pods an HPA or a rollout adds get traffic.
Parameters: root, component (prefill, decode), role, port, bootstrap (optional).
*/}}
{{- define "pd-common.proxyInstanceArgs" -}}
{{- $args := list -}}
{{- $extra := ternary (list (toString .bootstrap)) list (not (empty .bootstrap)) -}}
{{- if or (dig "autoscaling" "enabled" false .role) (eq (include "pd-common.form" .root) "disaggregatedset") -}}
{{- $name := include "pd-common.roleService" (dict "root" .root "component" .component) -}}
{{- $args = concat (list (printf "--%s-service" .component) (printf "http://%s.%s.svc:%d" $name .root.Release.Namespace
    (int .port))) $extra -}}
{{- else -}}
{{- range (include "pd-common.instanceHosts" (dict "root" .root "component" .component "role" .role) | trim
    | splitList "\n") -}}
{{- $args = concat $args (list (printf "--%s" $.component) (printf "http://%s:%d" . (int $.port))) $extra -}}
{{- end -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{/*
pd-common.autoscaler: a HorizontalPodAutoscaler for a role when role.autoscaling.enabled.
It scales on a per-pod metric served by a metrics adapter (autoscaling.metric.name, e.g.
vllm:num_requests_waiting) or, without one, on CPU utilization.
Parameters: root, component, role, kind (StatefulSet, LeaderWorkerSet, Deployment, or a
group form's RoleBasedGroupScalingAdapter / DisaggregatedSetRoleScaler).
*/}}
{{- define "pd-common.autoscaler" -}}
{{- $a := default dict .role.autoscaling -}}
{{- if $a.enabled -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) is above maxReplicas (%d)" .component (int $a.minReplicas)
    (int $a.maxReplicas)) -}}
{{- end -}}
{{- $apiVersion := get (dict "LeaderWorkerSet" "leaderworkerset.x-k8s.io/v1" "RoleBasedGroupScalingAdapter"
    "workloads.x-k8s.io/v1alpha2" "DisaggregatedSetRoleScaler" "disaggregatedset.x-k8s.io/v1") .kind
    | default "apps/v1" }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  {{- include "pd-common.metadata" (dict "root" .root "component" .component) | nindent 2 }}
spec:
  scaleTargetRef:
    apiVersion: {{ $apiVersion }}
    kind: {{ .kind }}
    name: {{ include "pd-common.componentName" (dict "root" .root "component" .component) }}
  minReplicas: {{ int $a.minReplicas }}
  maxReplicas: {{ int $a.maxReplicas }}
  metrics:
    {{- if dig "metric" "name" "" $a }}
    - type: Pods
      pods:
        metric:
          name: {{ $a.metric.name | quote }}
        target:
          type: AverageValue
          averageValue: {{ $a.metric.averageValue | toString | quote }}
    {{- else }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ int (default 80 $a.targetCPUUtilization) }}
    {{- end }}
{{- end -}}
{{- end -}}

{{/*
pd-common.deployment: a Deployment of stateless pods (routers, proxies, frontends) plus
its HorizontalPodAutoscaler when role.autoscaling.enabled. In the rolebasedgroup form the
pods are a role of the group, and only the HPA (on the role's adapter) and budget remain.
Parameters: root, component, role, pod (dict for pd-common.podTemplate; root, component
and role are filled in).
*/}}
{{- define "pd-common.deployment" -}}
{{- $ctx := dict "root" .root "component" .component -}}
{{- if eq (include "pd-common.form" .root) "rolebasedgroup" -}}
{{- /* The router is a role of the RoleBasedGroup (pd-common.group). */ -}}
{{ include "pd-common.autoscaler" (dict "root" .root "component" .component "role" .role "kind"
    "RoleBasedGroupScalingAdapter") }}
{{- else -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  {{- include "pd-common.replicas" .role | nindent 2 }}
  selector:
    matchLabels:
      {{- include "pd-common.selectorLabels" $ctx | nindent 6 }}
  template:
    {{- include "pd-common.podTemplate" (merge (deepCopy .pod)
        (dict "root" .root "component" .component "role" .role)) | nindent 4 }}
{{ include "pd-common.autoscaler" (dict "root" .root "component" .component "role" .role "kind" "Deployment") }}
{{- end }}
{{ include "pd-common.disruptionBudget" (dict "root" .root "component" .component "role" .role) }}
{{- end -}}

{{/*
pd-common.replicas: spec.replicas of a role's workload, left out while an autoscaler owns
it: rendering it would make every `helm upgrade` reset the count the HPA chose.
*/}}
{{- define "pd-common.replicas" -}}
{{- if dig "autoscaling" "enabled" false . -}}
# replicas: owned by the HorizontalPodAutoscaler (autoscaling.enabled)
{{- else -}}
replicas: {{ int (default 1 .replicas) }}
{{- end -}}
{{- end -}}

{{/*
pd-common.disruptionBudget: at most one pod of a role down at a time from voluntary
disruptions (node drains), so a drain cannot evict every prefill at once. Rendered when the
role can have more than one pod. A multi-node instance (LeaderWorkerSet group) is one unit of
failure: losing any of its pods restarts the whole group (RecreateGroupOnPodRestart), which a
budget cannot prevent, only pace.
In the RoleBasedGroup form the pods' controller is rbg's RoleInstance, which has no scale
subresource (rbg v0.8.0-alpha.5 config/crd roleinstances: status only). For such pods the
disruption controller can only honour an integer minAvailable (it counts the pods it finds);
maxUnavailable or a percentage makes it fail to compute the expected count and allow no
disruption at all (k8s pkg/controller/disruption/disruption.go getExpectedPodCount, failSafe),
so drains, upgrades and scale-downs would block forever. There the budget keeps all but one
pod of the role: minAvailable = pods - 1 (the autoscaler's minimum when the role autoscales,
so it can always make progress; scaled up, more may go at once).
Parameters: root, component, role.
*/}}
{{- define "pd-common.disruptionBudget" -}}
{{- $a := default dict .role.autoscaling -}}
{{- $most := ternary (int (default 1 $a.maxReplicas)) (int (default 1 .role.replicas)) (default false $a.enabled) -}}
{{- $nodes := int (default 1 .role.nodesPerInstance) -}}
{{- if or (gt $most 1) (gt $nodes 1) -}}
{{- $least := ternary (int (default 1 $a.minReplicas)) (int (default 1 .role.replicas)) (default false $a.enabled) -}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "pd-common.metadata" (dict "root" .root "component" .component) | nindent 2 }}
spec:
  {{- if eq (include "pd-common.form" .root) "rolebasedgroup" }}
  # RoleInstance-owned pods: only an integer minAvailable works (see pd-common.disruptionBudget).
  minAvailable: {{ sub (mul $least $nodes) 1 }}
  {{- else }}
  maxUnavailable: 1
  {{- end }}
  selector:
    matchLabels:
      {{- include "pd-common.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end -}}
{{- end -}}
