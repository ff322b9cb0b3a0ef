/**
 * nftables backend benchmark (issue 3): full sync and one-endpoint incremental sync at 1k and
 * 10k Services × 10 endpoints, in a throwaway network namespace.
 *
 *   event-to-kernel = NftablesBackend.sync() wall time (snapshot + delta in → nft returned)
 *   render          = planSync (pure TypeScript)
 *   nft             = the `nft -f -` child process (parse + kernel transaction)
 *   peak RSS        = this process's max RSS (process.resourceUsage().maxRSS)
 *
 * Also: a "restart" full sync over the rules of the previous run (same table replaced in one
 * transaction), and the nft time of the 10k full script split into statements of 100 / 1000 /
 * 10000 elements (the layout choice recorded in docs/benchmarks.md).
 *
 * Run as root: `npm run bench` or, after a build, `node dist/test/bench/run.js nftables`.
 * Scales: SWITCHYARD_BENCH_NFT="1000,10000".
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  SpawnExecutor,
  type ExecOptions,
  type ExecResult,
  type Executor,
} from '../../backends/exec/executor.js';
import { NftablesBackend } from '../../backends/nftables/nftables-backend.js';
import { planSync } from '../../backends/nftables/render.js';
import { silentLogger } from '../../core/log.js';
import type { BackendContext } from '../../plugins/sdk/index.js';
import {
  bigSnapshot,
  endpoint,
  fullDelta,
  partialDelta,
  podIPv4,
  withPorts,
} from '../support/snapshot-gen.js';
import { machineInfo } from './run.js';

/** CPU time (user + system, ms) of this process's reaped children, from /proc/self/stat. */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): cutime is field 16, cstime field 17; clock ticks of 10 ms
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/**
 * Runs in a namespace and accounts the wall time and CPU time of `nft` child processes (CPU
 * time includes the kernel's work on the transaction, which runs in nft's netlink send; it is
 * what the wall time would be on an idle machine).
 */
class TimedNetnsExecutor implements Executor {
  nftMs = 0;
  nftCpuMs = 0;
  private readonly inner = new SpawnExecutor();
  constructor(private readonly netns: string) {}
  async run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const t = performance.now();
    const cpu = childCpuMs();
    try {
      return await this.inner.run('ip', ['netns', 'exec', this.netns, command, ...args], options);
    } finally {
      if (command === 'nft') {
        this.nftMs += performance.now() - t;
        this.nftCpuMs += childCpuMs() - cpu;
      }
    }
  }
}

function ctx(executor: Executor): BackendContext {
  return {
    config: { masqueradeBit: 14 } as BackendContext['config'],
    logger: silentLogger(),
    executor,
    metrics: { gauge: () => undefined, counter: () => undefined },
  };
}

function rssMB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

interface ScaleResult {
  services: number;
  endpoints: number;
  elements: number;
  full: { total: number; render: number; nft: number; nftCpu: number; renderCpu: number };
  restart: { total: number; render: number; nft: number; nftCpu: number; renderCpu: number };
  incremental: { total: number; render: number; nft: number; max: number; runs: number };
  rssMB: number;
}

async function measureScale(services: number, perService: number): Promise<ScaleResult> {
  const ns = `sy-bench-nft-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const ex = new TimedNetnsExecutor(ns);
    let snapshot = bigSnapshot({ services, endpointsPerService: perService, nodePortEvery: 10, udpEvery: 0 });
    const sync = async (
      b: NftablesBackend,
      s: typeof snapshot,
      d: ReturnType<typeof fullDelta>,
    ): Promise<{
      total: number;
      render: number;
      nft: number;
      nftCpu: number;
      renderCpu: number;
      elements: number;
    }> => {
      ex.nftMs = 0;
      ex.nftCpuMs = 0;
      const t = performance.now();
      const cpu = process.cpuUsage();
      const r = await b.sync(s, d);
      const total = performance.now() - t;
      const used = process.cpuUsage(cpu);
      const stats = r.stats ?? {};
      return {
        total,
        render: stats.renderMs ?? 0,
        nft: ex.nftMs,
        nftCpu: ex.nftCpuMs,
        renderCpu: (used.user + used.system) / 1000,
        elements: stats.elementsAdded ?? 0,
      };
    };
    // first start: empty kernel
    const full = await sync(new NftablesBackend(ctx(ex)), snapshot, fullDelta(snapshot));
    // restart: a new process's first sync replaces the rules left by the previous one; the
    // same backend then takes one-endpoint changes on different Services
    const fresh = new NftablesBackend(ctx(ex));
    const restart = await sync(fresh, snapshot, fullDelta(snapshot));
    const runs = 7;
    const inc: { total: number; render: number; nft: number }[] = [];
    for (let i = 0; i < runs; i++) {
      const id = [...snapshot.servicePorts.keys()][Math.floor(((i + 1) * services) / (runs + 1))]!;
      const port = snapshot.servicePorts.get(id)!;
      const eps = [...port.clusterEndpoints];
      eps[0] = endpoint(podIPv4(60000 + i), 8080);
      const changed = {
        ...port,
        clusterEndpoints: eps,
        internalEndpoints: eps,
        externalEndpoints: eps,
        reachableEndpoints: eps,
        allEndpoints: eps,
      };
      snapshot = withPorts(snapshot, [changed]);
      inc.push(await sync(fresh, snapshot, partialDelta([id])));
    }
    inc.sort((a, b) => a.total - b.total);
    const median = inc[Math.floor(inc.length / 2)]!;
    return {
      services,
      endpoints: perService,
      elements: full.elements,
      full,
      restart,
      incremental: { ...median, max: inc.at(-1)!.total, runs },
      rssMB: rssMB(),
    };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

/** nft time alone for the same 10k full script with different statement sizes. */
async function measureChunking(
  services: number,
): Promise<{ perStatement: number; nftMs: number; nftCpuMs: number }[]> {
  const snapshot = bigSnapshot({ services, endpointsPerService: 10, nodePortEvery: 10 });
  const out: { perStatement: number; nftMs: number; nftCpuMs: number }[] = [];
  for (const perStatement of [100, 1000, 10000]) {
    const ns = `sy-bench-nftc-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const script = planSync(snapshot, fullDelta(snapshot), undefined, {
        elementsPerStatement: perStatement,
      }).script;
      const ex = new TimedNetnsExecutor(ns);
      await ex.run('nft', ['-f', '-'], { stdin: script });
      out.push({ perStatement, nftMs: ex.nftMs, nftCpuMs: ex.nftCpuMs });
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  }
  return out;
}

export async function run(): Promise<{ name: string; markdown: string; results: ScaleResult[] }> {
  if (process.getuid?.() !== 0) throw new Error('the nftables benchmark needs root (network namespaces)');
  const scales = (process.env.SWITCHYARD_BENCH_NFT ?? '1000,10000')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const results: ScaleResult[] = [];
  for (const n of scales) results.push(await measureScale(n, 10));
  const chunks = scales.includes(10000) ? await measureChunking(10000) : [];
  const nftVersion = execFileSync('nft', ['--version']).toString().trim();
  const kernel = execFileSync('uname', ['-r']).toString().trim();
  const lines = [
    `Machine: ${machineInfo()}; kernel ${kernel}; ${nftVersion}; ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Load average when it started: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(', ')} (wall times grow with it; CPU times much less).`,
    '',
    '| Services × endpoints | elements | full sync: event→kernel (render + nft) | CPU: switchyard + nft | restart full sync over old rules | one-endpoint change: median (max of 7) event→kernel; render + nft | switchyard peak RSS |',
    '|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.services} × ${r.endpoints} | ${r.elements} | ${fmt(r.full.total)} ms (${fmt(r.full.render)} + ${fmt(r.full.nft)}) | ${fmt(r.full.renderCpu)} + ${fmt(r.full.nftCpu)} ms | ${fmt(r.restart.total)} ms (${fmt(r.restart.render)} + ${fmt(r.restart.nft)}) | ${fmt(r.incremental.total)} ms (max ${fmt(r.incremental.max)}); ${fmt(r.incremental.render)} + ${fmt(r.incremental.nft)} | ${r.rssMB} MB |`,
    ),
  ];
  if (chunks.length > 0) {
    lines.push('', 'nft time of the 10k full script by elements per `add element` statement:', '');
    lines.push('| elements per statement | nft -f wall | nft CPU |', '|---|---|---|');
    for (const c of chunks) lines.push(`| ${c.perStatement} | ${fmt(c.nftMs)} ms | ${fmt(c.nftCpuMs)} ms |`);
  }
  return { name: 'nftables', markdown: lines.join('\n'), results };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then(
    (r) => console.log(r.markdown),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
