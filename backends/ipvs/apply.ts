/**
 * The I/O edge of the IPVS backend: every program runs through the Executor.
 */
import type { Executor } from '../exec/executor.js';
import { ExecError } from '../exec/executor.js';
import type { IPFamily } from '../../core/model/snapshot.js';
import { IPVS_INTERFACE } from './names.js';
import { kernelStateFrom } from './kernel-state.js';
import type { KernelState } from './render.js';

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
  const r = await executor.run('ipvsadm', ['--restore'], {
    stdin: script,
    timeoutMs: LONG,
    allowFailure: true,
  });
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
  await executor.run(iptablesTools(family).restore, [...WAIT, '--noflush'], {
    stdin: script,
    timeoutMs: LONG,
  });
}

/** A family's `iptables-save` output; '' when the binary is missing or fails (nothing of ours there). */
export async function saveIptables(executor: Executor, family: IPFamily): Promise<string> {
  try {
    const r = await executor.run(iptablesTools(family).save, [], { allowFailure: true, timeoutMs: LONG });
    return r.code === 0 ? r.stdout : '';
  } catch {
    return '';
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
