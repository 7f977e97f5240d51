{{/*
pd-common.ownProxyPod: the pod of pdgen's proxy (files/pd_proxy.py, generated from
pdgen/pd_proxy.py), a dict for pd-common.podTemplate; vllm-mooncake and ascend-yuanrong
(kvBackend datasystem) run it in the engine image, mounted from the chart's ConfigMap.
Probes: readiness on /health (200 while one prefill and one decode can serve, so the Service
keeps the router only while it can answer); liveness on /livez (200 while its health checker
runs, so a proxy whose checker died is restarted instead of serving a stale view). The liveness
budget is a minute: a restart drops every request in flight, so a proxy slow under load must
not be killed for it. It needs no privilege: a non-root user, a read-only root.
Parameters: root, command (list: the proxy's command line).
*/}}
{{- define "pd-common.ownProxyPod" -}}
{{- $proxy := include "pd-common.componentName" (dict "root" .root "component" "proxy") -}}
{{- toYaml (dict "command" (list (first .command)) "args" (rest .command)
      "ports" (list (dict "name" "http" "containerPort" (int .root.Values.service.port)))
      "readinessProbe" (dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" 5 "timeoutSeconds" 5)
      "livenessProbe" (dict "httpGet" (dict "path" "/livez" "port" "http") "periodSeconds" 10 "timeoutSeconds" 5
        "failureThreshold" 6)
      "volumes" (list (dict "name" "proxy" "configMap" (dict "name" $proxy)))
      "volumeMounts" (list (dict "name" "proxy" "mountPath" "/opt/pdgen" "readOnly" true))
      "runAs" 65532 "readOnlyRoot" true) -}}
{{- end -}}

{{/*
pd-common.ownProxyConfigMap: the ConfigMap that carries pdgen's proxy.
Parameters: root.
*/}}
{{- define "pd-common.ownProxyConfigMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "pd-common.metadata" (dict "root" .root "component" "proxy") | nindent 2 }}
data:
  pd_proxy.py: |
    {{- .root.Files.Get "files/pd_proxy.py" | nindent 4 }}
{{- end -}}
