{{/*
sglang.engineArgs: arguments of `python3 -m sglang.launch_server` for one role.
Parameters: root, role (values), mode ("prefill", "decode" or "" for aggregated),
leader (bool; false for the worker pods of a multi-node instance).
Every flag here exists in SGLang v0.5.23 (tests/charts/test_flags.py checks it).
*/}}
{{- define "sglang.engineArgs" -}}
{{- $v := .root.Values -}}
{{- $r := .role -}}
{{- $args := list "--model-path" $v.model.path "--served-model-name" $v.model.servedName
      "--host" "0.0.0.0" "--port" ($v.ports.http | toString)
      "--tp-size" ($r.tensorParallel | toString) -}}
{{- if gt (int $r.dataParallel) 1 }}{{ $args = concat $args (list "--dp-size" ($r.dataParallel | toString)) }}{{ end -}}
{{- if gt (int $r.pipelineParallel) 1 -}}
{{- $args = concat $args (list "--pp-size" ($r.pipelineParallel | toString)) -}}
{{- end -}}
{{- if gt (int $v.model.maxModelLen) 0 -}}
{{- $args = concat $args (list "--context-length" ($v.model.maxModelLen | toString)) -}}
{{- end -}}
{{- if $v.model.trustRemoteCode }}{{ $args = append $args "--trust-remote-code" }}{{ end -}}
{{- if $v.observability.metrics }}{{ $args = append $args "--enable-metrics" }}{{ end -}}
{{- if .mode -}}
{{- $args = concat $args (list "--disaggregation-mode" .mode "--disaggregation-transfer-backend" "mooncake") -}}
{{- if eq .mode "prefill" -}}
{{- $args = concat $args (list "--disaggregation-bootstrap-port" ($v.ports.bootstrap | toString)) -}}
{{- end -}}
{{- if and (eq $v.transport.protocol "rdma") $v.transport.rdma.devices -}}
{{- $args = concat $args (list "--disaggregation-ib-device" (join "," $v.transport.rdma.devices)) -}}
{{- end -}}
{{- end -}}
{{- if gt (int $r.nodesPerInstance) 1 -}}
{{- $g := include "pd-common.groupEnv" .root | fromYaml -}}
{{- $args = concat $args (list "--dist-init-addr" (printf "%s:%d" $g.leader
    (int $v.ports.distInit)) "--nnodes" $g.size "--node-rank" $g.index) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{/*
sglang.engine: the workload of one engine role. Parameters: root, component, mode.
*/}}
{{- define "sglang.engine" -}}
{{- $spec := include "sglang.engineSpec" . | fromYaml -}}
{{- include "pd-common.engineWorkload" (merge $spec (dict "root" .root "role" (index .root.Values .component))) -}}
{{- end -}}

{{/*
sglang.engineSpec: one engine role's pods as pd-common.engineWorkload and pd-common.group
take them (component, leader, worker, ports). Parameters: root, component, mode.
*/}}
{{- define "sglang.engineSpec" -}}
{{- $v := .root.Values -}}
{{- $role := index $v .component -}}
{{- $ports := list (dict "name" "http" "containerPort" (int $v.ports.http)) -}}
{{- if eq .mode "prefill" -}}
{{- $ports = append $ports (dict "name" "bootstrap" "containerPort" (int $v.ports.bootstrap)) -}}
{{- end -}}
{{- $args := include "sglang.engineArgs" (dict "root" .root "role" $role "mode" .mode) | fromYamlArray -}}
{{- $command := list "python3" "-m" "sglang.launch_server" -}}
{{- $accel := int $role.acceleratorsPerPod -}}
{{- /* SGLang's /health runs a one-token generation: it answers after at least ~1 s and gives
       up after SGLANG_HEALTH_CHECK_TIMEOUT (20 s), so under the kubelet's default 1 s timeout
       readiness flaps (sglang 0.5.23 http_server.py; SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION
       defaults to true). Startup and readiness ask /ready (200 once the server is up and not
       paused, no generation); liveness keeps the generation check with a timeout above its
       budget. Model loading can take many minutes; the startup probe allows 60 of them. */ -}}
{{- $startup := dict "httpGet" (dict "path" "/ready" "port" "http") "periodSeconds" 10 "failureThreshold" 360
    "timeoutSeconds" 5 -}}
{{- $ready := dict "httpGet" (dict "path" "/ready" "port" "http") "periodSeconds" 10 "failureThreshold" 3
    "timeoutSeconds" 5 -}}
{{- $live := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 60 "failureThreshold" 3
    "timeoutSeconds" 30 -}}
{{- $env := include "pd-common.mooncakeTransportEnv" (dict "root" .root "mode" .mode) | fromYamlArray -}}
{{- $annotations := ternary (dict "sglang.ai/bootstrap-port" ($v.ports.bootstrap | toString)) dict (and
    (eq .mode "prefill") (eq (include "sglang.discovery" .root) "true")) -}}
{{- $leader := dict "command" $command "args" $args "env" $env "ports" $ports "accelerators" $accel "startupProbe"
    $startup "readinessProbe" $ready "livenessProbe" $live "podAnnotations" $annotations -}}
{{- $worker := dict "command" $command "args" $args "env" $env "accelerators" $accel -}}
{{- toYaml (dict "component" .component "leader" $leader "worker" $worker "ports" $ports) -}}
{{- end -}}

{{/*
sglang.discovery: true when an engine role autoscales, or its pods are a DisaggregatedSet's
(named after a revision that changes with every rollout): the router then finds prefill and
decode pods through the Kubernetes API instead of a list fixed at install.
*/}}
{{- define "sglang.discovery" -}}
{{- or (dig "autoscaling" "enabled" false .Values.prefill) (dig "autoscaling" "enabled" false .Values.decode)
    (eq (include "pd-common.form" .) "disaggregatedset") -}}
{{- end -}}

{{/*
sglang.selector: key=value words selecting one role's serving pods (leaders only for
multi-node instances). Parameters: root, component, role.
*/}}
{{- define "sglang.selector" -}}
{{- $words := list (printf "app.kubernetes.io/instance=%s" .root.Release.Name)
    (printf "app.kubernetes.io/component=%s" .component) -}}
{{- if gt (int (default 1 .role.nodesPerInstance)) 1 -}}
{{- $words = append $words "pdgen.io/instance-role=leader" -}}
{{- end -}}
{{- toYaml $words -}}
{{- end -}}

{{/*
sglang.routerArgs: every prefill instance's own address with the bootstrap port, and
every decode instance. The router tells decode to fetch KV from the host in the prefill
URL, so that host must serve the bootstrap port: per-pod DNS through the headless Service.
When an engine role autoscales, the router discovers the pods instead (sglang-router 0.3.2
--service-discovery with --prefill-selector/--decode-selector; the bootstrap port comes
from each prefill pod's sglang.ai/bootstrap-port annotation; pods join once Running and
Ready, and leave when deleted).
*/}}
{{- define "sglang.routerArgs" -}}
{{- $v := .root.Values -}}
{{- $args := list "--pd-disaggregation" -}}
{{- if eq (include "sglang.discovery" .root) "true" -}}
{{- $args = concat $args (list "--service-discovery" "--service-discovery-port" ($v.ports.http
    | toString) "--service-discovery-namespace" .root.Release.Namespace "--prefill-selector")
    (include "sglang.selector" (dict "root" .root "component" "prefill" "role" $v.prefill) | fromYamlArray)
    (list "--decode-selector") (include "sglang.selector" (dict "root" .root "component" "decode" "role" $v.decode)
    | fromYamlArray) -}}
{{- else -}}
{{- range (include "pd-common.instanceHosts" (dict "root" .root "component" "prefill" "role" $v.prefill) | trim
    | splitList "\n") -}}
{{- $args = concat $args (list "--prefill" (printf "http://%s:%d" . (int $v.ports.http)) ($v.ports.bootstrap
    | toString)) -}}
{{- end -}}
{{- range (include "pd-common.instanceHosts" (dict "root" .root "component" "decode" "role" $v.decode) | trim
    | splitList "\n") -}}
{{- $args = concat $args (list "--decode" (printf "http://%s:%d" . (int $v.ports.http))) -}}
{{- end -}}
{{- end -}}
{{- $args = concat $args (list "--host" "0.0.0.0" "--port" ($v.service.port | toString) "--policy" $v.router.policy) -}}
{{- /* The router checks its workers every 60 s by default (sglang-router 0.3.2): a dead decode
       then takes 502s for up to three minutes before it leaves the rotation, and the
       PDRouterNoHealthy* alerts read the checks. Every 10 s. */ -}}
{{- $args = concat $args (list "--health-check-interval-secs" "10") -}}
{{- if $v.observability.metrics -}}
{{- $args = concat $args (list "--prometheus-host" "0.0.0.0" "--prometheus-port" ($v.ports.metrics | toString)) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{/*
sglang.routerPod: the router's pod (a dict for pd-common.podTemplate), in every form.
*/}}
{{- define "sglang.routerPod" -}}
{{- $v := .Values -}}
{{- $ports := list (dict "name" "http" "containerPort" (int $v.service.port)) -}}
{{- if $v.observability.metrics -}}
{{- $ports = append $ports (dict "name" "metrics" "containerPort" (int $v.ports.metrics)) -}}
{{- end -}}
{{- $pod := dict "image" $v.router.image "command" (list "python3" "-m" "sglang_router.launch_router")
      "args" (include "sglang.routerArgs" (dict "root" .) | fromYamlArray) "ports" $ports
      "readinessProbe" (dict "httpGet" (dict "path" "/readiness" "port" "http") "periodSeconds" 5)
      "livenessProbe" (dict "httpGet" (dict "path" "/liveness" "port" "http") "periodSeconds" 15)
      "runAs" 65532 "readOnlyRoot" true -}}
{{- /* No privilege: the router only serves HTTP and calls the engines (run as 65532 with a
       read-only root in the data-plane tests). */ -}}
{{- if eq (include "sglang.discovery" .) "true" -}}
{{- $_ := set $pod "serviceAccountName" (include "pd-common.componentName" (dict "root" . "component" "router")) -}}
{{- end -}}
{{- toYaml $pod -}}
{{- end -}}

{{/*
sglang-mooncake.scrapeTargets (pd-common.scrapeTargets): engines serve /metrics on their
HTTP port with --enable-metrics (sgl-project/sglang v0.5.23 utils/common.py
add_prometheus_middleware); the router's exporter listens on --prometheus-port
(sglang-router 0.3.2 router_args.py).
*/}}
{{- define "sglang-mooncake.scrapeTargets" -}}
{{- include "pd-common.engineScrapeTargets" (dict "root" . "port" "http" "portNumber" .Values.ports.http) }}
{{- if eq .Values.mode "disaggregated" }}
- {component: router, port: metrics, portNumber: {{ int .Values.ports.metrics }}, path: /metrics, leaderOnly: false}
{{- end }}
{{- end -}}
