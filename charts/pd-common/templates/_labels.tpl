{{/*
pd-common.selectorLabels: the only labels selectors use. Never the chart version: a
selector is immutable on a StatefulSet, so an upgrade must not change it.
Usage: {{ include "pd-common.selectorLabels" (dict "root" $ "component" "decode") }}
*/}}
{{- define "pd-common.selectorLabels" -}}
{{- /* Quoted: a release named "yes" or "on" is a boolean to Go's YAML otherwise. */ -}}
app.kubernetes.io/name: {{ include "pd-common.name" .root | quote }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end -}}

{{/*
pd-common.labels: selector labels plus version, manager, part-of, chart and
.Values.commonLabels.
*/}}
{{- define "pd-common.labels" -}}
{{ include "pd-common.selectorLabels" . }}
{{- /* commonLabels may set part-of or version; the selector labels, managed-by and the chart
       label stay the chart's (a key written twice would be invalid YAML). */}}
{{- $own := dict "app.kubernetes.io/version" (toString .root.Chart.AppVersion) "app.kubernetes.io/part-of" "pdgen" }}
{{- $labels := merge (omit (default dict .root.Values.commonLabels) "app.kubernetes.io/name"
    "app.kubernetes.io/instance" "app.kubernetes.io/component" "app.kubernetes.io/managed-by" "helm.sh/chart") $own }}
{{ toYaml $labels }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "pd-common.chart" .root }}
{{- end -}}

{{/*
pd-common.metadata: name, namespace, labels and annotations (commonAnnotations, plus the
object's own "annotations", which win) of a component object.
Usage: {{ include "pd-common.metadata" (dict "root" $ "component" "router") }}
*/}}
{{- define "pd-common.metadata" -}}
name: {{ include "pd-common.componentName" . | quote }}
namespace: {{ .root.Release.Namespace | quote }}
labels:
  {{- include "pd-common.labels" . | nindent 2 }}
{{- with merge (default dict .annotations) (default dict .root.Values.commonAnnotations) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
