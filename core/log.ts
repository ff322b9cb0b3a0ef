import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** klog-style verbosity to a pino level: 0-1 info, 2-3 debug... 4+ trace. */
export function levelForVerbosity(v: number): string {
  if (v >= 4) return 'trace';
  if (v >= 2) return 'debug';
  return 'info';
}

/** The root logger: JSON lines on stderr (stdout stays free for `plan` / `trace` output). */
export function createLogger(verbosity = 0, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level: levelForVerbosity(verbosity), base: { component: 'switchyard' } }, destination);
}

/** A logger that discards everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
