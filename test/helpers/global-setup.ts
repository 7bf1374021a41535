import type { TestProject } from 'vitest/node';
import { redisUnavailableReason, startRedisServer, type RedisServer } from './redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis the store tests share (`redis://127.0.0.1:port`), or '' when there is none. */
    redisUrl: string;
    /** Why there is no Redis, when `redisUrl` is ''. */
    redisSkipReason: string;
  }
}

/**
 * Starts what the suite needs once for all files: a Redis for the redis store's tests. REDIS_URL
 * (as .ci/run exports it) is used as it is; otherwise a redis-server is started on a free loopback
 * port and stopped at the end. Without a redis-server binary the Redis tests say they are skipped on a
 * developer's machine; under CI (CI=true) the run fails at once instead, so a CI image that lost its
 * redis-server can never pass by skipping the store's tests.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: RedisServer | undefined;
  let url = process.env.REDIS_URL ?? '';
  let reason = '';
  if (!url) {
    reason = redisUnavailableReason() ?? '';
    if (!reason) {
      server = await startRedisServer();
      url = server.url;
    } else if (process.env.CI === 'true') {
      throw new Error(`CI=true, and the Redis tests cannot run: ${reason}`);
    }
  }
  project.provide('redisUrl', url);
  project.provide('redisSkipReason', reason);
  return async () => {
    await server?.kill();
  };
}
