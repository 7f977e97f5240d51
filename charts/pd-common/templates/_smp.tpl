{{/*
Strategic merge of pod-template values, as the API server and the group controllers read it:
what two templates share and the patch from one to another (the RoleBasedGroup form's shared
engine template and per-role patches are built with it).
*/}}

{{/*
pd-common.smpKeys: the pod-template lists a strategic merge patch merges item by item, and
the key it matches items on (k8s.io/api core/v1 patchMergeKey tags); every other list is
replaced whole.
*/}}
{{- define "pd-common.smpKeys" -}}
{"containers": "name", "initContainers": "name", "volumes": "name", "imagePullSecrets": "name", "env": "name",
 "ports": "containerPort", "volumeMounts": "mountPath"}
{{- end -}}

{{/*
pd-common.smpCommon: what two pod-template values share, read as strategic merge patches
read them: maps key by key, merge-keyed lists item by item (items with the same key), any
other value only when equal. Parameters: a, b, field (the key holding them, which picks a
list's merge key). Returns JSON {"v": shared} or {} when nothing is shared.
*/}}
{{- define "pd-common.smpCommon" -}}
{{- $keys := include "pd-common.smpKeys" . | fromJson -}}
{{- if eq (toJson .a) (toJson .b) -}}
{{- toJson (dict "v" .a) -}}
{{- else if and (kindIs "map" .a) (kindIs "map" .b) -}}
{{- $out := dict -}}
{{- range $k, $va := .a -}}
{{- if hasKey $.b $k -}}
{{- $c := include "pd-common.smpCommon" (dict "a" $va "b" (index $.b $k) "field" $k) | fromJson -}}
{{- if hasKey $c "v" }}{{ $_ := set $out $k $c.v }}{{ end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "v" $out) -}}
{{- else if and (kindIs "slice" .a) (kindIs "slice" .b) (hasKey $keys (toString .field)) -}}
{{- $mk := index $keys .field -}}
{{- $out := list -}}
{{- range $ia := .a -}}
{{- range $ib := $.b -}}
{{- if eq (toJson (index $ia $mk)) (toJson (index $ib $mk)) -}}
{{- $out = append $out (include "pd-common.smpCommon" (dict "a" $ia "b" $ib "field" "") | fromJson).v -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "v" $out) -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/*
pd-common.smpDiff: the strategic merge patch that turns base into target (what the RBG
controller applies: k8s.io/apimachinery strategicpatch.StrategicMergePatch on a
PodTemplateSpec, rbg api/workloads/v1alpha2/helper.go). A key base has and target lacks is
set to null, a merge-keyed item it lacks gets $patch: delete, and a merge-keyed list that
changes gets $setElementOrder/<field> with the target's order. Parameters: base, target,
field. Returns JSON {"v": patch} or {} when they are equal.
*/}}
{{- define "pd-common.smpDiff" -}}
{{- $keys := include "pd-common.smpKeys" . | fromJson -}}
{{- if eq (toJson .base) (toJson .target) -}}
{}
{{- else if and (kindIs "map" .base) (kindIs "map" .target) -}}
{{- $out := dict -}}
{{- range $k, $vt := .target -}}
{{- if hasKey $.base $k -}}
{{- $d := include "pd-common.smpDiff" (dict "base" (index $.base $k) "target" $vt "field" $k) | fromJson -}}
{{- if hasKey $d "v" }}{{ $_ := set $out $k $d.v }}{{ end -}}
{{- if and (hasKey $d "v") (kindIs "slice" $vt) (hasKey $keys $k) -}}
{{- /* Where items are added or moved, say the order: without it a new item lands ahead of
       the live ones (k8s.io/apimachinery strategicpatch mergeSortedSlice), and an env entry
       could precede the $(VAR) it names. */ -}}
{{- $mk := index $keys $k -}}
{{- $order := list -}}
{{- range $vt }}{{ $order = append $order (dict $mk (index . $mk)) }}{{ end -}}
{{- $was := list -}}
{{- range (index $.base $k) }}{{ $was = append $was (dict $mk (index . $mk)) }}{{ end -}}
{{- if ne (toJson $order) (toJson $was) }}{{ $_ := set $out (printf "$setElementOrder/%s" $k) $order }}{{ end -}}
{{- end -}}
{{- else -}}
{{- $_ := set $out $k $vt -}}
{{- end -}}
{{- end -}}
{{- range $k, $vb := .base -}}
{{- if not (hasKey $.target $k) }}{{ $_ := set $out $k nil }}{{ end -}}
{{- end -}}
{{- if $out }}{{ toJson (dict "v" $out) }}{{ else }}{}{{ end -}}
{{- else if and (kindIs "slice" .base) (kindIs "slice" .target) (hasKey $keys (toString .field)) -}}
{{- $mk := index $keys .field -}}
{{- $out := list -}}
{{- range $it := .target -}}
{{- $match := dict -}}
{{- $found := false -}}
{{- range $ib := $.base -}}
{{- if eq (toJson (index $ib $mk)) (toJson (index $it $mk)) }}{{ $match = $ib }}{{ $found = true }}{{ end -}}
{{- end -}}
{{- if not $found -}}
{{- $out = append $out $it -}}
{{- else -}}
{{- $d := include "pd-common.smpDiff" (dict "base" $match "target" $it "field" "") | fromJson -}}
{{- if hasKey $d "v" }}{{ $out = append $out (merge (dict $mk (index $it $mk)) $d.v) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- range $ib := .base -}}
{{- $kept := false -}}
{{- range $it := $.target -}}
{{- if eq (toJson (index $ib $mk)) (toJson (index $it $mk)) }}{{ $kept = true }}{{ end -}}
{{- end -}}
{{- if not $kept }}{{ $out = append $out (dict $mk (index $ib $mk) "$patch" "delete") }}{{ end -}}
{{- end -}}
{{- $baseKeys := list -}}
{{- range .base }}{{ $baseKeys = append $baseKeys (toJson (index . $mk)) }}{{ end -}}
{{- $targetKeys := list -}}
{{- range .target }}{{ $targetKeys = append $targetKeys (toJson (index . $mk)) }}{{ end -}}
{{- if or $out (ne (toJson $baseKeys) (toJson $targetKeys)) }}{{ toJson (dict "v" $out) }}{{ else }}{}{{ end -}}
{{- else -}}
{{- toJson (dict "v" .target) -}}
{{- end -}}
{{- end -}}

{{/*
pd-common.commonOf: pd-common.smpCommon folded over a list of pod templates (at least one).
*/}}
{{- define "pd-common.commonOf" -}}
{{- $acc := first .templates -}}
{{- range rest .templates -}}
{{- $acc = (include "pd-common.smpCommon" (dict "a" $acc "b" . "field" "") | fromJson).v | default dict -}}
{{- end -}}
{{- toJson $acc -}}
{{- end -}}

{{/* pd-common.patchOf: the patch from base to target ({} when none), as YAML. */}}
{{- define "pd-common.patchOf" -}}
{{- toYaml ((include "pd-common.smpDiff" (dict "base" .base "target" .target "field" "") | fromJson).v
    | default dict) -}}
{{- end -}}
