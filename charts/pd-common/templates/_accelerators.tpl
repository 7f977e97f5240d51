{{/*
Accelerators: what an accelerator's pods need from the node beyond the device plugin.
*/}}

{{/*
pd-common.ascendMounts / ascendVolumes: the driver files vLLM-Ascend needs from the node
when the device plugin hands out NPUs (the devices themselves come from the plugin).
*/}}
{{- define "pd-common.ascendPaths" -}}
- {name: ascend-driver, path: /usr/local/Ascend/driver}
- {name: ascend-dcmi, path: /usr/local/dcmi}
- {name: ascend-npu-smi, path: /usr/local/bin/npu-smi}
- {name: ascend-install-info, path: /etc/ascend_install.info}
- {name: ascend-hccn-conf, path: /etc/hccn.conf}
{{- end -}}

{{- define "pd-common.ascendMounts" -}}
{{- range (include "pd-common.ascendPaths" . | fromYamlArray) }}
- name: {{ .name }}
  mountPath: {{ .path }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "pd-common.ascendVolumes" -}}
{{- range (include "pd-common.ascendPaths" . | fromYamlArray) }}
- name: {{ .name }}
  hostPath:
    path: {{ .path }}
{{- end }}
{{- end -}}
