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
pd-common.waitForModel: engines start with the download Job and wait for its marker, so
a half-downloaded model is never loaded.
*/}}
{{- define "pd-common.waitForModel" -}}
{{- $v := .root.Values -}}
- name: wait-for-model
  image: {{ include "pd-common.image" (dict "image" $v.model.source.download.waitImage) }}
  command: [sh, -c, 'until [ -f "$MODEL_DIR/.pdgen-download-complete" ]; do echo "waiting for the model download job"; sleep 10; done']
  env:
    - name: MODEL_DIR
      value: {{ $v.model.path | quote }}
  volumeMounts:
    - name: model
      mountPath: {{ $v.model.path | quote }}
      readOnly: true
{{- end -}}

{{/*
pd-common.modelDownload: the PVC and the Job that fills it. Credentials come only from an
existing Secret (envFrom), never from values.
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
{{- $script = printf "pip install --no-cache-dir --quiet 'huggingface_hub>=0.25,<1' && python -c 'import os, huggingface_hub as h; h.snapshot_download(repo_id=os.environ[\"MODEL_URI\"], revision=os.environ.get(\"MODEL_REVISION\") or None, local_dir=\"/model\")'" -}}
{{- else if eq $d.from "modelscope" -}}
{{- $script = printf "pip install --no-cache-dir --quiet 'modelscope>=1.20,<2' && python -c 'import os, modelscope as m; m.snapshot_download(os.environ[\"MODEL_URI\"], revision=os.environ.get(\"MODEL_REVISION\") or None, local_dir=\"/model\")'" -}}
{{- else if or (eq $d.from "s3") (eq $d.from "oss") -}}
{{- /* OSS speaks the S3 API, so one client serves both. */ -}}
{{- $script = printf "pip install --no-cache-dir --quiet 'awscli>=1.33,<2' && aws s3 sync \"s3://${MODEL_URI#*://}\" /model ${S3_ENDPOINT:+--endpoint-url \"$S3_ENDPOINT\"}" -}}
{{- else -}}
{{- fail (printf "model.source.download.from must be hf, modelscope, s3 or oss, not %q" $d.from) -}}
{{- end }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  {{- include "pd-common.metadata" $ctx | nindent 2 }}
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
  {{- include "pd-common.metadata" (dict "root" $root "component" "model-download") | nindent 2 }}
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
              if [ -f /model/.pdgen-download-complete ]; then echo "model already downloaded"; exit 0; fi
              {{ $script }}
              touch /model/.pdgen-download-complete
          env:
            - name: MODEL_URI
              value: {{ $uri | quote }}
            - name: MODEL_REVISION
              value: {{ default "" $d.revision | quote }}
            - name: S3_ENDPOINT
              value: {{ default "" $d.endpoint | quote }}
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
