/**
 * Which iptables the host uses: legacy (x_tables) or nft (iptables-nft over nf_tables).
 * Detected as kube-proxy's images do (kubernetes-sigs/iptables-wrappers): a variant that already
 * holds switchyard's chains wins (a restart keeps its variant); then one holding kubelet's
 * KUBE-IPTABLES-HINT / KUBE-KUBELET-CANARY chains; then the one with more rules; a tie is nft.
 */
import type { Executor } from '../../backends/exec/executor.js';
import type { IPFamily } from '../../core/model/snapshot.js';
import { CHAINS } from './names.js';

export type IptablesVariant = 'legacy' | 'nft';

export interface VariantTools {
  readonly restore: string;
  readonly save: string;
  readonly iptables: string;
}

/** The binaries of one variant and family, e.g. ip6tables-nft-restore. */
export function toolsFor(variant: IptablesVariant, family: IPFamily): VariantTools {
  const base = family === 'IPv4' ? 'iptables' : 'ip6tables';
  return {
    restore: `${base}-${variant}-restore`,
    save: `${base}-${variant}-save`,
    iptables: `${base}-${variant}`,
  };
}

export interface SaveSummary {
  /** Rule lines (`-A ...`). */
  readonly rules: number;
  readonly hasOwnChains: boolean;
  readonly hasKubeletHint: boolean;
}

/** Summarize `*-save` output for detection. Pure. */
export function summarizeSave(save: string): SaveSummary {
  let rules = 0;
  let hasOwnChains = false;
  let hasKubeletHint = false;
  for (const line of save.split('\n')) {
    if (line.startsWith('-')) rules++;
    else if (line.startsWith(':')) {
      if (line.startsWith(`:${CHAINS.services} `) || line.startsWith(`:${CHAINS.postrouting} `))
        hasOwnChains = true;
      if (line.startsWith(':KUBE-IPTABLES-HINT ') || line.startsWith(':KUBE-KUBELET-CANARY '))
        hasKubeletHint = true;
    }
  }
  return { rules, hasOwnChains, hasKubeletHint };
}

/** The detection rule, pure: legacy and nft summaries (both families concatenated) → variant + why. */
export function chooseVariant(
  legacy: SaveSummary,
  nft: SaveSummary,
): { variant: IptablesVariant; reason: string } {
  if (legacy.hasOwnChains !== nft.hasOwnChains) {
    return legacy.hasOwnChains
      ? { variant: 'legacy', reason: 'switchyard chains found in iptables-legacy' }
      : { variant: 'nft', reason: 'switchyard chains found in iptables-nft' };
  }
  if (legacy.hasKubeletHint !== nft.hasKubeletHint) {
    return legacy.hasKubeletHint
      ? { variant: 'legacy', reason: 'kubelet hint chain found in iptables-legacy' }
      : { variant: 'nft', reason: 'kubelet hint chain found in iptables-nft' };
  }
  if (legacy.rules > nft.rules) {
    return { variant: 'legacy', reason: `more rules in iptables-legacy (${legacy.rules} > ${nft.rules})` };
  }
  return {
    variant: 'nft',
    reason: `iptables-nft has as many or more rules (${nft.rules} >= ${legacy.rules})`,
  };
}

async function saveOutput(executor: Executor, variant: IptablesVariant): Promise<string | undefined> {
  let out = '';
  let any = false;
  for (const family of ['IPv4', 'IPv6'] as const) {
    try {
      const r = await executor.run(toolsFor(variant, family).save, [], {
        allowFailure: true,
        timeoutMs: 30_000,
      });
      if (r.code === 0) {
        any = true;
        out += r.stdout;
      }
    } catch {
      // binary missing: this variant is not available
    }
  }
  return any ? out : undefined;
}

/** Detect the host's variant. Runs both variants' `*-save` once; changes nothing. */
export async function detectVariant(
  executor: Executor,
): Promise<{ variant: IptablesVariant; reason: string }> {
  const [legacy, nft] = await Promise.all([saveOutput(executor, 'legacy'), saveOutput(executor, 'nft')]);
  if (legacy === undefined && nft === undefined)
    return { variant: 'nft', reason: 'neither variant could be listed; assuming nft' };
  if (legacy === undefined) return { variant: 'nft', reason: 'only iptables-nft is available' };
  if (nft === undefined) return { variant: 'legacy', reason: 'only iptables-legacy is available' };
  return chooseVariant(summarizeSave(legacy), summarizeSave(nft));
}
