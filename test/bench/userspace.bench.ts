/**
 * Userspace backend benchmark (issue 5 §6): new TCP connections per second, streamed
 * throughput, and the latency a proxy adds, for the userspace backend against nftables on the
 * same topology, and against no proxy at all.
 *
 * Topology: one throwaway network namespace, the node (192.168.77.2 on one end of a veth pair, its
 * default route). Endpoint servers listen on 192.168.77.3 (a second local address; echo on
 * :8080, sink on :8081); the Service is ClusterIP 10.96.99.1 (port 80 → echo,
 * 81 → sink); the load generator connects to the ClusterIP from the node itself (the output
 * path). Every role is its own process, as on a node: servers, load generator, and for
 * userspace the proxy (a process running the real UserspaceBackend, programming its nft table);
 * nftables is programmed by the real NftablesBackend. "direct" connects to the endpoint itself.
 *
 *   conn/s      = connect, send 32 bytes, read the echo, close; 64 concurrent clients, 3 s
 *   latency     = one such connection at a time: p50/p99 of connect + first round trip
 *   rtt         = 64-byte ping-pong on one established connection: p50/p99
 *   throughput  = one connection uploading 1 GiB to the sink (256 KiB writes)
 *
 * Run as root after a build: `node dist/test/bench/run.js userspace`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  SpawnExecutor,
  type ExecOptions,
  type ExecResult,
  type Executor,
} from '../../backends/exec/executor.js';
import { nftablesRegistration } from '../../backends/nftables/index.js';
import { silentLogger } from '../../core/log.js';
import type { BackendContext, BackendMetrics } from '../../plugins/sdk/index.js';
import { UserspaceBackend } from '../../plugins/userspace/index.js';
import { proxyConfigFromFlags } from '../e2e/backend-loader.js';
import { endpoint, fullDelta, servicePort, snapshotOf } from '../support/snapshot-gen.js';
import { machineInfo } from './run.js';

const VIP = '10.96.99.1';
const NODE_IP = '192.168.77.2';
const EP = '192.168.77.3';
const ECHO_PORT = 8080;
const SINK_PORT = 8081;
const SELF = fileURLToPath(import.meta.url);

type Mode = 'direct' | 'nftables' | 'userspace';

interface LoadResult {
  readonly connPerSec: number;
  readonly connErrors: number;
  readonly connP50Ms: number;
  readonly connP99Ms: number;
  readonly rttP50Us: number;
  readonly rttP99Us: number;
  readonly mbPerSec: number;
}

const noMetrics: BackendMetrics = { gauge: () => undefined, counter: () => undefined };

function snapshot(): ReturnType<typeof snapshotOf> {
  return snapshotOf([
    servicePort({ name: 'echo', clusterIP: VIP, port: 80, clusterEndpoints: [endpoint(EP, ECHO_PORT)] }),
    servicePort({ name: 'sink', clusterIP: VIP, port: 81, clusterEndpoints: [endpoint(EP, SINK_PORT)] }),
  ]);
}

function context(executor: Executor): BackendContext {
  const config = proxyConfigFromFlags(['--hostname-override=node-a', '--cluster-cidr=10.244.0.0/16']);
  return { config, logger: silentLogger(), executor, metrics: noMetrics };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ------------------------------------------------------------------ roles (child processes)

async function serveEndpoints(): Promise<void> {
  const echo = net.createServer((c) => {
    c.setNoDelay(true);
    c.on('error', () => undefined);
    c.pipe(c);
  });
  const sink = net.createServer((c) => {
    let n = 0;
    c.on('error', () => undefined);
    c.on('data', (d: Buffer) => (n += d.length));
    c.on('end', () => c.end(`${n}\n`));
  });
  echo.listen({ host: EP, port: ECHO_PORT, backlog: 4096 });
  sink.listen({ host: EP, port: SINK_PORT, backlog: 4096 });
  await Promise.all([echo, sink].map((s) => new Promise((r) => s.once('listening', r))));
  process.stdout.write('ready\n');
}

async function runUserspaceProxy(): Promise<void> {
  const backend = new UserspaceBackend(context(new SpawnExecutor()));
  const snap = snapshot();
  await backend.sync(snap, fullDelta(snap));
  process.stdout.write(`ready ${backend.matcher?.implementation ?? '?'}\n`);
  process.on('SIGTERM', () => {
    void backend.cleanup().finally(() => process.exit(0));
  });
}

function oneConnection(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = net.connect({ host, port });
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error('timeout'));
    }, 3000);
    c.setNoDelay(true);
    c.once('connect', () => c.write('0123456789abcdef0123456789abcdef'));
    c.once('data', () => {
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

async function connRate(
  host: string,
  port: number,
  seconds: number,
  concurrency: number,
): Promise<{ perSec: number; errors: number }> {
  let done = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      try {
        await oneConnection(host, port);
        done++;
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { perSec: done / ((performance.now() - t0) / 1000), errors };
}

async function rtt(host: string, port: number, n: number): Promise<number[]> {
  const c = net.connect({ host, port });
  c.setNoDelay(true);
  await new Promise<void>((r, j) => {
    c.once('connect', () => r());
    c.once('error', j);
  });
  const msg = Buffer.alloc(64, 7);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      let got = 0;
      const on = (d: Buffer): void => {
        got += d.length;
        if (got >= msg.length) {
          c.off('data', on);
          r();
        }
      };
      c.on('data', on);
      c.write(msg);
    });
    out.push((performance.now() - t0) * 1000);
  }
  c.destroy();
  return out;
}

async function upload(host: string, port: number, bytes: number): Promise<number> {
  const c = net.connect({ host, port });
  await new Promise<void>((r, j) => {
    c.once('connect', () => r());
    c.once('error', j);
  });
  const chunk = Buffer.alloc(256 * 1024, 1);
  const t0 = performance.now();
  let sent = 0;
  while (sent < bytes) {
    sent += chunk.length;
    if (!c.write(chunk)) await new Promise((r) => c.once('drain', r));
  }
  c.end();
  const reply = await new Promise<string>((r) => {
    let s = '';
    c.on('data', (d: Buffer) => (s += d.toString()));
    c.on('end', () => r(s));
  });
  const secs = (performance.now() - t0) / 1000;
  if (Number(reply.trim()) !== sent) throw new Error(`sink saw ${reply.trim()} of ${sent} bytes`);
  return sent / secs / 1e6;
}

async function generateLoad(mode: Mode): Promise<void> {
  const host = mode === 'direct' ? EP : VIP;
  const echoPort = mode === 'direct' ? ECHO_PORT : 80;
  const sinkPort = mode === 'direct' ? SINK_PORT : 81;
  for (let i = 0; i < 200; i++) await oneConnection(host, echoPort).catch(() => 0); // warm up
  const rate = await connRate(host, echoPort, 3, 64);
  const lat: number[] = [];
  for (let i = 0; i < 2000; i++) lat.push(await oneConnection(host, echoPort).catch(() => Infinity));
  lat.sort((a, b) => a - b);
  const r = (await rtt(host, echoPort, 5000)).sort((a, b) => a - b);
  const mb = await upload(host, sinkPort, 1024 * 1024 * 1024);
  const result: LoadResult = {
    connPerSec: Math.round(rate.perSec),
    connErrors: rate.errors,
    connP50Ms: percentile(lat, 50),
    connP99Ms: percentile(lat, 99),
    rttP50Us: percentile(r, 50),
    rttP99Us: percentile(r, 99),
    mbPerSec: Math.round(mb),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ------------------------------------------------------------------ the parent

class NetnsExecutor implements Executor {
  private readonly inner = new SpawnExecutor();
  constructor(private readonly ns: string) {}
  run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return this.inner.run('ip', ['netns', 'exec', this.ns, command, ...args], options);
  }
}

function startRole(ns: string, role: string, arg?: string): { child: ChildProcess; line: Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SELF, role, ...(arg ? [arg] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = readline.createInterface({ input: child.stdout! });
  const line = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} ${arg ?? ''} gave no answer within 180 s`));
    }, 180_000);
    rl.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited with ${code}`));
    });
  });
  return { child, line };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/** Measure one mode in a namespace of its own (no TIME_WAIT or conntrack left by another mode). */
async function measure(mode: Mode): Promise<{ result: LoadResult; matcher?: string }> {
  const ns = `sybench-us-${process.pid}-${mode}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const ip = (...args: string[]): void => void execFileSync('ip', ['-n', ns, ...args]);
    ip('link', 'set', 'lo', 'up');
    ip('link', 'add', 'dummy0', 'type', 'veth', 'peer', 'name', 'dummy1');
    ip('link', 'set', 'dummy1', 'up');
    ip('link', 'set', 'dummy0', 'up');
    ip('addr', 'add', `${NODE_IP}/24`, 'dev', 'dummy0');
    ip('addr', 'add', `${EP}/32`, 'dev', 'dummy0');
    // the node's default route, so ClusterIPs are routable before any rule exists
    ip('route', 'add', 'default', 'dev', 'dummy0');
    const servers = startRole(ns, 'serve');
    let proxy: ChildProcess | undefined;
    try {
      await servers.line;
      let matcher: string | undefined;
      if (mode === 'nftables') {
        const snap = snapshot();
        await nftablesRegistration.create(context(new NetnsExecutor(ns))).sync(snap, fullDelta(snap));
      }
      if (mode === 'userspace') {
        const p = startRole(ns, 'proxy');
        proxy = p.child;
        matcher = (await p.line).split(' ')[1];
      }
      const load = startRole(ns, 'load', mode);
      const result = JSON.parse(await load.line) as LoadResult;
      await new Promise((r) => load.child.once('exit', r));
      return { result, ...(matcher !== undefined ? { matcher } : {}) };
    } finally {
      if (proxy) await stop(proxy);
      await stop(servers.child);
    }
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

export async function run(): Promise<{
  name: string;
  markdown: string;
  results: Record<string, LoadResult>;
}> {
  const results: Record<string, LoadResult> = {};
  let matcherImpl = '?';
  for (const mode of ['direct', 'nftables', 'userspace'] as const) {
    const m = await measure(mode);
    results[mode] = m.result;
    if (m.matcher !== undefined) matcherImpl = m.matcher;
  }
  const d = results.direct;
  const added = (m: LoadResult | undefined, pick: (r: LoadResult) => number): string =>
    m && d ? fmt(pick(m) - pick(d), 3) : '-';
  const rows = (['direct', 'nftables', 'userspace'] as const).map((mode) => {
    const r = results[mode];
    if (!r) return `| ${mode} | - | - | - | - | - |`;
    return `| ${mode} | ${r.connPerSec}${r.connErrors ? ` (${r.connErrors} errors)` : ''} | ${fmt(r.connP50Ms, 3)} / ${fmt(r.connP99Ms, 3)} | ${fmt(r.rttP50Us)} / ${fmt(r.rttP99Us)} | ${r.mbPerSec} | ${added(r, (x) => x.connP50Ms)} / ${added(r, (x) => x.connP99Ms)} |`;
  });
  const markdown = [
    `### userspace backend vs nftables (${machineInfo()}; matcher: ${matcherImpl})`,
    '',
    'Node → ClusterIP → endpoint on the same node, every role its own process (see the file header).',
    `Load average at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (2 cores: numbers are only comparable on an idle machine).`,
    '',
    '| path | new TCP conn/s (64 clients) | connect + first RTT p50 / p99 (ms) | RTT on a connection p50 / p99 (µs) | upload MB/s (1 conn) | added connect latency vs direct p50 / p99 (ms) |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  return { name: 'userspace', markdown, results };
}

const role = process.argv[2];
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const main = async (): Promise<void> => {
    if (role === 'serve') return serveEndpoints();
    if (role === 'proxy') return runUserspaceProxy();
    if (role === 'load') return generateLoad(process.argv[3] as Mode);
    const r = await run();
    process.stdout.write(`${r.markdown}\n`);
  };
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
