/**
 * Runs the stand-in API as its own process and prints one JSON line, {"url": ...}, once listening.
 *
 *   tsx load/standin-server.ts --rate 20 [--window-ms 1000] [--fixed-window [--window-align first-request|wall-clock]]
 *        [--bucket-rate 20 --burst 5] [--key-header x-account] [--max-in-flight 10] [--latency-ms 5]
 *        [--quota-headers x-ratelimit|ietf] [--retry-after seconds|absent|http-date|N]
 *        [--throttle 429|403|420|503-xml|503-json] [--port 0]
 */
import { parseArgs } from 'node:util';
import { Standin, type StandinOptions } from './lib/standin.js';
import { THROTTLE_SIGNALS, parseRetryAfterForm, type ThrottleSignal, type WindowAlign } from './lib/standin-models.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string' },
    'window-ms': { type: 'string', default: '1000' },
    'fixed-window': { type: 'boolean', default: false },
    'window-align': { type: 'string', default: 'first-request' },
    'bucket-rate': { type: 'string' },
    burst: { type: 'string', default: '1' },
    'key-header': { type: 'string' },
    'max-in-flight': { type: 'string' },
    'latency-ms': { type: 'string' },
    'quota-headers': { type: 'string' },
    'retry-after': { type: 'string', default: 'seconds' },
    throttle: { type: 'string', default: '429' },
    port: { type: 'string', default: '0' },
  },
});

const alignText = values['window-align'];
if (alignText !== 'first-request' && alignText !== 'wall-clock') throw new Error(`--window-align: expected first-request or wall-clock, got "${alignText}"`);
const align: WindowAlign = alignText;
const throttleText = values.throttle;
if (!(THROTTLE_SIGNALS as readonly string[]).includes(throttleText))
  throw new Error(`--throttle: expected one of ${THROTTLE_SIGNALS.join(', ')}, got "${throttleText}"`);
const throttle = throttleText as ThrottleSignal;
const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
const options: StandinOptions = {
  window:
    values.rate === undefined ? undefined : { requests: Number(values.rate), windowMs: Number(values['window-ms']), fixed: values['fixed-window'], align },
  bucket: values['bucket-rate'] === undefined ? undefined : { ratePerSec: Number(values['bucket-rate']), burst: Number(values.burst) },
  keyHeader: values['key-header'],
  maxInFlight: num(values['max-in-flight']),
  latencyMs: num(values['latency-ms']),
  quotaHeaders: values['quota-headers'] as StandinOptions['quotaHeaders'],
  retryAfter: parseRetryAfterForm(values['retry-after']),
  throttle,
  port: Number(values.port),
};
const standin = new Standin(options);
const url = await standin.listen();
process.stdout.write(`${JSON.stringify({ url })}\n`);
const stop = (): void => void standin.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
