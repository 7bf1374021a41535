import { MemoryBucketStore } from '../../src/store/memory-store.js';
import { ManualClock } from '../helpers/manual-time.js';
import { bucketStoreContract } from './contract.js';

bucketStoreContract('MemoryBucketStore', () => {
  const clock = new ManualClock(1_000);
  return Promise.resolve({
    store: new MemoryBucketStore(),
    now: () => clock.now(),
    sleep: (ms: number) => {
      clock.set(clock.now() + Math.max(0, ms));
      return Promise.resolve();
    },
    toleranceMs: 0,
    close: () => Promise.resolve(),
  });
});
