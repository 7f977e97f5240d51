{{/*
Model source: an existing PVC, a hostPath, or a PVC filled once by a download Job.
Every engine pod mounts the model at .Values.model.path, from the same helper, so no
role can load a different path (the ACK sample's decode mounted /models/QwQ-32B/).
*/}}
{{- define "pd-common.modelVolumes" -}}
{{- $v := .root.Values -}}
{{- $src := $v.model.source -}}
{{- if eq $src.type "pvc" }}
- name: model
  persistentVolumeClaim:
    claimName: {{ required "model.source.pvc.claimName is required" $src.pvc.claimName | quote }}
    readOnly: {{ ne $src.pvc.readOnly false }}
{{- else if eq $src.type "hostPath" }}
- name: model
  hostPath:
    path: {{ required "model.source.hostPath.path is required" $src.hostPath.path | quote }}
    type: Directory
{{- else if eq $src.type "download" }}
- name: model
  persistentVolumeClaim:
    claimName: {{ include "pd-common.componentName" (dict "root" .root "component" "model") }}
    readOnly: true
{{- else }}
{{- fail (printf "model.source.type must be pvc, hostPath or download, not %q" $src.type) }}
{{- end }}
{{- end -}}

{{- define "pd-common.modelMounts" -}}
{{- $v := .root.Values -}}
- name: model
  mountPath: {{ $v.model.path | quote }}
  readOnly: true
  {{- if and (eq $v.model.source.type "pvc") $v.model.source.pvc.subPath }}
  subPath: {{ $v.model.source.pvc.subPath | toString | quote }}
  {{- end }}
{{- end -}}

{{/*
pd-common.downloadMarker: what the download Job writes into the volume once it is complete,
and what engines wait for: the source, URI and revision, so a changed one is downloaded
again instead of serving the old weights.
*/}}
{{- define "pd-common.downloadMarker" -}}
{{- $d := .root.Values.model.source.download -}}
{{- printf "%s %s %s" $d.from $d.uri (default "-" $d.revision) -}}
{{- end -}}

{{/*
pd-common.waitForModel: engines start with the download Job and wait for its marker, so
a half-downloaded (or previous) model is never loaded.
*/}}
{{- define "pd-common.waitForModel" -}}
{{- $v := .root.Values -}}
- name: wait-for-model
  image: {{ include "pd-common.image" (dict "image" $v.model.source.download.waitImage) }}
  {{- /* One line of YAML: the empty comment across the line break below joins the two source lines. */}}
  command: [sh, -c, 'until [ "$(cat "$MODEL_DIR/.pdgen-download-complete" 2>/dev/null)" = "$EXPECTED" ];{{/*
    */}} do echo "waiting for the model download job ($EXPECTED)"; sleep 10; done']
  env:
    - name: MODEL_DIR
      value: {{ $v.model.path | quote }}
    - name: EXPECTED
      value: {{ include "pd-common.downloadMarker" . | quote }}
  volumeMounts:
    - name: model
      mountPath: {{ $v.model.path | quote }}
      readOnly: true
{{- end -}}

{{/*
pd-common.modelDownload: the PVC and the Job that fills it. Credentials come only from an
existing Secret (envFrom), never from values.
- The PVC is kept on uninstall unless storage.keep is false: re-downloading hundreds of GB
  is the expensive part. A later install of the same release adopts it.
- A Job's pod template is immutable, so the Job's name carries a hash of what it downloads:
  changing the source makes `helm upgrade` replace the Job instead of failing.
- The marker holds source, URI and revision; a Job that finds another one empties the
  volume first, so two models never mix.
*/}}
{{- define "pd-common.modelDownload" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- if eq $v.model.source.type "download" -}}
{{- $d := $v.model.source.download -}}
{{- $ctx := dict "root" $root "component" "model" -}}
{{- $uri := required "model.source.download.uri is required" $d.uri -}}
{{- $script := "" -}}
{{- if eq $d.from "hf" -}}
{{- $script = printf
    (print "pip install --no-cache-dir --quiet 'huggingface_hub>=0.25,<1' && "
        "python -c 'import os, huggingface_hub as h; "
        "h.snapshot_download(repo_id=os.environ[\"MODEL_URI\"], revision=os.environ.get(\"MODEL_REVISION\") or None, "
        "local_dir=\"/model\")'") -}}
{{- else if eq $d.from "modelscope" -}}
{{- $script = printf
    (print "pip install --no-cache-dir --quiet 'modelscope>=1.20,<2' && python -c 'import os, modelscope as m; "
        "m.snapshot_download(os.environ[\"MODEL_URI\"], revision=os.environ.get(\"MODEL_REVISION\") or None, "
        "local_dir=\"/model\")'") -}}
{{- else if or (eq $d.from "s3") (eq $d.from "oss") -}}
{{- /* OSS speaks the S3 API (virtual-hosted style on s3.oss-<region>.aliyuncs.com), so one
       client serves both; the endpoint needs its scheme, or botocore refuses it. */ -}}
{{- $script = printf
    (print "pip install --no-cache-dir --quiet 'awscli>=1.33,<2' && "
        "aws configure set default.s3.addressing_style \"$S3_ADDRESSING_STYLE\" && "
        "aws s3 sync \"s3://${MODEL_URI#*://}\" /model ${S3_ENDPOINT:+--endpoint-url \"$S3_ENDPOINT\"}") -}}
{{- else -}}
{{- fail (printf "model.source.download.from must be hf, modelscope, s3 or oss, not %q" $d.from) -}}
{{- end -}}
{{- $marker := include "pd-common.downloadMarker" (dict "root" $root) -}}
{{- $job := printf "%s-%s" (include "pd-common.componentName" (dict "root" $root "component" "model-download"))
    (printf "%s|%s|%s" $marker (toJson $d.image) $d.endpoint | sha256sum | trunc 8) }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  {{- $keep := ternary (dict "helm.sh/resource-policy" "keep") dict (ne (dig "storage" "keep" true $d) false) }}
  {{- include "pd-common.metadata" (merge (dict "annotations" $keep) $ctx) | nindent 2 }}
spec:
  accessModes: [{{ default "ReadWriteMany" $d.storage.accessMode }}]
  {{- with $d.storage.storageClassName }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ required "model.source.download.storage.size is required" $d.storage.size | toString }}
---
apiVersion: batch/v1
kind: Job
metadata:
  {{- $meta := include "pd-common.metadata" (dict "root" $root "component" "model-download") | fromYaml }}
  {{- $_ := set $meta "name" $job }}
  {{- toYaml $meta | nindent 2 }}
spec:
  backoffLimit: 3
  template:
    metadata:
      labels:
        {{- include "pd-common.selectorLabels" (dict "root" $root "component" "model-download") | nindent 8 }}
    spec:
      restartPolicy: OnFailure
      containers:
        - name: download
          image: {{ include "pd-common.image" (dict "image" $d.image) }}
          command: [sh, -c]
          args:
            - |
              set -eu
              marker=/model/.pdgen-download-complete
              if [ "$(cat "$marker" 2>/dev/null)" = "$MARKER" ]; then echo "model already downloaded: $MARKER";{{/*
              */}} exit 0; fi
              if [ -e "$marker" ]; then echo "replacing $(cat "$marker") with $MARKER";{{/*
              */}} find /model -mindepth 1 -delete; fi
              {{ $script }}
              printf '%s' "$MARKER" > "$marker"
          env:
            - name: MODEL_URI
              value: {{ $uri | quote }}
            - name: MODEL_REVISION
              value: {{ default "" $d.revision | quote }}
            - name: MARKER
              value: {{ $marker | quote }}
            - name: S3_ENDPOINT
              value: {{ default "" $d.endpoint | quote }}
            - name: S3_ADDRESSING_STYLE
              value: {{ default "auto" $d.addressingStyle | quote }}
            {{- with $d.region }}
            - name: AWS_DEFAULT_REGION
              value: {{ . | quote }}
            {{- end }}
            # botocore >= 1.36 adds CRC checksums by default, which S3-compatible stores may not
            # support; ask for them only where the API requires them.
            - name: AWS_REQUEST_CHECKSUM_CALCULATION
              value: when_required
            - name: AWS_RESPONSE_CHECKSUM_VALIDATION
              value: when_required
            - name: HF_HUB_DISABLE_TELEMETRY
              value: "1"
          {{- with $d.credentialsSecret }}
          envFrom:
            - secretRef:
                name: {{ . | quote }}
          {{- end }}
          volumeMounts:
            - name: model
              mountPath: /model
      volumes:
        - name: model
          persistentVolumeClaim:
            claimName: {{ include "pd-common.componentName" $ctx }}
{{- end -}}
{{- end -}}

{{/*
pd-common.notesModel: what NOTES.txt says about a downloaded model's volume.
*/}}
{{- define "pd-common.notesModel" -}}
{{- $v := .Values -}}
{{- if eq $v.model.source.type "download" }}

The model downloads once into PVC {{ include "pd-common.componentName" (dict "root" . "component" "model") }} (Job {{
    include "pd-common.componentName" (dict "root" . "component" "model-download") }}-*); the engines wait for it.
{{- if ne (dig "storage" "keep" true $v.model.source.download) false }}
`helm uninstall` keeps that PVC and its weights (helm.sh/resource-policy: keep); reinstalling the
release reuses it. Delete it yourself when it is no longer wanted:

  kubectl -n {{ .Release.Namespace }} delete pvc {{ include "pd-common.componentName"
    (dict "root" . "component" "model") }}
{{- end }}
{{- end }}
{{- end -}}
