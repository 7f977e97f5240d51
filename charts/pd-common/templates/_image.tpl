{{/*
pd-common.image: "repository:tag" (or "repository@digest"); keys set in "override" win
over "image".
Usage: {{ include "pd-common.image" (dict "image" .Values.image "override" .Values.prefill.image) }}
*/}}
{{- define "pd-common.image" -}}
{{- $image := mergeOverwrite (deepCopy (default dict .image)) (default dict .override) -}}
{{- if not $image.repository -}}{{- fail "image.repository is required" -}}{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (required "image.tag is required" $image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{- define "pd-common.pullPolicy" -}}
{{- $image := mergeOverwrite (deepCopy (default dict .image)) (default dict .override) -}}
{{- default "IfNotPresent" $image.pullPolicy -}}
{{- end -}}
