{{/*
Names are fixed, as in deploy/: kopf names the webhook configurations azurejit.dev, the CRDs
and ClusterRoles are cluster-wide, and Workload Identity federates the ServiceAccount by name,
so there is one install per cluster.
*/}}
{{- define "azure-jit-operator.name" -}}azure-jit-operator{{- end -}}

{{/* The labels every object carries (deploy/base's kustomize `labels`), plus commonLabels. */}}
{{- define "azure-jit-operator.labels" -}}
app.kubernetes.io/name: azure-jit-operator
app.kubernetes.io/part-of: azure-jit-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pods' selector. */}}
{{- define "azure-jit-operator.selectorLabels" -}}
app.kubernetes.io/name: azure-jit-operator
app.kubernetes.io/component: operator
{{- end -}}

{{/* Cluster-wide unless a namespace is watched. */}}
{{- define "azure-jit-operator.clusterwide" -}}
{{- if not .Values.watchNamespace }}true{{ end -}}
{{- end -}}

{{/* The pods: 2 (active and standby) unless set; 1 with managed webhooks. */}}
{{- define "azure-jit-operator.replicas" -}}
{{- $managed := eq .Values.webhooks.mode "managed" -}}
{{- if kindIs "invalid" .Values.replicas -}}
{{- if $managed }}1{{ else }}2{{ end -}}
{{- else -}}
{{- if and $managed (gt (int .Values.replicas) 1) -}}
{{- fail "replicas: webhooks.mode=managed runs one replica (each process makes its own CA and the webhook configurations trust one); use webhooks.mode=cert-manager for more" -}}
{{- end -}}
{{- int .Values.replicas -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, repository@digest or repository:tag@digest. */}}
{{- define "azure-jit-operator.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- if $image.tag }}{{ $image.repository }}:{{ $image.tag }}@{{ $image.digest }}{{ else }}{{ $image.repository }}@{{ $image.digest }}{{ end -}}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The webhook Service's DNS name, in the certificate and in managed mode's URL. */}}
{{- define "azure-jit-operator.webhookHost" -}}
azure-jit-operator-webhook.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* The ServiceAccount as a binding subject. */}}
{{- define "azure-jit-operator.subject" -}}
- kind: ServiceAccount
  name: azure-jit-operator
  namespace: {{ .Release.Namespace }}
{{- end -}}
