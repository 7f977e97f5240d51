{{/*
pd-common.podParts: THE pod builder. Every pod of every role (prefill, decode, server,
router, the multi-node leader/worker pods, infra) is computed here, once, as parts that each
output form assembles: pd-common.podTemplate for StatefulSets, LeaderWorkerSets,
Deployments and DaemonSets, and the DynamoGraphDeployment form (charts/dynamo). So the
roles and the forms cannot drift apart in image, env, volumes, devices or scheduling.

Parameters (dict):
  root          the calling chart's context (required)
  component     e.g. "prefill" (required)
  role          that role's values: resources, shmSize, extraArgs, env, nodeSelector,
                tolerations, affinity, image, drainSeconds (required)
  image         base image values (default: root.Values.image)
  command, args container command and arguments (lists); role.extraArgs is appended
  env           backend env (list of EnvVar); POD_IP/POD_NAME/POD_NAMESPACE come first,
                role.env last so a user can override
  ports         container ports (list)
  readinessProbe, startupProbe, livenessProbe   probes (dicts), omitted when empty
  accelerators  accelerators to request (int, 0 for CPU-only pods)
  engine        true for pods that load the model: /dev/shm, the model volume, RDMA and
                accelerator devices are added
  volumes, volumeMounts   extra volumes (lists)
  initContainers          extra init containers (list), after the wait-for-model one
  podAnnotations, podLabels   extra pod metadata (dicts)
  serviceAccountName      optional
  selfDrain     true for a process that drains on SIGTERM by itself (Dynamo's workers leave
                discovery, then serve their in-flight requests for drainSeconds): no preStop
                sleep; the grace period is drainSeconds + 30 s either way
  runAs         a non-root uid for a pod whose program needs no privilege (routers,
                proxies, frontends, infra): Pod Security Standards "restricted" (runAsNonRoot,
                that uid and gid, fsGroup so its volumes are writable, seccomp RuntimeDefault;
                per container no privilege escalation and every capability dropped)
  readOnlyRoot  with runAs: a read-only root filesystem (an emptyDir at /tmp for what the
                program writes there)

Returns (YAML of a dict): labels, annotations, serviceAccountName, drainSeconds, selfDrain,
terminationGracePeriodSeconds,
imagePullSecrets (names), hostNetwork, privileged, rdma, initContainers, container (name,
image, imagePullPolicy, command, args, env, ports, probes, volumeMounts), resources (one
map: requests = limits), volumes, nodeSelector, tolerations, affinity. The /dev/shm volume
and mount are named "dshm" (a form with its own shared-memory setting drops them).
*/}}
{{- define "pd-common.podParts" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $role := default dict .role -}}
{{- $engine := default false .engine -}}
{{- $rdma := and $engine (eq (default "tcp" $v.transport.protocol) "rdma") -}}
{{- $hostNetwork := and $rdma $v.transport.rdma.hostNetwork -}}
{{- $privileged := and $rdma (default false $v.transport.rdma.privileged) -}}
{{- $annotations := default dict .podAnnotations -}}
{{- $worker := eq (dig "pdgen.io/instance-role" "" (default dict .podLabels)) "worker" -}}
{{- $annotations = merge (include "pd-common.scrapeAnnotations"
    (dict "root" $root "component" .component "worker" $worker) | fromYaml) $annotations -}}
{{- if $privileged -}}
{{- $annotations = merge (dict "pdgen.io/privileged"
    "RDMA devices from the node without a device plugin (transport.rdma.privileged)") $annotations -}}
{{- end -}}
{{- /* Device plugins name RDMA resources freely (rdma/hca, aliyun/erdma, a vendor's own): say
       which one this is, so lint can tell IPC_LOCK and hostNetwork are for RDMA. */ -}}
{{- if and $rdma $v.transport.rdma.resourceName -}}
{{- $annotations = merge (dict "pdgen.io/rdma-resource" $v.transport.rdma.resourceName) $annotations -}}
{{- end -}}
{{- $labels := include "pd-common.selectorLabels" . | fromYaml -}}
{{- if $hostNetwork }}{{ $_ := set $labels "pdgen.io/host-network" "engine" }}{{ end -}}
{{- $labels = merge $labels (default dict .podLabels) -}}
{{- $ascend := and $engine (eq (default "nvidia" $v.accelerator.type) "ascend") -}}
{{- $image := default $v.image .image -}}
{{- $inits := default list .initContainers -}}
{{- if and $engine (eq (dig "source" "type" "" $v.model) "download") -}}
{{- $inits = concat (include "pd-common.waitForModel" (dict "root" $root) | fromYamlArray) $inits -}}
{{- end -}}
{{- $args := list -}}
{{- range concat (default list .args) (default list $role.extraArgs) }}{{ $args = append $args (toString .) }}{{ end -}}
{{- /* One entry per name (the API server refuses two: env is a list keyed by name): a
       later value replaces an earlier one in its place, so role.env overrides the chart's
       and $(VAR) references to earlier entries keep working. */ -}}
{{- $base := list (dict "name" "POD_IP" "valueFrom" (dict "fieldRef" (dict "fieldPath" "status.podIP")))
    (dict "name" "POD_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name")))
    (dict "name" "POD_NAMESPACE" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.namespace"))) -}}
{{- $env := list -}}
{{- $at := dict -}}
{{- range concat $base (default list .env) (default list $role.env) -}}
{{- if hasKey $at .name -}}
{{- $i := int (get $at .name) -}}
{{- $env = concat (slice $env 0 $i) (list .) (slice $env (add1 $i)) -}}
{{- else -}}
{{- $_ := set $at .name (len $env) -}}
{{- $env = append $env . -}}
{{- end -}}
{{- end -}}
{{- $mounts := default list .volumeMounts -}}
{{- $volumes := default list .volumes -}}
{{- if $engine -}}
{{- $mounts = concat (list (dict "name" "dshm" "mountPath" "/dev/shm")) (include "pd-common.modelMounts"
    (dict "root" $root) | fromYamlArray) $mounts -}}
{{- $volumes = concat (list (dict "name" "dshm" "emptyDir" (dict "medium" "Memory" "sizeLimit"
    (default "16Gi" $role.shmSize)))) (include "pd-common.modelVolumes" (dict "root" $root)
    | fromYamlArray) $volumes -}}
{{- if $hostNetwork -}}
{{- $mounts = append $mounts (dict "name" "infiniband" "mountPath" "/dev/infiniband") -}}
{{- $volumes = append $volumes (dict "name" "infiniband" "hostPath"
    (dict "path" "/dev/infiniband" "type" "Directory")) -}}
{{- end -}}
{{- if $ascend -}}
{{- $mounts = concat $mounts (include "pd-common.ascendMounts" (dict "root" $root) | fromYamlArray) -}}
{{- $volumes = concat $volumes (include "pd-common.ascendVolumes" (dict "root" $root) | fromYamlArray) -}}
{{- end -}}
{{- end -}}
{{- $affinity := deepCopy (default dict $role.affinity) -}}
{{- if $hostNetwork -}}
{{- /* On the node's network every engine pod binds its ports (HTTP, bootstrap, system,
       NCCL) on the node itself, so two of them, of any role, cannot share a node:
       Kubernetes would keep them apart through hostPorts only for the declared ports and
       the rest would collide at start. Say it as a placement rule. */ -}}
{{- $anti := default dict $affinity.podAntiAffinity -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels"
    (dict "app.kubernetes.io/instance" $root.Release.Name "pdgen.io/host-network" "engine")) -}}
{{- $_ := set $anti "requiredDuringSchedulingIgnoredDuringExecution" (append
    (default list $anti.requiredDuringSchedulingIgnoredDuringExecution) $term) -}}
{{- $_ := set $affinity "podAntiAffinity" $anti -}}
{{- end -}}
{{- $container := dict "name" (default .component .containerName) "image" (include "pd-common.image"
    (dict "image" $image "override" $role.image)) "imagePullPolicy" (include "pd-common.pullPolicy"
    (dict "image" $image "override" $role.image)) "env" $env -}}
{{- with .command }}{{ $_ := set $container "command" . }}{{ end -}}
{{- with $args }}{{ $_ := set $container "args" . }}{{ end -}}
{{- with .ports }}{{ $_ := set $container "ports" . }}{{ end -}}
{{- range $k := list "startupProbe" "readinessProbe" "livenessProbe" -}}
{{- with index $ $k -}}
{{- /* The kubelet's default timeout is 1 s: a Python router or proxy busy with a burst, or
       etcd under load, misses it and leaves the rotation. Probes that know better set it. */ -}}
{{- $_ := set $container $k (merge (deepCopy .) (dict "timeoutSeconds" 5)) -}}
{{- end -}}
{{- end -}}
{{- with $mounts }}{{ $_ := set $container "volumeMounts" . }}{{ end -}}
{{- $parts := dict "labels" $labels "annotations" $annotations "drainSeconds" (int
    (default 0 $role.drainSeconds)) "hostNetwork" $hostNetwork "privileged" $privileged "rdma" $rdma "initContainers"
    $inits "container" $container "resources" (include "pd-common.resourceMap"
    (dict "root" $root "role" $role "accelerators" (default 0 .accelerators) "rdma" $rdma)
    | fromYaml) "volumes" $volumes "nodeSelector" (default dict $role.nodeSelector) "tolerations"
    (default list $role.tolerations) "affinity" $affinity -}}
{{- with .serviceAccountName }}{{ $_ := set $parts "serviceAccountName" . }}{{ end -}}
{{- $_ := set $parts "selfDrain" (default false .selfDrain) -}}
{{- if .runAs -}}
{{- $_ := set $parts "podSecurity" (dict "runAsNonRoot" true "runAsUser" (int .runAs) "runAsGroup"
    (int .runAs) "fsGroup" (int .runAs) "seccompProfile" (dict "type" "RuntimeDefault")) -}}
{{- $secure := dict "allowPrivilegeEscalation" false "capabilities" (dict "drop" (list "ALL")) -}}
{{- if .readOnlyRoot -}}
{{- $_ := set $secure "readOnlyRootFilesystem" true -}}
{{- $_ := set $parts "volumes" (append $parts.volumes (dict "name" "tmp" "emptyDir" dict)) -}}
{{- $_ := set $parts.container "volumeMounts" (append (default list $parts.container.volumeMounts)
    (dict "name" "tmp" "mountPath" "/tmp")) -}}
{{- end -}}
{{- $_ := set $parts.container "securityContext" $secure -}}
{{- $inits := list -}}
{{- range $parts.initContainers }}{{ $inits = append $inits (merge (dict "securityContext" $secure) .) }}{{ end -}}
{{- $_ := set $parts "initContainers" $inits -}}
{{- end -}}
{{- if $parts.drainSeconds -}}
{{- $_ := set $parts "terminationGracePeriodSeconds" (add $parts.drainSeconds 30) -}}
{{- end -}}
{{- $pullSecrets := (mergeOverwrite (deepCopy (default dict $image)) (default dict $role.image)).pullSecrets -}}
{{- $_ := set $parts "imagePullSecrets" (default list $pullSecrets) -}}
{{- toYaml $parts -}}
{{- end -}}

{{/*
pd-common.podTemplate: a pod template (metadata + spec) from pd-common.podParts (same
parameters), for StatefulSets, LeaderWorkerSets, Deployments, DaemonSets and Jobs.
*/}}
{{- define "pd-common.podTemplate" -}}
{{- $p := include "pd-common.podParts" . | fromYaml -}}
{{- $c := $p.container -}}
metadata:
  labels:
    {{- include "pd-common.selectorLabels" . | nindent 4 }}
    {{- if $p.hostNetwork }}
    pdgen.io/host-network: engine
    {{- end }}
    {{- with .podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $p.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $p.serviceAccountName }}
  serviceAccountName: {{ . | quote }}
  {{- end }}
  {{- with $p.podSecurity }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $p.drainSeconds }}
  {{- if $p.selfDrain }}
  # The process drains itself after SIGTERM (no preStop sleep): drainSeconds, then 30 s.
  {{- else }}
  # drainSeconds of preStop sleep, then 30 s for the process to exit after SIGTERM.
  {{- end }}
  terminationGracePeriodSeconds: {{ $p.terminationGracePeriodSeconds }}
  {{- end }}
  {{- with $p.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . | quote }}
    {{- end }}
  {{- end }}
  {{- if $p.hostNetwork }}
  # RDMA through the node's own interfaces: transport.rdma.hostNetwork=true.
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  {{- end }}
  {{- with $p.initContainers }}
  initContainers:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ $c.name }}
      image: {{ $c.image }}
      imagePullPolicy: {{ $c.imagePullPolicy }}
      {{- with $c.command }}
      command:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.args }}
      args:
        {{- range . }}
        - {{ . | quote }}
        {{- end }}
      {{- end }}
      env:
        {{- toYaml $c.env | nindent 8 }}
      {{- range $k := list "ports" "startupProbe" "readinessProbe" "livenessProbe" }}
      {{- with index $c $k }}
      {{ $k }}:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- end }}
      {{- if and $p.drainSeconds (not $p.selfDrain) }}
      lifecycle:
        # A deleted pod leaves the Service endpoints at once; the sleep lets the requests it
        # is already serving (a long decode, say) finish before SIGTERM stops the server.
        {{- include "pd-common.preStop" $p | nindent 8 }}
      {{- end }}
      {{- with $p.resources }}
      resources:
        requests:
          {{- toYaml . | nindent 10 }}
        limits:
          {{- toYaml . | nindent 10 }}
      {{- end }}
      {{- if $p.rdma }}
      securityContext:
        {{- include "pd-common.securityContext" $p | nindent 8 }}
      {{- else if $c.securityContext }}
      securityContext:
        {{- toYaml $c.securityContext | nindent 8 }}
      {{- end }}
      {{- with $c.volumeMounts }}
      volumeMounts:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- with $p.volumes }}
  volumes:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $p.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $p.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $p.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* pd-common.preStop: the drain sleep of pd-common.podParts' result. */}}
{{- define "pd-common.preStop" -}}
preStop:
  exec:
    command: [sleep, {{ .drainSeconds | quote }}]
{{- end -}}

{{/* pd-common.securityContext: of an RDMA engine container, from pd-common.podParts' result. */}}
{{- define "pd-common.securityContext" -}}
{{- if .privileged -}}
# transport.rdma.privileged: the host's /dev/infiniband nodes pass the device cgroup.
privileged: true
{{ end -}}
capabilities:
  # The transfer engine pins (registers) KV memory with the NIC; without IPC_LOCK
  # registration fails under the default memlock limit.
  add: [IPC_LOCK]
{{- end -}}

{{/*
pd-common.resourceMap: requests = limits for cpu/memory (predictable scheduling and no
OOM surprises on big KV buffers), plus accelerators and the RDMA device-plugin resource, as
one map (empty when nothing is requested).
*/}}
{{- define "pd-common.resourceMap" -}}
{{- $v := .root.Values -}}
{{- $r := dict -}}
{{- with .role.resources -}}
{{- if .cpu }}{{- $_ := set $r "cpu" (.cpu | toString) -}}{{- end -}}
{{- if .memory }}{{- $_ := set $r "memory" (.memory | toString) -}}{{- end -}}
{{- end -}}
{{- if gt (int .accelerators) 0 -}}
{{- $_ := set $r $v.accelerator.resourceName (.accelerators | toString) -}}
{{- end -}}
{{- if and .rdma $v.transport.rdma.resourceName -}}
{{- $_ := set $r $v.transport.rdma.resourceName (default 1 $v.transport.rdma.resourceCount | toString) -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}
