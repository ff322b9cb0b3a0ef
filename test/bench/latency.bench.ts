/**
 * First-packet latency benchmark (issue 3 §7, issue 4 §6): how long a NEW TCP connection takes
 * (connect + one request/reply round trip) through a ClusterIP, against the same connection
 * made directly to the pod, with 1, 1 000 and 10 000 Services × 10 endpoints programmed.
 *
 * Test bed (test/support/netns-topology.ts; IP plan of DESIGN.md): one node namespace with ten
 * server pods (10.244.1.10–19, the echo servers of the test agent on :8080) and one client pod
 * (10.244.1.20), each behind its routed veth. The measured Service (port 80 → 8080) has the ten
 * real pods as endpoints; the other Services come from test/support/snapshot-gen.ts
 * (bigSnapshot: ClusterIPs 10.96.x.y, fake pod IPs, every 10th a NodePort) and the measured one
 * takes the place of the middle one, so it sits where an average Service sits in the rules.
 * Both paths cross the node's forwarding path and every netfilter hook; the ClusterIP path adds
 * the backend's Service lookup and DNAT on the first packet.
 *
 * Measurement: a small Node program inside the client pod (`ip netns exec … node -e`) opens
 * connections one at a time in a tight loop — connect, write one line, read the echo's
 * one-line reply, reset the connection (RST: no TIME_WAIT) — and times each with
 * performance.now(). Direct connections go to one of the ten pods picked at random, as the
 * kernel picks the ClusterIP's endpoint. After a warm-up, the
 * two modes alternate in blocks of 10 connections so that a change in machine load hits both alike.
 *
 * userspace: the real UserspaceBackend runs in a process of its own inside the node namespace
 * (this file with `--userspace-proxy N`; one listener per Service port, so the open-files
 * limit must exceed 11k at 10k Services), as the daemon would; the ClusterIP path then is the backend's nft redirect to its
 * listener, accept, the matcher's choice, a second connection to the pod, and the relay.
 *
 *   SWITCHYARD_BENCH_LATENCY_BACKENDS=nftables,iptables,userspace   (iptables: iptables-legacy)
 *   SWITCHYARD_BENCH_LATENCY_SCALES=1,1000,10000
 *   SWITCHYARD_BENCH_LATENCY_SAMPLES=2000                  (connections per mode and point)
 *
 * Run as root after a build: `npm run bench -- latency`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SpawnExecutor } from '../../backends/exec/executor.js';
import { nftablesRegistration } from '../../backends/nftables/index.js';
import { iptablesRegistration } from '../../backends/iptables/index.js';
import { silentLogger } from '../../core/log.js';
import type { ProxyBackend, Snapshot } from '../../core/model/snapshot.js';
import type { BackendContext } from '../../plugins/sdk/index.js';
import { proxyConfigFromFlags } from '../e2e/backend-loader.js';
import { acquireKernelLock, type KernelLock } from '../support/kernel-lock.js';
import { createTopology, type Topology } from '../support/netns-topology.js';
import { bigSnapshot, endpoint, fullDelta, servicePort, snapshotOf } from '../support/snapshot-gen.js';
import type { BenchReport, BenchTarget } from './run.js';

const PODS = 10;
const POD_PORT = 8080;
const SERVICE_PORT = 80;
const BLOCK = 10;

/**
 * The client program (CommonJS, run with `node -e`). argv[1]: JSON {direct: [[ip, port]...],
 * cluster: [[ip, port]], samples, warmup, block}. Prints one JSON line:
 * {direct: {ms: [...], errors, names}, cluster: {...}}.
 */
const CLIENT = String.raw`
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const cfg = JSON.parse(process.argv[1]);
function once(host, port) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect({ host, port, noDelay: true });
    let buf = '';
    let done = false;
    const finish = (r) => { if (done) return; done = true; clearTimeout(timer); s.resetAndDestroy(); resolve(r); };
    const timer = setTimeout(() => finish({ error: 'timeout' }), 3000);
    s.once('connect', () => s.write('x\n'));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.indexOf('\n') < 0) return;
      const ms = performance.now() - t0;
      let name = '?';
      try { name = JSON.parse(buf.slice(0, buf.indexOf('\n'))).name; } catch {}
      finish({ ms, name });
    });
    s.on('error', (e) => finish({ error: e.code || String(e) }));
  });
}
async function main() {
  const modes = { direct: cfg.direct, cluster: cfg.cluster };
  const out = {};
  for (const m of Object.keys(modes)) { out[m] = { ms: [], errors: 0, errorKinds: {}, names: {} }; }
  const one = async (m, record) => {
    // uniform random, as the kernel picks the ClusterIP's endpoint (round-robin would hit
    // each pod after the longest idle time, and measure that instead)
    const t = modes[m][Math.floor(Math.random() * modes[m].length)];
    const r = await once(t[0], t[1]);
    if (!record) return;
    const o = out[m];
    if (r.error) { o.errors++; o.errorKinds[r.error] = (o.errorKinds[r.error] || 0) + 1; return; }
    o.ms.push(r.ms);
    o.names[r.name] = (o.names[r.name] || 0) + 1;
  };
  for (let i = 0; i < cfg.warmup; i++) for (const m of Object.keys(modes)) await one(m, false);
  const order = Object.keys(modes);
  for (let done = 0, round = 0; done < cfg.samples; done += cfg.block, round++) {
    const n = Math.min(cfg.block, cfg.samples - done);
    const seq = round % 2 === 0 ? order : [...order].reverse();
    for (const m of seq) for (let i = 0; i < n; i++) await one(m, true);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
`;

interface ModeSamples {
  ms: number[];
  errors: number;
  errorKinds: Record<string, number>;
  names: Record<string, number>;
}

export interface LatencyStats {
  readonly n: number;
  readonly errors: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
  /** Distinct pods that answered. */
  readonly endpoints: number;
}

export interface LatencyPoint {
  readonly backend: string;
  readonly services: number;
  readonly syncMs: number;
  readonly direct: LatencyStats;
  readonly cluster: LatencyStats;
  /** cluster ÷ direct */
  readonly ratioP50: number;
  readonly ratioP99: number;
  /** 95 % bootstrap interval of ratioP50. */
  readonly ratioP50Interval: readonly [number, number];
  /** iptables: the measured Service's first nat rule: its position in its chain, the chain's length. */
  readonly dispatchPosition?: string;
  readonly loadavg: number;
}

/** Percentile by nearest rank of sorted values. Pure. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function stats(s: ModeSamples): LatencyStats {
  const sorted = [...s.ms].sort((a, b) => a - b);
  return {
    n: sorted.length,
    errors: s.errors,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    endpoints: Object.keys(s.names).length,
  };
}

/** Deterministic PRNG (mulberry32) for the bootstrap. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 95 % bootstrap interval of p50(b) ÷ p50(a): both samples resampled with replacement, 1000
 * times. Pure (seeded).
 */
export function medianRatioInterval(
  a: readonly number[],
  b: readonly number[],
  rounds = 1000,
): [number, number] {
  if (a.length === 0 || b.length === 0) return [NaN, NaN];
  const rand = prng(12345);
  const median = (xs: readonly number[]): number => {
    const r = new Float64Array(xs.length);
    for (let i = 0; i < r.length; i++) r[i] = xs[Math.floor(rand() * xs.length)]!;
    r.sort();
    return percentile(r, 50);
  };
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) ratios.push(median(b) / median(a));
  ratios.sort((x, y) => x - y);
  return [percentile(ratios, 2.5), percentile(ratios, 97.5)];
}

const podName = (i: number): string => `ep-${i}`;
const podIP = (i: number): string => `10.244.1.${10 + i}`;

/** N Services × 10 endpoints, the middle one being the measured Service on the real pods. */
export function latencySnapshot(services: number): { snapshot: Snapshot; vip: string } {
  const base = bigSnapshot({ services, endpointsPerService: 10, nodePortEvery: 10 });
  const ids = [...base.servicePorts.keys()];
  const id = ids[Math.floor(services / 2)]!;
  const old = base.servicePorts.get(id)!;
  const eps = Array.from({ length: PODS }, (_, i) =>
    endpoint(podIP(i), POD_PORT, { isLocal: true, nodeName: 'node-a', targetName: podName(i) }),
  );
  const measured = servicePort({
    namespace: old.namespace,
    name: old.name,
    clusterIP: old.clusterIP,
    port: SERVICE_PORT,
    nodePort: old.nodePort,
    clusterEndpoints: eps,
  });
  const ports = ids.map((x) => (x === id ? measured : base.servicePorts.get(x)!));
  return { snapshot: snapshotOf(ports), vip: old.clusterIP };
}

function context(topo: Topology, backend: string): BackendContext {
  const flags = [
    `--proxy-mode=${backend}`,
    '--hostname-override=node-a',
    '--cluster-cidr=10.244.0.0/16',
    ...(backend === 'iptables' ? ['--iptables-variant=legacy'] : []),
  ];
  return {
    config: proxyConfigFromFlags(flags),
    logger: silentLogger(),
    executor: topo.executor,
    metrics: { gauge: () => undefined, counter: () => undefined },
  };
}

async function dispatchPosition(topo: Topology, vip: string): Promise<string | undefined> {
  const r = await topo.exec('node', ['iptables-legacy-save', '-t', 'nat']);
  const rules = r.stdout.split('\n').filter((l) => l.startsWith('-A '));
  const hit = rules.find((l) => l.includes(` -d ${vip}/32 `) && / -j \S+/.test(l));
  if (!hit) return undefined;
  const chain = hit.split(' ')[1]!;
  const inChain = rules.filter((l) => l.split(' ')[1] === chain);
  return `${inChain.indexOf(hit) + 1} of ${inChain.length} in ${chain}`;
}

async function measure(topo: Topology, vip: string, samples: number): Promise<Record<string, ModeSamples>> {
  const cfg = {
    direct: Array.from({ length: PODS }, (_, i) => [podIP(i), POD_PORT]),
    cluster: [[vip, SERVICE_PORT]],
    samples,
    warmup: Math.min(200, samples),
    block: BLOCK,
  };
  const r = await topo.exec('load-pod', [process.execPath, '-e', CLIENT, JSON.stringify(cfg)], {
    timeoutMs: 600_000,
  });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as Record<string, ModeSamples>;
}

function loadNow(): number {
  try {
    return Number(execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ')[0]);
  } catch {
    return NaN;
  }
}

type BackendName = 'nftables' | 'iptables' | 'userspace';
const BACKENDS: readonly BackendName[] = ['nftables', 'iptables', 'userspace'];

/** Child mode, inside the node namespace: the userspace backend programmed with N Services. */
async function userspaceProxy(services: number): Promise<void> {
  const { UserspaceBackend } = await import('../../plugins/userspace/index.js');
  const config = proxyConfigFromFlags([
    '--proxy-mode=userspace',
    '--hostname-override=node-a',
    '--cluster-cidr=10.244.0.0/16',
  ]);
  const b = new UserspaceBackend({
    config,
    logger: silentLogger(),
    executor: new SpawnExecutor(),
    metrics: { gauge: () => undefined, counter: () => undefined },
  });
  const { snapshot } = latencySnapshot(services);
  const t = performance.now();
  await b.sync(snapshot, fullDelta(snapshot));
  process.stdout.write(`ready ${(performance.now() - t).toFixed(1)}\n`);
  process.on('SIGTERM', () => {
    void b.cleanup().finally(() => process.exit(0));
  });
}

/** Starts the userspace proxy in the node namespace; resolves with it and its sync time. */
async function startUserspaceProxy(
  topo: Topology,
  services: number,
): Promise<{ child: ChildProcess; syncMs: number }> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      topo.nodeNs,
      process.execPath,
      fileURLToPath(import.meta.url),
      '--userspace-proxy',
      String(services),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const rl = readline.createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('userspace proxy not ready in 10 min')), 600_000);
    rl.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`userspace proxy exited with ${code}`));
    });
  });
  rl.close();
  return { child, syncMs: Number(line.split(' ')[1]) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function measureBackend(
  backend: BackendName,
  scales: readonly number[],
  samples: number,
  log: (l: string) => void,
): Promise<LatencyPoint[]> {
  const topo = await createTopology({
    pods: [
      ...Array.from({ length: PODS }, (_, i) => ({ name: podName(i), tcpPorts: [POD_PORT], host: 10 + i })),
      { name: 'load-pod', host: 10 + PODS },
    ],
    ipv6: false,
  });
  const points: LatencyPoint[] = [];
  try {
    const b: ProxyBackend | undefined =
      backend === 'userspace'
        ? undefined
        : (backend === 'nftables' ? nftablesRegistration : iptablesRegistration).create(
            context(topo, backend),
          );
    for (const services of scales) {
      const { snapshot, vip } = latencySnapshot(services);
      let syncMs: number;
      let proxy: ChildProcess | undefined;
      if (b) {
        const t = performance.now();
        await b.sync(snapshot, fullDelta(snapshot));
        syncMs = performance.now() - t;
      } else {
        const started = await startUserspaceProxy(topo, services);
        proxy = started.child;
        syncMs = started.syncMs;
      }
      const position = backend === 'iptables' ? await dispatchPosition(topo, vip) : undefined;
      const load = loadNow();
      let raw: Record<string, ModeSamples>;
      try {
        raw = await measure(topo, vip, samples);
      } finally {
        if (proxy) await stopChild(proxy);
      }
      const direct = stats(raw.direct!);
      const cluster = stats(raw.cluster!);
      for (const [mode, s] of Object.entries(raw))
        if (s.errors > 0) log(`${backend} ${services}: ${mode} errors ${JSON.stringify(s.errorKinds)}`);
      if (cluster.endpoints < 2)
        throw new Error(
          `${backend} at ${services}: the ClusterIP reached ${cluster.endpoints} pod(s); DNAT not working`,
        );
      const point: LatencyPoint = {
        backend,
        services,
        syncMs,
        direct,
        cluster,
        ratioP50: cluster.p50 / direct.p50,
        ratioP99: cluster.p99 / direct.p99,
        ratioP50Interval: medianRatioInterval(raw.direct!.ms, raw.cluster!.ms),
        ...(position ? { dispatchPosition: position } : {}),
        loadavg: load,
      };
      log(
        `${backend} ${services} Services: direct p50 ${direct.p50.toFixed(3)} ms, ClusterIP p50 ${cluster.p50.toFixed(3)} ms (×${point.ratioP50.toFixed(3)}); p99 ${direct.p99.toFixed(3)} / ${cluster.p99.toFixed(3)} ms`,
      );
      points.push(point);
    }
    await b?.cleanup().catch(() => undefined);
  } finally {
    await topo.destroy();
  }
  return points;
}

const us = (ms: number): string => `${Math.round(ms * 1000)} µs`;
const pct = (r: number): string => `${r >= 1 ? '+' : '−'}${Math.abs((r - 1) * 100).toFixed(1)} %`;

export function latencyMarkdown(points: readonly LatencyPoint[], samples: number): string {
  const lines = [
    `${samples} new TCP connections per mode and point, one at a time (connect, one request line, its one-line reply; closed with RST), after ${Math.min(200, samples)} of warm-up per mode, the two modes alternating in blocks of ${BLOCK}; client pod → 10 server pods on the same node. p50 interval: 95 % bootstrap.`,
    '',
    '| backend | Services × 10 eps | direct to pod p50 / p90 / p99 | through ClusterIP p50 / p90 / p99 | ClusterIP − direct, p50 | ClusterIP vs direct, p50 [95 % interval] | p99 | errors (direct / ClusterIP) | pods answering | full sync | load avg |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const p of points) {
    lines.push(
      `| ${p.backend}${p.dispatchPosition ? ` (Service: rule ${p.dispatchPosition})` : ''} | ${p.services} | ${us(p.direct.p50)} / ${us(p.direct.p90)} / ${us(p.direct.p99)} | ${us(p.cluster.p50)} / ${us(p.cluster.p90)} / ${us(p.cluster.p99)} | ${p.cluster.p50 >= p.direct.p50 ? '+' : '−'}${us(Math.abs(p.cluster.p50 - p.direct.p50))} | ${pct(p.ratioP50)} [${pct(p.ratioP50Interval[0])} … ${pct(p.ratioP50Interval[1])}] | ${pct(p.ratioP99)} | ${p.direct.errors} / ${p.cluster.errors} | ${p.cluster.endpoints} | ${(p.syncMs / 1000).toFixed(2)} s | ${p.loadavg.toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}

export async function run(): Promise<BenchReport & { points: LatencyPoint[]; failures: string[] }> {
  if (process.getuid?.() !== 0) throw new Error('the latency benchmark needs root (network namespaces)');
  const backends = (process.env.SWITCHYARD_BENCH_LATENCY_BACKENDS ?? 'nftables,iptables,userspace')
    .split(',')
    .filter((b): b is BackendName => (BACKENDS as readonly string[]).includes(b));
  const scales = (process.env.SWITCHYARD_BENCH_LATENCY_SCALES ?? '1,1000,10000')
    .split(',')
    .map(Number)
    .filter((n) => n >= 1);
  const samples = Number(process.env.SWITCHYARD_BENCH_LATENCY_SAMPLES ?? 2000);
  const log = (l: string): void => console.error(`[latency] ${l}`);
  // iptables-legacy's lock (/run/xtables.lock) is host-wide although every namespace has its
  // own tables: a restore of another process in another namespace must not fail ours.
  process.env.XTABLES_LOCKFILE ??= join(tmpdir(), `switchyard-bench-${process.pid}.xtables.lock`);
  let lock: KernelLock | undefined;
  try {
    lock = await acquireKernelLock({ timeoutMs: 300_000 });
  } catch {
    log('kernel lock not obtained in 5 min; measuring anyway');
  }
  const points: LatencyPoint[] = [];
  const failures: string[] = [];
  try {
    for (const b of backends) {
      try {
        points.push(...(await measureBackend(b, scales, samples, log)));
      } catch (e) {
        // one backend failing (e.g. a plugin not ready) must not lose the others' figures
        log(`${b} failed: ${(e as Error).stack ?? String(e)}`);
        failures.push(`${b}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  } finally {
    lock?.release();
    rmSync(join(tmpdir(), `switchyard-bench-${process.pid}.xtables.lock`), { force: true });
  }
  const targets: BenchTarget[] = [];
  const nft10k = points.find((p) => p.backend === 'nftables' && p.services === 10000);
  if (nft10k)
    targets.push({
      name: 'nftables first-packet latency through a ClusterIP at 10k Services vs direct pod access (p50)',
      target: 'within 10 % (p50)',
      measured: `${pct(nft10k.ratioP50)} [95 %: ${pct(nft10k.ratioP50Interval[0])} … ${pct(nft10k.ratioP50Interval[1])}] (p50 ${us(nft10k.cluster.p50)} vs ${us(nft10k.direct.p50)}; p99 ${pct(nft10k.ratioP99)})`,
      met: nft10k.ratioP50 <= 1.1,
    });
  const markdown = [
    latencyMarkdown(points, samples),
    ...(failures.length ? ['', ...failures.map((f) => `**Failed:** ${f}`)] : []),
  ].join('\n');
  if (points.length === 0) throw new Error(`every backend failed: ${failures.join('; ')}`);
  return { name: 'latency', markdown, targets, points, failures };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--userspace-proxy');
  if (i > 0)
    userspaceProxy(Number(process.argv[i + 1])).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  else
    run().then(
      (r) => console.log(r.markdown),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
}
