{{/*
Names. The full name is cut to 41 characters: the StatefulSet adds "-controller" (52), and
Kubernetes needs 11 more for the pod's controller-revision-hash label within 63.
*/}}
{{- define "strait.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 41 | trimSuffix "-" -}}
{{- end -}}

{{- define "strait.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 41 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 41 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 41 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "strait.controllerName" -}}{{ include "strait.fullname" . }}-controller{{- end -}}
{{- define "strait.agentName" -}}{{ include "strait.fullname" . }}-agent{{- end -}}
{{- define "strait.agentsServiceName" -}}{{ include "strait.fullname" . }}-agents{{- end -}}
{{- define "strait.adminServiceName" -}}{{ include "strait.fullname" . }}-admin{{- end -}}
{{- define "strait.headlessServiceName" -}}{{ include "strait.fullname" . }}-headless{{- end -}}

{{- define "strait.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strait.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Secret names: the operator's when given, else the chart's. */}}
{{- define "strait.adminTokenSecret" -}}
{{- default (printf "%s-admin-token" (include "strait.fullname" .)) .Values.adminToken.existingSecret -}}
{{- end -}}
{{- define "strait.joinTokenSecret" -}}
{{- default (printf "%s-join-token" (include "strait.fullname" .)) .Values.bootstrapToken.existingSecret -}}
{{- end -}}
{{- define "strait.caSecret" -}}
{{- default (printf "%s-ca" (include "strait.fullname" .)) .Values.ca.existingSecret -}}
{{- end -}}
{{- define "strait.tlsSecret" -}}
{{- default (printf "%s-tls" (include "strait.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{- define "strait.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strait.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strait.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "strait.labels" -}}
helm.sh/chart: {{ include "strait.chart" . }}
{{ include "strait.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: strait
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: ctx is the root context, component "controller" or "agent". */}}
{{- define "strait.componentSelectorLabels" -}}
{{ include "strait.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "strait.componentLabels" -}}
{{ include "strait.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "strait.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/*
The names in the controller's server certificate: both Services that carry gRPC, in every form a
client in the cluster may dial, then tls.extraSans.
*/}}
{{- define "strait.tlsSans" -}}
{{- $sans := list -}}
{{- range $service := list (include "strait.agentsServiceName" .) (include "strait.adminServiceName" .) -}}
{{- $sans = concat $sans (list $service (printf "%s.%s" $service $.Release.Namespace) (printf "%s.%s.svc" $service $.Release.Namespace) (printf "%s.%s.svc.%s" $service $.Release.Namespace $.Values.clusterDomain)) -}}
{{- end -}}
{{- concat $sans .Values.tls.extraSans | uniq | join "," -}}
{{- end -}}

{{/* "k=v,k2=v2" from a map, keys sorted so the rendered args do not change between renders. */}}
{{- define "strait.labelList" -}}
{{- $pairs := list -}}
{{- range $key := keys . | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $key (index $ (toString $key))) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{- define "strait.agentControllerAddress" -}}
{{- if .Values.agent.controllerAddress -}}
{{- .Values.agent.controllerAddress -}}
{{- else -}}
{{- printf "%s.%s.svc:%d" (include "strait.agentsServiceName" .) .Release.Namespace (int .Values.ports.agents) -}}
{{- end -}}
{{- end -}}

{{/*
What the schema cannot say, refused with the value named. Included by every template that
renders a workload, so `helm template --show-only` of one of them still checks.
*/}}
{{- define "strait.validate" -}}
{{- if and (eq .Values.store.type "sqlite") (gt (int .Values.controller.replicas) 1) -}}
{{- fail (printf "controller.replicas=%d: with store.type=sqlite the controller runs as one replica (the SQLite file belongs to one pod); use 1, or store.type=etcd for several" (int .Values.controller.replicas)) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the data dir is on a claim: only the SQLite file needs one. */}}
{{- define "strait.persistentDataDir" -}}
{{- if and (eq .Values.store.type "sqlite") .Values.persistence.enabled }}true{{ end -}}
{{- end -}}

{{/*
The controller pod's affinity: controller.affinity, and with etcd (several replicas) a pod
anti-affinity that spreads them over controller.podAntiAffinity.topologyKey, unless
controller.affinity has a podAntiAffinity of its own. Empty when there is nothing to say.
*/}}
{{- define "strait.controllerAffinity" -}}
{{- $affinity := deepCopy .Values.controller.affinity -}}
{{- $spread := .Values.controller.podAntiAffinity -}}
{{- if and (eq .Values.store.type "etcd") (ne $spread.type "none") (not (hasKey $affinity "podAntiAffinity")) -}}
{{- $term := dict "topologyKey" $spread.topologyKey "labelSelector" (dict "matchLabels" (include "strait.componentSelectorLabels" (dict "ctx" . "component" "controller") | fromYaml)) -}}
{{- if eq $spread.type "hard" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- else -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- end -}}
{{- end -}}
{{- with $affinity }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* The agent's ca.pem: the CA that signed the server certificate. Never the CA's key. */}}
{{- define "strait.agentCaVolume" -}}
- name: ca
  secret:
    {{- if .Values.tls.enabled }}
    secretName: {{ include "strait.tlsSecret" . }}
    items:
      - key: {{ .Values.tls.caKey }}
        path: ca.pem
    {{- else }}
    secretName: {{ include "strait.caSecret" . }}
    items:
      - key: tls.crt
        path: ca.pem
    {{- end }}
    defaultMode: 288  # 0440
{{- end -}}

{{/*
A Secret's data, made once: what the cluster already holds under that name (so upgrades and
reinstalls keep it), else generated. ctx root context, name, key, value: a new value.
*/}}
{{- define "strait.keptSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- .value | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Fields of a Service that only mean something outside the cluster: svc is service.agents or service.admin. */}}
{{- define "strait.externalServiceFields" -}}
{{- if eq .type "LoadBalancer" }}
{{- with .loadBalancerIP }}
loadBalancerIP: {{ . }}
{{- end }}
{{- with .loadBalancerSourceRanges }}
loadBalancerSourceRanges:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- if and (ne .type "ClusterIP") .externalTrafficPolicy }}
externalTrafficPolicy: {{ .externalTrafficPolicy }}
{{- end }}
{{- end -}}
