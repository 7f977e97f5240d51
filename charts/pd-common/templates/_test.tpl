{{/*
pd-common.testPod: the `helm test` hook. It lists /v1/models (the served name must be
there), then sends one real completion (or chat) request through the Service and fails on
a non-200 answer or, when smokeTest.expectNonEmpty, on empty generated text. A router that
serves no GET /v1/models (vllm-ascend's load-balance proxy, v0.23.0) is called with
listModels false: the completion alone is the test.
Parameters: root, url (base URL of the Service), listModels (optional, default true).
*/}}
{{- define "pd-common.testPod" -}}
{{- $root := .root -}}
{{- $t := $root.Values.smokeTest -}}
{{- $list := ternary true .listModels (kindIs "invalid" .listModels) -}}
{{- if $t.enabled -}}
apiVersion: v1
kind: Pod
metadata:
  {{- /* pdgen.io/test-calls: what the script below calls; pdgen lint checks that the program
         behind the Service serves it. */}}
  {{- $calls := printf "%sPOST %s" (ternary "GET /v1/models, " "" $list)
      (ternary "/v1/chat/completions" "/v1/completions" (eq $t.api "chat")) }}
  {{- $hook := dict "helm.sh/hook" "test" "helm.sh/hook-delete-policy" "before-hook-creation,hook-succeeded"
      "pdgen.io/test-calls" $calls }}
  {{- include "pd-common.metadata" (dict "root" $root "component" "test" "annotations" $hook) | nindent 2 }}
spec:
  restartPolicy: Never
  # Pod Security Standards "restricted": python3 -c needs no privilege and writes nothing.
  securityContext:
    runAsNonRoot: true
    runAsUser: 65534
    runAsGroup: 65534
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: smoke-test
      image: {{ include "pd-common.image" (dict "image" $t.image) }}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: [ALL]
        readOnlyRootFilesystem: true
      # Requests = limits: a test pod is not the first to go under memory pressure.
      resources:
        requests: {cpu: 100m, memory: 128Mi}
        limits: {cpu: 100m, memory: 128Mi}
      command: [python3, -c]
      args:
        - |
          import json, os, sys, urllib.request
          base, model = os.environ["BASE_URL"], os.environ["MODEL"]

          def call(path, body=None):
              data = None if body is None else json.dumps(body).encode()
              req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
              with urllib.request.urlopen(req, timeout=int(os.environ["TIMEOUT"])) as resp:
                  if resp.status != 200:
                      sys.exit(f"{path}: HTTP {resp.status}")
                  return json.load(resp)

          if os.environ["LIST_MODELS"] == "true":
              models = [m["id"] for m in call("/v1/models").get("data", [])]
              print("models:", models)
              if model not in models:
                  sys.exit(f"/v1/models does not list {model!r}")
          if os.environ["API"] == "chat":
              out = call("/v1/chat/completions", {"model": model, "max_tokens": int(os.environ["MAX_TOKENS"]),
                         "messages": [{"role": "user", "content": os.environ["PROMPT"]}], "temperature": 0})
              text = out["choices"][0]["message"].get("content") or ""
          else:
              out = call("/v1/completions", {"model": model, "prompt": os.environ["PROMPT"],
                         "max_tokens": int(os.environ["MAX_TOKENS"]), "temperature": 0})
              text = out["choices"][0].get("text") or ""
          print("generated:", repr(text))
          if os.environ["EXPECT_NON_EMPTY"] == "true" and not text.strip():
              sys.exit("the completion came back empty")
      env:
        - name: BASE_URL
          value: {{ .url | quote }}
        - name: MODEL
          value: {{ $root.Values.model.servedName | quote }}
        - name: API
          value: {{ $t.api | quote }}
        - name: PROMPT
          value: {{ $t.prompt | quote }}
        - name: MAX_TOKENS
          value: {{ $t.maxTokens | quote }}
        - name: EXPECT_NON_EMPTY
          value: {{ $t.expectNonEmpty | quote }}
        - name: TIMEOUT
          value: {{ $t.timeoutSeconds | quote }}
        - name: LIST_MODELS
          value: {{ $list | quote }}
{{- end -}}
{{- end -}}
