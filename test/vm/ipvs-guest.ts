/**
 * The IPVS end-to-end suite, run as plain JavaScript INSIDE the VM (test/vm/run-in-vm.sh):
 *
 *   node dist/test/vm/ipvs-guest.js OUT_DIR
 *
 * (compiled on the host with `npx tsc -p test/vm/tsconfig.json`). It builds the shared netns
 * topology (test/support/netns-topology.ts), and for each configuration of the shared behaviour
 * table (test/e2e/behaviour-table.ts) creates an IPVS backend exactly as the daemon would (the
 * real Planner, backend.sync through an executor inside the node namespace), sends real traffic
 * (test/e2e/behaviour-runner.ts), then checks incremental syncs, a restart and `cleanup()`
 * (the node's IPVS, ipsets, iptables rules and interfaces are as they were before), and last the
 * same behaviour table with the default backend (nftables), so that one also runs on this
 * stock Debian kernel besides the host's. Results go to OUT_DIR/ipvs-e2e.json; the host-side vitest file asserts them. It never throws for a
 * failed check: every check is data in the results; only a broken harness exits non-zero.
 *
 * IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
 * 192.168.77.1, LB source range 203.0.113.0/25.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { computeDelta, Planner, plannerConfigFrom } from '../../core/planner/planner.js';
import type { ProxyBackend, Snapshot, SyncResult } from '../../core/model/snapshot.js';
import { createTopology, type Topology } from '../support/netns-topology.js';
import { createBackend, proxyConfigFromFlags } from '../e2e/backend-loader.js';
import {
  BEHAVIOUR_TOPOLOGY,
  behaviourCluster,
  behaviourClusterState,
  casesByConfig,
  flagsFor,
  VIP,
  type BehaviourCase,
} from '../e2e/behaviour-table.js';
import { describeVerdict, runCase } from '../e2e/behaviour-runner.js';
import {
  endpoint as fixtureEndpoint,
  makeService,
  makeSlice,
  makeState,
  slicePort,
} from '../support/fixtures.js';
import type { KubeEndpoint, KubeEndpointSlice, KubeService } from '../../core/model/kube.js';

export interface CaseResult {
  readonly name: string;
  readonly config: string;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly detail?: string;
  readonly ms: number;
}

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface GuestResults {
  readonly kernel: string;
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly probe?: { supported: boolean; reason?: string; details?: Record<string, string> };
  readonly cases: CaseResult[];
  /**
   * The same table with the default backend (`--proxy-mode=nftables`) after the IPVS checks, so
   * the default backend's behaviour is also verified on this (older, stock Debian) kernel.
   */
  readonly nftablesCases: CaseResult[];
  readonly checks: CheckResult[];
  readonly syncs: Array<{ what: string; ms: number; stats?: SyncResult['stats'] }>;
  readonly fatal?: string;
}

const CONCURRENCY = Number(process.env.IPVS_E2E_CONCURRENCY ?? 4);

async function pool<T>(items: readonly T[], n: number, f: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, n) }, async () => {
      while (i < items.length) await f(items[i++]!);
    }),
  );
}

/** What cleanup must restore in the node namespace: IPVS, ipsets, our rules, links, addresses. */
async function nodeFootprint(topo: Topology): Promise<Record<string, string>> {
  const run = async (argv: string[]): Promise<string> => {
    const r = await topo.exec('node', argv, { allowFailure: true });
    return r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stderr.trim()}`;
  };
  const rules = (save: string): string =>
    save
      .split('\n')
      // rules and user chains only: iptables-nft leaves empty built-in tables behind, as it does for kube-proxy
      .filter(
        (l) =>
          l.startsWith('-A') ||
          (l.startsWith(':') && !/^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l)),
      )
      .join('\n');
  return {
    ipvs: await run(['ipvsadm', '-Sn']),
    ipsets: await run(['ipset', 'list', '-n']),
    iptables: rules(await run(['iptables-save'])),
    ip6tables: rules(await run(['ip6tables-save'])),
    links: (await run(['ip', '-o', 'link', 'show'])).replace(/^\d+:\s+/gm, '').replace(/\s.*$/gm, ''),
    addresses: (await run(['ip', '-o', 'addr', 'show'])).replace(/^\d+:\s+/gm, '').replace(/\\.*$/gm, ''),
  };
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: ipvs-guest.js OUT_DIR');
  const t0 = performance.now();
  const results: GuestResults = {
    kernel: (await import('node:os')).release(),
    startedAt: new Date().toISOString(),
    elapsedMs: 0,
    cases: [],
    nftablesCases: [],
    checks: [],
    syncs: [],
  };
  const save = (): void => {
    (results as { elapsedMs: number }).elapsedMs = Math.round(performance.now() - t0);
    writeFileSync(join(out, 'ipvs-e2e.json'), JSON.stringify(results, null, 2));
  };
  const log = (line: string): void =>
    void process.stdout.write(`[ipvs-guest ${((performance.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
  const check = (name: string, ok: boolean, detail: string): void => {
    results.checks.push({ name, ok, detail });
    log(`${ok ? 'ok' : 'NOT OK'} - ${name}: ${detail}`);
  };

  // node starts in seconds under TCG, several agents at once: give them time
  process.env.SWITCHYARD_AGENT_READY_MS ??= '60000';
  let topo: Topology | undefined;
  const backends: ProxyBackend[] = [];
  try {
    topo = await createTopology({
      ...BEHAVIOUR_TOPOLOGY,
      log: process.env.IPVS_E2E_VERBOSE ? log : undefined,
    });
    log(`topology ${topo.id} ready`);
    const before = await nodeFootprint(topo);
    let last: Snapshot | undefined;
    const planner = new Planner();

    /** The behaviour table, configuration by configuration, with `mode`'s backend; the last snapshot synced. */
    const runTable = async (mode: string, into: CaseResult[]): Promise<Snapshot | undefined> => {
      let prev: Snapshot | undefined;
      for (const [configName, cases] of casesByConfig()) {
        const config = proxyConfigFromFlags([...flagsFor(configName), `--proxy-mode=${mode}`]);
        const backend = await createBackend(mode, config, topo!.executor);
        backends.push(backend);
        const support = await backend.probe();
        if (mode === 'ipvs')
          (results as { probe?: GuestResults['probe'] }).probe = {
            ...support,
            details: { ...support.details },
          };
        if (!support.supported)
          throw new Error(`${mode} unsupported in the node namespace: ${support.reason}`);
        const { snapshot } = planner.plan(behaviourClusterState(), plannerConfigFrom(config));
        const ts = performance.now();
        const r = await backend.sync(snapshot, computeDelta(prev, snapshot, true));
        results.syncs.push({
          what: `${mode} full sync, config ${configName}`,
          ms: Math.round(performance.now() - ts),
          stats: r.stats,
        });
        prev = snapshot;
        log(
          `${mode} config ${configName}: synced (${Math.round(performance.now() - ts)} ms), ${cases.length} cases`,
        );

        await pool(cases, CONCURRENCY, async (c: BehaviourCase) => {
          // Every case runs, documented differences too: the host checks those still differ.
          const tc = performance.now();
          try {
            const v = await runCase(topo!, c);
            const ms = Math.round(performance.now() - tc);
            into.push({
              name: c.name,
              config: configName,
              status: v.ok ? 'passed' : 'failed',
              detail: v.ok ? undefined : describeVerdict(c, v),
              ms,
            });
            log(
              `${mode} ${v.ok ? 'pass' : 'FAIL'} ${c.name} (${ms} ms)${v.ok ? '' : `: ${v.problems.join('; ')}`}`,
            );
          } catch (e) {
            into.push({
              name: c.name,
              config: configName,
              status: 'failed',
              detail: String(e),
              ms: Math.round(performance.now() - tc),
            });
          }
        });
        save();
      }
      return prev;
    };
    last = await runTable('ipvs', results.cases);

    // ---- incremental sync, drain and restart, on the last configuration's backend
    const backend = backends.at(-1)!;
    const config = proxyConfigFromFlags([...flagsFor('default'), '--proxy-mode=ipvs']);
    const exec = (argv: string[]): Promise<string> =>
      topo!.exec('node', argv, { allowFailure: true }).then((r) => r.stdout + r.stderr);
    {
      // Back to the default configuration (a full sync: the node-level config changed), then a
      // new Service, then pod-c leaves it and `web`: partial syncs. The new Service's pod-c never
      // had a connection, so it is removed at once; web's TCP pod-c served the table's traffic
      // (connections in TIME_WAIT), so it stays at weight 0 until they end; UDP goes at once.
      const cluster = behaviourCluster();
      const plan = (services: KubeService[], slices: KubeEndpointSlice[]): Snapshot =>
        planner.plan(makeState({ services, slices, node: cluster.node }), plannerConfigFrom(config)).snapshot;
      const step = async (what: string, snap: Snapshot): Promise<SyncResult> => {
        const ts = performance.now();
        const r = await backend.sync(snap, computeDelta(last, snap, false));
        results.syncs.push({ what, ms: Math.round(performance.now() - ts), stats: r.stats });
        last = snap;
        return r;
      };
      const ep = (ip: string, node: string, pod: string): KubeEndpoint =>
        fixtureEndpoint(ip, { nodeName: node, ready: true, serving: true, terminating: false, pod });
      const drainSvc = makeService({
        name: 'drain-me',
        namespace: 'e2e',
        clusterIP: '10.96.0.130',
        ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
      });
      const drainSlice = (withPodC: boolean): KubeEndpointSlice =>
        makeSlice({
          name: 'drain-me-v4',
          namespace: 'e2e',
          service: 'drain-me',
          ports: [slicePort('http', 8080, 'TCP')],
          endpoints: [
            ep('10.244.1.10', 'node-a', 'pod-a'),
            ...(withPodC ? [ep('10.244.2.10', 'node-b', 'pod-c')] : []),
          ],
        });
      await step(
        'full sync: back to the default configuration',
        plan([...cluster.services], [...cluster.slices]),
      );
      const added = await step(
        'partial sync: one Service added',
        plan([...cluster.services, drainSvc], [...cluster.slices, drainSlice(true)]),
      );
      check(
        'partial sync: a new Service is added without a full sync',
        !added.full && added.stats?.virtualServersAdded === 1,
        JSON.stringify(added.stats),
      );
      const withoutPodC = cluster.slices.map((sl) =>
        sl.metadata?.name === 'web-v4'
          ? {
              ...sl,
              endpoints: (sl.endpoints ?? []).filter((e) => !(e.addresses ?? []).includes('10.244.2.10')),
            }
          : sl,
      );
      const r = await step(
        'partial sync: an endpoint leaves two Services',
        plan([...cluster.services, drainSvc], [...withoutPodC, drainSlice(false)]),
      );
      const tcp = await exec(['ipvsadm', '-Ln', '-t', `${VIP.web}:80`]);
      const udp = await exec(['ipvsadm', '-Ln', '-u', `${VIP.web}:53`]);
      const drained = await exec(['ipvsadm', '-Ln', '-t', '10.96.0.130:80']);
      check(
        'partial sync: removed TCP endpoints drain at weight 0; one without connections is removed at once',
        !r.full &&
          (r.stats?.realServersDrained ?? 0) === 2 &&
          (r.stats?.realServersRemovedAfterDrain ?? 0) >= 1 &&
          !drained.includes('10.244.2.10:8080'),
        `full=${r.full} drained=${r.stats?.realServersDrained} removedAfterDrain=${r.stats?.realServersRemovedAfterDrain} | ${drained.replace(/\s+/g, ' ')}`,
      );
      check(
        'partial sync: a removed TCP endpoint with connections stays at weight 0 (no new connections)',
        !/10\.244\.2\.10:8080\s+Masq\s+1\b/.test(tcp),
        tcp.replace(/\s+/g, ' '),
      );
      check(
        'partial sync: a removed UDP endpoint is removed at once',
        !udp.includes('10.244.2.10:5353'),
        udp.replace(/\s+/g, ' '),
      );
      const web = await runCase(topo, {
        name: 'web-after-removal',
        covers: '',
        from: 'pod-b',
        to: VIP.web,
        port: 80,
        protocol: 'TCP',
        expect: { endpoints: ['pod-a', 'pod-b'] },
      });
      check(
        'after the partial sync traffic reaches only the remaining endpoints',
        web.ok,
        web.problems.join('; ') || JSON.stringify(web.observation.answeredBy),
      );
      const same = await backend.sync(last!, computeDelta(last, last!, false));
      check(
        'a partial sync without changes runs nothing',
        (same.stats?.ipvsLines ?? -1) === 0 && (same.stats?.entriesAdded ?? -1) === 0,
        JSON.stringify(same.stats),
      );
    }
    {
      // a restarted daemon: a new backend's first (full) sync finds everything in place
      const fresh = await createBackend('ipvs', config, topo.executor);
      backends.push(fresh);
      const ts = performance.now();
      const r = await fresh.sync(last!, computeDelta(undefined, last!, true));
      results.syncs.push({
        what: 'restart: full sync over existing state',
        ms: Math.round(performance.now() - ts),
        stats: r.stats,
      });
      const s = r.stats ?? {};
      check(
        'restart: the full sync over an existing state changes no virtual server, member or address',
        (s.virtualServersAdded ?? -1) === 0 &&
          (s.virtualServersDeleted ?? -1) === 0 &&
          (s.entriesAdded ?? -1) === 0 &&
          (s.addressesAdded ?? -1) === 0 &&
          (s.realServersAdded ?? -1) === 0,
        JSON.stringify(s),
      );
      const c = await runCase(topo, {
        name: 'after-restart',
        covers: '',
        from: 'pod-b',
        to: VIP.web,
        port: 80,
        protocol: 'TCP',
        expect: { endpoints: ['pod-a', 'pod-b'] },
      });
      check('after the restart traffic still flows', c.ok, c.problems.join('; '));
    }
    {
      // foreign IPVS state survives our cleanup
      await exec(['ipvsadm', '-A', '-t', '192.168.77.2:2222', '-s', 'rr']);
      const fresh = await createBackend('ipvs', config, topo.executor);
      const ts = performance.now();
      await fresh.cleanup();
      results.syncs.push({ what: 'cleanup', ms: Math.round(performance.now() - ts) });
      const foreign = await exec(['ipvsadm', '-Sn']);
      check(
        'cleanup leaves virtual servers that are not ours',
        foreign.trim() === '-A -t 192.168.77.2:2222 -s rr',
        foreign.trim(),
      );
      await exec(['ipvsadm', '-D', '-t', '192.168.77.2:2222']);
      const after = await nodeFootprint(topo);
      const diffs = Object.keys(before).filter((k) => before[k] !== after[k]);
      check(
        'cleanup leaves the node as it found it (IPVS, ipsets, iptables rules and chains, links, addresses)',
        diffs.length === 0,
        diffs.length === 0
          ? 'identical'
          : diffs
              .map((k) => `${k}: before ${JSON.stringify(before[k])} after ${JSON.stringify(after[k])}`)
              .join(' | '),
      );
      const c = await runCase(topo, {
        name: 'after-cleanup',
        covers: '',
        from: 'pod-b',
        to: VIP.web,
        port: 80,
        protocol: 'TCP',
        expect: { endpoints: 'drop' },
      });
      check(
        'after cleanup the ClusterIP is no longer served',
        c.observation.answeredBy['pod-a'] === undefined && c.observation.answeredBy['pod-c'] === undefined,
        JSON.stringify(c.observation.outcomes),
      );
    }

    // ---- the default backend's behaviour table on this kernel too (the IPVS state is gone)
    await runTable('nftables', results.nftablesCases);
  } catch (e) {
    (results as { fatal?: string }).fatal = e instanceof Error ? (e.stack ?? e.message) : String(e);
    log(`FATAL ${results.fatal}`);
  } finally {
    for (const b of backends) await b.close?.().catch(() => undefined);
    await topo?.destroy().catch(() => undefined);
    save();
  }
  const failed =
    results.cases.filter((c) => c.status === 'failed').length + results.checks.filter((c) => !c.ok).length;
  log(
    `done: ${results.cases.filter((c) => c.status === 'passed').length} passed, ${failed} failed, ${results.cases.filter((c) => c.status === 'skipped').length} skipped`,
  );
  process.exitCode = results.fatal ? 2 : 0;
}

await main();
