{{/* Names and labels. */}}
{{- define "slogate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "slogate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "slogate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slogate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "slogate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "slogate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: slogate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "slogate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "slogate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "slogate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* 2 with leader election, 1 without, unless replicaCount is set; more than 1 pod without leader election is refused. */}}
{{- define "slogate.replicas" -}}
{{- $default := ternary 2 1 .Values.ha.leaderElection.enabled -}}
{{- $n := ternary $default .Values.replicaCount (kindIs "invalid" .Values.replicaCount) | int -}}
{{- if and (gt $n 1) (not .Values.ha.leaderElection.enabled) -}}
{{- fail (printf "replicaCount=%d needs ha.leaderElection.enabled=true: two operators without leader election would both reconcile every ModelDeployment" $n) -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{/* Validates the RBAC scope against watchNamespaces; returns nothing. */}}
{{- define "slogate.validate" -}}
{{- if and (eq .Values.rbac.scope "namespaced") (not .Values.watchNamespaces) -}}
{{- fail "rbac.scope=namespaced needs watchNamespaces (the namespaces that get a Role and RoleBinding)" -}}
{{- end -}}
{{- end -}}

{{/*
The rules the operator needs in every namespace it manages ModelDeployments in, grouped per API group.
Each verb is used by the operator (slogate.adapters.kube / slogate.controller) or by kopf; see
docs/install.md ("RBAC") for the call behind each one. `create` on the children is needed although the
operator only PATCHes: a server-side apply that creates an object is authorised as create as well.
*/}}
{{- define "slogate.namespacedRules" -}}
- apiGroups: ["slogate.io"]
  resources: ["modeldeployments"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["slogate.io"]
  resources: ["modeldeployments/status"]
  verbs: ["patch"]
{{- if .Values.rbac.ownerReferencesPermissionEnforcement }}
- apiGroups: ["slogate.io"]
  resources: ["modeldeployments/finalizers"]
  verbs: ["update"]
{{- end }}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["prometheusrules"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["inference.networking.k8s.io"]
  resources: ["inferencepools"]
  verbs: ["list", "watch", "create", "patch", "delete"]
{{- end -}}

{{/*
Cluster-scoped rules, needed in both RBAC scopes. Nodes: the watch cache holds them for the GPU preflight
(capacity, labels, taints) and the cost's GPU products.
CRDs: kopf watches CustomResourceDefinitions to notice served resources appearing or going.
Namespaces: kopf lists and watches them when it runs for named namespaces (not cluster-wide).
*/}}
{{- define "slogate.clusterRules" -}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end -}}

{{/*
Leader election (slogate.controller.leader): the replicas compete for the Lease "slogate-operator" in
the release namespace. The operator reads it (get), creates it when missing (create) and renews or
takes it over with a PUT carrying its resourceVersion (update); it never lists, watches, patches or
deletes Leases. Not restricted by resourceNames: `create` cannot be (the name is not known at
authorisation time).
*/}}
{{- define "slogate.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}

{{/*
Whether the chart's own pod anti-affinity is rendered as *required* (podAntiAffinity.mode=required, no
user `affinity`, leader election on): the Deployment strategy then surges no pod (see deployment.yaml).
Returns "true" or nothing.
*/}}
{{- define "slogate.requiredAntiAffinity" -}}
{{- if and (not .Values.affinity) .Values.ha.leaderElection.enabled (eq .Values.podAntiAffinity.mode "required") -}}
true
{{- end -}}
{{- end -}}

{{/*
The pod's affinity: .Values.affinity when set; otherwise, with leader election, a pod anti-affinity
among the operator's pods by podAntiAffinity.topologyKey (default kubernetes.io/hostname), so the
replicas (one active, the others standing by) land on different nodes: preferred by default (the
scheduler may still co-locate them when no other node fits), required with podAntiAffinity.mode=required
(a replica that has no node of its own stays Pending).
*/}}
{{- define "slogate.affinity" -}}
{{- if .Values.affinity -}}
{{- toYaml .Values.affinity -}}
{{- else if .Values.ha.leaderElection.enabled -}}
{{- $term := dict "topologyKey" .Values.podAntiAffinity.topologyKey "labelSelector" (dict "matchLabels" (include "slogate.selectorLabels" . | fromYaml)) -}}
podAntiAffinity:
{{- if include "slogate.requiredAntiAffinity" . }}
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- list $term | toYaml | nindent 4 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        {{- toYaml $term | nindent 8 }}
{{- end }}
{{- end -}}
{{- end -}}
