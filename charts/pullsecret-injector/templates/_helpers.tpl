{{/* The name of every object: the release name when it already says pullsecret-injector. */}}
{{- define "psi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selects the webhook's Pods (the same keys as the kustomize manifests, plus the release). */}}
{{- define "psi.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/component: webhook
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* On every object. */}}
{{- define "psi.labels" -}}
app.kubernetes.io/part-of: pullsecret-injector
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "psi.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The serving certificate's Secret. */}}
{{- define "psi.tlsSecret" -}}
{{- if eq .Values.certificates.mode "secret" -}}
{{- required "certificates.existingSecret is required with certificates.mode=secret" .Values.certificates.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "psi.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Service's DNS name, which the serving certificate names. */}}
{{- define "psi.serviceHost" -}}
{{- printf "%s.%s.svc" (include "psi.fullname" .) .Release.Namespace -}}
{{- end -}}
