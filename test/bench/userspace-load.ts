/**
 * The load generator and the endpoint servers of the userspace benchmark
 * (test/bench/userspace.bench.ts), kept cheap so that they are not what is measured:
 * callbacks instead of a promise per connection, no timer per connection, and the
 * connection-rate load spread over several worker processes.
 *
 * CPU time of every role is read from /proc/<pid>/stat around each phase, so a report can say
 * where the two cores went (load generator, endpoint servers, proxy) and how much CPU one
 * connection or one megabyte cost in each.
 */
import { fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/** 32 bytes, the request of one short connection. */
export const REQUEST = Buffer.from('0123456789abcdef0123456789abcdef');

/** The kernel's clock ticks per second (USER_HZ; 100 on every Linux that Node supports). */
const TICKS_PER_SECOND = 100;

/** CPU milliseconds (user + system) a process has used so far; NaN when it cannot be read. */
export function processCpuMs(pid: number): number {
  try {
    return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return NaN;
  }
}

/** user + system milliseconds from the text of /proc/<pid>/stat. Pure. */
export function statCpuMs(stat: string): number {
  // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}

/** Whole-machine CPU: busy and total milliseconds from /proc/stat (all cores). */
export function machineCpuMs(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    return cpuLineMs(line);
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/** busy and total milliseconds from the `cpu` line of /proc/stat. Pure. */
export function cpuLineMs(line: string): { busy: number; total: number } {
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is in user.
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: ((total - idle) * 1000) / TICKS_PER_SECOND, total: (total * 1000) / TICKS_PER_SECOND };
}

/** CPU used by each watched process (and the whole machine) between two moments. */
export class CpuMeter {
  private readonly start: Map<string, number>;
  private readonly machineStart: { busy: number; total: number };
  constructor(private readonly pids: Readonly<Record<string, number>>) {
    this.start = new Map(Object.entries(pids).map(([k, pid]) => [k, processCpuMs(pid)]));
    this.machineStart = machineCpuMs();
  }
  /** Milliseconds of CPU per role since the meter was made, and `machine` (busy ms, all cores). */
  read(extra: Readonly<Record<string, number>> = {}): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, pid] of Object.entries(this.pids)) out[k] = processCpuMs(pid) - (this.start.get(k) ?? NaN);
    for (const [k, v] of Object.entries(extra)) out[k] = v;
    out.machine = machineCpuMs().busy - this.machineStart.busy;
    return out;
  }
}

// ------------------------------------------------------------------ endpoint servers

/** An echo server (every byte back) on host:port. */
export function echoServer(host: string, port: number): Promise<net.Server> {
  const s = net.createServer({ noDelay: true }, (c) => {
    c.on('error', () => undefined);
    c.on('data', (d: Buffer) => c.write(d));
    c.on('end', () => c.end());
  });
  return listen(s, host, port);
}

/** A sink: counts what it receives and, at the client's end of stream, answers with the count. */
export function sinkServer(host: string, port: number): Promise<net.Server> {
  const s = net.createServer((c) => {
    let n = 0;
    c.on('error', () => undefined);
    c.on('data', (d: Buffer) => (n += d.length));
    c.on('end', () => c.end(`${n}\n`));
  });
  return listen(s, host, port);
}

/**
 * A source: reads an ASCII byte count terminated by a newline, sends that many bytes in
 * `chunk`-sized writes, then closes.
 */
export function sourceServer(host: string, port: number, chunk = 256 * 1024): Promise<net.Server> {
  const data = Buffer.alloc(chunk, 2);
  const s = net.createServer((c) => {
    c.on('error', () => undefined);
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const nl = head.indexOf('\n');
      if (nl < 0) return;
      c.off('data', onData);
      let left = Number(head.slice(0, nl));
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, data.length);
          left -= n;
          const more = c.write(n === data.length ? data : data.subarray(0, n));
          if (left === 0) c.end();
          else if (!more) return void c.once('drain', pump);
        }
      };
      pump();
    };
    c.on('data', onData);
  });
  return listen(s, host, port);
}

/** The one response of {@link httpServer}. */
const HTTP_RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');

/**
 * A minimal HTTP/1.1 endpoint for `wrk`: at the end of the first request's headers it answers
 * 200 with two bytes and closes (every request a new connection).
 */
export function httpServer(host: string, port: number): Promise<net.Server> {
  const s = net.createServer({ noDelay: true }, (c) => {
    c.on('error', () => undefined);
    let head = '';
    c.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        head = '';
        c.end(HTTP_RESPONSE);
      }
    });
  });
  return listen(s, host, port);
}

export interface WrkResult {
  readonly requestsPerSec: number;
  readonly requests: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx answers. */
  readonly errors: number;
  readonly cpuMs: number;
}

/** Parse wrk's summary: requests/s, requests, errors. Pure. */
export function parseWrk(out: string): { requestsPerSec: number; requests: number; errors: number } {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  const total = /(\d+) requests in/.exec(out)?.[1];
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
  const errors = (sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0) + Number(non2xx ?? 0);
  return { requestsPerSec: Number(rps ?? NaN), requests: Number(total ?? NaN), errors };
}

/**
 * `wrk` (if installed): `threads` threads, `connections` connections, each request with
 * `Connection: close`, i.e. one new TCP connection per request. CPU from wrk's own rusage.
 */
export function wrkRate(
  url: string,
  seconds: number,
  connections: number,
  threads: number,
  started: () => void = () => undefined,
): Promise<WrkResult | undefined> {
  return new Promise((resolve) => {
    started();
    const cpu0 = childrenCpuMs();
    const child = spawn(
      'wrk',
      [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '-H', 'Connection: close', url],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(undefined));
    child.on('exit', (code) => {
      if (code !== 0) return resolve(undefined);
      const r = parseWrk(out);
      // wrk is a child of this process: its CPU time is in /proc/self/stat's cutime/cstime
      resolve({ ...r, cpuMs: childrenCpuMs() - cpu0 });
    });
  });
}

/** CPU ms of this process's waited-for children (cutime + cstime of /proc/self/stat). */
function childrenCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** `iperf3 -s` on host:port, if iperf3 is installed; its pid, or undefined. */
export function iperfServer(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    // --forceflush: its stdout is a pipe; "Server listening on <port>" says it is up
    const child = spawn('iperf3', ['-s', '--forceflush', '-B', host, '-p', String(port)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    child.on('error', () => resolve(undefined));
    child.stdout.once('data', () => resolve(child.pid));
    const timer = setTimeout(() => resolve(child.exitCode === null ? child.pid : undefined), 3000);
    timer.unref();
    process.on('exit', () => child.kill());
  });
}

export interface IperfResult {
  /** MB/s (10^6 bytes) received by the receiving side. */
  readonly mbPerSec: number;
  /** CPU ms of the iperf3 client. */
  readonly cpuMs: number;
}

/** MB/s received, from iperf3's JSON report. Pure. */
export function parseIperf(json: string): number {
  try {
    const r = JSON.parse(json) as { end?: { sum_received?: { bits_per_second?: number } } };
    return (r.end?.sum_received?.bits_per_second ?? NaN) / 8 / 1e6;
  } catch {
    return NaN;
  }
}

/**
 * One iperf3 TCP stream to host:port for `seconds` (`reverse`: the server sends), 128 KiB
 * reads and writes (iperf3's default); undefined without iperf3.
 */
export function iperfClient(
  host: string,
  port: number,
  seconds: number,
  reverse: boolean,
): Promise<IperfResult | undefined> {
  return new Promise((resolve) => {
    const cpu0 = childrenCpuMs();
    const args = ['-c', host, '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : [])];
    const child = spawn('iperf3', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(undefined));
    child.on('exit', () => resolve({ mbPerSec: parseIperf(out), cpuMs: childrenCpuMs() - cpu0 }));
  });
}

function listen(s: net.Server, host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen({ host, port, backlog: 4096 }, () => resolve(s));
  });
}

// ------------------------------------------------------------------ the load

/** One short connection: connect, send REQUEST, wait for the echo, close; ms until the echo. */
export function oneConnection(host: string, port: number, timeoutMs = 3000): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    let got = 0;
    c.once('connect', () => c.write(REQUEST));
    c.on('data', (d: Buffer) => {
      got += d.length;
      if (got < REQUEST.length) return;
      const ms = performance.now() - t0;
      clearTimeout(timer);
      c.destroy();
      resolve(ms);
    });
    c.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export interface ConnRateResult {
  /** Connections that completed (echo received) while the clock ran. */
  readonly done: number;
  /** Connections that failed (error or closed before the echo). */
  readonly errors: number;
  /** Connections still open when the time was up (not counted as done). */
  readonly unfinished: number;
  readonly seconds: number;
  /** CPU ms of the worker process(es) during the run. */
  readonly cpuMs: number;
}

/**
 * In this process: `concurrency` loops of short connections (connect, 32 bytes, echo, close)
 * for `seconds`. Callback-driven; a loop that hangs is reported as unfinished.
 */
export function connLoops(
  host: string,
  port: number,
  seconds: number,
  concurrency: number,
): Promise<ConnRateResult> {
  return new Promise((resolve) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    let done = 0;
    let errors = 0;
    let running = concurrency;
    const open = new Set<net.Socket>();
    const finish = (): void => {
      const wall = (performance.now() - t0) / 1000;
      const unfinished = open.size;
      for (const s of open) s.destroy();
      const cpu = process.cpuUsage(cpu0);
      resolve({ done, errors, unfinished, seconds: wall, cpuMs: (cpu.user + cpu.system) / 1000 });
    };
    const stopOne = (): void => {
      if (--running === 0) finish();
    };
    const next = (): void => {
      if (performance.now() >= end) return stopOne();
      const c = net.connect({ host, port, noDelay: true });
      open.add(c);
      let got = 0;
      let counted = false;
      c.on('connect', () => c.write(REQUEST));
      c.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= REQUEST.length && !counted) {
          counted = true;
          done++;
          c.destroy();
        }
      });
      c.on('error', () => undefined);
      c.on('close', () => {
        open.delete(c);
        if (!counted) errors++;
        next();
      });
    };
    for (let i = 0; i < concurrency; i++) next();
    // Loops that never close: stop waiting for them shortly after the deadline.
    setTimeout(() => (running > 0 ? finish() : undefined), seconds * 1000 + 3000).unref();
  });
}

/**
 * `workers` child processes (`self` with role `conn-worker`, which runs {@link connWorkerMain}),
 * each running `concurrency / workers` connection loops, started together once all are up;
 * `started` is called at that moment. Their counts are summed; the CPU is each worker's own.
 */
export async function connRate(
  self: string,
  host: string,
  port: number,
  seconds: number,
  concurrency: number,
  workers: number,
  started: () => void = () => undefined,
): Promise<ConnRateResult> {
  const per = Math.max(1, Math.round(concurrency / workers));
  const children = Array.from({ length: workers }, () =>
    fork(self, ['conn-worker', host, String(port), String(seconds), String(per)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
  const messages = children.map((child) => {
    const queue: unknown[] = [];
    const waiters: ((m: unknown) => void)[] = [];
    child.on('message', (m) => (waiters.length > 0 ? waiters.shift()!(m) : queue.push(m)));
    return (): Promise<unknown> =>
      new Promise((resolve, reject) => {
        if (queue.length > 0) return resolve(queue.shift());
        waiters.push(resolve);
        child.once('exit', (code) => reject(new Error(`connection worker exited with ${code}`)));
      });
  });
  try {
    await Promise.all(messages.map((next) => next())); // 'ready'
    started();
    for (const c of children) c.send('go');
    const results = (await Promise.all(messages.map((next) => next()))) as ConnRateResult[];
    return {
      done: results.reduce((a, r) => a + r.done, 0),
      errors: results.reduce((a, r) => a + r.errors, 0),
      unfinished: results.reduce((a, r) => a + r.unfinished, 0),
      seconds: Math.max(...results.map((r) => r.seconds)),
      cpuMs: results.reduce((a, r) => a + r.cpuMs, 0),
    };
  } finally {
    // wait for every worker to be gone (reaped), so that its CPU time is not counted in a
    // later phase's children's time
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null
          ? undefined
          : new Promise((resolve) => {
              c.once('exit', resolve);
              c.kill();
            }),
      ),
    );
  }
}

/** The `conn-worker` role: `ready`, wait for `go`, run the loops, send the result. */
export function connWorkerMain(args: readonly string[]): void {
  const [host, port, seconds, concurrency] = args;
  process.once('message', () => {
    void connLoops(host!, Number(port), Number(seconds), Number(concurrency)).then((r) => {
      process.send?.(r);
      process.disconnect?.();
    });
  });
  process.send?.('ready');
}

/** Round trips of `size` bytes on one established connection to an echo server; µs each. */
export async function roundTrips(host: string, port: number, n: number, size = 64): Promise<number[]> {
  const c = net.connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  const msg = Buffer.alloc(size, 7);
  const out: number[] = [];
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    let t0 = 0;
    const send = (): void => {
      got = 0;
      t0 = performance.now();
      c.write(msg);
    };
    c.on('data', (d: Buffer) => {
      got += d.length;
      if (got < size) return;
      out.push((performance.now() - t0) * 1000);
      if (out.length < n) send();
      else resolve();
    });
    c.once('error', reject);
    send();
  });
  c.destroy();
  return out;
}

/** Upload `bytes` to a sink in 256 KiB writes; MB/s (10^6) until the sink's count came back. */
export async function upload(host: string, port: number, bytes: number): Promise<number> {
  const c = net.connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  const chunk = Buffer.alloc(256 * 1024, 1);
  const reply = new Promise<string>((resolve, reject) => {
    let s = '';
    c.on('data', (d: Buffer) => (s += d.toString()));
    c.on('end', () => resolve(s));
    c.on('error', reject);
  });
  const t0 = performance.now();
  let sent = 0;
  while (sent < bytes) {
    sent += chunk.length;
    if (!c.write(chunk)) await new Promise((r) => c.once('drain', r));
  }
  c.end();
  const text = await reply;
  const secs = (performance.now() - t0) / 1000;
  if (Number(text.trim()) !== sent) throw new Error(`sink saw ${text.trim()} of ${sent} bytes`);
  return sent / secs / 1e6;
}

/** Download `bytes` from a source server; MB/s (10^6) until its end of stream. */
export async function download(host: string, port: number, bytes: number): Promise<number> {
  const c = net.connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    c.on('data', (d: Buffer) => (got += d.length));
    c.on('end', () => resolve());
    c.on('error', reject);
    c.write(`${bytes}\n`);
  });
  const secs = (performance.now() - t0) / 1000;
  c.destroy();
  if (got !== bytes) throw new Error(`received ${got} of ${bytes} bytes`);
  return bytes / secs / 1e6;
}
