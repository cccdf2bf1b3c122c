{{/* Names: everything is prefixed with the release name. */}}
{{- define "walvault.sts" -}}{{ printf "%s-postgres" .Release.Name | trunc 52 | trimSuffix "-" }}{{- end -}}
{{- define "walvault.config" -}}{{ printf "%s-walvaultd" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "walvault.sa" -}}{{ include "walvault.sts" . }}{{- end -}}
{{- define "walvault.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}

{{- define "walvault.labels" -}}
app.kubernetes.io/part-of: walvault
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "walvault.selector" -}}
app.kubernetes.io/name: postgres
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
{{- end -}}

{{/* The containers' hardening: non-root, read-only root, no privilege, no capability. */}}
{{- define "walvault.securityContext" -}}
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "walvault.podSecurityContext" -}}
securityContext:
  fsGroup: 999
  fsGroupChangePolicy: OnRootMismatch
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/*
The walvaultd container. Arguments: root (the chart context), mode: "statefulset" (with PGDATA
read-only), "job" (restore, PITR: no pgdata, no schedule, no prune) or "drill" (as job, no
prefetch), native (true: restartPolicy Always in initContainers).
*/}}
{{- define "walvault.walvaultd" -}}
{{- $v := .root.Values -}}
- name: walvaultd
  image: {{ include "walvault.image" .root }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if .native }}
  # Native sidecar: started before the main containers once its startupProbe passes, stopped
  # after them.
  restartPolicy: Always
  {{- end }}
  args: ["--config", "/etc/walvault/walvaultd.conf"]
  {{- if or (ne .mode "statefulset") $v.encryption.enabled }}
  env:
    {{- if $v.encryption.enabled }}
    - name: WALVAULT_ENCRYPTION_KEY_FILE
      value: /etc/walvault/keys/current
    {{- end }}
    {{- if ne .mode "statefulset" }}
    - name: WALVAULT_PGDATA
      value: ""
    - name: WALVAULT_BACKUP_SCHEDULE
      value: "off"
    - name: WALVAULT_DRILL_SCHEDULE
      value: "off"
    - name: WALVAULT_PRUNE_INTERVAL
      value: "0"
    {{- end }}
    {{- if eq .mode "drill" }}
    - name: WALVAULT_PREFETCH_BYTES
      value: "0"
    {{- end }}
  {{- end }}
  ports:
    - name: metrics
      containerPort: {{ $v.metrics.port }}
      protocol: TCP
  # No readinessProbe on purpose: /readyz fails while a repository (a bucket) does not answer,
  # which must not take PostgreSQL out of its Service; /readyz is for monitoring.
  startupProbe:
    httpGet:
      path: /healthz
      port: {{ $v.metrics.port }}
    periodSeconds: 2
    timeoutSeconds: 2
    failureThreshold: 300
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ $v.metrics.port }}
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 6
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- include "walvault.securityContext" (dict "uid" 10001) | nindent 4 }}
  volumeMounts:
    - name: walvaultd-config
      mountPath: /etc/walvault
      readOnly: true
    - name: walvault-run
      mountPath: /run/walvault
    {{- if eq .mode "statefulset" }}
    - name: pg-run
      mountPath: /var/run/postgresql
    - name: data
      mountPath: /var/lib/postgresql/data
      readOnly: true
    {{- end }}
    {{- if eq $v.repository.type "local" }}
    - name: walvault-repo
      mountPath: /var/lib/walvault/repo
    {{- else }}
    - name: walvault-s3
      mountPath: /etc/walvault/s3
      readOnly: true
    {{- end }}
    {{- if $v.encryption.enabled }}
    - name: walvault-encryption-key
      mountPath: /etc/walvault/keys
      readOnly: true
    {{- end }}
    - name: walvault-spool
      mountPath: /var/lib/walvault/spool
    - name: walvault-tmp
      mountPath: /tmp
{{- end -}}

{{/* Volumes every walvaultd pod has (the claims differ and are added by each template). */}}
{{- define "walvault.commonVolumes" -}}
{{- $v := .Values -}}
- name: walvaultd-config
  configMap:
    name: {{ include "walvault.config" . }}
- name: walvault-run
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
- name: walvault-tmp
  emptyDir:
    sizeLimit: 1Gi
{{- if eq $v.repository.type "s3" }}
# 0440: root-owned with the pod's fsGroup 999, readable by walvaultd (group 999), not by others.
- name: walvault-s3
  secret:
    secretName: {{ $v.repository.s3.credentialsSecret }}
    defaultMode: 0440
{{- end }}
{{- if $v.encryption.enabled }}
- name: walvault-encryption-key
  secret:
    secretName: {{ $v.encryption.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* A restore or PITR Job; .target is the PITR time or "". */}}
{{- define "walvault.restoreJob" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $sts := include "walvault.sts" $root -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $root.Release.Name }}-walvault-{{ .name }}
  labels:
    {{- include "walvault.labels" $root | nindent 4 }}
    app.kubernetes.io/name: walvault-{{ .name }}
    app.kubernetes.io/component: {{ .name }}
spec:
  backoffLimit: 2
  activeDeadlineSeconds: 86400
  ttlSecondsAfterFinished: 604800
  template:
    metadata:
      labels:
        {{- include "walvault.labels" $root | nindent 8 }}
        app.kubernetes.io/name: walvault-{{ .name }}
        app.kubernetes.io/component: {{ .name }}
    spec:
      serviceAccountName: {{ include "walvault.sa" $root }}
      automountServiceAccountToken: false
      restartPolicy: Never
      {{- include "walvault.podSecurityContext" $root | nindent 6 }}
      initContainers:
        {{- include "walvault.walvaultd" (dict "root" $root "mode" "job" "native" true) | nindent 8 }}
      containers:
        # As uid 999 so that the restored files belong to PostgreSQL (official image).
        - name: restore
          image: {{ include "walvault.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- if .target }}
          env:
            - name: TARGET_TIME
              value: {{ .target | quote }}
          {{- end }}
          command:
            - /usr/bin/walvault
            # walvaultd is a sidecar starting beside it: wait up to 2 minutes for its socket
            - --connect-timeout
            - "120"
            - restore
            - --pgdata
            - /var/lib/postgresql/data/pgdata
            - --force
            {{- if not .target }}
            - --backup
            - latest
            {{- end }}
            - --archive-get
            - /walvault/bin/archive-get
            {{- if .target }}
            - --target-time
            - $(TARGET_TIME)
            - --target-action
            - {{ $v.pitr.targetAction }}
            {{- end }}
          resources:
            requests:
              cpu: 500m
              memory: 256Mi
            limits:
              memory: 1Gi
          securityContext:
            {{- include "walvault.securityContext" (dict "uid" 999) | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/postgresql/data
            - name: walvault-run
              mountPath: /run/walvault
            - name: walvault-tmp
              mountPath: /tmp
      volumes:
        {{- include "walvault.commonVolumes" $root | nindent 8 }}
        - name: data
          persistentVolumeClaim:
            claimName: data-{{ $sts }}-0
        {{- if eq $v.repository.type "local" }}
        - name: walvault-repo
          persistentVolumeClaim:
            claimName: walvault-repo-{{ $sts }}-0
        {{- end }}
        - name: walvault-spool
          persistentVolumeClaim:
            claimName: walvault-spool-{{ $sts }}-0
{{- end -}}
