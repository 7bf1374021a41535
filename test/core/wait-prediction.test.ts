import { describe, expect, it } from 'vitest';
import { predictWaitMs, type GateLoad } from '../../src/core/wait-prediction.js';

// 10/s: 100 ms per token. Instants from t0 = 1000.
const gate = (load: Partial<GateLoad>): GateLoad => ({ from: 1000, tokens: 0, intervalMs: 100, queued: 0, lanes: 0, ...load });

describe('predictWaitMs', () => {
  it('is 0 with a token at hand and nobody ahead', () => {
    expect(predictWaitMs([gate({ tokens: 1 })], 0, 1000)).toBe(0);
  });

  it('counts the tickets of its own lane ahead of it', () => {
    expect(predictWaitMs([gate({ queued: 3, lanes: 1 })], 3, 1000)).toBe(400);
  });

  it('counts one turn of every other lane through a shared gate per ticket ahead, never more than are queued', () => {
    // Third in its lane, two lanes with work: its lane's 2 and the other lane's 2 turns, plus itself.
    expect(predictWaitMs([gate({ queued: 5, lanes: 2 })], 2, 1000)).toBe(600);
    // The other lane holds only one ticket: 3 + 1 + itself.
    expect(predictWaitMs([gate({ queued: 4, lanes: 2 })], 3, 1000)).toBe(500);
    // A new lane (depth 0) counts itself among the lanes.
    expect(predictWaitMs([gate({ queued: 4, lanes: 2 })], 0, 1000)).toBe(300);
  });

  it('starts from the end of a pause, and takes the tokens then held', () => {
    expect(predictWaitMs([gate({ from: 3000, tokens: 0.5 })], 0, 1000)).toBe(2050);
  });

  it('is the latest of its gates; a gate without a bucket waits only for its pause', () => {
    expect(predictWaitMs([gate({ tokens: 1 }), gate({ from: 1200, tokens: undefined, queued: 50, lanes: 5 }), gate({ queued: 1, lanes: 1 })], 0, 1000)).toBe(
      200,
    );
  });
});
