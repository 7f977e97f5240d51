{{/*
pd-common.scrapeTargets: what Prometheus scrapes in this release, as a YAML list of
{component, port (the container port's name), portNumber, path, leaderOnly}. The calling
chart lists its own components in "<chart>.scrapeTargets" (engines, routers, frontends,
proxies); the bundled infra that serves Prometheus metrics is added here: etcd (/metrics on
its client port: etcd-io/etcd server/etcdserver/metrics.go) and mooncake_master (/metrics on
--metrics_port: kvcache-ai/Mooncake mooncake-store/src/master.cpp). NATS serves JSON on its
monitor port, not Prometheus text, and is not scraped. Empty when observability.metrics is off.
Parameters: the chart's root context.
*/}}
{{- define "pd-common.scrapeTargets" -}}
{{- $v := .Values -}}
{{- $targets := list -}}
{{- if $v.observability.metrics -}}
{{- $targets = include (printf "%s.scrapeTargets" .Chart.Name) . | fromYamlArray -}}
{{- if dig "etcd" "enabled" false (default dict $v.infra) -}}
{{- $targets = append $targets (dict "component" "etcd" "port" "client" "portNumber"
    (int $v.infra.etcd.port) "path" "/metrics") -}}
{{- end -}}
{{- if dig "mooncakeMaster" "enabled" false (default dict $v.infra) -}}
{{- $targets = append $targets (dict "component" "mooncake-master" "port" "metrics" "portNumber"
    (int $v.infra.mooncakeMaster.metricsPort) "path" "/metrics") -}}
{{- end -}}
{{- end -}}
{{- toYaml $targets -}}
{{- end -}}

{{/*
pd-common.scrapeAnnotations: the prometheus.io/* annotations of a pod, for
observability.scrape=annotations (the convention of Prometheus's kubernetes-pods example job:
scrape, port, path); empty for pods nothing scrapes and for the worker pods of a multi-node
instance (its leader serves the instance's metrics).
Parameters: root, component, worker (bool).
*/}}
{{- define "pd-common.scrapeAnnotations" -}}
{{- if and (eq (toString (default dict .root.Values.observability).scrape) "annotations") (not .worker) -}}
{{- range (include "pd-common.scrapeTargets" .root | fromYamlArray) -}}
{{- if eq .component $.component }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .portNumber | toString | quote }}
prometheus.io/path: {{ .path | quote }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
pd-common.monitoring: the release's monitoring objects, from observability:
  scrape podMonitor      a PodMonitor per scraped component, on its named port
  scrape serviceMonitor  a headless Service "<component>-metrics" with that one port, and a
                         ServiceMonitor selecting it (label pdgen.io/metrics: "true", so the
                         component's other Services are not scraped twice)
  alerts                 a PrometheusRule from the chart's files/alerts.yaml
  dashboards             a ConfigMap with the chart's files/dashboard.json, labelled
                         grafana_dashboard: "1" (the Grafana sidecar's default label)
Every monitor copies the pods' instance and component labels onto the series
(podTargetLabels: app_kubernetes_io_instance, app_kubernetes_io_component), the labels the
dashboard and the alerts select on. Multi-node instances are scraped at their leader.
Parameters: the chart's root context.
*/}}
{{- define "pd-common.monitoring" -}}
{{- $root := . -}}
{{- $o := .Values.observability -}}
{{- $targetLabels := list "app.kubernetes.io/instance" "app.kubernetes.io/component" -}}
{{- range (include "pd-common.scrapeTargets" $root | fromYamlArray) -}}
{{- $ctx := dict "root" $root "component" .component -}}
{{- $selector := include "pd-common.selectorLabels" $ctx | fromYaml -}}
{{- if .leaderOnly }}{{ $_ := set $selector "pdgen.io/instance-role" "leader" }}{{ end -}}
{{- $meta := include "pd-common.metadata" $ctx | fromYaml -}}
{{- $_ := set $meta "labels" (merge (dict) $meta.labels (default dict $o.monitorLabels)) -}}
{{- if eq $o.scrape "podMonitor" }}
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  {{- toYaml $meta | nindent 2 }}
spec:
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  podTargetLabels:
    {{- toYaml $targetLabels | nindent 4 }}
  podMetricsEndpoints:
    - port: {{ .port | quote }}
      path: {{ .path | quote }}
      interval: {{ $o.interval | quote }}
{{- else if eq $o.scrape "serviceMonitor" }}
{{- $name := printf "%s-metrics" (include "pd-common.componentName" $ctx) }}
---
apiVersion: v1
kind: Service
metadata:
  {{- $svc := include "pd-common.metadata" $ctx | fromYaml }}
  {{- $_ := set $svc "name" $name }}
  {{- $_ := set $svc "labels" (merge (dict "pdgen.io/metrics" "true") $svc.labels) }}
  {{- toYaml $svc | nindent 2 }}
spec:
  clusterIP: None
  # Scraped while not ready too: a starting engine's metrics say why it is not ready.
  publishNotReadyAddresses: true
  selector:
    {{- toYaml $selector | nindent 4 }}
  ports:
    - name: {{ .port | quote }}
      port: {{ int .portNumber }}
      targetPort: {{ .port | quote }}
      protocol: TCP
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  {{- toYaml $meta | nindent 2 }}
spec:
  selector:
    matchLabels:
      {{- include "pd-common.selectorLabels" $ctx | nindent 6 }}
      pdgen.io/metrics: "true"
  podTargetLabels:
    {{- toYaml $targetLabels | nindent 4 }}
  endpoints:
    - port: {{ .port | quote }}
      path: {{ .path | quote }}
      interval: {{ $o.interval | quote }}
{{- end }}
{{- end }}
{{- if $o.alerts }}
{{- $text := $root.Files.Get "files/alerts.yaml" | replace "__NAMESPACE__" $root.Release.Namespace
    | replace "__RELEASE__" $root.Release.Name }}
{{- $groups := list }}
{{- range (fromYamlArray $text) }}
{{- if eq (include "pd-common.when" (dict "root" $root "when" .when)) "true" }}
{{- $groups = append $groups .group }}
{{- end }}
{{- end }}
{{- $ctx := dict "root" $root "component" "alerts" }}
{{- $meta := include "pd-common.metadata" $ctx | fromYaml }}
{{- $_ := set $meta "labels" (merge (dict) $meta.labels (default dict $o.monitorLabels)) }}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  {{- toYaml $meta | nindent 2 }}
spec:
  groups:
    {{- toYaml $groups | nindent 4 }}
{{- end }}
{{- if $o.dashboards }}
{{- $ctx := dict "root" $root "component" "dashboard" }}
{{- $meta := include "pd-common.metadata" $ctx | fromYaml }}
{{- $_ := set $meta "labels" (merge (dict "grafana_dashboard" "1") $meta.labels) }}
{{- $uid := printf "pdgen-%s" (sha256sum (printf "%s/%s" $root.Release.Namespace $root.Release.Name) | trunc 12) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  {{- toYaml $meta | nindent 2 }}
data:
  {{ printf "%s.json" (include "pd-common.componentName" $ctx) }}: |-
    {{- $root.Files.Get "files/dashboard.json" | replace "__NAMESPACE__" $root.Release.Namespace
        | replace "__RELEASE__" $root.Release.Name | replace "__UID__" $uid | nindent 4 }}
{{- end }}
{{- end -}}

{{/*
pd-common.when: "true" when every condition of a list holds for the values, else "false".
A condition is "path=value" or "path!=value", path a dotted values path (mode,
transport.protocol, variant.connector, infra.mooncakeMaster.enabled, ...), compared as strings.
Parameters: root, when (list).
*/}}
{{- define "pd-common.when" -}}
{{- $ok := true -}}
{{- range (default list .when) -}}
{{- $negate := contains "!=" . -}}
{{- $parts := ternary (splitList "!=" .) (splitList "=" .) $negate -}}
{{- $node := $.root.Values -}}
{{- range $key := splitList "." (first $parts) -}}
{{- if kindIs "map" $node }}{{ $node = get $node $key }}{{ else }}{{ $node = "" }}{{ end -}}
{{- end -}}
{{- if ne (eq (toString $node) (last $parts)) (not $negate) }}{{ $ok = false }}{{ end -}}
{{- end -}}
{{- $ok -}}
{{- end -}}

{{/*
pd-common.engineScrapeTargets: the engine roles of the mode (prefill and decode, or server),
each scraped on one named port; a multi-node instance at its leader.
Parameters: root, port (name), portNumber, path (default /metrics).
*/}}
{{- define "pd-common.engineScrapeTargets" -}}
{{- $v := .root.Values -}}
{{- range $component := ternary (list "prefill" "decode") (list "server") (eq $v.mode "disaggregated") }}
- component: {{ $component }}
  port: {{ $.port }}
  portNumber: {{ int $.portNumber }}
  path: {{ default "/metrics" $.path }}
  leaderOnly: {{ gt (int (default 1 (index $v $component).nodesPerInstance)) 1 }}
{{- end }}
{{- end -}}
