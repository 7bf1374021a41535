/**
 * sluice as a library: build the proxy from a configuration and run it inside your own process.
 *
 * @example
 * import { buildApp, parseConfig } from 'sluice';
 * const config = parseConfig(yamlText, { env: process.env });
 * const app = await buildApp(config);
 * const { proxy, admin } = await app.listen();
 * // ... later: rate-aware drain, then the listeners close
 * await app.shutdown();
 */
export { buildApp, type AppDeps, type ListenAddresses, type SluiceApp } from './app.js';
export { ConfigError, type ConfigProblem } from './config/config-error.js';
export type { Env } from './config/env.js';
export { loadConfigFile, parseConfig } from './config/load-config.js';
export { configJsonSchema, configSchema, type Config, type ConfigInput, type LimitConfig, type StoreConfig, type UpstreamConfig } from './config/schema.js';
