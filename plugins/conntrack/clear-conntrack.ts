/**
 * The I/O half of the UDP conntrack cleanup: one `conntrack -D` per deletion, a few at a time.
 */
import type { Logger } from 'pino';
import type { Executor } from '../../backends/exec/executor.js';
import type { IPFamily } from '../../core/model/snapshot.js';
import { conntrackArgs, type ConntrackDeletion } from './stale-udp-flows.js';

const CONCURRENCY = 4;

/**
 * Deletes the flows; "0 flow entries have been deleted" (exit 1) is not an error. Never
 * throws: a failure is logged (a stale UDP flow is not worth failing a sync for). Returns the
 * number of deletions that failed.
 */
export async function clearConntrack(
  executor: Executor,
  deletions: readonly ConntrackDeletion[],
  logger: Logger,
): Promise<number> {
  let failed = 0;
  let next = 0;
  let missingBinary = false;
  const worker = async (): Promise<void> => {
    while (next < deletions.length && !missingBinary) {
      const d = deletions[next++]!;
      const args = conntrackArgs(d);
      try {
        const r = await executor.run('conntrack', args, { allowFailure: true, timeoutMs: 30_000 });
        const text = `${r.stdout}\n${r.stderr}`;
        if (r.code !== 0 && !/0 flow entries/i.test(text)) {
          failed++;
          logger.warn({ args, code: r.code, stderr: r.stderr.trim() }, 'conntrack -D failed');
        }
      } catch (e) {
        failed++;
        if (/cannot run/.test(String(e))) missingBinary = true;
        logger.warn({ args, err: String(e) }, 'conntrack -D could not run');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, deletions.length) }, worker));
  if (missingBinary) failed += deletions.length - next;
  if (deletions.length > 0)
    logger.debug({ deletions: deletions.length, failed }, 'cleared stale UDP conntrack entries');
  return failed;
}

/**
 * `conntrack -L -p udp -f <family>` output, or '' when it cannot be listed (no conntrack tool,
 * no permission): the start-up sweep is best effort.
 */
export async function listUdpConntrack(
  executor: Executor,
  family: IPFamily,
  logger: Logger,
): Promise<string> {
  try {
    const r = await executor.run(
      'conntrack',
      ['-L', '-p', 'udp', '-f', family === 'IPv4' ? 'ipv4' : 'ipv6'],
      {
        allowFailure: true,
        timeoutMs: 30_000,
      },
    );
    if (r.code !== 0) logger.debug({ code: r.code, stderr: r.stderr.trim() }, 'conntrack -L failed');
    return r.code === 0 ? r.stdout : '';
  } catch (e) {
    logger.debug({ err: String(e) }, 'conntrack -L could not run');
    return '';
  }
}
