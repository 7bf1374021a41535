/**
 * The baseline a user would write instead of sluice: fastify with @fastify/http-proxy (reply-from,
 * undici underneath) on its defaults, no limits, no logger (fastify's default). Prints one JSON line,
 * {"url": ...}, once listening.
 *
 *   tsx load/bare-proxy-server.ts --upstream http://127.0.0.1:PORT [--port 0]
 */
import httpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } });
if (values.upstream === undefined) {
  process.stderr.write('--upstream is required\n');
  process.exit(2);
}

const app = Fastify();
await app.register(httpProxy, { upstream: values.upstream, prefix: '/' });
const address = await app.listen({ host: '127.0.0.1', port: Number(values.port) });
process.stdout.write(`${JSON.stringify({ url: address })}\n`);
const stop = (): void => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
