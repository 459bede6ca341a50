{{- define "berth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "web") */}}
{{- define "berth.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "berth.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "berth.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{- define "berth.secretName" -}}
{{ .Values.existingSecret | default (include "berth.fullname" .) }}
{{- end -}}

{{/*
A generated secret value that survives upgrades: the value given, else the one
already in the release's Secret, else a new random one.
(dict "root" $ "key" "BERTH_SECRET_KEY" "value" .Values.secretKey "length" 50)
*/}}
{{- define "berth.keep" -}}
{{- if .value -}}
{{ .value }}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "berth.fullname" .root) -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{ index $existing.data .key | b64dec }}
{{- else -}}
{{ randAlphaNum (.length | default 32) }}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "berth.storageURL" -}}
{{- if .Values.storage.url -}}
{{ .Values.storage.url }}
{{- else if .Values.minio.bundled -}}
s3://{{ .Values.minio.bucket }}/registry?endpoint=http://{{ include "berth.fullname" . }}-minio:9000&region=us-east-1&path_style=true
{{- else -}}
{{ fail "storage.url is required when minio.bundled is false" }}
{{- end -}}
{{- end -}}

{{/* The environment of every Berth container (web, worker, scheduler). */}}
{{- define "berth.env" -}}
- name: BERTH_DATA_DIR
  value: /var/lib/berth
- name: BERTH_STORAGE_URL
  value: {{ include "berth.storageURL" . | quote }}
{{- with .Values.externalURL }}
- name: BERTH_EXTERNAL_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.trustedProxies }}
- name: BERTH_TRUSTED_PROXIES
  value: {{ . | quote }}
{{- end }}
- name: BERTH_WEB_WORKERS
  value: {{ .Values.web.processes | quote }}
- name: BERTH_WEB_THREADS
  value: {{ .Values.web.threads | quote }}
{{- range list "BERTH_SECRET_KEY" "BERTH_ADMIN_PASSWORD" "DATABASE_URL" "CELERY_BROKER_URL" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "berth.secretName" $ }}
      key: {{ . }}
{{- end }}
{{- /* Optional: S3 credentials may come from a workload identity; no cache without Redis. */}}
{{- range list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" "BERTH_CACHE_URL" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "berth.secretName" $ }}
      key: {{ . }}
      optional: true
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level parts shared by the Berth Deployments: (dict "root" $ "component" "web" "values" .Values.web) */}}
{{- define "berth.podSpec" -}}
serviceAccountName: {{ include "berth.serviceAccountName" .root }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
# serve drains for up to 20 s after SIGTERM.
terminationGracePeriodSeconds: 30
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  # Scratch only (static files, the beat schedule): the state is in the database
  # and the bucket.
  - name: data
    emptyDir: {}
  - name: tmp
    emptyDir: {}
{{- end -}}

{{- define "berth.containerCommon" -}}
image: {{ include "berth.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
env:
  {{- include "berth.env" .root | nindent 2 }}
resources:
  {{- toYaml .values.resources | nindent 2 }}
volumeMounts:
  - name: data
    mountPath: /var/lib/berth
  - name: tmp
    mountPath: /tmp
{{- end -}}
