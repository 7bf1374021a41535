import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { RequestOutcome } from '../core/outcomes.js';

/**
 * Every metric sluice exports: names, help, labels and buckets in one place. Labels are bounded:
 * upstream names and limit indexes come from the configuration, statuses are codes or classes,
 * reasons come from a fixed list. A raw key is never a label.
 *
 * Gauges are read at scrape time from a snapshot of the schedulers (`collect`), so the request path
 * pays nothing for them.
 */

/** What the gauges read when Prometheus scrapes. */
export interface UpstreamGaugeSource {
  readonly name: string;
  snapshot(): {
    readonly queued: number;
    readonly inFlight: number;
    readonly keys: number;
    readonly rules: readonly { readonly index: number; readonly effectiveRatePerSec: number | undefined }[];
  };
}

const QUEUE_WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5];
const UPSTREAM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMetrics(registry: Registry, sources: () => Iterable<UpstreamGaugeSource>) {
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: 'sluice_requests_total',
    help: 'Client requests by how they ended: ok, upstream_error (the upstream answered 5xx or 429 after the last attempt), rejected (sluice refused it), cancelled (the client went away), failed (sluice answered 502/504 or the response broke).',
    labelNames: ['upstream', 'outcome'] as const,
    registers: [registry],
  });
  const attempts = new Counter({
    name: 'sluice_upstream_attempts_total',
    help: 'Attempts sent to the upstream, by response status code, or "timeout" or "error".',
    labelNames: ['upstream', 'status'] as const,
    registers: [registry],
  });
  const retries = new Counter({
    name: 'sluice_retries_total',
    help: 'Attempts retried, by reason (429, 502, 503, 504, timeout, connect, reset).',
    labelNames: ['upstream', 'reason'] as const,
    registers: [registry],
  });
  const keyPauses = new Counter({
    name: 'sluice_key_pauses_total',
    help: 'Keys paused because the upstream said they were exhausted (429, or 503 with Retry-After).',
    labelNames: ['upstream'] as const,
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: 'sluice_queue_wait_seconds',
    help: 'Time a request spent queued before its first attempt was released.',
    labelNames: ['upstream'] as const,
    buckets: QUEUE_WAIT_BUCKETS,
    registers: [registry],
  });
  const upstreamDuration = new Histogram({
    name: 'sluice_upstream_duration_seconds',
    help: 'Time from sending an attempt to receiving its response headers.',
    labelNames: ['upstream'] as const,
    buckets: UPSTREAM_BUCKETS,
    registers: [registry],
  });

  const storeErrors = new Counter({
    name: 'sluice_store_errors_total',
    help: 'Calls to the shared bucket store that failed or timed out, by store and operation (take, refund, used_at, pause, probe, connection).',
    labelNames: ['store', 'operation'] as const,
    registers: [registry],
  });
  const storeFallback = new Gauge({
    name: 'sluice_store_fallback',
    help: '1 while the shared store fails and requests are limited by local buckets at rate / replicasHint (store.onError: local), else 0.',
    registers: [registry],
  });
  const storeTakeDuration = new Histogram({
    name: 'sluice_store_take_duration_seconds',
    help: 'Round trip of taking tokens from the shared store (Redis), answered takes only.',
    buckets: STORE_BUCKETS,
    registers: [registry],
  });

  /** A gauge per upstream, read from its scheduler's snapshot when Prometheus scrapes. */
  const perUpstream = (name: string, help: string, read: (snapshot: ReturnType<UpstreamGaugeSource['snapshot']>) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['upstream'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const source of sources()) this.set({ upstream: source.name }, read(source.snapshot()));
      },
    });
  };
  perUpstream('sluice_queue_depth', 'Requests waiting in the queue.', (s) => s.queued);
  perUpstream('sluice_inflight', 'Attempts sent to the upstream and not yet finished.', (s) => s.inFlight);
  perUpstream(
    'sluice_keys',
    'Distinct keys held in memory: with queued or in-flight work, or idle while their state (tokens, pause) matters; an expired idle key counts until the bounded idle cache drops it.',
    (s) => s.keys,
  );
  new Gauge({
    name: 'sluice_effective_rate',
    help: 'Rate, per second, at which each limit rule currently releases requests (configured rate minus the safety margin, or as learned).',
    labelNames: ['upstream', 'limit'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const source of sources()) {
        for (const rule of source.snapshot().rules) {
          if (rule.effectiveRatePerSec !== undefined) this.set({ upstream: source.name, limit: String(rule.index) }, rule.effectiveRatePerSec);
        }
      }
    },
  });

  return {
    /** The bucket store's metrics (src/store/create-store.ts). */
    store: {
      errors: (store: string, operation: string) => storeErrors.labels(store, operation),
      fallback: storeFallback,
      takeDuration: storeTakeDuration,
    },
    /** Handles bound to one upstream's label, so the request path does no label lookups. */
    forUpstream(upstream: string) {
      // Every label set starts at 0, so rate() has a sample before the first event.
      const outcome = (name: RequestOutcome) => {
        const child = requests.labels(upstream, name);
        child.inc(0);
        return child;
      };
      keyPauses.labels(upstream).inc(0);
      const byStatus = new Map<string, Counter.Internal>();
      const byReason = new Map<string, Counter.Internal>();
      return {
        requests: {
          ok: outcome('ok'),
          upstream_error: outcome('upstream_error'),
          rejected: outcome('rejected'),
          cancelled: outcome('cancelled'),
          failed: outcome('failed'),
        } satisfies Record<RequestOutcome, unknown>,
        attempts: (status: string) => cached(byStatus, status, () => attempts.labels(upstream, status)),
        retries: (reason: string) => cached(byReason, reason, () => retries.labels(upstream, reason)),
        keyPauses: keyPauses.labels(upstream),
        queueWait: queueWait.labels(upstream),
        upstreamDuration: upstreamDuration.labels(upstream),
      };
    },
  };
}

function cached<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

export type Metrics = ReturnType<typeof createMetrics>;
export type UpstreamMetrics = ReturnType<Metrics['forUpstream']>;
