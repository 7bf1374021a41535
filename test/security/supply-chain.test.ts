import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Supply chain, as far as a test can see it offline:
 * - the lockfile is committed and matches package.json, so `npm ci` installs exactly what was
 *   reviewed;
 * - every production package in it is pinned by an integrity hash, and none has an install script:
 *   sluice needs no install scripts at runtime (test/packaging/image-entrypoint.test.ts installs
 *   with `npm ci --omit=dev --ignore-scripts` and runs the image's entrypoint against a real
 *   upstream);
 * - CI runs `npm audit --omit=dev` (.ci/run), which needs the registry, so it is not repeated here.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface LockPackage {
  readonly version?: string;
  readonly resolved?: string;
  readonly integrity?: string;
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly devOptional?: boolean;
  readonly link?: boolean;
  readonly hasInstallScript?: boolean;
  readonly dependencies?: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  lockfileVersion: number;
  packages: Record<string, LockPackage & { devDependencies?: Record<string, string> }>;
};
/** Packages installed by `npm ci --omit=dev`. */
const production = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev !== true && p.devOptional !== true);

describe('the lockfile', () => {
  it('is committed', () => {
    expect(execFileSync('git', ['ls-files', '--error-unmatch', 'package-lock.json'], { cwd: ROOT, encoding: 'utf8' }).trim()).toBe('package-lock.json');
  });

  it('matches package.json', () => {
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(2);
    const root = lock.packages[''];
    expect(root?.dependencies).toEqual(pkg.dependencies);
    expect(root?.devDependencies).toEqual(pkg.devDependencies);
  });

  it('pins every production package by version and integrity hash', () => {
    expect(production.length).toBeGreaterThan(10);
    for (const [path, p] of production) {
      if (p.link === true) continue;
      expect(p.version, path).toMatch(/^\d+\.\d+\.\d+/);
      expect(p.integrity, path).toMatch(/^sha512-/);
      // A package from a git repository or a tarball URL would not be pinned by the registry.
      if (p.resolved !== undefined) expect(p.resolved, path).toMatch(/^https:\/\/registry\.npmjs\.org\//);
    }
  });

  it('has no production package with an install script', () => {
    expect(production.filter(([, p]) => p.hasInstallScript === true).map(([path]) => path)).toEqual([]);
  });
});

describe('the package', () => {
  it('has no install scripts of its own', () => {
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts[hook], hook).toBeUndefined();
  });

  it('runs npm audit --omit=dev in CI', () => {
    expect(readFileSync(join(ROOT, '.ci', 'run'), 'utf8')).toMatch(/npm audit --omit=dev/);
  });
});
