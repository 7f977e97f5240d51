{{/*
pd-common.selectorLabels: the only labels selectors use. Never the chart version: a
selector is immutable on a StatefulSet, so an upgrade must not change it.
Usage: {{ include "pd-common.selectorLabels" (dict "root" $ "component" "decode") }}
*/}}
{{- define "pd-common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pd-common.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
pd-common.labels: selector labels plus version, manager, part-of, chart and
.Values.commonLabels.
*/}}
{{- define "pd-common.labels" -}}
{{ include "pd-common.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pdgen
helm.sh/chart: {{ include "pd-common.chart" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
pd-common.metadata: name, namespace, labels and annotations (commonAnnotations, plus the
object's own "annotations", which win) of a component object.
Usage: {{ include "pd-common.metadata" (dict "root" $ "component" "router") }}
*/}}
{{- define "pd-common.metadata" -}}
name: {{ include "pd-common.componentName" . }}
namespace: {{ .root.Release.Namespace | quote }}
labels:
  {{- include "pd-common.labels" . | nindent 2 }}
{{- with merge (default dict .annotations) (default dict .root.Values.commonAnnotations) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
