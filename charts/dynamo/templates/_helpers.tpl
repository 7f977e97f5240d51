{{/*
dynamo.check: settings that cannot work together fail at render time (single values are
checked by values.schema.json).
*/}}
{{- define "dynamo.check" -}}
{{- $v := .Values -}}
{{- $other := ternary "vllm-runtime" "sglang-runtime" (eq $v.variant.engine "sglang") -}}
{{- if contains $other $v.image.repository -}}
{{- fail (printf "variant.engine is %s but image.repository is %s: use the %s-runtime image" $v.variant.engine
    $v.image.repository $v.variant.engine) -}}
{{- end -}}
{{- if and (eq $v.deployment.form "workloads") (not $v.infra.etcd.enabled) (not $v.infra.etcd.endpoint) -}}
{{- fail
    (print "Dynamo in the workloads form discovers workers through etcd: set "
        "infra.etcd.enabled=true or infra.etcd.endpoint") -}}
{{- end -}}
{{- if and (eq $v.deployment.form "workloads") (not $v.infra.nats.enabled) (not $v.infra.nats.endpoint) -}}
{{- fail
    (print "Dynamo in the workloads form sends events and KV-router state over NATS: set "
        "infra.nats.enabled=true or infra.nats.endpoint") -}}
{{- end -}}
{{- if and $v.frontend.conditionalDisagg.enabled (ne $v.frontend.routerMode "kv") -}}
{{- fail "frontend.conditionalDisagg needs frontend.routerMode=kv (the frontend decides on cached prefix lengths)" -}}
{{- end -}}
{{- if and $v.frontend.conditionalDisagg.enabled (eq $v.variant.engine "sglang") -}}
{{- fail "frontend.conditionalDisagg is not supported with dynamo.sglang workers in Dynamo 1.6" -}}
{{- end -}}
{{- if and $v.frontend.conditionalDisagg.enabled (ne $v.mode "disaggregated") -}}
{{- fail "frontend.conditionalDisagg needs separate prefill and decode workers (mode disaggregated)" -}}
{{- end -}}
{{- if and (eq $v.deployment.form "operator") (ne (int $v.service.port) 8000) -}}
{{- fail (printf
    (print "deployment.form operator: the Dynamo operator fixes the frontend's port, Service port and DYN_HTTP_PORT "
        "at 8000 (component_frontend.go); service.port %d cannot be honoured")
    (int $v.service.port)) -}}
{{- end -}}
{{- if and (eq $v.deployment.form "operator") (or $v.infra.etcd.enabled $v.infra.nats.enabled) -}}
{{- fail
    (print "deployment.form operator uses the Dynamo platform's discovery and NATS: set "
        "infra.etcd.enabled=false and infra.nats.enabled=false") -}}
{{- end -}}
{{- end -}}

{{/*
dynamo.env: runtime env shared by the frontend and every worker (workloads form).
*/}}
{{- define "dynamo.env" -}}
{{- include "dynamo.check" . -}}
{{- $v := .Values -}}
{{- /* <namespace>-<release>, as the operator names a graph's (ComputeDynamoNamespace in
       api/v1alpha1/dynamocomponentdeployment_types.go): two releases of one name in different
       namespaces on a shared etcd must not discover each other's workers. */}}
- {name: DYN_NAMESPACE, value: {{ printf "%s-%s" .Release.Namespace (include "pd-common.fullname" .)
    | replace "." "-" | quote }}}
- {name: ETCD_ENDPOINTS, value: {{ include "pd-common.etcdURL" (dict "root" .) | quote }}}
- {name: NATS_SERVER, value: {{ include "pd-common.natsURL" (dict "root" .) | quote }}}
{{- end -}}

{{- define "dynamo.workerEnv" -}}
{{- $v := .Values -}}
{{- if eq $v.deployment.form "workloads" }}
{{ include "dynamo.env" . }}
{{- end }}
# Workers serve /health and /live on the system port (DYN_SYSTEM_PORT starts it; 1.6.1 calls
# DYN_SYSTEM_ENABLED deprecated). /health is ready once every endpoint that registered a
# health-check payload is (dynamo.vllm and dynamo.sglang register one for generate).
# DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS is not set: 1.6.1 warns at every start that it is
# "deprecated and no longer used" (lib/runtime/src/config.rs).
- {name: DYN_SYSTEM_PORT, value: {{ $v.ports.system | quote }}}
{{- end -}}

{{/*
dynamo.drainEnv: how a worker stops. On SIGTERM dynamo.vllm and dynamo.sglang (ai-dynamo 1.6.1,
dynamo/common/utils/graceful_shutdown.py graceful_shutdown_with_discovery) unregister their
endpoints from discovery, so the frontend stops routing to them, then sleep
DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS while the requests in flight go on, then set the
shutdown event, which aborts every request still running ("Engine was shut down during
generation": dynamo/vllm/handlers.py _monitor_abort; dynamo/sglang/request_handlers/
cancellation.py _wait_for_signal). So that sleep is the drain: drainSeconds. runtime.shutdown()
then has nothing left to wait for but teardown, bounded by DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS
(dynamo.teardownSeconds, inside the pod's 30 s past drainSeconds). A preStop sleep would only keep
a worker that is still registered taking new requests until it ends.
Parameters: role.
*/}}
{{- define "dynamo.drainEnv" -}}
- {name: DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS, value: {{ int .role.drainSeconds | toString | quote }}}
- {name: DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS, value: {{ include "dynamo.teardownSeconds" . | quote }}}
{{- end -}}

{{/* dynamo.teardownSeconds: the bound on a stopped worker's runtime teardown (after its drain). */}}
{{- define "dynamo.teardownSeconds" -}}20{{- end -}}

{{/*
dynamo.workerCommand: python3 -m dynamo.vllm | dynamo.sglang plus its arguments.
Parameters: root, role, mode ("prefill", "decode", "" aggregated), worker (multi-node non-leader),
operator (the DynamoGraphDeployment form: the operator adds the multi-node flags itself).
Every flag exists in Dynamo 1.6.1 (tests/charts/test_flags.py).
*/}}
{{- define "dynamo.workerCommand" -}}
{{- $v := .root.Values -}}
{{- $r := .role -}}
{{- $kv := eq $v.frontend.routerMode "kv" -}}
{{- $events := dict "publisher" "zmq" "topic" "kv-events" "endpoint" (printf "tcp://*:%d"
    (int $v.ports.kvEvents)) "enable_kv_cache_events" true -}}
{{- $cmd := list "python3" "-m" (printf "dynamo.%s" $v.variant.engine) -}}
{{- if eq $v.variant.engine "vllm" -}}
{{- $cmd = concat $cmd (list "--model" $v.model.path "--served-model-name" $v.model.servedName "--tensor-parallel-size"
    ($r.tensorParallel | toString)) -}}
{{- if gt (int $r.pipelineParallel) 1 -}}
{{- $cmd = concat $cmd (list "--pipeline-parallel-size" ($r.pipelineParallel | toString)) -}}
{{- end -}}
{{- if gt (int $r.dataParallel) 1 -}}
{{- $cmd = concat $cmd (list "--data-parallel-size" ($r.dataParallel | toString)) -}}
{{- end -}}
{{- if gt (int $v.model.maxModelLen) 0 -}}
{{- $cmd = concat $cmd (list "--max-model-len" ($v.model.maxModelLen | toString)) -}}
{{- end -}}
{{- if $v.model.trustRemoteCode }}{{ $cmd = append $cmd "--trust-remote-code" }}{{ end -}}
{{- if .mode -}}
{{- $cmd = concat $cmd (list "--disaggregation-mode" .mode "--kv-transfer-config" (toJson
    (dict "kv_connector" "NixlConnector" "kv_role" "kv_both"))) -}}
{{- end -}}
{{- if $kv }}{{ $cmd = concat $cmd (list "--enable-prefix-caching" "--kv-events-config" (toJson $events)) }}{{ end -}}
{{- if and (gt (int $r.nodesPerInstance) 1) (not .operator) -}}
{{- $cmd = concat $cmd (list "--nnodes" "$(LWS_GROUP_SIZE)" "--node-rank" "$(LWS_WORKER_INDEX)" "--master-addr"
    "$(LWS_LEADER_ADDRESS)" "--master-port" ($v.ports.distInit | toString)) -}}
{{- if .worker }}{{ $cmd = append $cmd "--headless" }}{{ end -}}
{{- end -}}
{{- else -}}
{{- $cmd = concat $cmd (list "--model-path" $v.model.path "--served-model-name" $v.model.servedName "--tp-size"
    ($r.tensorParallel | toString) "--host" "0.0.0.0" "--skip-tokenizer-init") -}}
{{- if gt (int $r.dataParallel) 1 }}{{ $cmd = concat $cmd (list "--dp-size" ($r.dataParallel | toString)) }}{{ end -}}
{{- if gt (int $r.pipelineParallel) 1 -}}
{{- $cmd = concat $cmd (list "--pp-size" ($r.pipelineParallel | toString)) -}}
{{- end -}}
{{- if gt (int $v.model.maxModelLen) 0 -}}
{{- $cmd = concat $cmd (list "--context-length" ($v.model.maxModelLen | toString)) -}}
{{- end -}}
{{- if $v.model.trustRemoteCode }}{{ $cmd = append $cmd "--trust-remote-code" }}{{ end -}}
{{- if .mode -}}
{{- /* A fixed bootstrap port and --host 0.0.0.0: without them decode cannot reach prefill on Kubernetes. */ -}}
{{- $cmd = concat $cmd (list "--disaggregation-mode" .mode "--disaggregation-transfer-backend" "nixl"
    "--disaggregation-bootstrap-port" ($v.ports.bootstrap | toString)) -}}
{{- if and (eq $v.transport.protocol "rdma") $v.transport.rdma.devices -}}
{{- $cmd = concat $cmd (list "--disaggregation-ib-device" (join "," $v.transport.rdma.devices)) -}}
{{- end -}}
{{- end -}}
{{- if $kv -}}
{{- $cmd = concat $cmd (list "--kv-events-config" (toJson (omit $events "enable_kv_cache_events"))) -}}
{{- end -}}
{{- if and (gt (int $r.nodesPerInstance) 1) (not .operator) -}}
{{- $cmd = concat $cmd (list "--dist-init-addr" (printf "$(LWS_LEADER_ADDRESS):%d"
    (int $v.ports.distInit)) "--nnodes" "$(LWS_GROUP_SIZE)" "--node-rank" "$(LWS_WORKER_INDEX)") -}}
{{- end -}}
{{- end -}}
{{- toYaml $cmd -}}
{{- end -}}

{{/*
dynamo.worker: a worker workload (workloads form). Parameters: root, component, mode.
*/}}
{{- define "dynamo.worker" -}}
{{- $v := .root.Values -}}
{{- $role := index $v .component -}}
{{- $ports := list (dict "name" "system" "containerPort" (int $v.ports.system)) -}}
{{- if and (eq $v.variant.engine "sglang") (eq .mode "prefill") -}}
{{- $ports = append $ports (dict "name" "bootstrap" "containerPort" (int $v.ports.bootstrap)) -}}
{{- end -}}
{{- if eq $v.frontend.routerMode "kv" -}}
{{- $ports = append $ports (dict "name" "kv-events" "containerPort" (int $v.ports.kvEvents)) -}}
{{- end -}}
{{- $env := concat (include "dynamo.workerEnv" .root | fromYamlArray) (include "dynamo.drainEnv" (dict "role" $role)
    | fromYamlArray) -}}
{{- $drain := dict "selfDrain" true -}}
{{- $leaderCmd := include "dynamo.workerCommand" (dict "root" .root "role" $role "mode" .mode) | fromYamlArray -}}
{{- $workerCmd := include "dynamo.workerCommand" (dict "root" .root "role" $role "mode" .mode "worker" true)
    | fromYamlArray -}}
{{- $accel := int $role.acceleratorsPerPod -}}
{{- $startup := dict "httpGet" (dict "path" "/live" "port" "system") "periodSeconds" 10 "failureThreshold" 360
    "timeoutSeconds" 5 -}}
{{- $ready := dict "httpGet" (dict "path" "/health" "port" "system") "periodSeconds" 10 "failureThreshold" 3
    "timeoutSeconds" 5 -}}
{{- $live := dict "httpGet" (dict "path" "/live" "port" "system") "periodSeconds" 30 "failureThreshold" 5
    "timeoutSeconds" 10 -}}
{{- $leader := merge (dict "command" (slice $leaderCmd 0 3) "args"
    (slice $leaderCmd 3) "env" $env "ports" $ports "accelerators" $accel "startupProbe" $startup "readinessProbe" $ready
    "livenessProbe" $live) $drain -}}
{{- $worker := merge (dict "command" (slice $workerCmd 0 3) "args"
    (slice $workerCmd 3) "env" $env "accelerators" $accel) $drain -}}
{{- include "pd-common.engineWorkload" (dict "root" .root "component" .component "role" $role "leader" $leader "worker"
    $worker "ports" $ports) -}}
{{- end -}}

{{- define "dynamo.frontendArgs" -}}
{{- include "dynamo.check" . -}}
{{- $v := .Values -}}
{{- $args := list "--http-host" "0.0.0.0" "--http-port" ($v.service.port
    | toString) "--router-mode" $v.frontend.routerMode -}}
{{- $replicas := ternary (int (dig "autoscaling" "maxReplicas" 1 $v.frontend)) (int $v.frontend.replicas)
    (dig "autoscaling" "enabled" false $v.frontend) -}}
{{- if and (eq $v.frontend.routerMode "kv") (gt $replicas 1) -}}
{{- /* Each kv-mode frontend otherwise keeps its own view of active blocks
       (dynamo.frontend 1.6.1 --router-replica-sync: "best-effort active-sequence
       synchronization through the Runtime event plane"). */ -}}
{{- $args = append $args "--router-replica-sync" -}}
{{- end -}}
{{- /* A topology reaches this through router.extraArgs ("--migration-limit", "0", or
       "--migration-limit=0") or router.env (DYN_MIGRATION_LIMIT, which 1.6.1 reads as the
       flag's default: dynamo/common/configuration/utils.py add_argument, so a rendered flag
       would silently win over it): theirs then, not both. */ -}}
{{- $theirs := false -}}
{{- range (default list $v.frontend.extraArgs) -}}
{{- if regexMatch "^--migration-limit(=|$)" (toString .) }}{{ $theirs = true }}{{ end -}}
{{- end -}}
{{- range (default list $v.frontend.env) -}}
{{- if eq (toString .name) "DYN_MIGRATION_LIMIT" }}{{ $theirs = true }}{{ end -}}
{{- end -}}
{{- if and (gt (int $v.frontend.migrationLimit) 0) (not $theirs) -}}
{{- $args = concat $args (list "--migration-limit" ($v.frontend.migrationLimit | toString)) -}}
{{- end -}}
{{- $c := $v.frontend.conditionalDisagg -}}
{{- if $c.enabled -}}
{{- $config := dict "policy" "isl_bounding" "eff_isl_threshold"
    (int $c.effIslThreshold) "eff_isl_ratio_threshold" $c.effIslRatioThreshold -}}
{{- $args = concat $args (list "--router-conditional-disagg" "--router-conditional-disagg-config" (toJson $config)) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{/*
dynamo.graphService: one DynamoGraphDeployment service's fields from pd-common.podParts.
Parameters: root, parts, role (for replicas). What the DGD has its own field for goes there:
  resources   the Dynamo ResourceItem (requests = limits): cpu, memory; the accelerator as
              gpu (gpuType when it is not nvidia.com/gpu); every other resource (the RDMA
              device plugin's) in custom. deploy/operator internal/controller_common
              resource.go GetResourcesConfig maps gpu to gpuType or nvidia.com/gpu and each
              custom key to a resource of that name.
  envs        the container's env
  extraPodMetadata  the pod's labels (the host-network anti-affinity selects on them) and
              annotations
  extraPodSpec      the rest of the pod spec, with the container as mainContainer, minus
              the /dev/shm volume ("dshm": the operator mounts sharedMemory there itself)
*/}}
{{- define "dynamo.graphService" -}}
{{- $p := .parts -}}
{{- $_ := .role -}}
{{- $c := $p.container -}}
{{- $accel := .root.Values.accelerator.resourceName -}}
{{- $item := dict -}}
{{- $custom := dict -}}
{{- range $k, $q := $p.resources -}}
{{- if or (eq $k "cpu") (eq $k "memory") }}{{ $_ := set $item $k $q }}
{{- else if eq $k $accel }}{{ $_ := set $item "gpu" $q }}
{{- if ne $k "nvidia.com/gpu" }}{{ $_ := set $item "gpuType" $k }}{{ end }}
{{- else }}{{ $_ := set $custom $k $q }}{{ end -}}
{{- end -}}
{{- with $custom }}{{ $_ := set $item "custom" . }}{{ end -}}
{{- $spec := dict -}}
{{- with $p.serviceAccountName }}{{ $_ := set $spec "serviceAccountName" . }}{{ end -}}
{{- if $p.drainSeconds -}}
{{- $_ := set $spec "terminationGracePeriodSeconds" $p.terminationGracePeriodSeconds -}}
{{- end -}}
{{- with $p.imagePullSecrets -}}
{{- $refs := list }}{{ range . }}{{ $refs = append $refs (dict "name" .) }}{{ end -}}
{{- $_ := set $spec "imagePullSecrets" $refs -}}
{{- end -}}
{{- if $p.hostNetwork -}}
{{- $_ := set $spec "hostNetwork" true }}{{ $_ := set $spec "dnsPolicy" "ClusterFirstWithHostNet" -}}
{{- end -}}
{{- with $p.initContainers }}{{ $_ := set $spec "initContainers" . }}{{ end -}}
{{- $volumes := list -}}
{{- range $p.volumes }}{{ if ne .name "dshm" }}{{ $volumes = append $volumes . }}{{ end }}{{ end -}}
{{- with $volumes }}{{ $_ := set $spec "volumes" . }}{{ end -}}
{{- range $k := list "nodeSelector" "tolerations" "affinity" -}}
{{- with index $p $k }}{{ $_ := set $spec $k . }}{{ end -}}
{{- end -}}
{{- $main := dict "image" $c.image "imagePullPolicy" $c.imagePullPolicy -}}
{{- with $c.command }}{{ $_ := set $main "command" . }}{{ end -}}
{{- with $c.args }}{{ $_ := set $main "args" . }}{{ end -}}
{{- $mounts := list -}}
{{- range $c.volumeMounts }}{{ if ne .name "dshm" }}{{ $mounts = append $mounts . }}{{ end }}{{ end -}}
{{- with $mounts }}{{ $_ := set $main "volumeMounts" . }}{{ end -}}
{{- if and $p.drainSeconds (not $p.selfDrain) -}}
{{- $_ := set $main "lifecycle" (include "pd-common.preStop" $p | fromYaml) -}}
{{- end -}}
{{- if $p.rdma }}{{ $_ := set $main "securityContext" (include "pd-common.securityContext" $p | fromYaml) }}
{{- else if $c.securityContext }}{{ $_ := set $main "securityContext" $c.securityContext }}{{ end -}}
{{- with $p.podSecurity }}{{ $_ := set $spec "securityContext" . }}{{ end -}}
{{- $_ := set $spec "mainContainer" $main -}}
replicas: {{ int .role.replicas }}
{{- with $item }}
resources:
  requests:
    {{- toYaml . | nindent 4 }}
  limits:
    {{- toYaml . | nindent 4 }}
{{- end }}
envs:
  {{- toYaml $c.env | nindent 2 }}
extraPodMetadata:
  labels:
    {{- toYaml $p.labels | nindent 4 }}
  {{- with $p.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
extraPodSpec:
  {{- toYaml $spec | nindent 2 }}
{{- end -}}

{{/*
dynamo.scrapeTargets (pd-common.scrapeTargets): the frontend serves /metrics on its HTTP
port, workers on DYN_SYSTEM_PORT (ai-dynamo 1.6.1 dynamo/frontend/main.py, lib/runtime
system_status_server.rs). In the operator form the pods are the operator's: nothing here.
*/}}
{{- define "dynamo.scrapeTargets" -}}
{{- if eq .Values.deployment.form "workloads" }}
{{- include "pd-common.engineScrapeTargets" (dict "root" . "port" "system" "portNumber" .Values.ports.system) }}
- {component: frontend, port: http, portNumber: {{ int .Values.service.port }}, path: /metrics, leaderOnly: false}
{{- end }}
{{- end -}}
