import { describe, expect, it } from 'vitest';
import { formatRate, parseDurationMs, parseFraction, parseRatePerSec, parseSizeBytes } from '../../src/core/units.js';

const HUGE_DIGITS = '9'.repeat(400); // Number(HUGE_DIGITS) is Infinity

describe('parseDurationMs', () => {
  it.each<[unknown, number]>([
    ['250ms', 250],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['0.5ms', 0.5],
    ['0s', 0],
    ['10 s', 10_000],
    ['  30s  ', 30_000],
    [0, 0],
    [1_500, 1_500],
    [2.5, 2.5],
  ])('%j -> %d', (value, ms) => {
    expect(parseDurationMs(value)).toBe(ms);
  });

  it.each<[unknown]>([
    ['10'], // a string needs a unit; only a number is read as milliseconds
    ['10S'],
    ['10sec'],
    ['10 seconds'],
    ['-1s'],
    ['1.s'],
    ['.5s'],
    ['1e3ms'],
    ['s'],
    [''],
    ['   '],
    [`${HUGE_DIGITS}d`],
    [-1],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [null],
    [undefined],
    [true],
    [{}],
  ])('%j -> undefined', (value) => {
    expect(parseDurationMs(value)).toBeUndefined();
  });
});

describe('parseSizeBytes', () => {
  it.each<[unknown, number]>([
    ['100b', 100],
    ['512kb', 524_288],
    ['1mb', 1_048_576],
    ['2gb', 2_147_483_648],
    ['1MB', 1_048_576],
    ['1Kb', 1_024],
    ['1.5kb', 1_536],
    ['0.5b', 0],
    [' 1 kb ', 1_024],
    ['0b', 0],
    [0, 0],
    [1_024, 1_024],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ])('%j -> %d', (value, bytes) => {
    expect(parseSizeBytes(value)).toBe(bytes);
  });

  it.each<[unknown]>([
    ['1024'],
    ['1tb'],
    ['1k'],
    ['-1kb'],
    ['kb'],
    [''],
    [`${HUGE_DIGITS}gb`],
    ['9007199254740992b'], // 2^53 is not a safe integer
    [1.5],
    [-1],
    [Number.MAX_SAFE_INTEGER + 1],
    [Number.NaN],
    [null],
    [[1]],
  ])('%j -> undefined', (value) => {
    expect(parseSizeBytes(value)).toBeUndefined();
  });
});

describe('parseRatePerSec', () => {
  it.each<[unknown, number]>([
    ['20/s', 20],
    ['30/5s', 6],
    ['1/m', 1 / 60],
    ['5000/h', 5000 / 3600],
    ['1/d', 1 / 86_400],
    ['10/100ms', 100],
    ['1/0.5s', 2],
    ['2.5/s', 2.5],
    ['20 / s', 20],
    [' 20/s ', 20],
    [20, 20],
    [0.5, 0.5],
  ])('%j -> %d per second', (value, ratePerSec) => {
    expect(parseRatePerSec(value)).toBe(ratePerSec);
  });

  it.each<[unknown]>([
    ['20'],
    ['0/s'],
    ['1/0s'],
    ['-1/s'],
    ['20/S'],
    ['20/sec'],
    ['20/'],
    ['/s'],
    ['20/-5s'],
    [''],
    [`${HUGE_DIGITS}/s`],
    [0],
    [-1],
    [Number.POSITIVE_INFINITY],
    [Number.NaN],
    [undefined],
  ])('%j -> undefined', (value) => {
    expect(parseRatePerSec(value)).toBeUndefined();
  });
});

describe('parseFraction', () => {
  it.each<[unknown, number]>([
    ['1%', 0.01],
    ['0.5%', 0.005],
    ['0%', 0],
    ['99%', 0.99],
    [' 10 % ', 0.1],
    [0, 0],
    [0.25, 0.25],
  ])('%j -> %d', (value, fraction) => {
    expect(parseFraction(value)).toBe(fraction);
  });

  it.each<[unknown]>([['100%'], ['150%'], ['-1%'], ['50'], ['0.5'], ['%'], [''], [1], [-0.1], [Number.NaN], [null]])('%j -> undefined', (value) => {
    expect(parseFraction(value)).toBeUndefined();
  });
});

describe('formatRate', () => {
  it.each<[number, string]>([
    [20, '20/s'],
    [1, '1/s'],
    [2.5, '2.5/s'],
    [5000 / 3600, '1.389/s'], // at least one per second: written per second, rounded to 3 decimals
    [0.5, '30/m'],
    [1 / 3, '20/m'],
    [1 / 60, '1/m'],
    [30 / 3600, '30/h'],
    [1 / 3600, '1/h'],
    [1 / 86_400, '1/d'],
    [0.5 / 86_400, '0.5/d'],
  ])('%d per second -> %s', (ratePerSec, text) => {
    expect(formatRate(ratePerSec)).toBe(text);
  });

  it.each(['20/s', '1/m', '30/h', '1/d', '2.5/s'])('%s survives parse then format', (text) => {
    expect(formatRate(parseRatePerSec(text) as number)).toBe(text);
  });
});
