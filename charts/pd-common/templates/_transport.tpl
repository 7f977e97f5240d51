{{/*
KV transport: what an engine's KV transfer engine needs in its environment.
*/}}

{{/*
pd-common.mooncakeTransportEnv: env of an engine whose KV moves through the Mooncake
transfer engine. The Python binding auto-discovers RDMA NICs and installs RDMA whenever it
finds one, whatever protocol it is given; only MC_FORCE_TCP (read by presence) keeps it on
TCP (kvcache-ai/Mooncake mooncake-transfer-engine/src/transfer_engine_impl.cpp;
mooncake-integration/transfer_engine/transfer_engine_py.cpp builds the engine with
auto-discovery on). "1" also satisfies SGLang, which blanks its IB device list when
MC_FORCE_TCP == "1". Parameters: root, mode ("" for aggregated: no KV transfer).
*/}}
{{- define "pd-common.mooncakeTransportEnv" -}}
{{- if and .mode (eq .root.Values.transport.protocol "tcp") }}
- {name: MC_FORCE_TCP, value: "1"}
{{- end }}
{{- end -}}
