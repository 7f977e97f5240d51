{{/*
The group forms (deployment.form): one custom resource carries the roles, and its
controller rolls them out together.

  rolebasedgroup    a RoleBasedGroup (workloads.x-k8s.io/v1alpha2; sgl-project/rbg >= v0.7.0,
                    checked against v0.8.0-alpha.5 993491f) with the router, prefill, decode and
                    bundled Mooncake master as roles. The engine roles share one roleTemplates
                    entry: what the pod builder gives prefill and decode alike, and a patch per
                    role with the rest, so they cannot drift.
  disaggregatedset  a DisaggregatedSet (disaggregatedset.x-k8s.io/v1; kubernetes-sigs/lws >=
                    v0.10.0, 2161f38) with prefill and decode, each a LeaderWorkerSet spec; the
                    router and infra stay Deployments and StatefulSets.

The pods are the pod builder's (pd-common.podTemplate), as in the workloads form; only the
object around them changes. A chart's templates/group.yaml hands pd-common.group the same
role specs its workload templates use.
*/}}

{{/* pd-common.form: deployment.form, workloads when unset. */}}
{{- define "pd-common.form" -}}
{{- default "workloads" (default dict .Values.deployment).form -}}
{{- end -}}

{{/*
pd-common.roleService: the headless Service giving a role's pods their DNS names: pdgen's
own <fullname>-<component> (workloads, disaggregatedset), or the one the RBG controller makes,
s-<rbg>-<role>, truncated to 63 characters (rbg pkg/utils/service_utils.go).
Parameters: root, component.
*/}}
{{- define "pd-common.roleService" -}}
{{- $name := include "pd-common.componentName" . -}}
{{- if eq (include "pd-common.form" .root) "rolebasedgroup" -}}
{{- printf "s-%s" $name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end -}}

{{/*
pd-common.groupEnv: the env a multi-node instance's pods get from the controller that makes
the group: LeaderWorkerSet's LWS_* (workloads, disaggregatedset: its children are
LeaderWorkerSets), or RBG's RBG_LWP_* (rbg pkg/discovery/env_builder.go BuildLwsEnv;
RBG_LWP_LEADER_ADDRESS is <instance>-0.s-<rbg>-<role>.<namespace>). As "$(VAR)" references:
leader, size, index.
*/}}
{{- define "pd-common.groupEnv" -}}
{{- if eq (include "pd-common.form" .) "rolebasedgroup" -}}
leader: $(RBG_LWP_LEADER_ADDRESS)
size: $(RBG_LWP_GROUP_SIZE)
index: $(RBG_LWP_WORKER_INDEX)
{{- else -}}
leader: $(LWS_LEADER_ADDRESS)
size: $(LWS_GROUP_SIZE)
index: $(LWS_WORKER_INDEX)
{{- end -}}
{{- end -}}

{{/*
pd-common.enginePods: the pod templates of one engine role from its spec: leader (every
pod when single-node) and worker (multi-node), as the workloads form builds them.
Parameters: root, spec (component, leader, worker; the role's values are
root.Values.<component>), podLabels (extra labels for every pod, optional).
*/}}
{{- define "pd-common.enginePods" -}}
{{- $s := .spec -}}
{{- $role := index .root.Values $s.component -}}
{{- $base := dict "root" .root "component" $s.component "role" $role "engine" true "containerName"
    (default $s.component .containerName) -}}
{{- $multi := gt (int (default 1 $role.nodesPerInstance)) 1 -}}
{{- $leaderLabels := ternary (dict "pdgen.io/instance-role" "leader") dict $multi -}}
leader: {{ include "pd-common.podTemplate" (merge (deepCopy $s.leader) $base (dict "podLabels" $leaderLabels))
    | fromYaml | toJson }}
{{- if $multi }}
worker: {{ include "pd-common.podTemplate" (merge (deepCopy $s.worker) $base
    (dict "podLabels" (dict "pdgen.io/instance-role" "worker"))) | fromYaml | toJson }}
{{- end }}
{{- end -}}

{{/*
pd-common.group: the group form's objects. Parameters: root, engines (specs of prefill and
decode: component, leader, worker, as pd-common.engineWorkload takes them), router (dict
for pd-common.podTemplate: the router's pod), infra (list of {component, pod}: bundled
services the engines depend on; rolebasedgroup only).
*/}}
{{- define "pd-common.group" -}}
{{- $form := include "pd-common.form" .root -}}
{{- if eq $form "rolebasedgroup" -}}
{{ include "pd-common.roleBasedGroup" . }}
{{- else if eq $form "disaggregatedset" -}}
{{ include "pd-common.disaggregatedSet" . }}
{{- end -}}
{{- end -}}

{{/* pd-common.groupMetadata: the group object's metadata (named after the release). */}}
{{- define "pd-common.groupMetadata" -}}
{{- $meta := include "pd-common.metadata" (dict "root" .root "component" .component) | fromYaml -}}
{{- $_ := set $meta "name" (include "pd-common.fullname" .root) -}}
{{- toYaml $meta -}}
{{- end -}}

{{/*
pd-common.roleBasedGroup: the RoleBasedGroup, and its CoordinatedPolicy when
deployment.rollout is coordinated.
  - roles router, prefill, decode and each bundled infra service; prefill and decode
    depend on the infra, the router on prefill and decode (rbg creates a role once its
    dependencies are ready);
  - single-node instances use standalonePattern, multi-node ones leaderWorkerPattern (size
    = nodesPerInstance; leader and worker patches over the role's template);
  - roleTemplates "engine": what every engine pod shares; each engine role is templateRef
    engine + its patch (rbg requires the patch, {} allowed: roletemplate_validation.go);
  - a role that autoscales gets scalingAdapter.enable (the controller makes the
    RoleBasedGroupScalingAdapter <rbg>-<role> the HPA targets) and no replicas (the CRD
    defaults it to 1; the adapter owns it after, and rbg's webhook refuses a replicas that
    differs from the adapter's);
  - deployment.engineRuntime.profile: engineRuntimes on prefill and decode, injected into
    the engine container.
RBG names each role's pods <rbg>-<role>-<i> (leader <rbg>-<role>-<i>-0) under the headless
Service s-<rbg>-<role> (rbg api/workloads/v1alpha2/helper.go, pkg/reconciler/svc_reconciler.go),
which pd-common.instanceHosts gives the router.
*/}}
{{- define "pd-common.roleBasedGroup" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $pods := dict -}}
{{- $all := list -}}
{{- range .engines -}}
{{- $p := include "pd-common.enginePods" (dict "root" $root "spec" . "containerName" "engine") | fromYaml -}}
{{- $_ := set $pods .component $p -}}
{{- $all = append $all $p.leader -}}
{{- if $p.worker }}{{ $all = append $all $p.worker }}{{ end -}}
{{- end -}}
{{- $shared := include "pd-common.commonOf" (dict "templates" $all) | fromJson -}}
{{- $infraNames := list -}}
{{- range .infra }}{{ $infraNames = append $infraNames .component }}{{ end -}}
{{- $engineNames := list -}}
{{- range .engines }}{{ $engineNames = append $engineNames .component }}{{ end -}}
{{- $runtime := (default dict (default dict $v.deployment).engineRuntime).profile -}}
apiVersion: workloads.x-k8s.io/v1alpha2
kind: RoleBasedGroup
metadata:
  {{- include "pd-common.groupMetadata" (dict "root" $root "component" "group") | nindent 2 }}
spec:
  roleTemplates:
    - name: engine
      template:
        {{- toYaml $shared | nindent 8 }}
  roles:
    {{- range .infra }}
    - name: {{ .component }}
      replicas: 1
      standalonePattern:
        template:
          {{- include "pd-common.podTemplate" (merge (deepCopy .pod) (dict "root" $root "component" .component))
              | nindent 10 }}
    {{- end }}
    {{- range .engines }}
    {{- $role := index $v .component }}
    {{- $p := index $pods .component }}
    - name: {{ .component }}
      {{- include "pd-common.groupReplicas" $role | nindent 6 }}
      {{- with $infraNames }}
      dependencies: {{ toJson . }}
      {{- end }}
      {{- if $p.worker }}
      {{- $roleBase := include "pd-common.commonOf" (dict "templates" (list $p.leader $p.worker)) | fromJson }}
      leaderWorkerPattern:
        size: {{ int $role.nodesPerInstance }}
        # A pod that restarts takes its instance's other pods with it: the ranks of one model
        # cannot rejoin a running group (rbg's RecreateRoleInstanceOnPodRestart).
        restartPolicyConfig:
          type: RecreateRoleInstanceOnPodRestart
        templateRef:
          name: engine
          patch:
            {{- include "pd-common.patchOf" (dict "base" $shared "target" $roleBase) | nindent 12 }}
        leaderTemplatePatch:
          {{- include "pd-common.patchOf" (dict "base" $roleBase "target" $p.leader) | nindent 10 }}
        workerTemplatePatch:
          {{- include "pd-common.patchOf" (dict "base" $roleBase "target" $p.worker) | nindent 10 }}
      {{- else }}
      standalonePattern:
        templateRef:
          name: engine
          patch:
            {{- include "pd-common.patchOf" (dict "base" $shared "target" $p.leader) | nindent 12 }}
      {{- end }}
      {{- if $runtime }}
      engineRuntimes:
        - profileName: {{ $runtime | quote }}
          injectContainers: [engine]
      {{- end }}
      {{- if dig "autoscaling" "enabled" false $role }}
      scalingAdapter:
        enable: true
      {{- end }}
    {{- end }}
    {{- with .router }}
    - name: router
      {{- include "pd-common.groupReplicas" $v.router | nindent 6 }}
      dependencies: {{ toJson $engineNames }}
      standalonePattern:
        template:
          {{- include "pd-common.podTemplate" (merge (deepCopy .)
              (dict "root" $root "component" "router" "role" $v.router)) | nindent 10 }}
      {{- if dig "autoscaling" "enabled" false $v.router }}
      scalingAdapter:
        enable: true
      {{- end }}
    {{- end }}
{{- if eq (toString (default dict $v.deployment).rollout) "coordinated" }}
---
# Bound to the RoleBasedGroup by having its name (rbg doc/best-practice/en/
# 03-configuring-rolling-updates.md): prefill's and decode's update progress (updated /
# total instances) stay within 10% of each other, the value that document gives for most
# production services.
apiVersion: workloads.x-k8s.io/v1alpha2
kind: CoordinatedPolicy
metadata:
  {{- include "pd-common.groupMetadata" (dict "root" $root "component" "group") | nindent 2 }}
spec:
  policies:
    - name: prefill-decode-rollout
      roles: {{ toJson $engineNames }}
      strategy:
        rollingUpdate:
          maxSkew: "10%"
{{- end }}
{{- end -}}

{{/*
pd-common.groupReplicas: a group role's replicas, left out when the role autoscales (the
scaling adapter or role scaler owns it; rendering it would make every upgrade reset it).
*/}}
{{- define "pd-common.groupReplicas" -}}
{{- if dig "autoscaling" "enabled" false . -}}
# replicas: owned by the scaling adapter the HorizontalPodAutoscaler drives
{{- else -}}
replicas: {{ int (default 1 .replicas) }}
{{- end -}}
{{- end -}}

{{/*
pd-common.disaggregatedSet: the DisaggregatedSet with prefill and decode, each a
LeaderWorkerSet spec (size 1 for single-node instances: the worker template is every pod).
  - deployment.slices copies the whole set; a role's replicas are per slice, so each role's
    replicas must divide by it (lws keps/846-disaggregatedset-slices);
  - a role that autoscales is scaling.mode External: the controller makes the
    DisaggregatedSetRoleScaler <ds>-<role> the HPA targets, and spec.replicas is left out
    (ignored for External roles; lws pkg/webhooks/disaggregatedset);
  - the rollout is the controller's: it steps every role in lockstep (keps/766).
The child LeaderWorkerSets are named <ds>-<slice>-<revision>-<role> and change with every
template change, so nothing addresses their pods by name: the router finds them through
pdgen's own headless Service per role, or by labels (pd-common.engineWorkload).
*/}}
{{- define "pd-common.disaggregatedSet" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $slices := int (default 1 $v.deployment.slices) -}}
apiVersion: disaggregatedset.x-k8s.io/v1
kind: DisaggregatedSet
metadata:
  {{- include "pd-common.groupMetadata" (dict "root" $root "component" "group") | nindent 2 }}
spec:
  {{- if gt $slices 1 }}
  slices: {{ $slices }}
  {{- end }}
  roles:
    {{- range .engines }}
    {{- $role := index $v .component }}
    {{- $p := include "pd-common.enginePods" (dict "root" $root "spec" .) | fromYaml }}
    {{- $external := dig "autoscaling" "enabled" false $role }}
    {{- if and $external (gt $slices 1) }}
    {{- fail (printf
        (print "deployment.slices %d: the DisaggregatedSet webhook refuses slices > 1 while a "
            "role (%s) autoscales (scaling.mode External)")
        $slices .component) }}
    {{- end }}
    {{- if mod (int (default 1 $role.replicas)) $slices }}
    {{- fail (printf "%s.replicas %d is not a multiple of deployment.slices %d (each slice gets replicas / slices)"
        .component (int $role.replicas) $slices) }}
    {{- end }}
    - name: {{ .component }}
      {{- if $external }}
      scaling:
        mode: External
      {{- end }}
      spec:
        {{- if not $external }}
        replicas: {{ div (int (default 1 $role.replicas)) $slices }}
        {{- end }}
        {{- if $p.worker }}
        startupPolicy: LeaderCreated
        {{- end }}
        leaderWorkerTemplate:
          size: {{ int (default 1 $role.nodesPerInstance) }}
          restartPolicy: RecreateGroupOnPodRestart
          {{- if $p.worker }}
          leaderTemplate:
            {{- toYaml $p.leader | nindent 12 }}
          workerTemplate:
            {{- toYaml $p.worker | nindent 12 }}
          {{- else }}
          workerTemplate:
            {{- toYaml $p.leader | nindent 12 }}
          {{- end }}
    {{- end }}
{{- end -}}
