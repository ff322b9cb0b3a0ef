/**
 * Event-to-kernel benchmark through the REAL core (issue 3 §7, issue 4 §6): Kubernetes objects
 * in → Tracker.apply → Planner.plan → computeDelta → backend.sync → the tool returned, in a
 * throwaway network namespace, for the nftables and the iptables backend (the host's variant,
 * and iptables-legacy).
 *
 *   full sync      the initial lists of N Services and N EndpointSlices (10 endpoints each, as
 *                  the API delivers them: `replace` events) and this node's Node, then one sync
 *   one endpoint   one EndpointSlice updated (one endpoint's address replaced): `upsert` →
 *                  apply → plan → delta (must be exactly that one Service port) → sync;
 *                  15 changes on Services spread over the cluster, median and max reported
 *
 * Columns: tracker (apply of the events + tracker.state(), which copies the maps of the kinds
 * that changed), plan (Planner.plan + computeDelta), sync (the
 * backend: render + its tool), of which tool = wall time of the child processes (nft,
 * iptables-restore / -save), total = all of it. CPU: this process (user+sys) and its reaped
 * children. Peak RSS: each (backend, N) runs in a process of its own (this file with
 * `--case backend:N`), so the figure is that of one proxy holding N Services' objects, state,
 * snapshot and applied rules.
 *
 * Objects: Service `ns-<i % 50>/svc-<i>`, ClusterIP 10.96.x.y, TCP 80 → 8080 (every 10th a
 * NodePort); its EndpointSlice with 10 ready endpoints (pods 10.244.x.y, spread over 10 nodes,
 * one of them this node, `node-0`).
 *
 *   SWITCHYARD_BENCH_PIPELINE=nftables:1000,nftables:10000,iptables:1000,iptables:10000,iptables@legacy:10000
 *   SWITCHYARD_BENCH_PIPELINE_PROF=<dir>   run the cases under `node --cpu-prof` into <dir>
 *
 * Run as root after a build: `npm run bench -- pipeline`.
 */
import 'reflect-metadata';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  SpawnExecutor,
  type ExecOptions,
  type ExecResult,
  type Executor,
} from '../../backends/exec/executor.js';
import { iptablesRegistration } from '../../backends/iptables/index.js';
import { detectVariant } from '../../backends/iptables/variant.js';
import { nftablesRegistration } from '../../backends/nftables/index.js';
import { silentLogger } from '../../core/log.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../core/model/kube.js';
import type { ProxyBackend, Snapshot } from '../../core/model/snapshot.js';
import { computeDelta } from '../../core/planner/delta.js';
import { Planner, plannerConfigFrom } from '../../core/planner/planner.js';
import { Tracker } from '../../core/tracker/tracker.js';
import { proxyConfigFromFlags } from '../e2e/backend-loader.js';
import { clusterIPv4, podIPv4 } from '../support/snapshot-gen.js';
import type { BenchReport, BenchTarget } from './run.js';

/** `iptables` uses the variant the host uses (detected as the daemon does); `iptables@legacy` forces legacy. */
type BackendName = 'nftables' | 'iptables' | 'iptables@legacy';
const BACKENDS: readonly string[] = ['nftables', 'iptables', 'iptables@legacy'];
const NODE = 'node-0';
const EPS = 10;
const INCREMENTAL_RUNS = 15;

/** CPU time (ms) of this process's reaped children (cutime + cstime of /proc/self/stat). */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10; // USER_HZ = 100
}

function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs everything inside one namespace and adds up the wall time of the child processes. */
class TimedNetnsExecutor implements Executor {
  toolMs = 0;
  private readonly inner = new SpawnExecutor();
  constructor(private readonly netns: string) {}
  async run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const t = performance.now();
    try {
      return await this.inner.run('ip', ['netns', 'exec', this.netns, command, ...args], {
        timeoutMs: 1_800_000,
        ...options,
      });
    } finally {
      this.toolMs += performance.now() - t;
    }
  }
}

// ------------------------------------------------------------------ Kubernetes objects

export function serviceObject(i: number): KubeService {
  const nodePort = i % 10 === 0;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: `svc-${i}`,
      namespace: `ns-${i % 50}`,
      uid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
      resourceVersion: String(1000 + i),
      labels: { app: `svc-${i}` },
    },
    spec: {
      type: nodePort ? 'NodePort' : 'ClusterIP',
      clusterIP: clusterIPv4(i),
      clusterIPs: [clusterIPv4(i)],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      selector: { app: `svc-${i}` },
      ports: [
        {
          name: 'http',
          protocol: 'TCP',
          port: 80,
          targetPort: 8080,
          ...(nodePort ? { nodePort: 30000 + (i % 2768) } : {}),
        },
      ],
      sessionAffinity: 'None',
      ...(nodePort ? { externalTrafficPolicy: 'Cluster' } : {}),
      internalTrafficPolicy: 'Cluster',
    },
    status: { loadBalancer: {} },
  };
}

export function sliceObject(i: number, version = 0, replacedFirst?: string): KubeEndpointSlice {
  const endpoints = Array.from({ length: EPS }, (_, e) => {
    const pod = i * EPS + e;
    const ip = e === 0 && replacedFirst ? replacedFirst : podIPv4(pod % 65000);
    return {
      addresses: [ip],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${pod % 10}`,
      targetRef: { kind: 'Pod', name: `svc-${i}-pod-${e}`, namespace: `ns-${i % 50}` },
    };
  });
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}-abcde`,
      namespace: `ns-${i % 50}`,
      resourceVersion: String(500000 + i * 10 + version),
      labels: {
        'kubernetes.io/service-name': `svc-${i}`,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: 'IPv4',
    endpoints,
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  };
}

export function nodeObject(): KubeNode {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: NODE, labels: { 'kubernetes.io/hostname': NODE } },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
    status: {
      addresses: [
        { type: 'InternalIP', address: '192.168.77.2' },
        { type: 'Hostname', address: NODE },
      ],
    },
  };
}

// ------------------------------------------------------------------ one case

interface Phase {
  tracker: number;
  plan: number;
  /** computeDelta alone (part of plan) */
  delta: number;
  sync: number;
  tool: number;
  total: number;
  ownCpu: number;
  childCpu: number;
  changed: number;
  full: boolean;
}

export interface PipelineCase {
  readonly backend: BackendName;
  /** iptables: the variant used. */
  readonly variant?: string;
  readonly services: number;
  readonly servicePorts: number;
  readonly full: Phase;
  /** median by total */
  readonly incremental: Phase;
  readonly incrementalMax: number;
  readonly incrementalAll: readonly number[];
  readonly peakRssMB: number;
  readonly heapUsedMB: number;
}

async function runCase(backend: BackendName, services: number): Promise<PipelineCase> {
  // iptables-legacy's lock (/run/xtables.lock) is host-wide although every namespace has its
  // own tables: a restore of another process in another namespace must not stall or fail ours.
  process.env.XTABLES_LOCKFILE ??= join(tmpdir(), `switchyard-bench-${process.pid}.xtables.lock`);
  const ns = `sy-bench-pipe-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const ex = new TimedNetnsExecutor(ns);
    const config = proxyConfigFromFlags([
      `--proxy-mode=${backend === 'nftables' ? 'nftables' : 'iptables'}`,
      `--hostname-override=${NODE}`,
      '--cluster-cidr=10.244.0.0/16',
      ...(backend === 'iptables@legacy' ? ['--iptables-variant=legacy'] : []),
    ]);
    const registration = backend === 'nftables' ? nftablesRegistration : iptablesRegistration;
    const variant =
      backend === 'nftables'
        ? undefined
        : backend === 'iptables@legacy'
          ? 'legacy'
          : (await detectVariant(ex)).variant;
    const b: ProxyBackend = registration.create({
      config,
      logger: silentLogger(),
      executor: ex,
      metrics: { gauge: () => undefined, counter: () => undefined },
    });
    const tracker = new Tracker(config);
    const planner = new Planner(silentLogger());
    const pconfig = plannerConfigFrom(config);

    // What the API delivers (built before the clock starts).
    let svcObjects: KubeService[] | undefined = Array.from({ length: services }, (_, i) => serviceObject(i));
    let sliceObjects: KubeEndpointSlice[] | undefined = Array.from({ length: services }, (_, i) =>
      sliceObject(i),
    );
    const node = nodeObject();

    const measure = async (
      events: () => void,
      prev: Snapshot | undefined,
    ): Promise<{ phase: Phase; snapshot: Snapshot }> => {
      ex.toolMs = 0;
      const cpu0 = ownCpuMs();
      const child0 = childCpuMs();
      const t0 = performance.now();
      events();
      const state = tracker.state();
      const t1 = performance.now();
      const { snapshot } = planner.plan(state, pconfig);
      const td = performance.now();
      const delta = computeDelta(prev, snapshot, false);
      const t2 = performance.now();
      const result = await b.sync(snapshot, delta);
      const t3 = performance.now();
      return {
        snapshot,
        phase: {
          tracker: t1 - t0,
          plan: t2 - t1,
          delta: t2 - td,
          sync: t3 - t2,
          tool: ex.toolMs,
          total: t3 - t0,
          ownCpu: ownCpuMs() - cpu0,
          childCpu: childCpuMs() - child0,
          changed: delta.changed.size + delta.removed.size,
          full: delta.full || result.full,
        },
      };
    };

    const first = await measure(() => {
      tracker.apply({ type: 'replace', resource: 'nodes', objects: [node] });
      tracker.apply({ type: 'replace', resource: 'services', objects: svcObjects! });
      tracker.apply({ type: 'replace', resource: 'endpointslices', objects: sliceObjects! });
    }, undefined);
    // The tracker holds the objects now; drop the bench's own references.
    svcObjects = undefined;
    sliceObjects = undefined;
    let applied = first.snapshot;
    if (applied.servicePorts.size !== services)
      throw new Error(`planned ${applied.servicePorts.size} Service ports for ${services} Services`);

    const inc: Phase[] = [];
    for (let r = 0; r < INCREMENTAL_RUNS; r++) {
      const i = Math.floor(((r + 1) * services) / (INCREMENTAL_RUNS + 1));
      const updated = sliceObject(i, r + 1, `10.245.${r}.${1 + (i % 250)}`);
      const { phase, snapshot } = await measure(
        () => void tracker.apply({ type: 'upsert', resource: 'endpointslices', object: updated }),
        applied,
      );
      if (phase.changed !== 1 || phase.full)
        throw new Error(`one-endpoint change gave a delta of ${phase.changed} (full ${phase.full})`);
      applied = snapshot;
      inc.push(phase);
    }
    const sorted = [...inc].sort((a, c) => a.total - c.total);
    const heapUsedMB = Math.round(process.memoryUsage().heapUsed / 2 ** 20);
    await b.cleanup().catch(() => undefined);
    return {
      backend,
      ...(variant === undefined ? {} : { variant }),
      services,
      servicePorts: applied.servicePorts.size,
      full: first.phase,
      incremental: sorted[Math.floor(sorted.length / 2)]!,
      incrementalMax: sorted.at(-1)!.total,
      incrementalAll: inc.map((p) => Math.round(p.total * 10) / 10),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      heapUsedMB,
    };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(join(tmpdir(), `switchyard-bench-${process.pid}.xtables.lock`), { force: true });
  }
}

/** Runs one case in a child process (isolated peak RSS), optionally under --cpu-prof. */
function runCaseInChild(backend: BackendName, services: number): Promise<PipelineCase> {
  const prof = process.env.SWITCHYARD_BENCH_PIPELINE_PROF;
  const args = [
    ...(prof
      ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=pipeline-${backend}-${services}.cpuprofile`]
      : []),
    fileURLToPath(import.meta.url),
    '--case',
    `${backend}:${services}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`case ${backend}:${services} exited ${code}`));
      try {
        resolve(JSON.parse(line) as PipelineCase);
      } catch (e) {
        reject(new Error(`case ${backend}:${services}: bad output: ${(e as Error).message}`));
      }
    });
  });
}

// ------------------------------------------------------------------ report

const ms = (x: number): string =>
  x >= 1000 ? `${(x / 1000).toFixed(2)} s` : x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} ms`;

export function pipelineMarkdown(cases: readonly PipelineCase[]): string {
  const lines = [
    `| backend | Services × 10 eps | full sync total (tracker + plan + sync [tool]) | full sync CPU: switchyard / children | one endpoint: median total (max of ${INCREMENTAL_RUNS}) | one endpoint: tracker + plan (of which computeDelta) + sync [tool] | one endpoint CPU: switchyard / children | peak RSS |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const c of cases) {
    const f = c.full;
    const i = c.incremental;
    lines.push(
      `| ${c.variant === undefined ? c.backend : `iptables (${c.variant}${c.backend === 'iptables' ? ', the host variant' : ''})`} | ${c.services} | **${ms(f.total)}** (${ms(f.tracker)} + ${ms(f.plan)} + ${ms(f.sync)} [${ms(f.tool)}]) | ${ms(f.ownCpu)} / ${ms(f.childCpu)} | **${ms(i.total)}** (max ${ms(c.incrementalMax)}) | ${ms(i.tracker)} + ${ms(i.plan)} (${ms(i.delta)}) + ${ms(i.sync)} [${ms(i.tool)}] | ${ms(i.ownCpu)} / ${ms(i.childCpu)} | ${c.peakRssMB} MB |`,
    );
  }
  return lines.join('\n');
}

export function pipelineTargets(cases: readonly PipelineCase[]): BenchTarget[] {
  const t: BenchTarget[] = [];
  const nft = cases.find((c) => c.backend === 'nftables' && c.services === 10000);
  const ipts = cases.filter((c) => c.backend !== 'nftables' && c.services === 10000);
  if (nft) {
    t.push({
      name: 'nftables full sync, 10k Services × 10 endpoints, event→kernel through the core',
      target: '≤ 2 s',
      measured: `${ms(nft.full.total)} wall (plan ${ms(nft.full.plan)}, nft ${ms(nft.full.tool)}); CPU ${ms(nft.full.ownCpu)} + nft ${ms(nft.full.childCpu)}`,
      met: nft.full.total <= 2000,
    });
    t.push({
      name: 'nftables one endpoint change at 10k Services, event→kernel through the core',
      target: '≤ 50 ms',
      measured: `${ms(nft.incremental.total)} median, max ${ms(nft.incrementalMax)} (plan ${ms(nft.incremental.plan)}, nft ${ms(nft.incremental.tool)})`,
      met: nft.incremental.total <= 50,
    });
    t.push({
      name: 'peak RSS at 10k × 10 (nftables, whole pipeline incl. Kubernetes objects)',
      target: '≤ 250 MB',
      measured: `${nft.peakRssMB} MB`,
      met: nft.peakRssMB <= 250,
    });
  }
  for (const ipt of ipts)
    t.push({
      name: `iptables (${ipt.variant ?? '?'}) one endpoint change at 10k Services, event→kernel through the core`,
      target: '≤ 300 ms',
      measured: `${ms(ipt.incremental.total)} median, max ${ms(ipt.incrementalMax)} (plan ${ms(ipt.incremental.plan)}, iptables tools ${ms(ipt.incremental.tool)})`,
      met: ipt.incremental.total <= 300,
    });
  return t;
}

export async function run(): Promise<BenchReport & { cases: PipelineCase[] }> {
  if (process.getuid?.() !== 0) throw new Error('the pipeline benchmark needs root (network namespaces)');
  const spec =
    process.env.SWITCHYARD_BENCH_PIPELINE ??
    'nftables:1000,nftables:10000,iptables:1000,iptables:10000,iptables@legacy:10000';
  const cases: PipelineCase[] = [];
  for (const item of spec.split(',')) {
    const [backend, n] = item.split(':');
    if (backend === undefined || !BACKENDS.includes(backend) || !(Number(n) > 0)) continue;
    const c = await runCaseInChild(backend as BackendName, Number(n));
    console.error(
      `[pipeline] ${backend} ${n}: full ${ms(c.full.total)} (plan ${ms(c.full.plan)}, sync ${ms(c.full.sync)}), one endpoint ${ms(c.incremental.total)} (plan ${ms(c.incremental.plan)}), RSS ${c.peakRssMB} MB`,
    );
    cases.push(c);
  }
  const markdown = [
    'Kubernetes objects → Tracker → Planner → computeDelta → backend.sync → tool returned; each row in a fresh process and network namespace.',
    '',
    pipelineMarkdown(cases),
  ].join('\n');
  return { name: 'pipeline', markdown, targets: pipelineTargets(cases), cases };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--case');
  if (i > 0) {
    const [backend, n] = (process.argv[i + 1] ?? '').split(':');
    runCase(backend as BackendName, Number(n)).then(
      (c) => {
        process.stdout.write(`${JSON.stringify(c)}\n`);
        process.exit(0);
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  } else {
    run().then(
      (r) => console.log(r.markdown),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
}
