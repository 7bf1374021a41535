import { pino, type Logger } from 'pino';
import { buildApp, type AppDeps, type SluiceApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load-config.js';

export interface RunningSluice {
  readonly app: SluiceApp;
  /** `http://127.0.0.1:<port>` of the client listener. */
  readonly url: string;
  readonly adminUrl: string;
  close(): Promise<void>;
}

/**
 * Builds and starts a real sluice from YAML on 127.0.0.1 with free ports. `listen` and `admin` are
 * added when the YAML does not set them. Logs are silent unless a logger is passed.
 */
export async function startSluice(yaml: string, deps: AppDeps & { env?: Record<string, string> } = {}): Promise<RunningSluice> {
  let text = yaml;
  if (!/^listen:/m.test(text)) text = `listen: { host: 127.0.0.1, port: 0 }\n${text}`;
  if (!/^admin:/m.test(text)) text = `admin: { host: 127.0.0.1, port: 0 }\n${text}`;
  const config = parseConfig(text, { file: 'test.yaml', env: deps.env ?? {} });
  const logger: Logger = deps.logger ?? pino({ level: 'silent' });
  const app = await buildApp(config, { ...deps, logger });
  const addresses = await app.listen();
  return {
    app,
    url: `http://127.0.0.1:${addresses.proxy.port}`,
    adminUrl: `http://127.0.0.1:${addresses.admin.port}`,
    close: () => app.close(),
  };
}
