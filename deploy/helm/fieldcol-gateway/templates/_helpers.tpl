{{/* Chart name, as the upstream collector chart names it. */}}
{{- define "fieldcol-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the tiers append -lb and -sampler, so keep room for them. */}}
{{- define "fieldcol-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "lb"|"sampler"|""). */}}
{{- define "fieldcol-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "fieldcol-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "fieldcol-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fieldcol-gateway.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "fieldcol-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fieldcol-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fieldcol-gateway.tokenSecretName" -}}
{{- if .Values.token.existingSecret }}
{{- .Values.token.existingSecret }}
{{- else if .Values.token.value }}
{{- include "fieldcol-gateway.fullname" . }}-token
{{- else }}
{{- fail "set token.existingSecret (a Secret holding the fleet's bearer token) or token.value" }}
{{- end }}
{{- end }}

{{- define "fieldcol-gateway.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "fieldcol-gateway.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{- define "fieldcol-gateway.samplerHeadless" -}}
{{- include "fieldcol-gateway.fullname" . }}-sampler-headless
{{- end }}

{{/*
GOMEMLIMIT in bytes: gomemlimitPercentage of a memory limit written in bytes or with a
Ki, Mi, Gi or Ti suffix. Call with (dict "limit" "1Gi" "percent" 80).
*/}}
{{- define "fieldcol-gateway.gomemlimit" -}}
{{- $mem := toString .limit }}
{{- $bytes := 0 }}
{{- range $suffix, $mult := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if and (hasSuffix $suffix $mem) (regexMatch "^[0-9]+$" (trimSuffix $suffix $mem)) }}
{{- $bytes = mul (trimSuffix $suffix $mem | int64) $mult }}
{{- end }}
{{- end }}
{{- if and (eq (int64 $bytes) 0) (regexMatch "^[0-9]+$" $mem) }}
{{- $bytes = $mem | int64 }}
{{- end }}
{{- if eq (int64 $bytes) 0 }}
{{- fail (printf "memory limit %q: write it in bytes or with Ki, Mi, Gi or Ti so that GOMEMLIMIT can be derived" $mem) }}
{{- end }}
{{- div (mul $bytes (int64 .percent)) 100 }}
{{- end }}

{{/* Environment both tiers share: listeners on the pod IP, storage, memory limit. */}}
{{- define "fieldcol-gateway.commonEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: FIELDCOL_OTLP_GRPC_ENDPOINT
  value: "$(POD_IP):{{ .ctx.Values.ports.otlpGrpc }}"
- name: FIELDCOL_OTLP_HTTP_ENDPOINT
  value: "$(POD_IP):{{ .ctx.Values.ports.otlpHttp }}"
- name: FIELDCOL_HEALTH_ENDPOINT
  value: "$(POD_IP):{{ .ctx.Values.ports.health }}"
- name: FIELDCOL_TELEMETRY_HOST
  value: "$(POD_IP)"
- name: FIELDCOL_TELEMETRY_PORT
  value: {{ .ctx.Values.ports.telemetry | quote }}
- name: FIELDCOL_STORAGE_DIR
  value: /var/lib/fieldcol-gateway
{{- if .ctx.Values.useGOMEMLIMIT }}
{{- with .tier.resources.limits }}
{{- if .memory }}
- name: GOMEMLIMIT
  value: {{ include "fieldcol-gateway.gomemlimit" (dict "limit" .memory "percent" $.ctx.Values.gomemlimitPercentage) | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Container ports and probes both tiers share. */}}
{{- define "fieldcol-gateway.portsAndProbes" -}}
ports:
  - name: otlp-grpc
    containerPort: {{ .Values.ports.otlpGrpc }}
    protocol: TCP
  - name: otlp-http
    containerPort: {{ .Values.ports.otlpHttp }}
    protocol: TCP
  - name: health
    containerPort: {{ .Values.ports.health }}
    protocol: TCP
  - name: telemetry
    containerPort: {{ .Values.ports.telemetry }}
    protocol: TCP
livenessProbe:
  httpGet:
    path: /
    port: health
  initialDelaySeconds: 5
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /
    port: health
  periodSeconds: 5
  failureThreshold: 2
{{- end }}

{{/*
The queue's volume, one PersistentVolumeClaim per pod (named queue-<statefulset>-<ordinal>).
Call with (dict "ctx" $ "tier" $tier "component" "lb"|"sampler").
*/}}
{{- define "fieldcol-gateway.queueClaim" -}}
- apiVersion: v1
  kind: PersistentVolumeClaim
  metadata:
    name: queue
    labels:
      {{- include "fieldcol-gateway.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
  spec:
    accessModes: {{ toJson .tier.persistence.accessModes }}
    {{- with .tier.persistence.storageClassName }}
    storageClassName: {{ . | quote }}
    {{- end }}
    resources:
      requests:
        storage: {{ .tier.persistence.size }}
{{- end }}

{{/*
What happens to the queues' claims: kept by default when the HPA scales down (the next
pod of that ordinal drains the backlog) and when the StatefulSet is deleted.
*/}}
{{- define "fieldcol-gateway.retention" -}}
persistentVolumeClaimRetentionPolicy:
  whenScaled: {{ ternary "Retain" "Delete" .persistence.retainWhenScaled }}
  whenDeleted: {{ ternary "Retain" "Delete" .persistence.retainWhenDeleted }}
{{- end }}

{{/*
preStop: the pod has left the Service's endpoints (and, for a sampler, the load balancers'
ring); `fieldcol-gateway drain` waits until the exporters' queues are empty and nothing was
received for drain.quietSeconds, at most drain.timeoutSeconds. No shell is needed: the
image has none. Call with (dict "ctx" $ "tier" $tier).
*/}}
{{- define "fieldcol-gateway.preStopDrain" -}}
lifecycle:
  preStop:
    exec:
      command:
        - {{ .ctx.Values.image.command | quote }}
        - drain
        - --quiet={{ .tier.drain.quietSeconds }}s
        - --timeout={{ .tier.drain.timeoutSeconds }}s
{{- end }}
