/**
 * iptables backend benchmark (issue 4): full sync and one-endpoint partial sync at 1k and 10k
 * Services × 10 endpoints, for iptables-legacy and iptables-nft, each in a throwaway network
 * namespace, next to the time `iptables-restore` alone takes for the same input (replayed in a
 * fresh namespace for the full sync; the partial sync's own restore call for the partial).
 *
 *   own time = sync wall time − time spent in child processes (restore, save, -C checks)
 *
 * Run as root: `npm run bench` (all benches) or, after a build, `node dist/test/bench/iptables.bench.js`.
 * Scales can be narrowed with SWITCHYARD_BENCH_IPTABLES="1000,10000" and
 * SWITCHYARD_BENCH_IPTABLES_VARIANTS="legacy,nft".
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  SpawnExecutor,
  type ExecOptions,
  type ExecResult,
  type Executor,
} from '../../backends/exec/executor.js';
import { IptablesBackend } from '../../backends/iptables/iptables-backend.js';
import { silentLogger } from '../../core/log.js';
import type { ProxyConfig } from '../../core/model/proxy-config.js';
import type { EndpointPlan, ServicePortPlan, Snapshot, SnapshotDelta } from '../../core/model/snapshot.js';

type Variant = 'legacy' | 'nft';

/** Runs in a namespace and accounts the wall time of every child process by command. */
class TimedNetnsExecutor implements Executor {
  readonly spent = new Map<string, number>();
  readonly inputs: { command: string; stdin?: string }[] = [];
  private readonly inner = new SpawnExecutor();
  constructor(private readonly netns: string) {}

  reset(): void {
    this.spent.clear();
    this.inputs.length = 0;
  }

  total(): number {
    let t = 0;
    for (const v of this.spent.values()) t += v;
    return t;
  }

  async run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const t = performance.now();
    try {
      return await this.inner.run('ip', ['netns', 'exec', this.netns, command, ...args], options);
    } finally {
      this.spent.set(command, (this.spent.get(command) ?? 0) + performance.now() - t);
      this.inputs.push({ command, stdin: options?.stdin });
    }
  }
}

function endpoint(ip: string, isLocal: boolean): EndpointPlan {
  return { ip, port: 8080, ready: true, serving: true, terminating: false, isLocal };
}

function servicePort(i: number, eps: readonly EndpointPlan[]): ServicePortPlan {
  const name = `svc-${i}`;
  const nodePort = i % 10 === 0 ? 30000 + (i % 2700) : undefined;
  return {
    id: `bench/${name}:http/TCP/IPv4`,
    serviceKey: `bench/${name}`,
    namespace: 'bench',
    name,
    portName: 'http',
    protocol: 'TCP',
    family: 'IPv4',
    clusterIP: `10.96.${(i >> 8) & 255}.${i & 255}`,
    port: 80,
    nodePort,
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerSourceRanges: [],
    internalPolicyLocal: false,
    externalPolicyLocal: false,
    clusterEndpoints: eps,
    localEndpoints: eps.filter((e) => e.isLocal),
    internalEndpoints: eps,
    externalEndpoints: nodePort !== undefined ? eps : [],
    shortCircuitEndpoints: [],
    reachableEndpoints: eps,
    allEndpoints: eps,
    internal: 'forward',
    external: nodePort !== undefined ? 'forward' : 'reject',
  };
}

function endpointsFor(i: number, perService: number): EndpointPlan[] {
  const eps: EndpointPlan[] = [];
  for (let j = 0; j < perService; j++) {
    const n = i * perService + j;
    eps.push(endpoint(`10.244.${(n >> 8) & 255}.${n & 255}`, j === 0));
  }
  return eps;
}

/** A cluster of `services` ClusterIP Services (every 10th a NodePort) × `perService` endpoints. */
export function benchSnapshot(services: number, perService: number): Snapshot {
  const map = new Map<string, ServicePortPlan>();
  for (let i = 0; i < services; i++) {
    const p = servicePort(i, endpointsFor(i, perService));
    map.set(p.id, p);
  }
  return {
    generation: 1,
    nodeName: 'node-a',
    nodeLabels: {},
    nodeIPs: { IPv4: ['192.168.77.2'], IPv6: [] },
    families: ['IPv4'],
    clusterCIDRs: { IPv4: ['10.244.0.0/16'], IPv6: [] },
    masqueradeAll: false,
    nodePortAddresses: { IPv4: { kind: 'all' }, IPv6: { kind: 'all' } },
    servicePorts: map,
    healthChecks: [],
  };
}

function config(variant: Variant): ProxyConfig {
  return {
    mode: 'iptables',
    hostname: 'node-a',
    clusterCIDRs: ['10.244.0.0/16'],
    nodePortAddresses: ['all'],
    masqueradeAll: false,
    masqueradeBit: 14,
    healthzBindAddress: '',
    metricsBindAddress: '',
    minSyncPeriodMs: 1000,
    syncPeriodMs: 30000,
    cleanup: false,
    verbosity: 0,
    plugins: [],
    iptables: { variant, localhostNodePorts: true },
    ipvs: { scheduler: 'rr', strictARP: false, tcpTimeoutMs: 0, tcpFinTimeoutMs: 0, udpTimeoutMs: 0, excludeCIDRs: [] },
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeoutMs: 0, tcpCloseWaitTimeoutMs: 0, udpTimeoutMs: 0, udpStreamTimeoutMs: 0 },
    backendOptions: {},
  };
}

export interface IptablesBenchRow {
  readonly variant: Variant;
  readonly services: number;
  readonly endpoints: number;
  readonly fullSyncMs: number;
  readonly fullRenderMs: number;
  readonly fullOwnMs: number;
  readonly fullOtherExecMs: number;
  readonly fullRestoreAloneMs: number;
  readonly fullRestoreLines: number;
  readonly partialSyncMs: number;
  readonly partialOwnMs: number;
  readonly partialRestoreMs: number;
  readonly partialRestoreLines: number;
  readonly rssMB: number;
}

function timeRestoreAlone(variant: Variant, text: string): number {
  const ns = `swy-bench-ipt-${process.pid}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const t = performance.now();
    execFileSync('ip', ['netns', 'exec', ns, `iptables-${variant}-restore`, '-w', '5', '--noflush'], { input: text, maxBuffer: 1 << 30 });
    return performance.now() - t;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

async function benchOne(variant: Variant, services: number, perService: number): Promise<IptablesBenchRow> {
  const ns = `swy-bench-ipt-${process.pid}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const exec = new TimedNetnsExecutor(ns);
  const noMetrics = { gauge: (): void => undefined, counter: (): void => undefined };
  const backend = new IptablesBackend(
    { config: config(variant), logger: silentLogger(), executor: exec, metrics: noMetrics },
    { afterSync: async () => undefined },
  );
  try {
    const snap = benchSnapshot(services, perService);
    const full: SnapshotDelta = { full: true, changed: new Set(snap.servicePorts.keys()), removed: new Set() };
    await backend.variant();
    exec.reset();
    let t = performance.now();
    const r1 = await backend.sync(snap, full);
    const fullSyncMs = performance.now() - t;
    const fullExec = exec.total();
    const restoreName = `iptables-${variant}-restore`;
    const fullText = exec.inputs.find((i) => i.command === restoreName)?.stdin ?? '';
    const fullRestoreInSync = exec.spent.get(restoreName) ?? 0;
    const rssMB = process.memoryUsage().rss / 1048576;

    // One endpoint of one Service changes.
    const id = [...snap.servicePorts.keys()][Math.floor(services / 2)]!;
    const old = snap.servicePorts.get(id)!;
    const eps = [...old.allEndpoints];
    eps[eps.length - 1] = endpoint('10.250.0.1', false);
    const next = servicePort(Math.floor(services / 2), eps);
    const map = new Map(snap.servicePorts);
    map.set(id, next);
    const snap2: Snapshot = { ...snap, generation: 2, servicePorts: map };
    exec.reset();
    t = performance.now();
    const r2 = await backend.sync(snap2, { full: false, changed: new Set([id]), removed: new Set() });
    const partialSyncMs = performance.now() - t;
    if (r2.full) throw new Error('partial sync fell back to full');
    const partialText = exec.inputs.find((i) => i.command === restoreName)?.stdin ?? '';

    const fullRestoreAloneMs = timeRestoreAlone(variant, fullText);
    return {
      variant,
      services,
      endpoints: perService,
      fullSyncMs,
      fullRenderMs: r1.stats?.renderMs ?? 0,
      fullOwnMs: fullSyncMs - fullExec,
      fullOtherExecMs: fullExec - fullRestoreInSync,
      fullRestoreAloneMs,
      fullRestoreLines: fullText.split('\n').length,
      partialSyncMs,
      partialOwnMs: partialSyncMs - exec.total(),
      partialRestoreMs: exec.spent.get(restoreName) ?? 0,
      partialRestoreLines: partialText.split('\n').length,
      rssMB,
    };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const f0 = (n: number): string => n.toFixed(0);

export function toMarkdown(rows: readonly IptablesBenchRow[]): string {
  const head =
    '| variant | Services × eps | full sync (ms) | own time (ms) | own / restore-alone | render (ms) | save + -C checks (ms) | iptables-restore alone (ms) | restore input (lines) | 1-endpoint sync (ms) | of which own (ms) | of which restore (ms) | partial input (lines) | RSS (MB) |\n' +
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|';
  const body = rows.map(
    (r) =>
      `| ${r.variant} | ${r.services} × ${r.endpoints} | ${f0(r.fullSyncMs)} | ${f0(r.fullOwnMs)} | ${((100 * r.fullOwnMs) / r.fullRestoreAloneMs).toFixed(1)}% | ${f0(r.fullRenderMs)} | ${f0(r.fullOtherExecMs)} | ${f0(r.fullRestoreAloneMs)} | ${r.fullRestoreLines} | ${f0(r.partialSyncMs)} | ${f0(r.partialOwnMs)} | ${f0(r.partialRestoreMs)} | ${r.partialRestoreLines} | ${f0(r.rssMB)} |`,
  );
  return [head, ...body].join('\n');
}

export async function run(): Promise<{ name: string; markdown: string; rows: IptablesBenchRow[] }> {
  const scales = (process.env.SWITCHYARD_BENCH_IPTABLES ?? '1000,10000').split(',').map(Number).filter((n) => n > 0);
  const variants = (process.env.SWITCHYARD_BENCH_IPTABLES_VARIANTS ?? 'legacy,nft').split(',') as Variant[];
  const rows: IptablesBenchRow[] = [];
  for (const services of scales) {
    for (const variant of variants) {
      const row = await benchOne(variant, services, 10);
      rows.push(row);
      console.error(`iptables bench: ${variant} ${services}×10 full ${f0(row.fullSyncMs)} ms (restore alone ${f0(row.fullRestoreAloneMs)} ms), 1-endpoint ${f0(row.partialSyncMs)} ms`);
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
  const markdown = `### iptables backend (${machine})\n\n${toMarkdown(rows)}\n`;
  return { name: 'iptables', markdown, rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then(
    (r) => console.log(r.markdown),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
