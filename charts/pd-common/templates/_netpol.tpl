{{/*
pd-common.networkPolicies: the release's NetworkPolicies (networkPolicy.enabled): one
default-deny over every pod of the release (app.kubernetes.io/instance), then one per
component that lets in exactly its peers. Policies add up: a pod takes a connection when any
policy that selects it allows it.
Parameters: root, components: a list of
  component     the component whose pods the policy selects
  clientPorts   ports open to networkPolicy.clients (any source when that list is empty) and
                the release's helm-test pod: the Service's port of the router or the servers
  peers         list of {components, ports, why}: the release's pods of those components may
                connect, on those ports (empty: every port, for transfers on ports chosen at
                run time: the Mooncake transfer engine's, NIXL's, NCCL's)
  anyPorts      ports open to every source, with why: a peer on the node's network (a
                host-network pod) comes from the node's address, which no podSelector matches
Metrics: the component's scrape ports (pd-common.scrapeTargets) are open to the pods of
networkPolicy.metricsNamespaces.
*/}}
{{- define "pd-common.networkPolicies" -}}
{{- $root := .root -}}
{{- $np := $root.Values.networkPolicy -}}
{{- if $np.enabled -}}
{{- $instance := dict "app.kubernetes.io/instance" $root.Release.Name -}}
{{- $targets := include "pd-common.scrapeTargets" $root | fromYamlArray -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "pd-common.metadata" (dict "root" $root "component" "default-deny") | nindent 2 }}
spec:
  # Every pod of the release: no connection in but what the policies below allow.
  podSelector:
    matchLabels:
      {{- toYaml $instance | nindent 6 }}
  policyTypes: [Ingress]
{{- range $c := .components }}
{{- $rules := list -}}
{{- if $c.clientPorts -}}
{{- $ports := list }}{{ range $c.clientPorts }}{{ $ports = append $ports
    (dict "port" (int .) "protocol" "TCP") }}{{ end -}}
{{- if $np.clients -}}
{{- $test := dict "podSelector" (dict "matchLabels" (merge (dict "app.kubernetes.io/component" "test") $instance)) -}}
{{- $rules = append $rules (dict "from" (append (deepCopy $np.clients) $test) "ports" $ports) -}}
{{- else -}}
{{- $rules = append $rules (dict "ports" $ports) -}}
{{- end -}}
{{- end -}}
{{- range $c.peers -}}
{{- $from := dict "podSelector" (dict "matchLabels" $instance "matchExpressions" (list
    (dict "key" "app.kubernetes.io/component" "operator" "In" "values" .components))) -}}
{{- $rule := dict "from" (list $from) -}}
{{- if .ports -}}
{{- $ports := list }}{{ range .ports }}{{ $ports = append $ports (dict "port" (int .) "protocol" "TCP") }}{{ end -}}
{{- $_ := set $rule "ports" $ports -}}
{{- end -}}
{{- $rules = append $rules $rule -}}
{{- end -}}
{{- with $c.anyPorts -}}
{{- $ports := list }}{{ range . }}{{ $ports = append $ports (dict "port" (int .) "protocol" "TCP") }}{{ end -}}
{{- $rules = append $rules (dict "ports" $ports) -}}
{{- end -}}
{{- $metrics := list -}}
{{- range $targets }}{{ if eq .component $c.component }}{{ $metrics = append $metrics
    (dict "port" (int .portNumber) "protocol" "TCP") }}{{ end }}{{ end -}}
{{- if and $metrics $np.metricsNamespaces -}}
{{- $from := list }}{{ range $np.metricsNamespaces }}{{ $from = append $from
    (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .))) }}{{ end -}}
{{- $rules = append $rules (dict "from" $from "ports" (uniq $metrics)) -}}
{{- end }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "pd-common.metadata" (dict "root" $root "component" $c.component "annotations" (ternary
      (dict "pdgen.io/why" $c.why) dict (not (empty $c.why)))) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "pd-common.selectorLabels" (dict "root" $root "component" $c.component) | nindent 6 }}
  policyTypes: [Ingress]
  {{- if $rules }}
  ingress:
    {{- toYaml $rules | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}
{{- end -}}
