/**
 * Userspace backend benchmark (issue 5 §6): new TCP connections per second, streamed
 * throughput, and the latency a proxy adds, for the userspace backend against nftables on the
 * same topology, and against no proxy at all.
 *
 * Topology: one throwaway network namespace per mode, the node (192.168.77.2 on one end of a
 * veth pair, its default route). Endpoint servers listen on 192.168.77.3 (a second local
 * address; echo on :8080, sink on :8081, source on :8082, a minimal HTTP server on :8083,
 * `iperf3 -s` on :5201); the Service is ClusterIP 10.96.99.1 (port 80 → echo, 81 → sink,
 * 82 → source, 83 → http, 84 → iperf3); the load generator connects to the ClusterIP from
 * the node itself (the output path). Every role is its own process, as on a node: servers,
 * load generator (its connection-rate phase in several worker processes), and for userspace
 * the proxy (a process running the real UserspaceBackend, programming its nft table); nftables
 * is programmed by the real NftablesBackend. "direct" connects to the endpoint itself.
 *
 * The namespace sets `net.ipv4.tcp_tw_reuse=1` and the ephemeral port range 10000–65000 (the
 * same for every mode): without them ~15 000 short connections in 3 s leave as many
 * TIME_WAIT sockets towards one address and port, every later connect() searches the
 * ephemeral range for a free port, and the kernel's port search, not the path under test,
 * limits the rate (and adds ~2 ms to every later connect). The proxy is itself a client of
 * the endpoint, so it needs the same on a node that relays thousands of connections per
 * second to few endpoints.
 *
 *   latency     = one connection at a time (connect, send 32 bytes, read the echo, close):
 *                 p50/p99 of connect + first round trip, 2 000 connections
 *   rtt         = 64-byte ping-pong on one established connection: p50/p99 of 5 000
 *   conn/s      = the same short connections, 64 at a time over W worker processes, for 3 s
 *   wrk conn/s  = `wrk -t2 -c64 -H 'Connection: close'` against the HTTP server for 3 s: one
 *                 new connection per request, from a load generator in C that costs a
 *                 fraction of the Node one's CPU (skipped when wrk is not installed;
 *                 scripts/setup.sh installs it)
 *   upload      = one connection sending 1 GiB to the sink (256 KiB writes)
 *   download    = one connection receiving 1 GiB from the source (256 KiB writes)
 *   iperf3      = one iperf3 TCP stream for 3 s, each way (-R: the server sends): the same
 *                 path with a sender and receiver in C, so that the endpoints cost less CPU
 *                 than the Node sink and source (skipped when iperf3 is not installed;
 *                 scripts/setup.sh installs it)
 *
 * CPU time of every role (load generator, endpoint servers, proxy; from /proc/<pid>/stat) and
 * of the whole machine is measured around the rate and streaming phases.
 *
 *   SWITCHYARD_BENCH_US_MODES=direct,nftables,userspace
 *   SWITCHYARD_BENCH_US_WORKERS=2        connection-rate worker processes
 *   SWITCHYARD_BENCH_US_CONCURRENCY=64   connections in flight, over all workers
 *   SWITCHYARD_BENCH_US_SECONDS=3        connection-rate phase
 *   SWITCHYARD_BENCH_US_PHASES=latency,rtt,conn,wrk,upload,download,iperf   (a subset)
 *   SWITCHYARD_BENCH_US_PROF=<dir>       run the userspace proxy under `node --cpu-prof`
 *   SWITCHYARD_BENCH_US_ONREAD_ACCEPTED=0  the proxy reads accepted sockets with 'data' events
 *   SWITCHYARD_BENCH_US_LARGE_BUFFER=<bytes>  the relay's large read buffer (default 256 KiB)
 *
 * Run as root after a build: `npm run bench -- userspace` or `node dist/test/bench/run.js userspace`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
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
import { machineInfo, type BenchReport, type BenchTarget } from './run.js';
import {
  connRate,
  connWorkerMain,
  CpuMeter,
  download,
  echoServer,
  oneConnection,
  roundTrips,
  sinkServer,
  sourceServer,
  upload,
  httpServer,
  wrkRate,
  iperfServer,
  iperfClient,
} from './userspace-load.js';

const VIP = '10.96.99.1';
const NODE_IP = '192.168.77.2';
const EP = '192.168.77.3';
const ECHO_PORT = 8080;
const SINK_PORT = 8081;
const SOURCE_PORT = 8082;
const HTTP_PORT = 8083;
const IPERF_PORT = 5201;
const STREAM_BYTES = 1024 * 1024 * 1024;
const SELF = fileURLToPath(import.meta.url);

type Mode = 'direct' | 'nftables' | 'userspace';
const MODES: readonly Mode[] = ['direct', 'nftables', 'userspace'];

interface LoadSettings {
  readonly workers: number;
  readonly concurrency: number;
  readonly seconds: number;
}

/** CPU milliseconds by role over a phase (`load`, `servers`, `proxy`, `machine` = all cores, busy). */
type CpuByRole = Record<string, number>;

export interface LoadResult {
  readonly connPerSec: number;
  readonly connErrors: number;
  readonly connUnfinished: number;
  readonly connCpu: CpuByRole;
  readonly connCount: number;
  /** wrk's new connections (requests with Connection: close) per second; undefined without wrk. */
  readonly wrk?: {
    readonly perSec: number;
    readonly count: number;
    readonly errors: number;
    readonly cpu: CpuByRole;
  };
  readonly latP50Ms: number;
  readonly latP99Ms: number;
  readonly latErrors: number;
  readonly rttP50Us: number;
  readonly rttP99Us: number;
  readonly uploadMBps: number;
  readonly uploadCpu: CpuByRole;
  readonly downloadMBps: number;
  readonly downloadCpu: CpuByRole;
  /** iperf3, one stream each way (MB/s), and the CPU per direction; undefined without iperf3. */
  readonly iperf?: {
    readonly upMBps: number;
    readonly downMBps: number;
    readonly upCpu: CpuByRole;
    readonly downCpu: CpuByRole;
  };
  /** 1-minute load average when the phase began. */
  readonly load: {
    readonly latency: number;
    readonly conn: number;
    readonly wrk: number;
    readonly stream: number;
  };
}

const noMetrics: BackendMetrics = { gauge: () => undefined, counter: () => undefined };

function snapshot(): ReturnType<typeof snapshotOf> {
  return snapshotOf([
    servicePort({ name: 'echo', clusterIP: VIP, port: 80, clusterEndpoints: [endpoint(EP, ECHO_PORT)] }),
    servicePort({ name: 'sink', clusterIP: VIP, port: 81, clusterEndpoints: [endpoint(EP, SINK_PORT)] }),
    servicePort({ name: 'source', clusterIP: VIP, port: 82, clusterEndpoints: [endpoint(EP, SOURCE_PORT)] }),
    servicePort({ name: 'http', clusterIP: VIP, port: 83, clusterEndpoints: [endpoint(EP, HTTP_PORT)] }),
    servicePort({ name: 'iperf', clusterIP: VIP, port: 84, clusterEndpoints: [endpoint(EP, IPERF_PORT)] }),
  ]);
}

function context(executor: Executor): BackendContext {
  const config = proxyConfigFromFlags(['--hostname-override=node-a', '--cluster-cidr=10.244.0.0/16']);
  return { config, logger: silentLogger(), executor, metrics: noMetrics };
}

/** Nearest-rank percentile of an ascending array. Pure. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

function settings(): LoadSettings {
  return {
    workers: envInt('SWITCHYARD_BENCH_US_WORKERS', 2),
    concurrency: envInt('SWITCHYARD_BENCH_US_CONCURRENCY', 64),
    seconds: envInt('SWITCHYARD_BENCH_US_SECONDS', 3),
  };
}

// ------------------------------------------------------------------ roles (child processes)

async function serveEndpoints(): Promise<void> {
  await Promise.all([
    echoServer(EP, ECHO_PORT),
    sinkServer(EP, SINK_PORT),
    sourceServer(EP, SOURCE_PORT),
    httpServer(EP, HTTP_PORT),
  ]);
  const iperf = await iperfServer(EP, IPERF_PORT);
  process.on('SIGTERM', () => process.exit(0)); // so that 'exit' stops iperf3 too
  process.stdout.write(`ready ${iperf ?? 0}\n`);
}

async function runUserspaceProxy(): Promise<void> {
  const large = envInt('SWITCHYARD_BENCH_US_LARGE_BUFFER', 0);
  const backend = new UserspaceBackend(context(new SpawnExecutor()), {
    onreadAccepted: process.env.SWITCHYARD_BENCH_US_ONREAD_ACCEPTED !== '0',
    ...(large > 0 ? { buffers: { largeSize: large } } : {}),
  });
  const snap = snapshot();
  await backend.sync(snap, fullDelta(snap));
  process.stdout.write(`ready ${backend.matcher?.implementation ?? '?'}\n`);
  process.on('SIGTERM', () => {
    void backend
      .cleanup()
      .then(() => backend.close())
      .finally(() => process.exit(0));
  });
}

async function generateLoad(
  mode: Mode,
  serverPid: number,
  proxyPid: number,
  iperfPid: number,
): Promise<void> {
  const s = settings();
  const host = mode === 'direct' ? EP : VIP;
  const [echoPort, sinkPort, sourcePort, httpPort, iperfPort] =
    mode === 'direct' ? [ECHO_PORT, SINK_PORT, SOURCE_PORT, HTTP_PORT, IPERF_PORT] : [80, 81, 82, 83, 84];
  const pids: Record<string, number> = { servers: serverPid };
  if (proxyPid > 0) pids.proxy = proxyPid;
  const streamPids: Record<string, number> = { ...pids, ...(iperfPid > 0 ? { iperf3: iperfPid } : {}) };
  const load1 = (): number => loadavg()[0] ?? NaN;

  const phases = new Set(
    (process.env.SWITCHYARD_BENCH_US_PHASES ?? 'latency,rtt,conn,wrk,upload,download,iperf').split(','),
  );
  for (let i = 0; i < 300; i++) await oneConnection(host, echoPort).catch(() => 0); // warm up
  const loadLatency = load1();
  const lat: number[] = [];
  let latErrors = 0;
  for (let i = 0; i < (phases.has('latency') ? 2000 : 0); i++) {
    try {
      lat.push(await oneConnection(host, echoPort));
    } catch {
      latErrors++;
    }
  }
  lat.sort((a, b) => a - b);
  const r = (phases.has('rtt') ? await roundTrips(host, echoPort, 5000) : []).sort((a, b) => a - b);

  const loadConn = load1();
  let meter = new CpuMeter(pids);
  const rate = phases.has('conn')
    ? await connRate(SELF, host, echoPort, s.seconds, s.concurrency, s.workers, () => {
        meter = new CpuMeter(pids);
      })
    : { done: 0, errors: 0, unfinished: 0, seconds: NaN, cpuMs: NaN };
  const connCpu = meter.read({ load: rate.cpuMs });

  const loadWrk = load1();
  const w = phases.has('wrk')
    ? await wrkRate(`http://${host}:${httpPort}/`, s.seconds, s.concurrency, 2, () => {
        meter = new CpuMeter(pids);
      })
    : undefined;
  const wrk =
    w === undefined
      ? undefined
      : {
          perSec: Math.round(w.requestsPerSec),
          count: w.requests,
          errors: w.errors,
          cpu: meter.read({ load: w.cpuMs }),
        };

  const loadStream = load1();
  const self = process.cpuUsage();
  const selfMs = (): number => {
    const u = process.cpuUsage(self);
    return (u.user + u.system) / 1000;
  };
  meter = new CpuMeter(pids);
  let mark = selfMs();
  const up = phases.has('upload') ? await upload(host, sinkPort, STREAM_BYTES) : NaN;
  const uploadCpu = meter.read({ load: selfMs() - mark });
  meter = new CpuMeter(pids);
  mark = selfMs();
  const down = phases.has('download') ? await download(host, sourcePort, STREAM_BYTES) : NaN;
  const downloadCpu = meter.read({ load: selfMs() - mark });

  let iperf: LoadResult['iperf'];
  if (phases.has('iperf') && iperfPid > 0) {
    meter = new CpuMeter(streamPids);
    const upI = await iperfClient(host, iperfPort, s.seconds, false);
    const upCpu = meter.read({ load: upI?.cpuMs ?? NaN });
    meter = new CpuMeter(streamPids);
    const downI = await iperfClient(host, iperfPort, s.seconds, true);
    const downCpu = meter.read({ load: downI?.cpuMs ?? NaN });
    if (upI && downI)
      iperf = { upMBps: Math.round(upI.mbPerSec), downMBps: Math.round(downI.mbPerSec), upCpu, downCpu };
  }

  const result: LoadResult = {
    connPerSec: Math.round(rate.done / rate.seconds),
    connErrors: rate.errors,
    connUnfinished: rate.unfinished,
    connCpu,
    connCount: rate.done,
    ...(wrk !== undefined ? { wrk } : {}),
    latP50Ms: percentile(lat, 50),
    latP99Ms: percentile(lat, 99),
    latErrors,
    rttP50Us: percentile(r, 50),
    rttP99Us: percentile(r, 99),
    uploadMBps: Math.round(up),
    uploadCpu,
    downloadMBps: Math.round(down),
    downloadCpu,
    ...(iperf !== undefined ? { iperf } : {}),
    load: { latency: loadLatency, conn: loadConn, wrk: loadWrk, stream: loadStream },
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

function startRole(
  ns: string,
  role: string,
  args: readonly string[] = [],
  nodeArgs: readonly string[] = [],
): { child: ChildProcess; line: Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...nodeArgs, SELF, role, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = readline.createInterface({ input: child.stdout! });
  const line = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} ${args.join(' ')} gave no answer within 180 s`));
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

/** Measure one mode in a namespace of its own (no TIME_WAIT or conntrack left by another mode). */
async function measure(mode: Mode): Promise<{ result: LoadResult; matcher?: string }> {
  const ns = `sybench-us-${process.pid}-${mode}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const ip = (...args: string[]): void => void execFileSync('ip', ['-n', ns, ...args]);
    const sysctl = (kv: string): void => void execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', kv]);
    ip('link', 'set', 'lo', 'up');
    ip('link', 'add', 'dummy0', 'type', 'veth', 'peer', 'name', 'dummy1');
    ip('link', 'set', 'dummy1', 'up');
    ip('link', 'set', 'dummy0', 'up');
    ip('addr', 'add', `${NODE_IP}/24`, 'dev', 'dummy0');
    ip('addr', 'add', `${EP}/32`, 'dev', 'dummy0');
    // the node's default route, so ClusterIPs are routable before any rule exists
    ip('route', 'add', 'default', 'dev', 'dummy0');
    sysctl('net.ipv4.tcp_tw_reuse=1');
    sysctl('net.ipv4.ip_local_port_range=10000 65000');
    const servers = startRole(ns, 'serve');
    let proxy: ChildProcess | undefined;
    try {
      const iperfPid = (await servers.line).split(' ')[1] ?? '0';
      let matcher: string | undefined;
      if (mode === 'nftables') {
        const snap = snapshot();
        await nftablesRegistration.create(context(new NetnsExecutor(ns))).sync(snap, fullDelta(snap));
      }
      if (mode === 'userspace') {
        const prof = process.env.SWITCHYARD_BENCH_US_PROF;
        const p = startRole(ns, 'proxy', [], prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []);
        proxy = p.child;
        matcher = (await p.line).split(' ')[1];
      }
      const load = startRole(ns, 'load', [
        mode,
        String(servers.child.pid ?? 0),
        String(proxy?.pid ?? 0),
        iperfPid,
      ]);
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

function fmt(n: number | undefined, digits = 0): string {
  return n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-';
}

function signed(n: number, digits: number): string {
  return Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(digits)}` : '-';
}

/** CPU per unit by role, e.g. "load 61 · servers 40 · proxy 95 · all 240". */
function cpuPer(cpu: CpuByRole, units: number, digits: number): string {
  const roles = ['load', 'servers', 'iperf3', 'proxy'].filter((k) => cpu[k] !== undefined);
  return [
    ...roles.map((k) => `${k} ${fmt(cpu[k]! / units, digits)}`),
    `all ${fmt(cpu.machine! / units, digits)}`,
  ].join(' · ');
}

/** The report's markdown and targets from the results of each mode. Pure. */
export function report(
  results: Partial<Record<Mode, LoadResult>>,
  s: LoadSettings,
  info: { readonly machine: string; readonly matcher: string },
): { markdown: string; targets: BenchTarget[] } {
  const d = results.direct;
  const n = results.nftables;
  const u = results.userspace;
  const rows = MODES.map((mode) => {
    const r = results[mode];
    if (!r) return `| ${mode} | - | - | - | - | - | - | - | - |`;
    const errs = r.connErrors + r.connUnfinished;
    const wrk = r.wrk ? `${r.wrk.perSec}${r.wrk.errors ? ` (${r.wrk.errors} errors)` : ''}` : '-';
    return `| ${mode} | ${fmt(r.connPerSec)}${errs ? ` (${r.connErrors} errors, ${r.connUnfinished} unfinished)` : ''} | ${wrk} | ${fmt(r.latP50Ms, 3)} / ${fmt(r.latP99Ms, 3)}${r.latErrors ? ` (${r.latErrors} errors)` : ''} | ${fmt(r.rttP50Us)} / ${fmt(r.rttP99Us)} | ${fmt(r.uploadMBps)} / ${fmt(r.downloadMBps)} | ${r.iperf ? `${r.iperf.upMBps} / ${r.iperf.downMBps}` : '-'} | ${fmt(r.load.latency, 2)} / ${fmt(r.load.conn, 2)} / ${fmt(r.load.wrk, 2)} / ${fmt(r.load.stream, 2)} |`;
  });
  const added = (base: LoadResult | undefined, label: string, over: readonly Mode[]): string[] =>
    base === undefined
      ? []
      : over
          .filter((m) => results[m] !== undefined)
          .map((m) => {
            const r = results[m]!;
            return `| ${m} vs ${label} | ${signed((r.latP50Ms - base.latP50Ms) * 1000, 0)} / ${signed((r.latP99Ms - base.latP99Ms) * 1000, 0)} | ${signed(r.rttP50Us - base.rttP50Us, 0)} / ${signed(r.rttP99Us - base.rttP99Us, 0)} |`;
          });
  const cpuRows = MODES.filter((m) => results[m] !== undefined).map((m) => {
    const r = results[m]!;
    const wrk = r.wrk ? cpuPer(r.wrk.cpu, r.wrk.count / 1000, 0) : '-';
    const ip = (cpu: CpuByRole, mbps: number): string => cpuPer(cpu, (mbps * s.seconds) / 1000, 0);
    const iperf = r.iperf
      ? `${ip(r.iperf.upCpu, r.iperf.upMBps)} ↑ / ${ip(r.iperf.downCpu, r.iperf.downMBps)} ↓`
      : '-';
    return `| ${m} | ${cpuPer(r.connCpu, r.connCount / 1000, 0)} | ${wrk} | ${cpuPer(r.uploadCpu, STREAM_BYTES / 1e9, 0)} | ${cpuPer(r.downloadCpu, STREAM_BYTES / 1e9, 0)} | ${iperf} |`;
  });
  const markdown = [
    `### userspace backend vs nftables (${info.machine}; matcher: ${info.matcher})`,
    '',
    'Node → ClusterIP → endpoint on the same node, every role its own process (see the file header);',
    `connection rate: ${s.concurrency} connections in flight over ${s.workers} load-generator processes, ${s.seconds} s.`,
    `Load average (1 min) at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (2 cores: numbers are only comparable on an otherwise idle machine).`,
    '',
    '| path | new TCP conn/s (Node echo load) | new TCP conn/s (wrk, HTTP) | connect + first RTT p50 / p99 (ms) | RTT on a connection p50 / p99 (µs) | MB/s up / down (Node sink, source) | MB/s up / down (iperf3) | load avg at latency / conn / wrk / stream |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '| added latency | connect + first RTT p50 / p99 (µs) | RTT on a connection p50 / p99 (µs) |',
    '|---|---|---|',
    ...added(n, 'nftables', ['userspace']),
    ...added(d, 'direct', ['nftables', 'userspace']),
    '',
    'CPU time by role (ms per 1 000 connections; ms per GB streamed); `all` = every process of the machine (both cores, other sessions included):',
    '',
    '| path | per 1 000 connections (Node echo load) | per 1 000 connections (wrk) | per GB uploaded (Node) | per GB downloaded (Node) | per GB, iperf3 up / down |',
    '|---|---|---|---|---|---|',
    ...cpuRows,
  ].join('\n');
  const targets: BenchTarget[] = [];
  if (u) {
    targets.push({
      name: 'userspace backend, new TCP connections/s (node → ClusterIP)',
      target: '≥ 5000/s',
      measured: `${u.connPerSec}/s with the Node load generator (direct ${d?.connPerSec ?? '-'}/s, nftables ${n?.connPerSec ?? '-'}/s)${u.wrk ? `; ${u.wrk.perSec}/s with wrk (direct ${d?.wrk?.perSec ?? '-'}/s, nftables ${n?.wrk?.perSec ?? '-'}/s)` : ''}`,
      met: Math.max(u.connPerSec, u.wrk?.perSec ?? 0) >= 5000,
    });
    const mb = Math.max(
      Math.min(u.uploadMBps, u.downloadMBps),
      u.iperf ? Math.min(u.iperf.upMBps, u.iperf.downMBps) : 0,
    );
    const pair = (r: LoadResult | undefined): string => (r ? `${r.uploadMBps} / ${r.downloadMBps}` : '-');
    const ipair = (r: LoadResult | undefined): string =>
      r?.iperf ? `${r.iperf.upMBps} / ${r.iperf.downMBps}` : '-';
    targets.push({
      name: 'userspace backend, one connection streamed (up / down)',
      target: '≥ 1 GB/s',
      measured: `Node sink/source ${pair(u)} MB/s (direct ${pair(d)}, nftables ${pair(n)}); iperf3 ${ipair(u)} MB/s (direct ${ipair(d)}, nftables ${ipair(n)})`,
      met: mb >= 1000,
    });
    if (n) {
      targets.push({
        name: 'userspace backend, added latency against nftables (new connection: connect + first RTT)',
        target: 'report p50/p99',
        measured: `${signed((u.latP50Ms - n.latP50Ms) * 1000, 0)} µs / ${signed((u.latP99Ms - n.latP99Ms) * 1000, 0)} µs`,
      });
    }
  }
  return { markdown, targets };
}

export async function run(): Promise<BenchReport & { results: Partial<Record<Mode, LoadResult>> }> {
  const wanted = (process.env.SWITCHYARD_BENCH_US_MODES ?? MODES.join(','))
    .split(',')
    .map((m) => m.trim())
    .filter((m): m is Mode => (MODES as readonly string[]).includes(m));
  const results: Partial<Record<Mode, LoadResult>> = {};
  let matcherImpl = '?';
  for (const mode of wanted) {
    const m = await measure(mode);
    results[mode] = m.result;
    if (m.matcher !== undefined) matcherImpl = m.matcher;
  }
  const { markdown, targets } = report(results, settings(), { machine: machineInfo(), matcher: matcherImpl });
  return { name: 'userspace', markdown, targets, results };
}

const role = process.argv[2];
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const main = async (): Promise<void> => {
    if (role === 'serve') return serveEndpoints();
    if (role === 'proxy') return runUserspaceProxy();
    if (role === 'load')
      return generateLoad(
        process.argv[3] as Mode,
        Number(process.argv[4]),
        Number(process.argv[5]),
        Number(process.argv[6]),
      );
    if (role === 'conn-worker') return connWorkerMain(process.argv.slice(3));
    const r = await run();
    process.stdout.write(`${r.markdown}\n`);
  };
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
