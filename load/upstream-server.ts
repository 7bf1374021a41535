/**
 * A plain, fast node:http upstream for the overhead and scale scenarios: every request is answered
 * 200 with a small fixed JSON body at once (no limit, no latency), so what is measured is the proxy
 * in front of it. Prints one JSON line, {"url": ...}, once listening.
 *
 *   tsx load/upstream-server.ts [--port 0]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });

const body = Buffer.from(JSON.stringify({ ok: true, message: 'hello from the plain upstream' }));
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 61_000;
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://${values.host}:${port}` })}\n`);
});
const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
