{{/*
Control-plane building blocks. A backend chart includes one only for the variants that
need it (see each chart's infra-*.yaml), and points its pods at pd-common.<svc>Endpoint,
which is the bundled Service or the external endpoint.
*/}}

{{/*
pd-common.parseEndpoint: an endpoint as host, host:port or scheme://host[:port][/], parsed
into scheme, host and port (YAML). pdgen hands the charts endpoints it parsed already
(pdgen/endpoints.py); this keeps hand-written values just as safe.
Parameters: raw, scheme (default), port (default).
*/}}
{{- define "pd-common.parseEndpoint" -}}
{{- $raw := trimSuffix "/" (trim (toString .raw)) -}}
{{- $scheme := .scheme -}}
{{- if contains "://" $raw -}}
{{- $scheme = regexReplaceAll "://.*$" $raw "" -}}
{{- $raw = regexReplaceAll "^[^/]*://" $raw "" -}}
{{- end -}}
{{- $host := $raw -}}
{{- $port := int .port -}}
{{- if regexMatch ":[0-9]+$" $raw -}}
{{- $host = regexReplaceAll ":[0-9]+$" $raw "" -}}
{{- $port = regexFind "[0-9]+$" $raw | int -}}
{{- end -}}
scheme: {{ $scheme | quote }}
host: {{ $host | quote }}
port: {{ $port }}
{{- end -}}

{{/*
pd-common.infraEndpoint: scheme/host/port of a control-plane service: the bundled Service,
or the external endpoint. Parameters: root, service (etcd, nats, mooncakeMaster).
*/}}
{{- define "pd-common.infraEndpoint" -}}
{{- $defaults := dict "etcd" (list "http" "port" "etcd") "nats" (list "nats" "port" "nats") "mooncakeMaster"
    (list "" "rpcPort" "mooncake-master") -}}
{{- $d := index $defaults .service -}}
{{- $cfg := index .root.Values.infra .service -}}
{{- if $cfg.enabled -}}
scheme: {{ index $d 0 | quote }}
host: {{ include "pd-common.componentName" (dict "root" .root "component" (index $d 2)) | quote }}
port: {{ int (index $cfg (index $d 1)) }}
{{- else -}}
{{- $raw := required (printf "infra.%s.endpoint is required when the bundled %s is disabled" .service .service)
    $cfg.endpoint -}}
{{- include "pd-common.parseEndpoint" (dict "raw" $raw "scheme" (index $d 0) "port" (index $cfg (index $d 1))) -}}
{{- end -}}
{{- end -}}

{{/* host:port of etcd (-etcd_address, etcd:// metadata URLs). */}}
{{- define "pd-common.etcdAddress" -}}
{{- $e := include "pd-common.infraEndpoint" (dict "root" .root "service" "etcd") | fromYaml -}}
{{- printf "%s:%d" $e.host (int $e.port) -}}
{{- end -}}

{{/* scheme://host:port of etcd (ETCD_ENDPOINTS). */}}
{{- define "pd-common.etcdURL" -}}
{{- $e := include "pd-common.infraEndpoint" (dict "root" .root "service" "etcd") | fromYaml -}}
{{- printf "%s://%s:%d" $e.scheme $e.host (int $e.port) -}}
{{- end -}}

{{/* scheme://host:port of NATS (NATS_SERVER). */}}
{{- define "pd-common.natsURL" -}}
{{- $n := include "pd-common.infraEndpoint" (dict "root" .root "service" "nats") | fromYaml -}}
{{- printf "%s://%s:%d" $n.scheme $n.host (int $n.port) -}}
{{- end -}}

{{/* host:port of the Mooncake master's RPC (master_server_address, mooncakestore://). */}}
{{- define "pd-common.mooncakeMasterAddress" -}}
{{- $m := include "pd-common.infraEndpoint" (dict "root" .root "service" "mooncakeMaster") | fromYaml -}}
{{- printf "%s:%d" $m.host (int $m.port) -}}
{{- end -}}

{{/* The Mooncake master's host alone (its HTTP metadata server listens there too). */}}
{{- define "pd-common.mooncakeMasterHost" -}}
{{- (include "pd-common.infraEndpoint" (dict "root" .root "service" "mooncakeMaster") | fromYaml).host -}}
{{- end -}}

{{/*
pd-common.infraStatefulSet: a bundled control-plane service as a StatefulSet of
infra.<service>.replicas members: a client Service, a headless peers Service (the members'
DNS names), resources requested (so it is not the first thing evicted), data on an
emptyDir or one PVC per member, members spread over nodes, and a PodDisruptionBudget
keeping quorum when there are several.
Parameters: root, component (etcd, nats), cfg (its values), ports (client first), pod (dict
for pd-common.podTemplate: command, args, readinessProbe, dataPath).
*/}}
{{- define "pd-common.infraStatefulSet" -}}
{{- $root := .root -}}
{{- $cfg := .cfg -}}
{{- $ctx := dict "root" $root "component" .component -}}
{{- $name := include "pd-common.componentName" $ctx -}}
{{- $replicas := int (default 1 $cfg.replicas) -}}
{{- $persist := dig "persistence" "enabled" false $cfg -}}
{{ include "pd-common.service" (merge (dict "ports" (list (first .ports))) $ctx) }}
---
{{ include "pd-common.service" (dict "root" $root "component" .component "ports" .ports "headless" true "name"
    (printf "%s-peers" $name)) }}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  serviceName: {{ printf "%s-peers" $name }}
  replicas: {{ $replicas }}
  # Members find each other at start; they must start together, not one by one.
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      {{- include "pd-common.selectorLabels" $ctx | nindent 6 }}
  template:
    {{- $volumes := ternary list (list (dict "name" "data" "emptyDir" dict)) $persist }}
    {{- $spread := dict "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list
        (dict "weight" 100 "podAffinityTerm" (dict "topologyKey" "kubernetes.io/hostname" "labelSelector"
        (dict "matchLabels" (include "pd-common.selectorLabels" $ctx | fromYaml)))))) }}
    {{- $role := dict "resources" $cfg.resources "affinity" (ternary $spread dict (gt $replicas 1)) }}
    {{- /* etcd (distroless) and nats-server write only their data directory: a non-root user
           (fsGroup makes the data volume its own) and a read-only root. */}}
    {{- include "pd-common.podTemplate" (merge (dict "root" $root "component" .component "role" $role "image" $cfg.image
        "ports" .ports "volumes" $volumes "volumeMounts" (list
        (dict "name" "data" "mountPath" .pod.dataPath)) "runAs" 65532 "readOnlyRoot" true) (omit .pod "dataPath"))
        | nindent 4 }}
  {{- if $persist }}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        {{- with $cfg.persistence.storageClassName }}
        storageClassName: {{ . | quote }}
        {{- end }}
        resources:
          requests:
            storage: {{ $cfg.persistence.size | toString | quote }}
  {{- end }}
{{- if gt $replicas 1 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  # One member down at a time keeps a majority of 3 or 5.
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "pd-common.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
pd-common.etcd: etcd as a static cluster of infra.etcd.replicas members, each advertising
its own DNS name under the peers Service (etcd's --initial-cluster bootstrapping).
*/}}
{{- define "pd-common.etcd" -}}
{{- $root := .root -}}
{{- $e := $root.Values.infra.etcd -}}
{{- if $e.enabled -}}
{{- if and (gt (int (default 1 $e.replicas)) 1) (not (dig "persistence" "enabled" false $e)) -}}
{{- fail
    (print "infra.etcd.replicas above 1 needs infra.etcd.persistence.enabled: a member restarted on an emptyDir "
        "comes back empty and cannot rejoin the cluster (etcd-io/etcd#13509)") -}}
{{- end -}}
{{- $name := include "pd-common.componentName" (dict "root" $root "component" "etcd") -}}
{{- $peers := printf "%s-peers.%s.svc" $name $root.Release.Namespace -}}
{{- $members := list -}}
{{- range $i := until (int (default 1 $e.replicas)) -}}
{{- $members = append $members (printf "%s-%d=http://%s-%d.%s:2380" $name $i $name $i $peers) -}}
{{- end -}}
{{- $ports := list (dict "name" "client" "containerPort" (int $e.port)) (dict "name" "peer" "containerPort" 2380) -}}
{{- $args := list "--name=$(POD_NAME)" "--data-dir=/var/lib/etcd/data"
    (printf "--listen-client-urls=http://0.0.0.0:%d" (int $e.port))
    (printf "--advertise-client-urls=http://$(POD_NAME).%s:%d" $peers
    (int $e.port)) "--listen-peer-urls=http://0.0.0.0:2380" (printf
    "--initial-advertise-peer-urls=http://$(POD_NAME).%s:2380" $peers) (printf "--initial-cluster=%s"
    (join "," $members)) (printf "--initial-cluster-token=%s" $name) "--initial-cluster-state=new" -}}
{{- $pod := dict "command" (list "etcd") "args" $args "dataPath" "/var/lib/etcd" "readinessProbe"
    (dict "tcpSocket" (dict "port" "client") "periodSeconds" 5) -}}
{{ include "pd-common.infraStatefulSet" (dict "root" $root "component" "etcd" "cfg" $e "ports" $ports "pod" $pod) }}
{{- end -}}
{{- end -}}

{{/*
pd-common.nats: NATS with JetStream (-js), which Dynamo's event plane and KV router persist
into. Several servers form a cluster (--cluster_name, --routes to every member); JetStream
in a cluster needs each server's own name (--name).
*/}}
{{- define "pd-common.nats" -}}
{{- $root := .root -}}
{{- $n := $root.Values.infra.nats -}}
{{- if $n.enabled -}}
{{- $name := include "pd-common.componentName" (dict "root" $root "component" "nats") -}}
{{- $replicas := int (default 1 $n.replicas) -}}
{{- $ports := list (dict "name" "client" "containerPort" (int $n.port)) (dict "name" "monitor" "containerPort" 8222) -}}
{{- $args := list "-js" "-sd" "/data" "-p" ($n.port | toString) "-m" "8222" "--name" "$(POD_NAME)" -}}
{{- if gt $replicas 1 -}}
{{- $ports = append $ports (dict "name" "cluster" "containerPort" 6222) -}}
{{- $routes := list -}}
{{- range $i := until $replicas }}{{ $routes = append $routes (printf "nats://%s-%d.%s-peers.%s.svc:6222" $name $i
    $name $root.Release.Namespace) }}{{ end -}}
{{- $args = concat $args (list "--cluster_name" $name "--cluster" "nats://0.0.0.0:6222" "--routes"
    (join "," $routes)) -}}
{{- end -}}
{{- $pod := dict "args" $args "dataPath" "/data" "readinessProbe" (dict "httpGet"
    (dict "path" "/healthz?js-enabled-only=true" "port" "monitor") "periodSeconds" 5) -}}
{{ include "pd-common.infraStatefulSet" (dict "root" $root "component" "nats" "cfg" $n "ports" $ports "pod" $pod) }}
{{- end -}}
{{- end -}}

{{/*
pd-common.mooncakeMasterPod: the Mooncake master's pod (a dict for pd-common.podTemplate
without root and component): mooncake_master with its RPC, metrics and (for LMCache and
HTTP-metadata clients) embedded HTTP metadata server. --rpc_address is the pod IP: store
clients must reach the address the master advertises.
*/}}
{{- define "pd-common.mooncakeMasterPod" -}}
{{- $root := .root -}}
{{- $m := $root.Values.infra.mooncakeMaster -}}
{{- $ports := list (dict "name" "rpc" "containerPort" (int $m.rpcPort)) (dict "name" "metrics" "containerPort"
    (int $m.metricsPort)) -}}
{{- $args := list (printf "--rpc_port=%d" (int $m.rpcPort)) "--rpc_address=$(POD_IP)" (printf "--metrics_port=%d"
    (int $m.metricsPort)) -}}
{{- if $m.httpMetadataServer -}}
{{- $ports = append $ports (dict "name" "http-metadata" "containerPort" (int $m.httpMetadataPort)) -}}
{{- $args = concat $args (list "--enable_http_metadata_server=true" "--http_metadata_server_host=0.0.0.0"
    (printf "--http_metadata_server_port=%d" (int $m.httpMetadataPort))) -}}
{{- end -}}
{{- with $m.evictionRatio }}{{ $args = append $args (printf "--eviction_ratio=%v" .) }}{{ end -}}
{{- with $m.evictionHighWatermarkRatio }}{{ $args = append $args
    (printf "--eviction_high_watermark_ratio=%v" .) }}{{ end -}}
{{- $args = concat $args (default list $m.extraArgs) -}}
{{- /* Mooncake's master image runs as 65532 (docker/master.Dockerfile USER 65532:65532); glog
       writes under /tmp, an emptyDir under a read-only root. */ -}}
{{- toYaml (dict "role" (dict "resources" $m.resources) "image" (default $root.Values.image $m.image) "command"
    (list "mooncake_master") "args" $args "ports" $ports "readinessProbe" (dict "tcpSocket"
    (dict "port" "rpc") "periodSeconds" 5) "runAs" 65532 "readOnlyRoot" true) -}}
{{- end -}}

{{/*
pd-common.mooncakeMaster: the Mooncake master's Service and, except in the rolebasedgroup
form (where it is a role of the group, pd-common.group), its Deployment.
*/}}
{{- define "pd-common.mooncakeMaster" -}}
{{- $root := .root -}}
{{- if $root.Values.infra.mooncakeMaster.enabled -}}
{{- $ctx := dict "root" $root "component" "mooncake-master" -}}
{{- $pod := include "pd-common.mooncakeMasterPod" . | fromYaml -}}
{{ include "pd-common.service" (merge (dict "ports" $pod.ports) $ctx) }}
{{- if ne (include "pd-common.form" $root) "rolebasedgroup" }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
spec:
  replicas: 1
  selector:
    matchLabels:
      {{- include "pd-common.selectorLabels" $ctx | nindent 6 }}
  template:
    {{- include "pd-common.podTemplate" (merge $pod $ctx) | nindent 4 }}
{{- end }}
{{- end -}}
{{- end -}}
