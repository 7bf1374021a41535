/**
 * The admin listener, as a fastify plugin: liveness (/healthz), readiness (/readyz), Prometheus
 * metrics (/metrics, from the app's own registry) and the state document (/state). Never on the
 * client port.
 */
import { fastifyPlugin } from 'fastify-plugin';
import type { Registry } from 'prom-client';

export interface AdminPluginOptions {
  readonly registry: Registry;
  /** Whether the proxy accepts traffic (configured, not draining, store reachable). */
  readonly ready: () => { ready: boolean; reason?: string };
  /** The JSON document served at /state. */
  readonly state: () => unknown;
}

export const adminPlugin = fastifyPlugin<AdminPluginOptions>(
  (app, options, done) => {
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
    done();
  },
  { name: 'sluice-admin', fastify: '5.x' },
);
