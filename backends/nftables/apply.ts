/**
 * The I/O edge of the nftables backend: runs scripts with `nft -f -` through the Executor.
 */
import type { Executor } from '../exec/executor.js';
import { ExecError } from '../exec/executor.js';

/** Applies one script atomically (`nft -f -`); throws ExecError when the kernel refuses it. */
export async function applyScript(executor: Executor, script: string, timeoutMs = 300_000): Promise<void> {
  if (script === '') return;
  await executor.run('nft', ['-f', '-'], { stdin: script, timeoutMs });
}

/** Validates a script against the kernel without committing (`nft --check -f -`). */
export async function checkScript(
  executor: Executor,
  script: string,
): Promise<{ ok: boolean; error?: string }> {
  const r = await executor.run('nft', ['--check', '-f', '-'], { stdin: script, allowFailure: true });
  return r.code === 0 ? { ok: true } : { ok: false, error: (r.stderr || r.stdout).trim() };
}

/**
 * Runs a cleanup script; a table that is already gone ("No such file or directory") is fine.
 */
export async function applyCleanup(executor: Executor, script: string): Promise<void> {
  const r = await executor.run('nft', ['-f', '-'], { stdin: script, allowFailure: true });
  if (r.code !== 0 && !/No such file or directory/i.test(r.stderr)) {
    throw new ExecError('nft', ['-f', '-'], r);
  }
}

/** `nftables v1.0.6 (Lester Gooch #5)` → `1.0.6`. */
export function parseNftVersion(output: string): string | undefined {
  return /v(\d+\.\d+(?:\.\d+)?)/.exec(output)?.[1];
}
