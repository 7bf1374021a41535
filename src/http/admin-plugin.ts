import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface AdminPluginOptions {
  readonly registry: Registry;
  /** Whether the proxy accepts traffic (configured, not draining, store reachable). */
  readonly ready: () => { ready: boolean; reason?: string };
  /** The JSON document served at /state. */
  readonly state: () => unknown;
}

/** The admin listener: liveness, readiness, Prometheus metrics and a state dump. */
export function adminPlugin(app: FastifyInstance, options: AdminPluginOptions): void {
  app.get('/healthz', (_request, reply) => {
    void reply.header('cache-control', 'no-store').send({ status: 'ok' });
  });
  app.get('/readyz', (_request, reply) => {
    const { ready, reason } = options.ready();
    void reply
      .code(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(ready ? { status: 'ready' } : { status: 'not ready', reason });
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await options.registry.metrics();
    return reply.header('content-type', options.registry.contentType).header('cache-control', 'no-store').send(body);
  });
  app.get('/state', (_request, reply) => {
    void reply.header('cache-control', 'no-store').send(options.state());
  });
}
