{{/*
Services: a component's Service (optionally headless), and the Service clients use.
*/}}

{{- define "pd-common.service" -}}
{{- /* A ClusterIP (or headless) Service for a component: dict root component ports [headless extraSelector name] */ -}}
apiVersion: v1
kind: Service
metadata:
  {{- $meta := include "pd-common.metadata" . | fromYaml }}
  {{- with .name }}{{ $_ := set $meta "name" . }}{{ end }}
  {{- toYaml $meta | nindent 2 }}
spec:
  {{- if .headless }}
  clusterIP: None
  # Peers must resolve each pod before it is ready (bootstrap handshakes during startup).
  publishNotReadyAddresses: true
  {{- end }}
  selector:
    {{- include "pd-common.selectorLabels" . | nindent 4 }}
    {{- with .extraSelector }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .containerPort }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
{{- end -}}

{{/*
pd-common.frontService: the Service clients use, named after the release. It selects the
router, or the servers directly when a chart renders no router (aggregated mode).
Parameters: root, target (component the Service selects), leaderOnly (bool).
*/}}
{{- define "pd-common.frontService" -}}
{{- $v := .root.Values -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "pd-common.fullname" .root | quote }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "pd-common.labels" (dict "root" .root "component" .target) | nindent 4 }}
  {{- with merge (deepCopy (default dict $v.service.annotations)) (default dict $v.commonAnnotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "pd-common.selectorLabels" (dict "root" .root "component" .target) | nindent 4 }}
    {{- if .leaderOnly }}
    pdgen.io/instance-role: leader
    {{- end }}
  ports:
    - name: http
      port: {{ int $v.service.port }}
      targetPort: http
      protocol: TCP
      {{- if and (ne $v.service.type "ClusterIP") (gt (int $v.service.nodePort) 0) }}
      nodePort: {{ int $v.service.nodePort }}
      {{- end }}
{{- end -}}
