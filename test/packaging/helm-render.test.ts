/**
 * The Helm chart rendered for real: test/packaging/helm-render is `helm template` rebuilt from the
 * libraries Helm itself uses (Go's text/template and sprig, Debian's golang-go and
 * golang-github-masterminds-sprig-dev, which .ci/run installs), built here without network. Every
 * documented values set (the defaults, each file of examples/, the example application chart with
 * sluice as its sidecar), at the Kubernetes versions that change the output, is rendered and its
 * manifests checked: kinds and API versions, names and labels, the container (image, ports, probes
 * on named ports, mounts of defined volumes, NODE_OPTIONS from the memory limit, only fields the
 * Kubernetes API has), the computed termination budget, native or classic sidecar, selectors that
 * match the pods, the ConfigMap's sluice.yaml passing sluice's own loader. Values the chart must
 * refuse make the renderer fail with the chart's message. The alert rules pass `promtool check
 * rules` and the unit tests of prometheus-rules.test-cases.yaml (`promtool test rules`), where
 * Debian's prometheus package provides promtool.
 *
 * Without go (or sprig) the tests say they are skipped. `helm lint`, kubeconform's schemas and
 * chart-testing run in .github/workflows/helm.yml.
 */
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return --
   the manifests are YAML of any shape; the assertions are what checks them. */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../../src/config/load-config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'helm', 'sluice');
const PARENT = join(CHART, 'examples', 'sidecar-app');
const SPRIG = '/usr/share/gocode/src/github.com/Masterminds/sprig';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const hasGo = spawnSync('go', ['version']).status === 0 && existsSync(SPRIG);
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };

let work = '';
let renderer = '';

beforeAll(() => {
  if (!hasGo) {
    console.info('helm-render: skipped, no go or no sprig (apt-get install golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev)');
    return;
  }
  work = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
  renderer = join(work, 'helm-render');
  // GOPATH mode over Debian's Go libraries: no module download.
  execFileSync('go', ['build', '-o', renderer, '.'], {
    cwd: join(ROOT, 'test', 'packaging', 'helm-render'),
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: join(work, 'go-cache'), GOFLAGS: '' },
    stdio: 'pipe',
  });
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Rendered {
  readonly code: number | null;
  readonly stderr: string;
  readonly manifests: Manifest[];
}

function render(args: readonly string[], chartDir = CHART): Rendered {
  const result = spawnSync(renderer, ['--namespace', 'apps', ...args, 'demo', chartDir], { encoding: 'utf8' });
  const manifests = result.status === 0 ? parseAllDocuments(result.stdout).map((doc) => doc.toJS() as Manifest) : [];
  return { code: result.status, stderr: result.stderr, manifests: manifests.filter((m) => m !== null) };
}

const only = (manifests: Manifest[], kind: string): Manifest => {
  const found = manifests.filter((m) => m.kind === kind);
  expect(
    found.map((m) => m.kind),
    `one ${kind}`,
  ).toEqual([kind]);
  return found[0] as Manifest;
};

/** Fields of the Kubernetes API objects the chart writes: anything else is a typo kubeconform -strict would refuse. */
const CONTAINER_FIELDS = new Set([
  'name',
  'image',
  'imagePullPolicy',
  'command',
  'args',
  'workingDir',
  'ports',
  'envFrom',
  'env',
  'resources',
  'resizePolicy',
  'restartPolicy',
  'volumeMounts',
  'volumeDevices',
  'livenessProbe',
  'readinessProbe',
  'startupProbe',
  'lifecycle',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'securityContext',
  'stdin',
  'stdinOnce',
  'tty',
]);
const POD_SPEC_FIELDS = new Set([
  'volumes',
  'initContainers',
  'containers',
  'restartPolicy',
  'terminationGracePeriodSeconds',
  'dnsPolicy',
  'nodeSelector',
  'serviceAccountName',
  'automountServiceAccountToken',
  'securityContext',
  'imagePullSecrets',
  'affinity',
  'tolerations',
  'priorityClassName',
  'topologySpreadConstraints',
]);
const PROBE_FIELDS = new Set([
  'httpGet',
  'periodSeconds',
  'timeoutSeconds',
  'failureThreshold',
  'successThreshold',
  'initialDelaySeconds',
  'terminationGracePeriodSeconds',
]);

interface PodChecks {
  readonly nativeSidecar?: boolean;
  readonly portPrefix: string;
  readonly memoryLimitMiB?: number;
}

/** Checks a pod template holding a sluice container, and returns that container. */
function checkPod(pod: Manifest, checks: PodChecks): Manifest {
  for (const key of Object.keys(pod.spec)) expect(POD_SPEC_FIELDS.has(key), `pod spec field ${key}`).toBe(true);
  const init = (pod.spec.initContainers ?? []) as Manifest[];
  const containers = pod.spec.containers as Manifest[];
  const sluice = [...init, ...containers].filter((c) => c.name === 'sluice');
  expect(sluice).toHaveLength(1);
  const container = sluice[0] as Manifest;
  for (const key of Object.keys(container)) expect(CONTAINER_FIELDS.has(key), `container field ${key}`).toBe(true);
  if (checks.nativeSidecar !== undefined) {
    expect(init.includes(container)).toBe(checks.nativeSidecar);
    expect(container.restartPolicy).toBe(checks.nativeSidecar ? 'Always' : undefined);
  }
  expect(container.image).toBe(`ghcr.io/sluice-proxy/sluice:${chart.appVersion}`);
  expect(container.args).toEqual(['--config', '/etc/sluice/sluice.yaml']);
  const portNames = (container.ports as Manifest[]).map((p) => p.name as string);
  expect(portNames).toEqual([`${checks.portPrefix}http`, `${checks.portPrefix}admin`]);
  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
    for (const key of Object.keys(container[probe])) expect(PROBE_FIELDS.has(key), `${probe}.${key}`).toBe(true);
    expect(container[probe].httpGet.port).toBe(`${checks.portPrefix}admin`);
  }
  expect(container.readinessProbe.httpGet.path).toBe('/readyz');
  const volumes = new Set((pod.spec.volumes as Manifest[]).map((v) => v.name as string));
  for (const mount of container.volumeMounts as Manifest[]) expect(volumes.has(mount.name), `volume ${mount.name}`).toBe(true);
  expect(container.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  const nodeOptions = ((container.env ?? []) as Manifest[]).find((e) => e.name === 'NODE_OPTIONS');
  if (checks.memoryLimitMiB !== undefined) expect(nodeOptions?.value).toBe(`--max-old-space-size=${Math.floor(checks.memoryLimitMiB * 0.75)}`);
  return container;
}

function checkConfigMap(manifests: Manifest[], name: string): void {
  const map = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === name) as Manifest;
  expect(map, `ConfigMap ${name}`).toBeDefined();
  const text = map.data['sluice.yaml'] as string;
  const env = Object.fromEntries(
    [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => [m[1] as string, m[1] === 'REDIS_URL' ? 'redis://redis:6379' : 'value']),
  );
  const config = parseConfig(text, { file: 'sluice.yaml', env });
  expect(config.upstreams.length).toBeGreaterThan(0);
  expect(config.admin.redactKeys).toBe(true);
}

function checkCommon(manifests: Manifest[]): void {
  expect(manifests.length).toBeGreaterThan(0);
  for (const m of manifests) {
    expect(typeof m.apiVersion).toBe('string');
    expect(m.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(m.metadata.namespace).toBe('apps');
  }
}

describe.skipIf(!hasGo)('the chart rendered (Go templates + sprig)', () => {
  it('defaults: a gateway whose Deployment, Service, ConfigMap and ServiceAccount fit together', () => {
    const { code, stderr, manifests } = render([]);
    expect(code, stderr).toBe(0);
    checkCommon(manifests);
    expect(manifests.map((m) => `${m.apiVersion} ${m.kind}`).sort()).toEqual(['apps/v1 Deployment', 'v1 ConfigMap', 'v1 Service', 'v1 ServiceAccount']);
    const deployment = only(manifests, 'Deployment');
    const pod = deployment.spec.template;
    const container = checkPod(pod, { nativeSidecar: false, portPrefix: '', memoryLimitMiB: 768 });
    expect(deployment.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'sluice', 'app.kubernetes.io/instance': 'demo' });
    expect(pod.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(pod.spec.terminationGracePeriodSeconds).toBe(40);
    expect(container.lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '768Mi' }, limits: { memory: '768Mi' } });
    expect(pod.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    const service = only(manifests, 'Service');
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    const containerPorts = new Set((container.ports as Manifest[]).map((p) => p.name));
    for (const port of service.spec.ports as Manifest[]) expect(containerPorts.has(port.targetPort)).toBe(true);
    checkConfigMap(manifests, 'demo-sluice');
    const config = parse(only(manifests, 'ConfigMap').data['sluice.yaml'] as string) as Manifest;
    expect([config.listen.host, config.admin.host]).toEqual(['::', '::']);
  });

  it('the gateway example: Redis Secret as REDIS_URL, HPA, PDB, ServiceMonitor on the Service port, alert rules', () => {
    const { code, stderr, manifests } = render(['-f', join(CHART, 'examples', 'gateway-values.yaml')]);
    expect(code, stderr).toBe(0);
    checkCommon(manifests);
    const container = checkPod(only(manifests, 'Deployment').spec.template, { portPrefix: '', memoryLimitMiB: 1024 });
    expect((container.env as Manifest[]).find((e) => e.name === 'REDIS_URL')?.valueFrom.secretKeyRef).toEqual({ name: 'sluice-redis', key: 'redis-url' });
    expect(only(manifests, 'Deployment').spec.replicas).toBeUndefined();
    expect(only(manifests, 'HorizontalPodAutoscaler').spec).toMatchObject({ minReplicas: 3, maxReplicas: 6 });
    expect(only(manifests, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    const monitor = only(manifests, 'ServiceMonitor');
    expect(monitor.spec.endpoints[0].port).toBe('admin');
    expect((only(manifests, 'Service').spec.ports as Manifest[]).map((p) => p.name)).toContain('admin');
    expect(monitor.metadata.labels.release).toBe('kube-prometheus-stack');
    const rules = only(manifests, 'PrometheusRule').spec.groups[0].rules as Manifest[];
    expect(rules.map((r) => r.alert)).toEqual([
      'SluiceQueueNearFull',
      'SluiceRequestsRejected',
      'SluiceStoreFallback',
      'SluiceUpstream429s',
      'SluiceStoppedWithQueue',
    ]);
    // github's queue.maxSize is 20000: 80% of it.
    expect(rules[0]?.expr).toBe('max by (namespace, pod, upstream) (sluice_queue_depth{namespace="apps", upstream="github"}) > 16000');
    for (const rule of rules) expect(rule.expr).toContain('{namespace="apps"');
    checkConfigMap(manifests, 'demo-sluice');
  });

  it('every optional resource at once, the preStop sleep action and a hand-set grace period', () => {
    const { code, stderr, manifests } = render([
      '-f',
      join(CHART, 'examples', 'gateway-values.yaml'),
      '--set',
      'preStopSleepAction=true',
      '--set',
      'terminationGracePeriodSeconds=60',
      '--set',
      'podDisruptionBudget.maxUnavailable=null',
      '--set',
      'podDisruptionBudget.minAvailable=1',
    ]);
    expect(code, stderr).toBe(0);
    const pod = only(manifests, 'Deployment').spec.template;
    expect(pod.spec.terminationGracePeriodSeconds).toBe(60);
    expect(checkPod(pod, { portPrefix: '' }).lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
    expect(only(manifests, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1 });
  });

  it('a gateway scraped by a PodMonitor and annotations, without the admin port on the Service', () => {
    const { code, stderr, manifests } = render(['--set', 'service.adminPort=null', '--set', 'podMonitor.enabled=true', '--set', 'scrapeAnnotations=true']);
    expect(code, stderr).toBe(0);
    expect((only(manifests, 'Service').spec.ports as Manifest[]).map((p) => p.name)).toEqual(['http']);
    const pod = only(manifests, 'Deployment').spec.template;
    const monitor = only(manifests, 'PodMonitor');
    expect(pod.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'admin', path: '/metrics' });
    expect(pod.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090', 'prometheus.io/path': '/metrics' });
  });

  it('sidecar mode on its own: the ConfigMap, a PodMonitor on the sidecar label and the alerts, no workload', () => {
    const { code, stderr, manifests } = render(['-f', join(CHART, 'examples', 'sidecar-values.yaml')]);
    expect(code, stderr).toBe(0);
    checkCommon(manifests);
    expect(manifests.map((m) => m.kind).sort()).toEqual(['ConfigMap', 'PodMonitor', 'PrometheusRule']);
    checkConfigMap(manifests, 'demo-sluice-sidecar');
    const monitor = only(manifests, 'PodMonitor');
    expect(monitor.spec.selector.matchLabels).toEqual({ 'sluice-proxy.github.io/sidecar': 'demo' });
    expect(monitor.spec.podMetricsEndpoints[0].port).toBe('sluice-admin');
  });

  for (const [label, args, native] of [
    ['Kubernetes 1.31, native: auto -> a native sidecar', ['--kube-version', 'v1.31.0'], true],
    ['Kubernetes 1.28, native: auto -> a plain container with the preStop pause', ['--kube-version', 'v1.28.0'], false],
    ['Kubernetes 1.31, native: false -> a plain container', ['--kube-version', 'v1.31.0', '--set', 'sluice.sidecar.native=false'], false],
    ['Kubernetes 1.29, native: true -> a native sidecar', ['--kube-version', 'v1.29.0', '--set', 'sluice.sidecar.native=true'], true],
  ] as const) {
    it(`the example application chart: ${label}`, () => {
      const { code, stderr, manifests } = render(args, PARENT);
      expect(code, stderr).toBe(0);
      const deployment = only(manifests, 'Deployment');
      const pod = deployment.spec.template;
      const container = checkPod(pod, { nativeSidecar: native, portPrefix: 'sluice-', memoryLimitMiB: 384 });
      expect(container.lifecycle?.preStop !== undefined).toBe(!native);
      const app = (pod.spec.containers as Manifest[]).find((c) => c.name === 'worker') as Manifest;
      expect(app.env).toEqual([{ name: 'API_BASE_URL', value: 'http://127.0.0.1:8080' }]);
      expect(pod.metadata.labels['sluice-proxy.github.io/sidecar']).toBe('demo');
      expect(pod.metadata.annotations['checksum/sluice-config']).toMatch(/^[0-9a-f]{64}$/);
      checkConfigMap(manifests, 'demo-sluice-sidecar');
      const volume = (pod.spec.volumes as Manifest[]).find((v) => v.name === 'sluice-config') as Manifest;
      expect(volume.configMap.name).toBe('demo-sluice-sidecar');
    });
  }

  it('the termination budget follows config.shutdown.grace and the preStop pause', () => {
    const grace = (args: string[]): number => only(render(args).manifests, 'Deployment').spec.template.spec.terminationGracePeriodSeconds as number;
    expect(grace(['--set', 'config.shutdown.grace=1m'])).toBe(5 + 60 + 10);
    expect(grace(['--set', 'config.shutdown.grace=2500ms', '--set', 'preStopSleepSeconds=0'])).toBe(3 + 10);
    expect(grace(['--set', 'terminationGraceMarginSeconds=30'])).toBe(5 + 25 + 30);
  });

  it('NODE_OPTIONS follows the memory limit and yields to one set in env', () => {
    const nodeOptions = (args: string[]): string | undefined =>
      (only(render(args).manifests, 'Deployment').spec.template.spec.containers[0].env as Manifest[] | undefined)?.find((e) => e.name === 'NODE_OPTIONS')
        ?.value;
    expect(nodeOptions(['--set', 'resources.limits.memory=1Gi'])).toBe('--max-old-space-size=768');
    expect(nodeOptions(['--set', 'resources.limits.memory=1.5Gi'])).toBe('--max-old-space-size=1152');
    // 1000M = 953.67 MiB, counted as 953 MiB: 75% is 714.
    expect(nodeOptions(['--set', 'resources.limits.memory=1000M'])).toBe('--max-old-space-size=714');
    expect(nodeOptions(['--set', 'resources.limits.memory=536870912'])).toBe('--max-old-space-size=384');
    expect(nodeOptions(['--set', 'nodeHeap.percentOfMemoryLimit=50'])).toBe('--max-old-space-size=384');
    expect(nodeOptions(['--set', 'nodeHeap.percentOfMemoryLimit=0'])).toBeUndefined();
    expect(nodeOptions(['--set', 'resources.limits=null'])).toBeUndefined();
    const own = join(work, 'own-node-options.yaml');
    writeFileSync(own, stringify({ env: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=100' }] }));
    expect(nodeOptions(['-f', own])).toBe('--max-old-space-size=100');
  });

  for (const [label, args, message] of [
    ['a grace period below the pause and the drain', ['--set', 'terminationGracePeriodSeconds=20'], 'terminationGracePeriodSeconds (20) must be above'],
    ['${REDIS_URL} without its Secret', ['--set', 'config.store.type=redis', '--set', 'config.store.url=${REDIS_URL}'], 'set redis.existingSecret'],
    ['a grace that is no duration', ['--set', 'config.shutdown.grace=soon'], 'config.shutdown.grace: expected a duration'],
    ['a native sidecar on 1.28', ['--kube-version', 'v1.28.0', '--set', 'sidecar.native=true'], 'needs Kubernetes 1.29'],
    ['the preStop sleep action on 1.29', ['--kube-version', 'v1.29.0', '--set', 'preStopSleepAction=true'], 'needs Kubernetes 1.30'],
    ['a memory limit that is no quantity', ['--set', 'resources.limits.memory=lots'], 'expected a quantity'],
    [
      'a ServiceMonitor without the admin port on the Service',
      ['--set', 'serviceMonitor.enabled=true', '--set', 'service.adminPort=null'],
      'set service.adminPort',
    ],
  ] as const) {
    it(`refuses ${label}`, () => {
      const { code, stderr } = render(args);
      expect(code).toBe(1);
      expect(stderr).toContain(message);
    });
  }

  it('the checksum annotation changes with the configuration', () => {
    const checksum = (args: string[]): string => only(render(args).manifests, 'Deployment').spec.template.metadata.annotations['checksum/config'] as string;
    expect(checksum([])).not.toBe(checksum(['--set', 'config.log.level=debug']));
  });

  it('NOTES.txt renders for both modes', () => {
    for (const args of [[], ['-f', join(CHART, 'examples', 'sidecar-values.yaml')]]) {
      const result = spawnSync(renderer, ['--notes', ...args, 'demo', CHART], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain('sluice');
      expect(result.stdout).not.toContain('<no value>');
    }
  });

  describe.skipIf(!hasPromtool)('the alert rules, with promtool', () => {
    it('pass `promtool check rules` and the unit tests of prometheus-rules.test-cases.yaml', () => {
      const rules = only(render(['-f', join(CHART, 'examples', 'gateway-values.yaml')]).manifests, 'PrometheusRule');
      writeFileSync(join(work, 'rules.yaml'), stringify(rules.spec));
      const check = spawnSync('promtool', ['check', 'rules', join(work, 'rules.yaml')], { encoding: 'utf8' });
      expect(check.status, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toContain('SUCCESS: 5 rules found');
      // promtool compares annotations verbatim: the unit tests get the rules without them.
      const withoutAnnotations = {
        groups: (rules.spec.groups as Manifest[]).map((group) => ({
          ...group,
          rules: (group.rules as Manifest[]).map(({ annotations: _annotations, ...rule }) => rule),
        })),
      };
      writeFileSync(join(work, 'rules-unit.yaml'), stringify(withoutAnnotations));
      copyFileSync(join(ROOT, 'test', 'packaging', 'prometheus-rules.test-cases.yaml'), join(work, 'cases.yaml'));
      const test = spawnSync('promtool', ['test', 'rules', join(work, 'cases.yaml')], { encoding: 'utf8', cwd: work });
      expect(test.status, test.stdout + test.stderr).toBe(0);
      expect(test.stdout).toContain('SUCCESS');
    });
  });
});
