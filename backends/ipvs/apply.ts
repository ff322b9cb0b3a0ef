/**
 * The I/O edge of the IPVS backend: every program runs through the Executor.
 */
import type { Executor } from '../exec/executor.js';
import { ExecError } from '../exec/executor.js';
import type { IPFamily } from '../../core/model/snapshot.js';
import { IPVS_INTERFACE } from './names.js';
import { kernelStateFrom } from './kernel-state.js';
import { JUMPS, type KernelState } from './render.js';

const WAIT = ['-w', '5'];
const LONG = 600_000;

export function iptablesTools(family: IPFamily): { iptables: string; restore: string; save: string } {
  const base = family === 'IPv4' ? 'iptables' : 'ip6tables';
  return { iptables: base, restore: `${base}-restore`, save: `${base}-save` };
}

/**
 * `ipvsadm --restore` runs every line and exits 0 even when some fail (it prints the error and
 * goes on), so anything on stderr is a failure.
 */
export async function applyIpvs(executor: Executor, script: string): Promise<void> {
  if (script === '') return;
  const r = await executor.run('ipvsadm', ['--restore'], { stdin: script, timeoutMs: LONG, allowFailure: true });
  if (r.code !== 0 || r.stderr.trim() !== '') throw new ExecError('ipvsadm', ['--restore'], r);
}

export async function applyIpset(executor: Executor, script: string): Promise<void> {
  if (script === '') return;
  await executor.run('ipset', ['restore', '-exist'], { stdin: script, timeoutMs: LONG });
}

export async function applyAddresses(executor: Executor, script: string): Promise<void> {
  if (script === '') return;
  await executor.run('ip', ['-batch', '-'], { stdin: script, timeoutMs: LONG });
}

export async function applyIptables(executor: Executor, family: IPFamily, script: string): Promise<void> {
  await executor.run(iptablesTools(family).restore, [...WAIT, '--noflush'], { stdin: script, timeoutMs: LONG });
}

/** `-C` each jump; `-I ... 1` the missing ones (in reverse, so the final order holds). */
export async function ensureJumps(executor: Executor, family: IPFamily): Promise<void> {
  const tool = iptablesTools(family).iptables;
  for (const j of [...JUMPS].reverse()) {
    const check = await executor.run(tool, [...WAIT, '-t', j.table, '-C', j.chain, ...j.spec], { allowFailure: true });
    if (check.code === 0) continue;
    await executor.run(tool, [...WAIT, '-t', j.table, '-I', j.chain, '1', ...j.spec]);
  }
}

/** Remove every copy of our jumps in one family (a missing chain or binary is fine). */
export async function deleteJumps(executor: Executor, family: IPFamily): Promise<void> {
  const tool = iptablesTools(family).iptables;
  for (const j of JUMPS) {
    for (let i = 0; i < 16; i++) {
      const r = await executor.run(tool, [...WAIT, '-t', j.table, '-D', j.chain, ...j.spec], { allowFailure: true });
      if (r.code !== 0) break;
    }
  }
}

/** Whether a family's table holds any of our chains (`iptables-save -t TABLE`). */
export async function tableHasOwnChains(executor: Executor, family: IPFamily, table: 'nat' | 'filter'): Promise<boolean> {
  try {
    const r = await executor.run(iptablesTools(family).save, ['-t', table], { allowFailure: true, timeoutMs: LONG });
    return r.code === 0 && /^:SYV-/m.test(r.stdout);
  } catch {
    return false; // binary missing
  }
}

/** Lists what the kernel holds: IPVS, our ipsets, the node's addresses, our interface. */
export async function readKernelState(executor: Executor): Promise<KernelState> {
  const [ipvs, ipset, addr, link] = await Promise.all([
    executor.run('ipvsadm', ['-Sn'], { timeoutMs: LONG }),
    executor.run('ipset', ['save'], { timeoutMs: LONG, allowFailure: true }),
    executor.run('ip', ['-o', 'addr', 'show'], { timeoutMs: LONG }),
    executor.run('ip', ['-o', 'link', 'show', 'dev', IPVS_INTERFACE], { allowFailure: true }),
  ]);
  return kernelStateFrom(ipvs.stdout, ipset.code === 0 ? ipset.stdout : '', addr.stdout, link.code === 0);
}
