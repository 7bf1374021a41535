#!/usr/bin/env node
/**
 * The sluice command. The only module that reads argv and the environment, handles signals and
 * calls process.exit. Exit codes: 0 clean stop, 1 runtime failure, 2 usage or configuration error.
 */
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { stringify } from 'yaml';
import { buildApp, type SluiceApp } from './app.js';
import { ConfigError } from './config/config-error.js';
import { loadConfigFile } from './config/load-config.js';
import { quickConfig } from './config/quick-mode.js';
import { redactPaths } from './http/request-log.js';
import type { Config } from './config/schema.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const USAGE = `sluice: a rate-limiting HTTP proxy. Queues requests per key and releases them at the allowed rate.

Usage:
  sluice --config sluice.yaml            run with a configuration file (or SLUICE_CONFIG=...)
  sluice --config sluice.yaml --check    validate, print the normalized configuration, exit
  sluice --target URL --rate 20/s [--burst 5] [--concurrency 10] [--port 8080] [--admin-port 9090]
                                         quick mode: one upstream mounted at /
  sluice --help | --version

Environment:
  SLUICE_CONFIG       path of the configuration file (same as --config)
  SLUICE_LOG_LEVEL    fatal, error, warn, info, debug, trace or silent (overrides log.level)

Signals: SIGTERM/SIGINT drain at the allowed rate for shutdown.grace, then stop (a second one stops at once).
Exit codes: 0 clean stop, 1 runtime failure, 2 usage or configuration error.
`;

/** Editors write a file in several steps; one reload after they settle. */
const RELOAD_DEBOUNCE_MS = 200;
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 250;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function version(): string {
  const require = createRequire(import.meta.url);
  return (require('../package.json') as { version: string }).version;
}

function fail(code: number, message: string): never {
  process.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        target: { type: 'string' },
        rate: { type: 'string' },
        burst: { type: 'string' },
        concurrency: { type: 'string' },
        port: { type: 'string' },
        'admin-port': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (err) {
    fail(EXIT_USAGE, `sluice: ${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(EXIT_OK);
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    process.exit(EXIT_OK);
  }

  // An empty SLUICE_CONFIG counts as unset (a container image may define it for its default file).
  const configPath = (values.config as string | undefined) ?? (process.env.SLUICE_CONFIG || undefined);
  const quickFlags = ['target', 'rate', 'burst', 'concurrency', 'port', 'admin-port'].filter((flag) => values[flag] !== undefined);
  if (configPath !== undefined && quickFlags.length > 0) {
    fail(EXIT_USAGE, `sluice: --${quickFlags.join(', --')} cannot be combined with a configuration file (--config or SLUICE_CONFIG)`);
  }
  if (configPath === undefined && values.target === undefined) {
    fail(EXIT_USAGE, `sluice: give a configuration file (--config, SLUICE_CONFIG) or a target (--target)\n\n${USAGE}`);
  }

  let config: Config;
  try {
    config = configPath !== undefined ? await loadConfigFile(configPath, process.env) : quickConfig(values);
  } catch (err) {
    if (err instanceof ConfigError) fail(EXIT_USAGE, err.message);
    throw err;
  }
  const level = process.env.SLUICE_LOG_LEVEL;
  if (level !== undefined && level !== '') {
    if (!LOG_LEVELS.has(level)) fail(EXIT_USAGE, `sluice: SLUICE_LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}, got "${level}"`);
    config = { ...config, log: { level: level as Config['log']['level'] } };
  }

  if (values.check) {
    process.stdout.write(stringify(redactedForDisplay(config)));
    process.exit(EXIT_OK);
  }
  await run(config, configPath);
}

/** The configuration file as loaded, with SLUICE_LOG_LEVEL applied; throws ConfigError. */
async function loadWithOverrides(path: string): Promise<Config> {
  const config = await loadConfigFile(path, process.env);
  const level = process.env.SLUICE_LOG_LEVEL;
  return level && LOG_LEVELS.has(level) ? { ...config, log: { level: level as Config['log']['level'] } } : config;
}

/** The normalized configuration with the values of `setHeaders` (often credentials) hidden. */
function redactedForDisplay(config: Config): unknown {
  return {
    ...config,
    upstreams: config.upstreams.map((u) => ({ ...u, setHeaders: Object.fromEntries(Object.keys(u.setHeaders).map((name) => [name, '[redacted]'])) })),
  };
}

function createLogger(config: Config): Logger {
  const options = { level: config.log.level, redact: { paths: redactPaths(config), censor: '[redacted]' } };
  if (process.stdout.isTTY) {
    try {
      import.meta.resolve('pino-pretty');
      return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true } } });
    } catch {
      // pino-pretty is a development dependency; without it, plain JSON.
    }
  }
  // Buffered: one write(2) per few KB of lines instead of one per request line (a measurable part
  // of the per-request CPU). A timer hands over what is buffered at least every LOG_FLUSH_MS, so a
  // quiet sluice still logs promptly; exit() flushes the rest.
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  setInterval(() => destination.flush(), LOG_FLUSH_MS).unref();
  return pino(options, destination);
}

async function run(config: Config, configPath: string | undefined): Promise<void> {
  const logger = createLogger(config);
  const exit = (code: number): never => {
    process.exitCode = code;
    // Exit once the destination has written what flush() handed it (or after a moment at most).
    const done = (): never => process.exit(code);
    logger.flush(() => done());
    setTimeout(done, 200).unref();
    return undefined as never;
  };
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    exit(EXIT_FAILURE);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    exit(EXIT_FAILURE);
  });

  const app = await buildApp(config, { logger });

  // Every signal handler is in place before sluice says it is listening.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: stopping now');
      exit(EXIT_FAILURE);
      return;
    }
    stopping = true;
    logger.info({ signal, graceMs: app.config.shutdown.grace }, 'draining: queued requests keep being released until the grace period ends');
    logger.flush();
    app.shutdown().then(
      () => {
        logger.info('stopped');
        exit(EXIT_OK);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (configPath === undefined) process.on('SIGHUP', () => logger.warn('SIGHUP ignored: quick mode has no configuration file to reload'));
  else await reloadOnChange(app, configPath, logger, () => stopping);

  try {
    const addresses = await app.listen();
    logger.info(
      {
        version: version(),
        proxy: `${addresses.proxy.address}:${addresses.proxy.port}`,
        admin: `${addresses.admin.address}:${addresses.admin.port}`,
        upstreams: config.upstreams.map((u) => `${u.prefix} -> ${u.target}`),
      },
      'sluice is listening',
    );
    logger.flush();
  } catch (err) {
    logger.fatal({ err }, 'cannot listen');
    await app.close().catch(() => undefined);
    exit(EXIT_FAILURE);
  }
}

/**
 * Hot reload on SIGHUP and on any change of the configuration file. An invalid file is logged with
 * its problems and the running configuration stays. Reloads run one at a time.
 */
async function reloadOnChange(app: SluiceApp, configPath: string, logger: Logger, stopping: () => boolean): Promise<void> {
  let lastText = await readFile(configPath, 'utf8').catch(() => '');
  let reloading = Promise.resolve();
  const reload = (reason: string): void => {
    reloading = reloading.then(async () => {
      if (stopping()) return;
      const text = await readFile(configPath, 'utf8').catch(() => undefined);
      if (text === undefined)
        return logger.error({ file: configPath, reason }, 'configuration not reloaded: the file cannot be read; the running configuration stays');
      if (reason !== 'SIGHUP' && text === lastText) return; // touched, not changed
      lastText = text;
      try {
        const report = app.reload(await loadWithOverrides(configPath));
        logger.info({ reason, ...report }, 'configuration reloaded');
        if (report.needsRestart.length > 0) logger.warn({ sections: report.needsRestart }, 'these sections changed but only apply after a restart');
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        logger.error({ reason, problems: err.problems }, 'configuration not reloaded: the file has problems; the running configuration stays');
      }
      logger.flush();
    });
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  // The directory, not the file: editors and Kubernetes ConfigMaps replace the file (a rename or
  // a symlink swap), which a watch on the file itself would stop seeing.
  let debounce: NodeJS.Timeout | undefined;
  try {
    watch(dirname(resolve(configPath)), { persistent: false }, () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => reload('file changed'), RELOAD_DEBOUNCE_MS);
      debounce.unref();
    });
  } catch (err) {
    logger.warn({ err, file: configPath }, 'cannot watch the configuration file: reload with SIGHUP');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`sluice: ${(err as Error).message ?? String(err)}\n`);
  process.exit(EXIT_FAILURE);
});
