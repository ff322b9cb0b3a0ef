/**
 * A resolved ProxyConfig for tests and benchmarks: the daemon's own defaults (parsed from an
 * empty command line, exactly as the CLI resolves them) for node-a with the test pod CIDR, then
 * `overrides`. One place, so a new ProxyConfig field never needs a dozen literal copies.
 */
import { resolveConfig } from '../../core/config/load-config.js';
import { parseArgs } from '../../core/config/parse-args.js';
import type { ProxyConfig } from '../../core/model/proxy-config.js';

export function testProxyConfig(overrides: Partial<ProxyConfig> = {}): ProxyConfig {
  const parsed = parseArgs(['--cluster-cidr=10.244.0.0/16'], {});
  if (parsed.kind !== 'run') throw new Error('an empty command line must describe a run');
  return { ...resolveConfig(parsed.flags, undefined, 'node-a').config, ...overrides };
}
