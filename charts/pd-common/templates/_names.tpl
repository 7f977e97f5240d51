{{/*
pd-common.name: the chart name, or .Values.nameOverride.
Usage: {{ include "pd-common.name" . }}
*/}}
{{- define "pd-common.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
pd-common.fullname: prefix of every object. The release name alone (pdgen topologies name
the release), truncated to 53 so "-<component>" suffixes stay within 63 characters.
*/}}
{{- define "pd-common.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{/*
pd-common.componentName: "<fullname>-<component>".
Usage: {{ include "pd-common.componentName" (dict "root" $ "component" "prefill") }}
*/}}
{{- define "pd-common.componentName" -}}
{{- printf "%s-%s" (include "pd-common.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pd-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}
