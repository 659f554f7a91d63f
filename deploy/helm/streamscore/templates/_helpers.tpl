{{/* The release's name for every object (63 characters at most, as Kubernetes names). */}}
{{- define "streamscore.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "streamscore.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "streamscore.labels" -}}
{{ include "streamscore.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
streamscore.yaml: .Values.config with what the chart owns set over it (the ports, the SASL
mechanism, TLS). The brokers, the instance id and the credentials come from the environment.
*/}}
{{- define "streamscore.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $own := dict "metrics" (dict "address" (printf ":%v" .Values.metrics.port)) -}}
{{- if .Values.http.port -}}
{{- $_ := set $own "http" (dict "address" (printf ":%v" .Values.http.port)) -}}
{{- end -}}
{{- $kafka := dict "tls" (dict "enabled" .Values.kafka.tls.enabled) -}}
{{- if .Values.kafka.sasl.mechanism -}}
{{- $_ := set $kafka "sasl" (dict "mechanism" .Values.kafka.sasl.mechanism) -}}
{{- end -}}
{{- $_ := set $own "kafka" $kafka -}}
{{- toYaml (mustMergeOverwrite $cfg $own) -}}
{{- end -}}

{{/* KEDA's name for a SASL mechanism. */}}
{{- define "streamscore.kedaSASL" -}}
{{- get (dict "plain" "plaintext" "scram-sha-256" "scram_sha256" "scram-sha-512" "scram_sha512") (lower .Values.kafka.sasl.mechanism) -}}
{{- end -}}
