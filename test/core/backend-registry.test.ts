import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BackendRegistryImpl,
  PluginLoadError,
  UnknownBackendError,
  loadPlugins,
} from '../../core/backend-registry.js';
import type { BackendRegistration } from '../../plugins/sdk/index.js';

function registration(name: string): BackendRegistration {
  return { name, description: `${name} backend`, create: () => ({}) as never };
}

describe('BackendRegistryImpl', () => {
  it('registers, gets and lists names sorted', () => {
    const r = new BackendRegistryImpl();
    for (const n of ['userspace', 'iptables', 'nftables', 'ipvs']) r.register(registration(n));
    expect(r.names()).toEqual(['iptables', 'ipvs', 'nftables', 'userspace']);
    expect(r.get('ipvs')?.description).toBe('ipvs backend');
    expect(r.get('bpf')).toBeUndefined();
  });

  it('a duplicate name is an error', () => {
    const r = new BackendRegistryImpl();
    r.register(registration('nftables'));
    expect(() => r.register(registration('nftables'))).toThrow('backend "nftables" is already registered');
  });

  it('rejects invalid names and registrations without create()', () => {
    const r = new BackendRegistryImpl();
    expect(() => r.register(registration('Bad Name'))).toThrow(/invalid/);
    expect(() => r.register(registration(''))).toThrow(/invalid/);
    expect(() => r.register({ name: 'x', description: '' } as unknown as BackendRegistration)).toThrow(
      /no create/,
    );
    expect(r.names()).toEqual([]);
  });

  it('require() throws UnknownBackendError listing the known names', () => {
    const r = new BackendRegistryImpl();
    for (const n of ['nftables', 'userspace', 'iptables', 'ipvs']) r.register(registration(n));
    let err: unknown;
    try {
      r.require('x');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownBackendError);
    expect((err as Error).message).toBe(
      'unknown --proxy-mode "x"; known: iptables, ipvs, nftables, userspace',
    );
    expect((err as UnknownBackendError).known).toEqual(['iptables', 'ipvs', 'nftables', 'userspace']);
    expect(r.require('ipvs').name).toBe('ipvs');
  });
});

describe('loadPlugins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-plugins-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (rel: string, text: string): void => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  };
  write(
    'named.mjs',
    `export function register(r) { r.register({ name: 'named', description: 'd', create() { return {}; } }); }`,
  );
  write(
    'default.mjs',
    `export default { async register(r) { await Promise.resolve(); r.register({ name: 'default-a', description: 'd', create() { return {}; } }); r.register({ name: 'default-b', description: 'd', create() { return {}; } }); } };`,
  );
  write('none.mjs', `export const nothing = 1;`);
  write('throws.mjs', `export function register() { throw new Error('license expired\\nsecond line'); }`);
  write('broken.mjs', `export function register( {`);
  write(
    'node_modules/@vendor/sy-plugin/package.json',
    JSON.stringify({ name: '@vendor/sy-plugin', version: '1.0.0', type: 'module', main: 'main.js' }),
  );
  write(
    'node_modules/@vendor/sy-plugin/main.js',
    `export function register(r) { r.register({ name: 'vendor', description: 'v', create() { return {}; } }); }`,
  );

  it('loads relative, absolute and package-name modules, named or default register', async () => {
    const r = new BackendRegistryImpl();
    const added = await loadPlugins(r, ['./named.mjs', join(dir, 'default.mjs'), '@vendor/sy-plugin'], dir);
    expect(Object.fromEntries(added)).toEqual({
      './named.mjs': ['named'],
      [join(dir, 'default.mjs')]: ['default-a', 'default-b'],
      '@vendor/sy-plugin': ['vendor'],
    });
    expect(r.names()).toEqual(['default-a', 'default-b', 'named', 'vendor']);
  });

  const failures: Record<string, [string, string | RegExp]> = {
    'a missing file': ['./missing.mjs', /^--plugin \.\/missing\.mjs: cannot find module/],
    'a missing package': [
      'no-such-switchyard-plugin',
      /^--plugin no-such-switchyard-plugin: cannot find module/,
    ],
    'a module without register': [
      './none.mjs',
      '--plugin ./none.mjs: has no register(registry) export (named, or a default export with register)',
    ],
    'a register that throws (first line only)': [
      './throws.mjs',
      '--plugin ./throws.mjs: register() failed: license expired',
    ],
    'a syntax error': ['./broken.mjs', /^--plugin \.\/broken\.mjs: cannot load: /],
  };
  for (const [name, [module, message]] of Object.entries(failures)) {
    it(`${name} is one clear line naming the module`, async () => {
      const err = await loadPlugins(new BackendRegistryImpl(), [module], dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PluginLoadError);
      expect((err as Error).message).not.toContain('\n');
      if (typeof message === 'string') expect((err as Error).message).toBe(message);
      else expect((err as Error).message).toMatch(message);
    });
  }
});
