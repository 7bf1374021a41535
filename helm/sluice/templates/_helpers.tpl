{{/*
Names and labels, the usual way (helm create).
*/}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The helpers below take a dict, so that other charts can call them with sluice's values:
  values  sluice's values (.Values here; .Values.sluice in a chart that has sluice as a dependency)
  root    the calling template's root context ($)
*/}}

{{/* The image reference: repository@digest, or repository:tag. */}}
{{- define "sluice.image" -}}
{{- $image := .values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (toString ($image.tag | default .root.Chart.AppVersion)) }}
{{- end }}
{{- end }}

{{/* The configuration file's text: values.config as YAML. */}}
{{- define "sluice.configFile" -}}
{{- if not .values.config }}
{{- fail "sluice: config is empty; it is sluice's configuration file and needs at least one upstream" }}
{{- end }}
{{- toYaml .values.config }}
{{- end }}

{{/* The client and admin ports, read from the configuration (schema defaults 8080 and 9090). */}}
{{- define "sluice.listenPort" -}}
{{- dig "listen" "port" 8080 .values.config | int }}
{{- end }}

{{- define "sluice.adminPort" -}}
{{- dig "admin" "port" 9090 .values.config | int }}
{{- end }}

{{/*
config.shutdown.grace in whole seconds, rounded up: "25s", "1m", "1500ms", "2.5s", or a number of
milliseconds, as sluice reads it (default 25s).
*/}}
{{- define "sluice.shutdownGraceSeconds" -}}
{{- $grace := toString (dig "shutdown" "grace" "25s" .values.config) | trim }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $grace }}
{{- $unit := trimPrefix $number $grace | trim }}
{{- $secondsPerUnit := dict "" 0.001 "ms" 0.001 "s" 1 "m" 60 "h" 3600 "d" 86400 }}
{{- if or (eq $number "") (not (hasKey $secondsPerUnit $unit)) }}
{{- fail (printf "sluice: config.shutdown.grace: expected a duration such as 25s, got %q" $grace) }}
{{- end }}
{{- mulf (float64 $number) (get $secondsPerUnit $unit) | ceil | int }}
{{- end }}

{{/*
The pod's terminationGracePeriodSeconds. Kubernetes counts it from the moment the pod is deleted:
it covers the preStop pause, then sluice's drain (config.shutdown.grace), then the requests still
in flight. Computed as their sum unless set; a value set by hand must exceed pause + grace.
*/}}
{{- define "sluice.terminationGracePeriodSeconds" -}}
{{- $floor := add (int .values.preStopSleepSeconds) (include "sluice.shutdownGraceSeconds" . | int) }}
{{- if kindIs "invalid" .values.terminationGracePeriodSeconds }}
{{- add $floor (int .values.terminationGraceMarginSeconds) }}
{{- else }}
{{- $set := int .values.terminationGracePeriodSeconds }}
{{- if le $set $floor }}
{{- fail (printf "sluice: terminationGracePeriodSeconds (%d) must be above preStopSleepSeconds + config.shutdown.grace (%d s), or sluice is killed while it drains" $set $floor) }}
{{- end }}
{{- $set }}
{{- end }}
{{- end }}

{{/* Refuses values that would deploy a sluice that cannot start. */}}
{{- define "sluice.validate" -}}
{{- $store := dig "store" "type" "memory" .values.config }}
{{- $url := toString (dig "store" "url" "" .values.config) }}
{{- if and (eq $store "redis") (contains "${REDIS_URL" $url) (not .values.redis.existingSecret) }}
{{- fail "sluice: config.store.url reads ${REDIS_URL}: set redis.existingSecret (and redis.existingSecretKey) to the Secret that holds the URL" }}
{{- end }}
{{- if not (dig "upstreams" (list) .values.config) }}
{{- fail "sluice: config.upstreams is empty; sluice needs at least one upstream" }}
{{- end }}
{{- $kube := .root.Capabilities.KubeVersion.Version }}
{{- if and (eq (toString .values.sidecar.native) "true") (not (semverCompare ">=1.29.0-0" $kube)) }}
{{- fail (printf "sluice: sidecar.native: true needs Kubernetes 1.29 or later (this is %s); use native: auto or false" $kube) }}
{{- end }}
{{- if and .values.preStopSleepAction (not (semverCompare ">=1.30.0-0" $kube)) }}
{{- fail (printf "sluice: preStopSleepAction needs Kubernetes 1.30 or later (this is %s)" $kube) }}
{{- end }}
{{- $_ := include "sluice.memoryLimitMiB" . }}
{{- end }}

{{/*
"true" when the sluice container is a native sidecar (an init container with restartPolicy:
Always), else "": sidecar.native true or false, or auto = whether the cluster is 1.29 or later.
*/}}
{{- define "sluice.nativeSidecar" -}}
{{- $native := .values.sidecar.native }}
{{- if hasKey . "native" }}{{ $native = .native }}{{ end }}
{{- if eq (toString $native) "auto" }}
{{- if semverCompare ">=1.29.0-0" .root.Capabilities.KubeVersion.Version }}true{{ end }}
{{- else if eq (toString $native) "true" }}true
{{- else if ne (toString $native) "false" }}
{{- fail (printf "sluice: sidecar.native must be auto, true or false, not %v" $native) }}
{{- end }}
{{- end }}

{{/*
resources.limits.memory in whole MiB (rounded down), or "" when no limit is set. Reads Kubernetes
quantities: 512Mi, 1Gi, 1.5Gi, 500M, 1G, 536870912 (bytes).
*/}}
{{- define "sluice.memoryLimitMiB" -}}
{{- $raw := dig "limits" "memory" "" (.values.resources | default dict) }}
{{- $limit := toString $raw | trim }}
{{- if kindIs "float64" $raw }}{{ $limit = printf "%d" (int64 $raw) }}{{ end }}
{{- if $limit }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $limit }}
{{- $unit := trimPrefix $number $limit }}
{{- $bytesPerUnit := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if or (eq $number "") (not (hasKey $bytesPerUnit $unit)) }}
{{- fail (printf "sluice: resources.limits.memory: expected a quantity such as 512Mi, got %q" $limit) }}
{{- end }}
{{- divf (mulf (float64 $number) (get $bytesPerUnit $unit)) 1048576 | floor | int }}
{{- end }}
{{- end }}

{{/*
NODE_OPTIONS for the container: --max-old-space-size at nodeHeap.percentOfMemoryLimit of the
memory limit, or "" (no limit, percent 0, or NODE_OPTIONS set in env).
*/}}
{{- define "sluice.nodeOptions" -}}
{{- $mib := include "sluice.memoryLimitMiB" . }}
{{- $percent := int (dig "percentOfMemoryLimit" 0 (.values.nodeHeap | default dict)) }}
{{- $own := false }}
{{- range .values.env }}{{ if eq .name "NODE_OPTIONS" }}{{ $own = true }}{{ end }}{{ end }}
{{- if and $mib (gt $percent 0) (not $own) }}
{{- printf "--max-old-space-size=%d" (div (mul (int $mib) $percent) 100) }}
{{- end }}
{{- end }}

{{/* The name of the ConfigMap the sidecar mounts; this chart renders it in sidecar mode. */}}
{{- define "sluice.sidecarConfigMapName" -}}
{{- .values.sidecar.configMapName | default (printf "%s-sluice-sidecar" .root.Release.Name) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The sluice container, as one item of a containers or initContainers list.
  name        container name
  portPrefix  prefix of the port names ("" in the gateway, "sluice-" in another chart's pod)
  native      true: a native sidecar (restartPolicy: Always, for initContainers)
  preStop     true: pause preStopSleepSeconds before SIGTERM
*/}}
{{- define "sluice.container" -}}
{{- $values := .values }}
{{- $http := printf "%shttp" .portPrefix }}
{{- $admin := printf "%sadmin" .portPrefix -}}
- name: {{ .name }}
  image: {{ include "sluice.image" . | quote }}
  imagePullPolicy: {{ $values.image.pullPolicy }}
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  args: ["--config", "/etc/sluice/sluice.yaml"]
  {{- $nodeOptions := include "sluice.nodeOptions" . }}
  {{- if or $values.redis.existingSecret $values.env $nodeOptions }}
  env:
    {{- with $nodeOptions }}
    # {{ $values.nodeHeap.percentOfMemoryLimit }}% of resources.limits.memory ({{ include "sluice.memoryLimitMiB" $ }} MiB): nodeHeap.percentOfMemoryLimit.
    - name: NODE_OPTIONS
      value: {{ . | quote }}
    {{- end }}
    {{- if $values.redis.existingSecret }}
    - name: REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ $values.redis.existingSecret }}
          key: {{ $values.redis.existingSecretKey }}
    {{- end }}
    {{- with $values.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with $values.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: {{ $http }}
      containerPort: {{ include "sluice.listenPort" . }}
      protocol: TCP
    - name: {{ $admin }}
      containerPort: {{ include "sluice.adminPort" . }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: {{ $admin }}
    {{- toYaml $values.startupProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ $admin }}
    {{- toYaml $values.livenessProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $admin }}
    {{- toYaml $values.readinessProbe | nindent 4 }}
  {{- if and .preStop (gt (int $values.preStopSleepSeconds) 0) }}
  lifecycle:
    preStop:
      {{- if $values.preStopSleepAction }}
      sleep:
        seconds: {{ int $values.preStopSleepSeconds }}
      {{- else }}
      exec:
        command: ["sleep", "{{ int $values.preStopSleepSeconds }}"]
      {{- end }}
  {{- end }}
  {{- with $values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: sluice-config
      mountPath: /etc/sluice
      readOnly: true
    - name: sluice-tmp
      mountPath: /tmp
    {{- with $values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
The volumes of the sluice container, as items of a pod's volumes list.
  configMapName  the ConfigMap holding sluice.yaml
*/}}
{{- define "sluice.volumes" -}}
- name: sluice-config
  configMap:
    name: {{ .configMapName }}
- name: sluice-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- with .values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
For other charts: sluice as a sidecar of their pods. With sluice as a dependency (mode: sidecar,
which renders the ConfigMap), in the pod template:

  {{- $sluice := dict "values" .Values.sluice "root" $ }}
  metadata:
    labels:
      {{- include "sluice.sidecarPodLabels" $sluice | nindent 8 }}
    annotations:
      {{- include "sluice.sidecarPodAnnotations" $sluice | nindent 8 }}
  spec:
    {{- if eq (include "sluice.nativeSidecar" $sluice) "true" }}
    initContainers:   # native sidecar (Kubernetes 1.29+)
      {{- include "sluice.sidecarContainer" $sluice | nindent 8 }}
    {{- end }}
    containers:
      - name: app ...
      {{- if ne (include "sluice.nativeSidecar" $sluice) "true" }}
      {{- include "sluice.sidecarContainer" $sluice | nindent 8 }}   # classic sidecar
      {{- end }}
    volumes:
      {{- include "sluice.sidecarVolumes" $sluice | nindent 8 }}

"sluice.nativeSidecar" decides from values.sidecar.native (auto: the cluster's version). Port names
are sluice-http and sluice-admin, volume names sluice-config and sluice-tmp, so they do not clash
with the application's. Optional keys: "native" overrides values.sidecar.native.
*/}}
{{- define "sluice.sidecarContainer" -}}
{{- $native := eq (include "sluice.nativeSidecar" .) "true" }}
{{- include "sluice.container" (dict "values" .values "root" .root "name" "sluice" "portPrefix" "sluice-" "native" $native "preStop" (not $native)) }}
{{- end }}

{{- define "sluice.sidecarVolumes" -}}
{{- include "sluice.volumes" (dict "values" .values "root" .root "configMapName" (include "sluice.sidecarConfigMapName" .)) }}
{{- end }}

{{/* Rolls the pods when sluice's configuration changes; the scrape annotations if enabled. */}}
{{- define "sluice.sidecarPodAnnotations" -}}
checksum/sluice-config: {{ include "sluice.configFile" . | sha256sum }}
{{- if .values.scrapeAnnotations }}
{{ include "sluice.scrapeAnnotations" . }}
{{- end }}
{{- end }}

{{/* The label by which the PodMonitor (sidecar mode) finds the pods that run sluice. */}}
{{- define "sluice.sidecarPodLabels" -}}
sluice-proxy.github.io/sidecar: {{ .root.Release.Name | quote }}
{{- end }}

{{/* Annotations for a Prometheus that discovers pods by annotation. */}}
{{- define "sluice.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "sluice.adminPort" . | quote }}
prometheus.io/path: /metrics
{{- end }}

{{/* The label matchers every alert expression starts with. */}}
{{- define "sluice.alertSelector" -}}
{{- .values.prometheusRule.selector | default (printf "namespace=%q" .root.Release.Namespace) }}
{{- end }}
