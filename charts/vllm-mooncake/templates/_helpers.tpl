{{/*
vllm.needs: which infra the connector needs ("master", "etcd", "config"), and how the KV
reaches decode, as a dict of bools: from the prefill over MooncakeConnector ("p2pHandover":
p2p, store, and lmcache where MooncakeConnector can pair the ranks; in store and lmcache it
is the first connector of a MultiConnector and the pool serves repeated prefixes), or else
through the store ("storeHandover").
A store is a sound hand-over only where the prefill's put has finished when the prefill
answers. vLLM v0's is (MooncakeStore.put is synchronous, vllm 0.9.2
kv_lookup_buffer/mooncake_store.py:106-113, called by mooncake_store_connector.py:107 inside
the model runner's step, worker/model_runner.py:1864). LMCache 0.5.6's is not
(storage_backend/remote_backend.py batched_submit_put_task returns once the put is
scheduled): decode recomputes what is still in flight. So lmcache hands over p2p whenever
MooncakeConnector can (equal tensor parallelism, no pipeline parallelism: the rules
tp-pairing and pipeline-connector), and through the store only where it cannot.
*/}}
{{- define "vllm.needs" -}}
{{- $v := .Values -}}
{{- $c := $v.variant.connector -}}
{{- $disagg := eq $v.mode "disaggregated" -}}
{{- $pairs := and (eq (int $v.prefill.tensorParallel) (int $v.decode.tensorParallel))
    (eq (int $v.prefill.pipelineParallel) 1) (eq (int $v.decode.pipelineParallel) 1) -}}
{{- $p2p := and $disagg (or (has $c (list "p2p" "store")) (and (eq $c "lmcache") $pairs)) }}
master: {{ and $disagg (has $c (list "store" "lmcache" "v0-etcd")) }}
etcd: {{ and $disagg (eq $c "v0-etcd") }}
config: {{ and $disagg (has $c (list "store" "lmcache" "v0-etcd")) }}
p2pHandover: {{ $p2p }}
storeHandover: {{ and $disagg (not $p2p) }}
{{- end -}}

{{/*
vllm.checkInfra: a variant without the infra it needs (or with infra it never talks to)
fails at render time instead of at runtime.
*/}}
{{- define "vllm.checkInfra" -}}
{{- $needs := include "vllm.needs" . | fromYaml -}}
{{- $c := .Values.variant.connector -}}
{{- $m := .Values.infra.mooncakeMaster -}}
{{- if and $needs.master (not $m.enabled) (not $m.endpoint) -}}
{{- fail (printf
    "connector %s needs mooncake_master: set infra.mooncakeMaster.enabled=true or infra.mooncakeMaster.endpoint" $c) -}}
{{- end -}}
{{- if and (not $needs.master) $m.enabled -}}
{{- fail (printf (print "infra.mooncakeMaster.enabled is set but connector %s in %s "
    "mode never talks to it") $c .Values.mode) -}}
{{- end -}}
{{- $e := .Values.infra.etcd -}}
{{- if and $needs.etcd (not $e.enabled) (not $e.endpoint) -}}
{{- fail "connector v0-etcd needs etcd: set infra.etcd.enabled=true or infra.etcd.endpoint" -}}
{{- end -}}
{{- if and (not $needs.etcd) $e.enabled -}}
{{- fail (printf "infra.etcd.enabled is set but connector %s in %s mode never talks to it" $c .Values.mode) -}}
{{- end -}}
{{- if and (eq $c "lmcache") $needs.master $m.enabled (not $m.httpMetadataServer) -}}
{{- fail
    (print "connector lmcache reads transfer metadata from the master's HTTP metadata server: "
        "set infra.mooncakeMaster.httpMetadataServer=true") -}}
{{- end -}}
{{- if and (eq $c "v0-etcd") (eq .Values.mode "disaggregated") (eq .Values.image.repository "vllm/vllm-openai") -}}
{{- fail
    (print "connector v0-etcd needs an engine image with vLLM's v0 engine and mooncake-transfer-engine: "
        "the stock vllm/vllm-openai images have no Mooncake (vLLM PR #18193); "
        "set image.repository and image.tag to the image you build") -}}
{{- end -}}
{{- /* Only a tag that reads as a version can be compared; a user's own tag (latest, a date,
       a commit) is taken at its word (semverCompare fails the render on one it cannot parse). */ -}}
{{- $tag := toString .Values.image.tag -}}
{{- if and (eq $c "v0-etcd") (eq .Values.mode "disaggregated")
    (regexMatch "^v?[0-9]+\\.[0-9]+(\\.[0-9]+)?([-+][0-9A-Za-z.-]+)?$" $tag) (semverCompare ">=0.11.0-0" $tag) -}}
{{- fail (printf
    "connector v0-etcd needs the vLLM v0 engine, which vLLM removed in 0.11; image.tag %s is too new (use e.g. v0.8.5)"
    .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
vllm.kvTransferConfig: --kv-transfer-config for a role (mode "prefill" or "decode").
*/}}
{{- define "vllm.kvTransferConfig" -}}
{{- $v := .root.Values -}}
{{- $kvRole := ternary "kv_producer" "kv_consumer" (eq .mode "prefill") -}}
{{- $protocol := $v.transport.protocol -}}
{{- $c := $v.variant.connector -}}
{{- $extra := dict "mooncake_protocol" $protocol -}}
{{- if and (eq $protocol "rdma") $v.transport.rdma.devices -}}
{{- /* MooncakeConnector reads device_name from kv_connector_extra_config and hands it to
       TransferEngine.initialize (vllm mooncake_connector.py). */ -}}
{{- $_ := set $extra "device_name" (join "," $v.transport.rdma.devices) -}}
{{- end -}}
{{- $p2p := dict "kv_connector" "MooncakeConnector" "kv_role" $kvRole "kv_connector_extra_config" $extra -}}
{{- if eq $c "p2p" -}}
{{- toJson $p2p -}}
{{- else if eq $c "store" -}}
{{- /* XpYd with a shared pool: P2P for the hand-over plus the store for reuse. */ -}}
{{- $store := dict "kv_connector" "MooncakeStoreConnector" "kv_role" $kvRole -}}
{{- toJson (dict "kv_connector" "MultiConnector" "kv_role" $kvRole "kv_connector_extra_config" (dict "connectors"
    (list $p2p $store))) -}}
{{- else if eq $c "lmcache" -}}
{{- $lmcache := dict "kv_connector" "LMCacheConnectorV1" "kv_role" $kvRole "kv_connector_extra_config"
    (dict "discard_partial_chunks" false "lmcache_rpc_port" (ternary "producer1" "consumer1" (eq .mode "prefill"))) -}}
{{- if (include "vllm.needs" .root | fromYaml).p2pHandover -}}
{{- /* P2P for the hand-over, LMCache on the Mooncake store for reuse: MultiConnector loads
       from the first connector that has the tokens and saves to all (vllm 0.33.0
       multi_connector.py, class MultiConnector). */ -}}
{{- toJson (dict "kv_connector" "MultiConnector" "kv_role" $kvRole "kv_connector_extra_config" (dict "connectors"
    (list $p2p $lmcache))) -}}
{{- else -}}
{{- toJson $lmcache -}}
{{- end -}}
{{- else -}}
{{- toJson (dict "kv_connector" "MooncakeStoreConnector" "kv_role" $kvRole) -}}
{{- end -}}
{{- end -}}

{{/*
vllm.engineArgs: `vllm serve` arguments. Parameters: root, role, mode ("prefill",
"decode", "" for aggregated), worker (bool: a non-leader pod of a multi-node instance).
Every flag exists in vLLM v0.33.0 (tests/charts/test_flags.py).
*/}}
{{- define "vllm.engineArgs" -}}
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
{{- if .mode }}{{ $args = concat $args (list "--kv-transfer-config" (include "vllm.kvTransferConfig" .)) }}{{ end -}}
{{- if gt (int $r.nodesPerInstance) 1 -}}
{{- $g := include "pd-common.groupEnv" .root | fromYaml -}}
{{- $args = concat $args (list "--nnodes" $g.size "--node-rank" $g.index "--master-addr" $g.leader "--master-port"
    "29500") -}}
{{- if .worker }}{{ $args = append $args "--headless" }}{{ end -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{/*
vllm.engineEnv: the env a role needs for its connector.
*/}}
{{- define "vllm.engineEnv" -}}
{{- $v := .root.Values -}}
{{- $c := $v.variant.connector -}}
# The transfer engine advertises this address to peers; without it a multi-NIC pod may
# advertise the wrong one (or localhost).
- {name: VLLM_HOST_IP, value: $(POD_IP)}
# Block hashes must agree across instances for KV reuse.
- {name: PYTHONHASHSEED, value: "0"}
{{- if .mode }}
{{- include "pd-common.mooncakeTransportEnv" (dict "root" .root "mode" .mode) }}
{{- if and (eq .mode "prefill") (include "vllm.needs" .root | fromYaml).p2pHandover }}
- {name: VLLM_MOONCAKE_BOOTSTRAP_PORT, value: {{ $v.ports.bootstrap | quote }}}
{{- end }}
{{- if has $c (list "store" "v0-etcd") }}
- {name: MOONCAKE_CONFIG_PATH, value: /etc/pdgen-kv/mooncake.json}
- {name: MOONCAKE_LOCAL_HOSTNAME, value: $(POD_IP)}
{{- end }}
{{- if eq $c "lmcache" }}
- {name: LMCACHE_CONFIG_FILE, value: /etc/pdgen-kv/lmcache.yaml}
- {name: LMCACHE_USE_EXPERIMENTAL, value: "True"}
- {name: VLLM_ENABLE_V1_MULTIPROCESSING, value: "1"}
- {name: VLLM_WORKER_MULTIPROC_METHOD, value: spawn}
{{- end }}
{{- if eq $c "v0-etcd" }}
- {name: VLLM_USE_V1, value: "0"}
{{- end }}
{{- end }}
{{- end -}}

{{/*
vllm.kvConfigFiles: connector config files. __POD_IP__ is filled in per pod by the
render-kv-config init container (the files name the pod's own address).
*/}}
{{- define "vllm.kvConfigFiles" -}}
{{- include "vllm.checkInfra" . -}}
{{- $v := .Values -}}
{{- $master := include "pd-common.mooncakeMasterHost" (dict "root" .) -}}
{{- $rpc := include "pd-common.mooncakeMasterAddress" (dict "root" .) -}}
{{- $devices := join "," $v.transport.rdma.devices -}}
{{- $c := $v.variant.connector -}}
{{- if eq $c "store" }}
mooncake.json: {{ toJson (dict "local_hostname" "__POD_IP__" "metadata_server" "P2PHANDSHAKE"
    "master_server_address" $rpc "global_segment_size" (int64 $v.kvCache.mooncakeStore.globalSegmentSize)
    "local_buffer_size" (int64 $v.kvCache.mooncakeStore.localBufferSize)
    "protocol" $v.transport.protocol "device_name" $devices) | quote }}
{{- else if eq $c "v0-etcd" }}
mooncake.json: {{ toJson (dict "local_hostname" "__POD_IP__"
    "metadata_server" (printf "etcd://%s" (include "pd-common.etcdAddress" (dict "root" .)))
    "master_server_address" $rpc "protocol" $v.transport.protocol "device_name" $devices) | quote }}
{{- else if eq $c "lmcache" }}
lmcache.yaml: |
  chunk_size: {{ int $v.kvCache.lmcache.chunkSize }}
  remote_url: "mooncakestore://{{ $rpc }}/"
  remote_serde: "naive"
  local_cpu: {{ $v.kvCache.lmcache.localCpu }}
  max_local_cpu_size: {{ $v.kvCache.lmcache.maxLocalCpuSize }}
  extra_config:
    local_hostname: "__POD_IP__"
    metadata_server: "http://{{ $master }}:{{ int $v.infra.mooncakeMaster.httpMetadataPort }}/metadata"
    protocol: "{{ $v.transport.protocol }}"
    device_name: "{{ $devices }}"
    master_server_address: "{{ $rpc }}"
    global_segment_size: {{ int64 $v.kvCache.mooncakeStore.globalSegmentSize }}
    local_buffer_size: {{ int64 $v.kvCache.mooncakeStore.localBufferSize }}
    transfer_timeout: 1
    save_chunk_meta: false
{{- end }}
{{- end -}}

{{/*
vllm.engine: one engine role's workload. Parameters: root, component, mode.
*/}}
{{- define "vllm.engine" -}}
{{- $spec := include "vllm.engineSpec" . | fromYaml -}}
{{- include "pd-common.engineWorkload" (merge $spec (dict "root" .root "role" (index .root.Values .component))) -}}
{{- end -}}

{{/*
vllm.engineSpec: one engine role's pods as pd-common.engineWorkload and pd-common.group take
them (component, leader, worker, ports). Parameters: root, component, mode.
*/}}
{{- define "vllm.engineSpec" -}}
{{- include "vllm.checkInfra" .root -}}
{{- $v := .root.Values -}}
{{- $role := index $v .component -}}
{{- $needs := include "vllm.needs" .root | fromYaml -}}
{{- $ports := list (dict "name" "http" "containerPort" (int $v.ports.http)) -}}
{{- if and (eq .mode "prefill") $needs.p2pHandover -}}
{{- $ports = append $ports (dict "name" "bootstrap" "containerPort" (int $v.ports.bootstrap)) -}}
{{- end -}}
{{- $env := include "vllm.engineEnv" . | fromYamlArray -}}
{{- $command := list "vllm" "serve" -}}
{{- $accel := int $role.acceleratorsPerPod -}}
{{- $extra := dict -}}
{{- if $needs.config -}}
{{- $cm := include "pd-common.componentName" (dict "root" .root "component" "kv-config") -}}
{{- $render := dict "name" "render-kv-config" "image" (include "pd-common.image"
    (dict "image" $v.model.source.download.waitImage)) "command"
    (list "sh" "-c" (print "for f in /kv-template/*; do sed \"s/__POD_IP__/$POD_IP/g\" \"$f\" > "
        "\"/etc/pdgen-kv/$(basename \"$f\")\"; done"))
    "env" (list (dict "name" "POD_IP" "valueFrom" (dict "fieldRef"
    (dict "fieldPath" "status.podIP")))) "volumeMounts" (list
    (dict "name" "kv-template" "mountPath" "/kv-template") (dict "name" "kv-config" "mountPath" "/etc/pdgen-kv")) -}}
{{- $_ := set $extra "initContainers" (list $render) -}}
{{- $_ := set $extra "volumes" (list (dict "name" "kv-template" "configMap" (dict "name" $cm))
    (dict "name" "kv-config" "emptyDir" dict)) -}}
{{- $_ := set $extra "volumeMounts" (list (dict "name" "kv-config" "mountPath" "/etc/pdgen-kv" "readOnly" true)) -}}
{{- end -}}
{{- /* vLLM's /health is a cheap engine check, but a busy event loop can take longer than
       the kubelet's default 1 s to answer it. */ -}}
{{- $startup := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 10 "failureThreshold" 360
    "timeoutSeconds" 5 -}}
{{- $ready := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 10 "failureThreshold" 3
    "timeoutSeconds" 5 -}}
{{- $live := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 30 "failureThreshold" 5
    "timeoutSeconds" 10 -}}
{{- $leaderArgs := include "vllm.engineArgs" (dict "root" .root "role" $role "mode" .mode) | fromYamlArray -}}
{{- $workerArgs := include "vllm.engineArgs" (dict "root" .root "role" $role "mode" .mode "worker" true)
    | fromYamlArray -}}
{{- $leader := merge (dict "command" $command "args" $leaderArgs "env" $env "ports" $ports "accelerators" $accel
    "startupProbe" $startup "readinessProbe" $ready "livenessProbe" $live) $extra -}}
{{- $worker := merge (dict "command" $command "args" $workerArgs "env" $env "accelerators" $accel) (deepCopy $extra) -}}
{{- toYaml (dict "component" .component "leader" $leader "worker" $worker "ports" $ports) -}}
{{- end -}}

{{/*
vllm.proxyCommand: pdgen's proxy (files/pd_proxy.py, from pd-common, mounted from a
ConfigMap) in front of prefill and decode, listening on 0.0.0.0. p2p/store/lmcache hand the
KV over with the MooncakeConnector protocol (each prefill pod's own URL plus its bootstrap
port); v0-etcd through the store (prefill first, then decode). The upstream
mooncake_connector_proxy.py is not in the vLLM wheel and moved between releases, so the
chart ships its own.
*/}}
{{- define "vllm.proxyCommand" -}}
{{- include "vllm.checkInfra" . -}}
{{- $v := .Values -}}
{{- $needs := include "vllm.needs" . | fromYaml -}}
{{- $mooncake := $needs.p2pHandover -}}
{{- $cmd := list "python3" "/opt/pdgen/pd_proxy.py" "--host" "0.0.0.0" "--port" ($v.service.port
    | toString) "--handover" (ternary "mooncake" "store" $mooncake) -}}
{{- $cmd = concat $cmd (include "pd-common.proxyInstanceArgs"
    (dict "root" . "component" "prefill" "role" $v.prefill "port" $v.ports.http "bootstrap"
    (ternary $v.ports.bootstrap "" $mooncake)) | fromYamlArray) -}}
{{- $cmd = concat $cmd (include "pd-common.proxyInstanceArgs"
    (dict "root" . "component" "decode" "role" $v.decode "port" $v.ports.http) | fromYamlArray) -}}
{{- toYaml $cmd -}}
{{- end -}}

{{/*
vllm.routerPod: pdgen's proxy's pod (a dict for pd-common.podTemplate), in every form. The
router image is the engine image with router.image over it (the proxy runs in it).
*/}}
{{- define "vllm.routerPod" -}}
{{- include "pd-common.ownProxyPod" (dict "root" . "command" (include "vllm.proxyCommand" . | fromYamlArray)) -}}
{{- end -}}

{{/*
vllm-mooncake.scrapeTargets (pd-common.scrapeTargets): vLLM serves /metrics on its API port
(vllm-project/vllm v0.33.0 vllm/entrypoints/serve/instrumentator/metrics.py), and so does
pdgen's proxy (charts/pd-common/files/pd_proxy.py).
*/}}
{{- define "vllm-mooncake.scrapeTargets" -}}
{{- include "pd-common.engineScrapeTargets" (dict "root" . "port" "http" "portNumber" .Values.ports.http) }}
{{- if eq .Values.mode "disaggregated" }}
- {component: router, port: http, portNumber: {{ int .Values.service.port }}, path: /metrics, leaderOnly: false}
{{- end }}
{{- end -}}
