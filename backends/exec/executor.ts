import { spawn } from 'node:child_process';

export interface ExecOptions {
  /** Written to the child's stdin, then stdin is closed. */
  readonly stdin?: string;
  /** Kill the child after this long (default 120 s). */
  readonly timeoutMs?: number;
  /** Resolve instead of throwing when the exit code is not 0. */
  readonly allowFailure?: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program with an argv and optional stdin; never through a shell. */
export interface Executor {
  run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly result: ExecResult,
  ) {
    super(
      `${command} ${args.join(' ')} exited ${result.code}: ${firstLines(result.stderr || result.stdout, 20)}`,
    );
    this.name = 'ExecError';
  }
}

function firstLines(text: string, n: number): string {
  const lines = text.trim().split('\n');
  return lines.length > n
    ? [...lines.slice(0, n), `... (${lines.length - n} more lines)`].join('\n')
    : lines.join('\n');
}

/** The real Executor: child_process.spawn with an argv. */
export class SpawnExecutor implements Executor {
  run(command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: options.env ? { ...process.env, ...options.env } : process.env,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, options.timeoutMs ?? 120_000);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${command}: ${e.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const result: ExecResult = {
          code: code ?? (signal ? 128 : 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr:
            Buffer.concat(err).toString('utf8') +
            (timedOut ? `\n(killed after ${options.timeoutMs ?? 120_000} ms)` : ''),
        };
        if (result.code !== 0 && !options.allowFailure) reject(new ExecError(command, args, result));
        else resolve(result);
      });
      child.stdin.on('error', () => undefined); // EPIPE when the child exits early; the exit code says why
      child.stdin.end(options.stdin ?? '');
    });
  }
}

export interface RecordedCall {
  readonly command: string;
  readonly args: readonly string[];
  readonly stdin?: string;
}

type Responder = (call: RecordedCall) => Partial<ExecResult> | undefined;

/**
 * Records every call and answers from responders (first match wins; default: exit 0, no output).
 * For unit tests of backends, which must not touch the kernel.
 */
export class FakeExecutor implements Executor {
  readonly calls: RecordedCall[] = [];
  private readonly responders: Responder[] = [];

  /** Answer calls for which `respond` returns a result. */
  on(respond: Responder): this {
    this.responders.push(respond);
    return this;
  }

  /** Fail the next call to `command` (optionally only when its args include `arg`). */
  failNext(command: string, stderr = 'injected failure', arg?: string): this {
    let used = false;
    return this.on((c) => {
      if (used || c.command !== command || (arg !== undefined && !c.args.includes(arg))) return undefined;
      used = true;
      return { code: 1, stderr };
    });
  }

  async run(command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const call: RecordedCall = { command, args: [...args], stdin: options.stdin };
    this.calls.push(call);
    let partial: Partial<ExecResult> | undefined;
    for (const r of this.responders) {
      partial = r(call);
      if (partial) break;
    }
    const result: ExecResult = { code: 0, stdout: '', stderr: '', ...partial };
    if (result.code !== 0 && !options.allowFailure) throw new ExecError(command, args, result);
    return result;
  }

  /** Calls to one command, in order. */
  callsTo(command: string): RecordedCall[] {
    return this.calls.filter((c) => c.command === command);
  }
}
