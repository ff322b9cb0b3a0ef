/**
 * Finds a data-plane backend by its --proxy-mode name for end-to-end tests, and builds the
 * pieces a backend needs (ProxyConfig from kube-proxy flags, a BackendContext), so that every
 * backend is driven exactly as the daemon drives it.
 */
import { resolveConfig } from '../../core/config/load-config.js';
import { parseArgs } from '../../core/config/parse-args.js';
import { silentLogger } from '../../core/log.js';
import type { ProxyConfig } from '../../core/model/proxy-config.js';
import type { ProxyBackend } from '../../core/model/snapshot.js';
import type { Executor } from '../../backends/exec/executor.js';
import type { BackendMetrics, BackendRegistration, BackendRegistry } from '../../plugins/sdk/index.js';

/** The resolved ProxyConfig for these kube-proxy flags (as the daemon would resolve them). */
export function proxyConfigFromFlags(flags: readonly string[]): ProxyConfig {
  const parsed = parseArgs(flags);
  if (parsed.kind !== 'run') throw new Error(`flags ${flags.join(' ')} do not describe a run`);
  return resolveConfig(parsed.flags, undefined, 'e2e-host').config;
}

const noMetrics: BackendMetrics = {
  gauge: () => undefined,
  counter: () => undefined,
};

function isRegistration(x: unknown, name: string): x is BackendRegistration {
  const r = x as BackendRegistration | undefined;
  return typeof r === 'object' && r !== null && r.name === name && typeof r.create === 'function';
}

/**
 * The registration of backend `name`: an export of backends/<name>/index.js or
 * plugins/<name>/index.js that is a BackendRegistration with that name, or a plugin's
 * `register(registry)` that registers it.
 */
export async function findBackend(name: string): Promise<BackendRegistration> {
  const tried: string[] = [];
  for (const dir of ['backends', 'plugins']) {
    const spec = `../../${dir}/${name}/index.js`;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(spec)) as Record<string, unknown>;
    } catch (e) {
      tried.push(`${dir}/${name}: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    for (const v of Object.values(mod)) if (isRegistration(v, name)) return v;
    const register = (mod.register ?? (mod.default as { register?: unknown } | undefined)?.register) as
      ((r: BackendRegistry) => void | Promise<void>) | undefined;
    if (typeof register === 'function') {
      const found: BackendRegistration[] = [];
      await register({
        register: (r) => void found.push(r),
        get: (n) => found.find((r) => r.name === n),
        names: () => found.map((r) => r.name),
      });
      const r = found.find((x) => x.name === name);
      if (r) return r;
    }
    tried.push(`${dir}/${name}: no registration named ${name}`);
  }
  throw new Error(`backend ${name} not found (${tried.join('; ')})`);
}

/** Create backend `name` programming through `executor` with this config. */
export async function createBackend(
  name: string,
  config: ProxyConfig,
  executor: Executor,
): Promise<ProxyBackend> {
  const registration = await findBackend(name);
  return registration.create({ config, logger: silentLogger(), executor, metrics: noMetrics });
}

/**
 * Backends that cannot be driven from the test process, with why: their sockets would live in
 * the test's namespace, not the node's. The daemon tests (daemon.e2e.test.ts) cover them.
 */
export const DAEMON_ONLY_BACKENDS: Readonly<Record<string, string>> = {
  userspace:
    'the userspace backend relays through sockets of its own process, which must run in the node namespace: see daemon.e2e.test.ts',
};

/**
 * One backend configuration an end-to-end file runs: `mode@option+option`. For iptables,
 * `legacy` / `nft` pick the variant and `buckets` puts the dispatch rules into bucket chains
 * whatever the number of Services (`iptables.dispatch-bucket-min=0`), so small tables exercise
 * the layout used from 1000 Service ports on.
 */
export interface E2EBackend {
  /** How it is named in test titles (`iptables@legacy`). */
  readonly label: string;
  /** The --proxy-mode. */
  readonly mode: string;
  /** Flags this configuration adds (`--iptables-variant=legacy`). */
  readonly flags: readonly string[];
}

const IPTABLES_OPTIONS: Readonly<Record<string, string>> = {
  legacy: '--iptables-variant=legacy',
  nft: '--iptables-variant=nft',
  buckets: '--backend-opt=iptables.dispatch-bucket-min=0',
};

/**
 * The backends an end-to-end file runs: SWITCHYARD_E2E_BACKENDS (comma-separated, `mode` or
 * `mode@variant`) or `defaults`. With `directOnly`, backends that only work inside the daemon
 * process (DAEMON_ONLY_BACKENDS) are left out: daemon.e2e.test.ts runs them.
 */
export function e2eBackends(defaults: string, options: { directOnly?: boolean } = {}): E2EBackend[] {
  return (process.env.SWITCHYARD_E2E_BACKENDS ?? defaults)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((label) => {
      const [mode, options] = label.split('@') as [string, string | undefined];
      const flags = (options ?? '')
        .split('+')
        .filter(Boolean)
        .map((option) => {
          const flag = mode === 'iptables' ? IPTABLES_OPTIONS[option] : undefined;
          if (flag === undefined) throw new Error(`${label}: ${mode} has no option ${option}`);
          return flag;
        });
      return { label, mode, flags };
    })
    .filter((b) => !(options.directOnly && DAEMON_ONLY_BACKENDS[b.mode] !== undefined));
}
