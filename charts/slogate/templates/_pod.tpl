{{/*
The operator's pod template (used by the Deployment).
*/}}
{{- define "slogate.podTemplate" -}}
metadata:
  labels:
    {{- include "slogate.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A change of the price table restarts the operator so it reads the new one.
    checksum/prices: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "slogate.serviceAccountName" . }}
  automountServiceAccountToken: true
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  # Pod Security Standard "restricted". The IDs are the image's own (Dockerfile: USER 10001:10001;
  # tests/unit/test_chart_render.py checks they agree), so the pod runs as the user the image was built for.
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  terminationGracePeriodSeconds: 30
  containers:
    - name: operator
      image: {{ include "slogate.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["slogate"]
      args:
        - run
        {{- with .Values.operator.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      env:
        {{- if .Values.watchNamespaces }}
        - name: SLOGATE_NAMESPACES
          value: {{ join "," .Values.watchNamespaces | quote }}
        {{- end }}
        - name: SLOGATE_PROMETHEUS_URL
          value: {{ .Values.prometheus.url | quote }}
        - name: SLOGATE_METRICS_PORT
          value: {{ .Values.operator.metricsPort | quote }}
        - name: SLOGATE_HEALTH_PORT
          value: {{ .Values.operator.healthPort | quote }}
        - name: SLOGATE_RESYNC_SECONDS
          value: {{ .Values.operator.resyncSeconds | quote }}
        - name: SLOGATE_WORKERS
          value: {{ .Values.operator.workers | quote }}
        - name: SLOGATE_LOG_FORMAT
          value: {{ .Values.operator.logFormat | quote }}
        - name: SLOGATE_LOG_LEVEL
          value: {{ .Values.operator.logLevel | quote }}
        {{- if .Values.ha.leaderElection.enabled }}
        # Only the holder of the Lease "slogate-operator" in POD_NAMESPACE reconciles.
        - name: SLOGATE_LEADER_ELECTION
          value: "true"
        {{- end }}
        - name: SLOGATE_PRICES_FILE
          value: /etc/slogate/prices/prices.yaml
        # The replica's identity in the Lease (and its API user agent) and the Lease's namespace.
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        # A writable home (the root filesystem is read-only).
        - name: HOME
          value: /tmp
        {{- with .Values.operator.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: metrics
          containerPort: {{ .Values.operator.metricsPort }}
          protocol: TCP
        - name: health
          containerPort: {{ .Values.operator.healthPort }}
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /healthz
          port: health
        initialDelaySeconds: 10
        periodSeconds: 20
        timeoutSeconds: 5
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /healthz
          port: health
        periodSeconds: 10
        timeoutSeconds: 5
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: prices
          mountPath: /etc/slogate/prices
          readOnly: true
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    - name: prices
      configMap:
        name: {{ include "slogate.fullname" . }}-prices
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with include "slogate.affinity" . | fromYaml }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
