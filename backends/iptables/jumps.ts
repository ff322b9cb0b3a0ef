/**
 * The only rules switchyard puts into built-in chains: jumps into its own chains, as kube-proxy's
 * iptablesJumpChains. Listed in the order they should end up in each built-in chain.
 */
import { CHAINS } from './names.js';

export interface JumpRule {
  readonly table: 'nat' | 'filter';
  /** The built-in chain. */
  readonly chain: string;
  /** Match + `-j TARGET`, as argv. */
  readonly spec: readonly string[];
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];
const comment = (text: string): string[] => ['-m', 'comment', '--comment', text];

/** A jump from a built-in chain into ours; `newOnly` adds `--ctstate NEW` before the comment. */
const jump = (
  table: JumpRule['table'],
  chain: string,
  newOnly: boolean,
  text: string,
  target: string,
): JumpRule => ({ table, chain, spec: [...(newOnly ? NEW : []), ...comment(text), '-j', target] });

const FIREWALL = 'switchyard load balancer firewall';
const PORTALS = 'switchyard service portals';
const EXTERNAL = 'switchyard externally-visible service portals';

export const JUMPS: readonly JumpRule[] = [
  jump('filter', 'INPUT', true, FIREWALL, CHAINS.firewall),
  jump('filter', 'INPUT', false, 'switchyard health check service ports', CHAINS.nodePorts),
  jump('filter', 'INPUT', true, EXTERNAL, CHAINS.externalServices),
  jump('filter', 'FORWARD', true, FIREWALL, CHAINS.firewall),
  jump('filter', 'FORWARD', false, 'switchyard forwarding rules', CHAINS.forward),
  jump('filter', 'FORWARD', true, PORTALS, CHAINS.services),
  jump('filter', 'FORWARD', true, EXTERNAL, CHAINS.externalServices),
  jump('filter', 'OUTPUT', true, FIREWALL, CHAINS.firewall),
  jump('filter', 'OUTPUT', true, PORTALS, CHAINS.services),
  jump('filter', 'OUTPUT', true, EXTERNAL, CHAINS.externalServices),
  jump('nat', 'PREROUTING', false, PORTALS, CHAINS.services),
  jump('nat', 'OUTPUT', false, PORTALS, CHAINS.services),
  jump('nat', 'POSTROUTING', false, 'switchyard postrouting rules', CHAINS.postrouting),
];

function quote(arg: string): string {
  return /[\s"]/.test(arg) ? `"${arg.replace(/"/g, '\\"')}"` : arg;
}

/** The restore-input line that inserts `jump` at the top of its built-in chain. */
export function jumpInsertLine(jump: JumpRule): string {
  return `-I ${jump.chain} 1 ${jump.spec.map(quote).join(' ')}`;
}

/**
 * Whether `iptables-save` output of the jump's table already holds the jump: a rule of that
 * built-in chain with our comment and our target (iptables-save normalizes the match order, so
 * the rule is recognized by those three, not by its exact text).
 */
export function jumpPresent(saveText: string, jump: JumpRule): boolean {
  const target = jump.spec[jump.spec.length - 1]!;
  const ci = jump.spec.indexOf('--comment');
  const comment = ci >= 0 ? `--comment "${jump.spec[ci + 1]}"` : undefined;
  const prefix = `-A ${jump.chain} `;
  const suffix = ` -j ${target}`;
  for (const line of saveText.split('\n')) {
    if (
      line.startsWith(prefix) &&
      line.trimEnd().endsWith(suffix) &&
      (comment === undefined || line.includes(comment))
    )
      return true;
  }
  return false;
}

/** Restore lines (per table) inserting the jumps missing from the given save outputs, in order. */
export function missingJumpLines(saves: { readonly nat: string; readonly filter: string }): {
  nat: string[];
  filter: string[];
} {
  const out: { nat: string[]; filter: string[] } = { nat: [], filter: [] };
  // Inserted at position 1 one after the other, so walk backwards to keep JUMPS' order.
  for (const jump of [...JUMPS].reverse()) {
    if (!jumpPresent(saves[jump.table], jump)) out[jump.table].push(jumpInsertLine(jump));
  }
  return out;
}

/** How many times `jump` appears in the save output (a crashed tool may have left duplicates). */
export function jumpCount(saveText: string, jump: JumpRule): number {
  let n = 0;
  for (const line of saveText.split('\n')) if (jumpPresent(line, jump)) n++;
  return n;
}

/** Restore lines (per table) deleting every jump of ours found in the save outputs. */
export function presentJumpDeleteLines(saves: { readonly nat: string; readonly filter: string }): {
  nat: string[];
  filter: string[];
} {
  const out: { nat: string[]; filter: string[] } = { nat: [], filter: [] };
  for (const jump of JUMPS) {
    const line = `-D ${jump.chain} ${jump.spec.map(quote).join(' ')}`;
    for (let i = jumpCount(saves[jump.table], jump); i > 0; i--) out[jump.table].push(line);
  }
  return out;
}
