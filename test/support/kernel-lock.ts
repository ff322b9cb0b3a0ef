/**
 * A cross-process lock for end-to-end test files. Each topology lives in its own network
 * namespaces, so files do not share netfilter state; the lock keeps timing-sensitive kernel
 * tests (1 s drop timeouts, restarts) from running all at once on a small machine, and
 * serializes anything that must touch the root namespace.
 *
 *   const lock = await acquireKernelLock();
 *   try { ... } finally { lock.release(); }
 *
 * The lock is a directory (mkdir is atomic) holding the owner's pid; a lock whose owner died is
 * taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KernelLock {
  release(): void;
}

export interface KernelLockOptions {
  /** Lock directory (default: $TMPDIR/switchyard-kernel.lock). */
  readonly path?: string;
  /** Give up after this long (default 10 minutes). */
  readonly timeoutMs?: number;
  /** Poll interval (default 200 ms). */
  readonly pollMs?: number;
}

function ownerOf(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryTake(dir: string): boolean {
  try {
    mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  }
  writeFileSync(join(dir, 'pid'), String(process.pid));
  return true;
}

/** Wait for and take the kernel lock. */
export async function acquireKernelLock(options: KernelLockOptions = {}): Promise<KernelLock> {
  const dir = options.path ?? join(tmpdir(), 'switchyard-kernel.lock');
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  let seenWithoutPid = 0;
  for (;;) {
    if (tryTake(dir)) break;
    const owner = ownerOf(dir);
    if (owner === process.pid) throw new Error('kernel lock: already held by this process');
    // A lock without a pid file for a while (its owner died between mkdir and write) is stale too.
    if (owner === undefined) seenWithoutPid++;
    else seenWithoutPid = 0;
    if ((owner !== undefined && !alive(owner)) || seenWithoutPid > 10) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`kernel lock ${dir}: still held by pid ${owner} after waiting`);
    await new Promise((r) => setTimeout(r, options.pollMs ?? 200));
  }
  let held = true;
  const onExit = (): void => release();
  function release(): void {
    if (!held) return;
    held = false;
    process.removeListener('exit', onExit);
    if (ownerOf(dir) === process.pid) rmSync(dir, { recursive: true, force: true });
  }
  process.once('exit', onExit);
  return { release };
}
