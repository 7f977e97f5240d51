{{/*
bench.jobName: the Job's name carries a hash of what it runs (scenario, target, image,
results), so changing the scenario makes `helm upgrade` run a new benchmark instead of
keeping the finished Job (a Job's pod template cannot be changed in place).
*/}}
{{- define "bench.jobName" -}}
{{- $what := toJson (list .Values.scenario .Values.target .Values.image .Values.results) -}}
{{- printf "%s-%s" (include "pd-common.componentName" (dict "root" . "component" "bench")) ($what | sha256sum
    | trunc 8) -}}
{{- end -}}
