/**
 * Stops that drain: every long-running `docker run` / `podman run` the documentation shows (one that
 * publishes ports) gives the container a stop timeout of at least shutdown.grace + the slowest
 * in-flight request + a margin (25 s + 10 s + 5 s with the defaults), every `docker stop -t` /
 * `podman stop -t` too, and the Compose example's stop_grace_period follows the same rule for the
 * configuration it mounts. Docker, Podman and Compose otherwise kill after 10 s, in the middle of
 * the drain.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load-config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCUMENTS = ['README.md', 'docs/deployment.md', 'examples/quick-mode.md'];
const MARGIN_SEC = 5;

/** The stop timeout sluice needs with a configuration: grace + the slowest upstream timeout + margin. */
function neededSec(configText: string): number {
  const env = Object.fromEntries(
    [...configText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => [m[1] as string, m[1] === 'REDIS_URL' ? 'redis://r:6379' : 'x']),
  );
  const config = parseConfig(configText, { env });
  const slowestMs = Math.max(...config.upstreams.map((u) => u.timeout));
  return Math.ceil((config.shutdown.grace + slowestMs) / 1000) + MARGIN_SEC;
}

/** Shell commands of the documents' fenced sh blocks, continuation lines joined. */
function shellCommands(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
    (m[1] as string)
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .map((line) => line.trim()),
  );
}

const DEFAULT_NEEDED_SEC = neededSec('upstreams: [{ name: a, prefix: /, target: "http://127.0.0.1:1" }]');

describe('stop timeouts in the documentation', () => {
  it('the defaults need 40 s: 25 s of grace, 10 s of upstream timeout, 5 s of margin', () => {
    expect(DEFAULT_NEEDED_SEC).toBe(40);
  });

  for (const file of DOCUMENTS) {
    it(`${file}: every docker/podman run that serves has --stop-timeout >= ${DEFAULT_NEEDED_SEC}, every stop -t too`, () => {
      const commands = shellCommands(file);
      const serving = commands.filter((c) => /^(docker|podman) run\b/.test(c) && /\s-p\s/.test(c));
      expect(serving.length, file).toBeGreaterThan(0);
      for (const command of serving) {
        const timeout = /--stop-timeout[ =](\d+)/.exec(command)?.[1];
        expect(Number(timeout), command).toBeGreaterThanOrEqual(DEFAULT_NEEDED_SEC);
      }
      for (const command of commands.filter((c) => /^(docker|podman) stop\b/.test(c))) {
        const timeout = /\s(?:-t|--time)[ =](\d+)/.exec(command)?.[1];
        // Without -t the run's --stop-timeout applies (checked above).
        if (timeout !== undefined) expect(Number(timeout), command).toBeGreaterThanOrEqual(DEFAULT_NEEDED_SEC);
      }
    });
  }

  it('the Compose example: stop_grace_period covers the configuration it mounts, SIGTERM, the heap below mem_limit', () => {
    const compose = parse(readFileSync(join(ROOT, 'examples', 'compose', 'compose.yaml'), 'utf8'), { merge: true }) as {
      services: Record<
        string,
        { image?: string; volumes?: string[]; stop_grace_period?: string; stop_signal?: string; mem_limit?: string; environment?: Record<string, string> }
      >;
    };
    const sluices = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith('ghcr.io/sluice-proxy/sluice:'));
    expect(sluices.length).toBe(2);
    for (const [name, service] of sluices) {
      const mount = (service.volumes ?? []).find((v) => v.endsWith(':/etc/sluice/sluice.yaml:ro')) as string;
      const configText = readFileSync(join(ROOT, 'examples', 'compose', mount.split(':')[0] as string), 'utf8');
      const grace = /^(\d+)s$/.exec(service.stop_grace_period ?? '')?.[1];
      expect(Number(grace), name).toBeGreaterThanOrEqual(neededSec(configText));
      expect(service.stop_signal).toBe('SIGTERM');
      const limitMiB = Number(/^(\d+)m$/.exec(service.mem_limit ?? '')?.[1]);
      expect(service.environment?.NODE_OPTIONS).toBe(`--max-old-space-size=${(limitMiB * 3) / 4}`);
    }
  });
});
