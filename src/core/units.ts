/**
 * Parsers for the units that appear in sluice's configuration and headers.
 *
 * Every parser returns `undefined` for input it does not understand instead of throwing: the
 * config layer turns that into a `ConfigError` naming the field, and header parsers simply ignore
 * the value (malformed rate-limit fields MUST be ignored, per the IETF draft).
 */

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS_BYTES: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
};

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)$/i;
const RATE = /^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h|d)$/;
const PERCENT = /^(\d+(?:\.\d+)?)\s*%$/;

/**
 * Parses a duration: `250ms`, `10s`, `5m`, `1h`, `1d`, or a number of milliseconds.
 * @example parseDurationMs('1.5s') // 1500
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = DURATION.exec(value.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Parses a size: `512kb`, `1mb`, `2gb`, `100b` (binary multiples), or a number of bytes.
 * @example parseSizeBytes('1mb') // 1048576
 */
export function parseSizeBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = SIZE.exec(value.trim());
  if (!match) return undefined;
  const bytes = Math.floor(Number(match[1]) * (SIZE_UNITS_BYTES[(match[2] as string).toLowerCase()] as number));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Parses a rate `N/unit` or `N/<multiple><unit>` into requests per second; a bare number is
 * already per second.
 * @example parseRatePerSec('20/s')   // 20
 * @example parseRatePerSec('30/5s')  // 6
 * @example parseRatePerSec('5000/h') // 1.3888…
 */
export function parseRatePerSec(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = RATE.exec(value.trim());
  if (!match) return undefined;
  const count = Number(match[1]);
  const multiple = match[2] === undefined ? 1 : Number(match[2]);
  const perMs = multiple * (DURATION_UNITS_MS[match[3] as string] as number);
  if (!(count > 0) || !(perMs > 0)) return undefined;
  const ratePerSec = (count * 1000) / perMs;
  return Number.isFinite(ratePerSec) && ratePerSec > 0 ? ratePerSec : undefined;
}

/**
 * Parses a fraction written as a percentage (`0.5%`) or as a number in [0, 1).
 * @example parseFraction('1%') // 0.01
 */
export function parseFraction(value: unknown): number | undefined {
  if (typeof value === 'number') return value >= 0 && value < 1 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = PERCENT.exec(value.trim());
  if (!match) return undefined;
  const fraction = Number(match[1]) / 100;
  return fraction >= 0 && fraction < 1 ? fraction : undefined;
}

/** Formats a rate per second the way the configuration writes it (`20/s`, `5000/h`). */
export function formatRate(ratePerSec: number): string {
  if (ratePerSec >= 1) return `${round(ratePerSec)}/s`;
  if (ratePerSec * 60 >= 1) return `${round(ratePerSec * 60)}/m`;
  if (ratePerSec * 3600 >= 1) return `${round(ratePerSec * 3600)}/h`;
  return `${round(ratePerSec * 86_400)}/d`;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
