{{/*
ascend.datasystem: true when the datasystem kvBackend is in use (disaggregated mode).
*/}}
{{- define "ascend.datasystem" -}}
{{- and (eq .Values.mode "disaggregated") (eq .Values.variant.kvBackend "datasystem") -}}
{{- end -}}

{{- define "ascend.check" -}}
{{- $ds := eq (include "ascend.datasystem" .) "true" -}}
{{- $e := .Values.infra.etcd -}}
{{- if and $ds (not $e.enabled) (not $e.endpoint) -}}
{{- fail (print "the datasystem kvBackend discovers workers through etcd: set "
    "infra.etcd.enabled=true or infra.etcd.endpoint") -}}
{{- end -}}
{{- if and (not $ds) $e.enabled -}}
{{- fail (printf "infra.etcd.enabled is set but kvBackend %s in %s mode never talks to it" .Values.variant.kvBackend
    .Values.mode) -}}
{{- end -}}
{{- end -}}

{{/*
ascend.kvTransferConfig: --kv-transfer-config for mode "prefill" or "decode".
*/}}
{{- define "ascend.kvTransferConfig" -}}
{{- $v := .root.Values -}}
{{- $prefill := eq .mode "prefill" -}}
{{- $kvRole := ternary "kv_producer" "kv_consumer" $prefill -}}
{{- if eq $v.variant.kvBackend "datasystem" -}}
{{- $extra := dict "backend" "yuanrong" "lookup_rpc_port" (ternary "1" "2" $prefill) -}}
{{- if not $prefill }}{{ $_ := set $extra "consumer_is_to_load" true }}{{ end -}}
{{- toJson (dict "kv_connector" "AscendStoreConnector" "kv_role" $kvRole "kv_load_failure_policy" "recompute"
    "kv_connector_extra_config" $extra) -}}
{{- else -}}
{{- $shape := dict "prefill" (dict "dp_size" (int $v.prefill.dataParallel) "tp_size"
    (int $v.prefill.tensorParallel)) "decode" (dict "dp_size" (int $v.decode.dataParallel) "tp_size"
    (int $v.decode.tensorParallel)) -}}
{{- toJson (dict "kv_connector" "MooncakeConnectorV1" "kv_buffer_device" "npu" "kv_role" $kvRole "kv_parallel_size" 1
    "kv_port" (ternary $v.ports.kvPrefill $v.ports.kvDecode $prefill | toString) "kv_rank"
    (ternary 0 1 $prefill) "kv_connector_extra_config" $shape) -}}
{{- end -}}
{{- end -}}

{{- define "ascend.engineArgs" -}}
{{- $v := .root.Values -}}
{{- $r := .role -}}
{{- $args := list $v.model.path "--served-model-name" $v.model.servedName "--host" "0.0.0.0"
      "--port" ($v.ports.http | toString) "--tensor-parallel-size" ($r.tensorParallel | toString) -}}
{{- if gt (int $r.pipelineParallel) 1 -}}
{{- $args = concat $args (list "--pipeline-parallel-size" ($r.pipelineParallel | toString)) -}}
{{- end -}}
{{- if gt (int $r.dataParallel) 1 -}}
{{- $args = concat $args (list "--data-parallel-size" ($r.dataParallel | toString)) -}}
{{- end -}}
{{- if gt (int $v.model.maxModelLen) 0 -}}
{{- $args = concat $args (list "--max-model-len" ($v.model.maxModelLen | toString)) -}}
{{- end -}}
{{- if $v.model.trustRemoteCode }}{{ $args = append $args "--trust-remote-code" }}{{ end -}}
{{- if .mode }}{{ $args = concat $args (list "--kv-transfer-config" (include "ascend.kvTransferConfig" .)) }}{{ end -}}
{{- if gt (int $r.nodesPerInstance) 1 -}}
{{- $args = concat $args (list "--nnodes" "$(LWS_GROUP_SIZE)" "--node-rank" "$(LWS_WORKER_INDEX)" "--master-addr"
    "$(LWS_LEADER_ADDRESS)" "--master-port" "29500") -}}
{{- if .worker }}{{ $args = append $args "--headless" }}{{ end -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{- /* No MC_FORCE_TCP here, unlike the GPU charts (pd-common.mooncakeTransportEnv): on
       Ascend the Mooncake transfer engine runs its "ascend" transport (Ascend Direct
       Transport over CANN's ADXL: HCCS within a node, the NPUs' RoCE between nodes;
       kvcache-ai/Mooncake mooncake-transfer-engine/src/transport/ascend_transport, and
       vllm-ascend docs/source/user_guide/feature_guide/kv_pool.md `"protocol": "ascend"`).
       transport.protocol tcp means that path; forcing Mooncake's TCP transport would move
       the KV through host memory instead. */ -}}
{{- define "ascend.engineEnv" -}}
{{- $v := .root.Values -}}
# HCCL and the connectors advertise the pod's own address.
- {name: HCCL_IF_IP, value: $(POD_IP)}
- {name: VLLM_HOST_IP, value: $(POD_IP)}
# Block hashes must agree across instances (and nodes) for KV reuse.
- {name: PYTHONHASHSEED, value: "0"}
{{- if and .mode (eq $v.variant.kvBackend "datasystem") }}
# The datasystem worker of this node (a hostNetwork DaemonSet) listens on the node IP:
# the same address it was started with, by construction.
- name: HOST_IP
  valueFrom: {fieldRef: {fieldPath: status.hostIP}}
- {name: DS_WORKER_ADDR, value: {{ printf "$(HOST_IP):%d" (int $v.datasystem.workerPort) | quote }}}
{{- end }}
{{- end -}}

{{- define "ascend.engine" -}}
{{- include "ascend.check" .root -}}
{{- $v := .root.Values -}}
{{- $role := index $v .component -}}
{{- $ports := list (dict "name" "http" "containerPort" (int $v.ports.http)) -}}
{{- if and .mode (eq $v.variant.kvBackend "mooncake") -}}
{{- $ports = append $ports (dict "name" "kv" "containerPort" (int (ternary $v.ports.kvPrefill $v.ports.kvDecode
    (eq .mode "prefill")))) -}}
{{- end -}}
{{- $env := include "ascend.engineEnv" . | fromYamlArray -}}
{{- $accel := int $role.acceleratorsPerPod -}}
{{- $volumes := list -}}
{{- $mounts := list -}}
{{- if and .mode (eq $v.variant.kvBackend "datasystem") -}}
{{- /* The worker's Unix socket directory on the node, at the path the worker reports. */ -}}
{{- $volumes = list (dict "name" "datasystem-uds" "hostPath"
    (dict "path" $v.datasystem.udsDir "type" "DirectoryOrCreate")) -}}
{{- $mounts = list (dict "name" "datasystem-uds" "mountPath" $v.datasystem.udsDir) -}}
{{- end -}}
{{- /* vLLM's /health is a cheap engine check, but a busy event loop can take longer than
       the kubelet's default 1 s to answer it. */ -}}
{{- $startup := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 10 "failureThreshold" 360
    "timeoutSeconds" 5 -}}
{{- $ready := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 10 "failureThreshold" 3
    "timeoutSeconds" 5 -}}
{{- $live := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 30 "failureThreshold" 5
    "timeoutSeconds" 10 -}}
{{- $leader := dict "command" (list "vllm" "serve") "args" (include "ascend.engineArgs"
    (dict "root" .root "role" $role "mode" .mode) | fromYamlArray) "env" $env "ports" $ports "accelerators" $accel
    "startupProbe" $startup "readinessProbe" $ready "livenessProbe" $live "volumes" $volumes "volumeMounts" $mounts -}}
{{- $worker := dict "command" (list "vllm" "serve") "args" (include "ascend.engineArgs"
    (dict "root" .root "role" $role "mode" .mode "worker" true)
    | fromYamlArray) "env" $env "accelerators" $accel "volumes" $volumes "volumeMounts" $mounts -}}
{{- include "pd-common.engineWorkload" (dict "root" .root "component" .component "role" $role "leader" $leader "worker"
    $worker "ports" $ports) -}}
{{- end -}}

{{/*
ascend.proxyCommand: mooncake: vllm-ascend's load-balance proxy with every prefill and
decode pod. datasystem: pdgen's prefill-then-decode proxy (the KV goes through the pool).
Both listen on 0.0.0.0.
*/}}
{{- define "ascend.proxyCommand" -}}
{{- $v := .Values -}}
{{- $prefill := include "pd-common.instanceHosts" (dict "root" . "component" "prefill" "role" $v.prefill) | trim
    | splitList "\n" -}}
{{- $decode := include "pd-common.instanceHosts" (dict "root" . "component" "decode" "role" $v.decode) | trim
    | splitList "\n" -}}
{{- $http := $v.ports.http | toString -}}
{{- if eq $v.variant.kvBackend "datasystem" -}}
{{- $cmd := list "python3" "/opt/pdgen/pd_proxy.py" "--host" "0.0.0.0" "--port" ($v.service.port
    | toString) "--handover" "store" -}}
{{- $cmd = concat $cmd (include "pd-common.proxyInstanceArgs"
    (dict "root" . "component" "prefill" "role" $v.prefill "port" $v.ports.http) | fromYamlArray) -}}
{{- $cmd = concat $cmd (include "pd-common.proxyInstanceArgs"
    (dict "root" . "component" "decode" "role" $v.decode "port" $v.ports.http) | fromYamlArray) -}}
{{- toYaml $cmd -}}
{{- else -}}
{{- $cmd := list "python3" $v.router.proxyScript "--host" "0.0.0.0" "--port" ($v.service.port
    | toString) "--prefiller-hosts" -}}
{{- $cmd = concat $cmd $prefill (list "--prefiller-ports") -}}
{{- range $prefill }}{{ $cmd = append $cmd $http }}{{ end -}}
{{- $cmd = concat $cmd (list "--decoder-hosts") $decode (list "--decoder-ports") -}}
{{- range $decode }}{{ $cmd = append $cmd $http }}{{ end -}}
{{- toYaml $cmd -}}
{{- end -}}
{{- end -}}

{{/*
ascend-yuanrong.scrapeTargets (pd-common.scrapeTargets): vLLM-Ascend serves vLLM's /metrics
on its API port, and pdgen's proxy (kvBackend datasystem) too. vllm-ascend's load-balance
proxy (kvBackend mooncake) and the datasystem worker serve no Prometheus metrics.
*/}}
{{- define "ascend-yuanrong.scrapeTargets" -}}
{{- include "pd-common.engineScrapeTargets" (dict "root" . "port" "http" "portNumber" .Values.ports.http) }}
{{- if and (eq .Values.mode "disaggregated") (eq .Values.variant.kvBackend "datasystem") }}
- {component: router, port: http, portNumber: {{ int .Values.service.port }}, path: /metrics, leaderOnly: false}
{{- end }}
{{- end -}}
