/**
 * iptables backend benchmark (issue 4): full sync and one-endpoint partial sync at 1k and 10k
 * Services × 10 endpoints, for iptables-legacy and iptables-nft, each in a throwaway network
 * namespace, next to the time `iptables-restore` alone takes for the same input (replayed in a
 * fresh namespace for the full sync; the partial sync's own restore call for the partial).
 *
 *   own time = sync wall time − time spent in child processes (restore, save, -C checks)
 *
 * Run as root: `npm run bench` (all benches) or, after a build, `node dist/test/bench/iptables.bench.js`.
 * Choose runs with SWITCHYARD_BENCH_IPTABLES="legacy:1000,nft:1000,legacy:10000" (the default).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
import type { Snapshot, SnapshotDelta } from '../../core/model/snapshot.js';
import {
  bigSnapshot,
  endpoint,
  fullDelta,
  partialDelta,
  servicePort,
  withPorts,
} from '../support/snapshot-gen.js';
import { testProxyConfig } from '../support/proxy-config.js';

type Variant = 'legacy' | 'nft';

/** CPU time (ms) of this process's reaped children (cutime + cstime from /proc/self/stat). */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10; // USER_HZ = 100
}

/** CPU time (ms) of this process (user + system). */
function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs in a namespace and accounts the wall time of every child process by command. */
class TimedNetnsExecutor implements Executor {
  readonly spent = new Map<string, number>();
  readonly inputs: { command: string; stdin?: string }[] = [];
  private readonly inner = new SpawnExecutor();
  /** Bench-only: run the next restore without --noflush (valid only on an empty namespace). */
  primeOnce = false;
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
    if (this.primeOnce && command.endsWith('-restore')) {
      this.primeOnce = false;
      args = args.filter((a) => a !== '--noflush');
    }
    try {
      return await this.inner.run('ip', ['netns', 'exec', this.netns, command, ...args], options);
    } finally {
      this.spent.set(command, (this.spent.get(command) ?? 0) + performance.now() - t);
      this.inputs.push({ command, stdin: options?.stdin });
    }
  }
}

function config(variant: Variant): ProxyConfig {
  return testProxyConfig({
    mode: 'iptables',
    nodePortAddresses: ['all'],
    healthzBindAddress: '',
    metricsBindAddress: '',
    iptables: { variant, localhostNodePorts: true },
    // SWITCHYARD_BENCH_IPTABLES_BUCKET_MIN=never|N: the nat dispatch bucketing threshold.
    backendOptions:
      process.env.SWITCHYARD_BENCH_IPTABLES_BUCKET_MIN === undefined
        ? {}
        : { 'iptables.dispatch-bucket-min': process.env.SWITCHYARD_BENCH_IPTABLES_BUCKET_MIN },
  });
}

export interface IptablesBenchRow {
  readonly variant: Variant;
  /** The full sync ran without --noflush (empty namespace) to reach the partial sync quickly. */
  readonly primed: boolean;
  readonly services: number;
  readonly endpoints: number;
  readonly fullSyncMs: number;
  readonly fullRenderMs: number;
  readonly fullOwnMs: number;
  readonly fullOtherExecMs: number;
  readonly fullRestoreAloneMs: number;
  /** CPU: this process during the full sync / the child processes / restore alone. */
  readonly fullOwnCpuMs: number;
  readonly fullChildCpuMs: number;
  readonly fullRestoreAloneCpuMs: number;
  readonly partialOwnCpuMs: number;
  readonly partialChildCpuMs: number;
  readonly fullRestoreLines: number;
  readonly partialSyncMs: number;
  readonly partialOwnMs: number;
  readonly partialRestoreMs: number;
  readonly partialRestoreLines: number;
  /** A new NodePort Service (10 endpoints) added: a partial sync that changes the dispatch. */
  readonly addSyncMs: number;
  readonly addRestoreMs: number;
  readonly addOwnCpuMs: number;
  readonly addChildCpuMs: number;
  readonly addRestoreLines: number;
  readonly rssMB: number;
}

function timeRestoreAlone(variant: Variant, text: string): { wallMs: number; cpuMs: number } {
  const ns = `swy-bench-ipt-${process.pid}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const t = performance.now();
    const c = childCpuMs();
    execFileSync('ip', ['netns', 'exec', ns, `iptables-${variant}-restore`, '-w', '5', '--noflush'], {
      input: text,
      maxBuffer: 1 << 30,
    });
    return { wallMs: performance.now() - t, cpuMs: childCpuMs() - c };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

async function benchOne(
  variant: Variant,
  services: number,
  perService: number,
  primed = false,
): Promise<IptablesBenchRow> {
  const ns = `swy-bench-ipt-${process.pid}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const exec = new TimedNetnsExecutor(ns);
  const noMetrics = { gauge: (): void => undefined, counter: (): void => undefined };
  const backend = new IptablesBackend(
    { config: config(variant), logger: silentLogger(), executor: exec, metrics: noMetrics },
    { afterSync: async () => undefined },
  );
  try {
    const snap = bigSnapshot({ services, endpointsPerService: perService, nodePortEvery: 10 });
    const full: SnapshotDelta = fullDelta(snap);
    await backend.variant();
    exec.reset();
    exec.primeOnce = primed;
    let t = performance.now();
    let cpu = ownCpuMs();
    let child = childCpuMs();
    const r1 = await backend.sync(snap, full);
    const fullSyncMs = performance.now() - t;
    const fullOwnCpuMs = ownCpuMs() - cpu;
    const fullChildCpuMs = childCpuMs() - child;
    const fullExec = exec.total();
    const restoreName = `iptables-${variant}-restore`;
    const fullText = exec.inputs.find((i) => i.command === restoreName)?.stdin ?? '';
    const fullRestoreInSync = exec.spent.get(restoreName) ?? 0;
    const rssMB = process.memoryUsage().rss / 1048576;

    // One endpoint of one Service changes (a new pod IP replaces the last one).
    const old = [...snap.servicePorts.values()][Math.floor(services / 2)]!;
    const eps = [...old.clusterEndpoints];
    eps[eps.length - 1] = endpoint('10.250.0.1', 8080);
    const next = servicePort({
      ...old,
      clusterEndpoints: eps,
      localEndpoints: undefined,
      internalEndpoints: undefined,
      externalEndpoints: undefined,
      reachableEndpoints: undefined,
      allEndpoints: undefined,
      shortCircuitEndpoints: undefined,
      internal: undefined,
      external: undefined,
    });
    const snap2: Snapshot = withPorts(snap, [next]);
    exec.reset();
    t = performance.now();
    cpu = ownCpuMs();
    child = childCpuMs();
    const r2 = await backend.sync(snap2, partialDelta([old.id]));
    const partialSyncMs = performance.now() - t;
    const partialOwnCpuMs = ownCpuMs() - cpu;
    const partialChildCpuMs = childCpuMs() - child;
    if (r2.full) throw new Error('partial sync fell back to full');
    if (!(exec.inputs.find((i) => i.command === restoreName)?.stdin ?? '').includes('10.250.0.1:8080'))
      throw new Error('the change was not written');
    const partialText = exec.inputs.find((i) => i.command === restoreName)?.stdin ?? '';
    const partialRestoreMs = exec.spent.get(restoreName) ?? 0;
    const partialOwnMs = partialSyncMs - exec.total();

    // A new NodePort Service with 10 endpoints: the dispatch chains change.
    const added = servicePort({
      namespace: 'bench',
      name: 'added',
      clusterIP: '10.97.0.1',
      port: 80,
      nodePort: 32767,
      clusterEndpoints: Array.from({ length: perService }, (_, i) => endpoint(`10.251.0.${i + 1}`, 8080)),
    });
    const snap3: Snapshot = withPorts(snap2, [added]);
    exec.reset();
    t = performance.now();
    cpu = ownCpuMs();
    child = childCpuMs();
    const r3 = await backend.sync(snap3, partialDelta([added.id]));
    const addSyncMs = performance.now() - t;
    const addOwnCpuMs = ownCpuMs() - cpu;
    const addChildCpuMs = childCpuMs() - child;
    if (r3.full) throw new Error('partial sync (add) fell back to full');
    const addText = exec.inputs.find((i) => i.command === restoreName)?.stdin ?? '';
    if (!addText.includes('10.97.0.1/32')) throw new Error('the added Service was not written');

    // SWITCHYARD_BENCH_IPTABLES_ALONE=0 skips the replay (saves a whole-table restore per run).
    const skipAlone = primed || process.env.SWITCHYARD_BENCH_IPTABLES_ALONE === '0';
    const alone = skipAlone ? { wallMs: Number.NaN, cpuMs: Number.NaN } : timeRestoreAlone(variant, fullText);
    return {
      variant,
      primed,
      services,
      endpoints: perService,
      fullSyncMs,
      fullRenderMs: r1.stats?.renderMs ?? 0,
      fullOwnMs: fullSyncMs - fullExec,
      fullOtherExecMs: fullExec - fullRestoreInSync,
      fullRestoreAloneMs: alone.wallMs,
      fullOwnCpuMs,
      fullChildCpuMs,
      fullRestoreAloneCpuMs: alone.cpuMs,
      partialOwnCpuMs,
      partialChildCpuMs,
      fullRestoreLines: fullText.split('\n').length,
      partialSyncMs,
      partialOwnMs,
      partialRestoreMs,
      partialRestoreLines: partialText.split('\n').length,
      addSyncMs,
      addRestoreMs: exec.spent.get(restoreName) ?? 0,
      addOwnCpuMs,
      addChildCpuMs,
      addRestoreLines: addText.split('\n').length,
      rssMB,
    };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const f0 = (n: number): string => n.toFixed(0);

/**
 * variant:services pairs. nft at 10k is left out by default: iptables-nft 1.8.9's --noflush cost
 * grows with (distinct jump targets in the input) × (chains in the table), so one full sync of
 * kube-proxy's layout at 10k × 10 takes tens of minutes (see docs/benchmarks.md). Ask for it
 * with SWITCHYARD_BENCH_IPTABLES=nft:10000. `nft-primed:N` measures the one-endpoint partial sync
 * at N through iptables-nft after a first full sync made without --noflush (the namespace is empty,
 * so flushing the tables loses nothing; the backend itself always uses --noflush).
 */
const DEFAULT_RUNS = 'legacy:1000,nft:1000,legacy:10000,nft-primed:10000';

export function toMarkdown(rows: readonly IptablesBenchRow[]): string {
  const head =
    '| variant | Services × eps | full sync wall (ms) | own wall (ms) [render] | iptables-save listing wall (ms) | iptables-restore alone wall (ms) | CPU: switchyard / children / restore alone (ms) | own CPU ÷ restore-alone CPU | restore input (lines) | 1-endpoint sync wall (ms) | its restore wall (ms) | 1-endpoint CPU: switchyard / children (ms) | partial input (lines) | add-a-Service sync wall (ms) | its restore wall (ms) | add CPU: switchyard / children (ms) | add input (lines) | RSS (MB) |\n' +
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|';
  const body = rows.map(
    (r) =>
      `| ${r.variant}${r.primed ? ' (first sync primed without --noflush)' : ''} | ${r.services} × ${r.endpoints} | ${f0(r.fullSyncMs)} | ${f0(r.fullOwnMs)} [${f0(r.fullRenderMs)}] | ${f0(r.fullOtherExecMs)} | ${r.primed ? '—' : f0(r.fullRestoreAloneMs)} | ${f0(r.fullOwnCpuMs)} / ${f0(r.fullChildCpuMs)} / ${r.primed ? '—' : f0(r.fullRestoreAloneCpuMs)} | ${r.primed ? '—' : `${((100 * r.fullOwnCpuMs) / r.fullRestoreAloneCpuMs).toFixed(1)}%`} | ${r.fullRestoreLines} | ${f0(r.partialSyncMs)} | ${f0(r.partialRestoreMs)} | ${f0(r.partialOwnCpuMs)} / ${f0(r.partialChildCpuMs)} | ${r.partialRestoreLines} | ${f0(r.addSyncMs)} | ${f0(r.addRestoreMs)} | ${f0(r.addOwnCpuMs)} / ${f0(r.addChildCpuMs)} | ${r.addRestoreLines} | ${f0(r.rssMB)} |`,
  );
  return [head, ...body].join('\n');
}

export async function run(): Promise<{ name: string; markdown: string; rows: IptablesBenchRow[] }> {
  const runs = (process.env.SWITCHYARD_BENCH_IPTABLES ?? DEFAULT_RUNS)
    .split(',')
    .map((x) => x.trim().split(':'))
    .filter(([v, n]) => (v === 'legacy' || v === 'nft' || v === 'nft-primed') && Number(n) > 0)
    .map(([v, n]) => ({
      variant: (v === 'nft-primed' ? 'nft' : v) as Variant,
      primed: v === 'nft-primed',
      services: Number(n),
    }));
  const rows: IptablesBenchRow[] = [];
  {
    for (const { variant, services, primed } of runs) {
      const row = await benchOne(variant, services, 10, primed);
      rows.push(row);
      console.error(
        `iptables bench: ${variant}${primed ? ' (primed)' : ''} ${services}×10 full ${f0(row.fullSyncMs)} ms (restore alone ${f0(row.fullRestoreAloneMs)} ms; CPU own ${f0(row.fullOwnCpuMs)} ms vs restore ${f0(row.fullRestoreAloneCpuMs)} ms), 1-endpoint ${f0(row.partialSyncMs)} ms (CPU ${f0(row.partialOwnCpuMs)} + ${f0(row.partialChildCpuMs)}), add-a-Service ${f0(row.addSyncMs)} ms (CPU ${f0(row.addOwnCpuMs)} + ${f0(row.addChildCpuMs)})`,
      );
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
