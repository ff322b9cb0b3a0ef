/**
 * Scenarios over time (issue 3 §4 restarts and cleanup, §5 UDP conntrack, endpoint churn),
 * written against a ClusterDriver so the same scenario runs with a backend driven directly
 * (planner + backend.sync, test/e2e/lifecycle.e2e.test.ts) and through the real daemon fed by
 * the API server fixture (test/e2e/daemon.e2e.test.ts).
 *
 * IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16 (these scenarios use 10.96.1.0/24),
 * node 192.168.77.2, external client 192.168.77.1.
 */
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../core/model/kube.js';
import { endpoint, makeNode, makeService, makeSlice, slicePort } from '../support/fixtures.js';
import type { Executor } from '../../backends/exec/executor.js';
import type { Topology } from '../support/netns-topology.js';
import { TOPOLOGY_PLAN as P } from '../support/netns-topology.js';
import { POD_IPS, TCP_TARGET, UDP_TARGET } from './behaviour-table.js';

export const SCENARIO_NAMESPACE = 'life';
export const UDP_VIP = '10.96.1.10';
export const TCP_VIP = '10.96.1.20';

export interface ClusterObjects {
  readonly services: readonly KubeService[];
  readonly slices: readonly KubeEndpointSlice[];
  readonly node: KubeNode;
}

/** Makes the proxy see these objects (exactly) and waits until the data plane reflects them. */
export interface ClusterDriver {
  set(objects: ClusterObjects): Promise<void>;
  /**
   * Restart the proxy: stop it (rules stay in the kernel) and start a fresh one whose first
   * sync replaces them. `whileStopped` runs after the stop and before the start. With `next`,
   * the cluster changes to `next` while the proxy is down (the new one starts from it).
   */
  restart(whileStopped?: () => Promise<void>, next?: ClusterObjects): Promise<void>;
  /** Remove everything the proxy programmed (`--cleanup`). */
  cleanup(): Promise<void>;
}

type PodName = 'pod-a' | 'pod-b' | 'pod-c';

function podEndpoint(pod: PodName): ReturnType<typeof endpoint> {
  const p = POD_IPS[pod];
  if (!p) throw new Error(`unknown pod ${pod}`);
  return endpoint(p.v4, { nodeName: p.node, ready: true, serving: true, terminating: false, pod });
}

export interface ScenarioClusterOptions {
  /** Endpoints of the UDP Service; undefined: the Service does not exist. */
  readonly udp?: readonly PodName[];
  /** Endpoints of the TCP Service; undefined: the Service does not exist. */
  readonly tcp?: readonly PodName[];
}

/** A small cluster: `udp` (10.96.1.10:53/UDP -> 5353) and `tcp` (10.96.1.20:80/TCP -> 8080). */
export function scenarioCluster(o: ScenarioClusterOptions): ClusterObjects {
  const services: KubeService[] = [];
  const slices: KubeEndpointSlice[] = [];
  if (o.udp !== undefined) {
    services.push(
      makeService({
        name: 'udp',
        namespace: SCENARIO_NAMESPACE,
        clusterIP: UDP_VIP,
        ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: UDP_TARGET }],
      }),
    );
    slices.push(
      makeSlice({
        name: 'udp-v4',
        namespace: SCENARIO_NAMESPACE,
        service: 'udp',
        ports: [slicePort('dns', UDP_TARGET, 'UDP')],
        endpoints: o.udp.map(podEndpoint),
      }),
    );
  }
  if (o.tcp !== undefined) {
    services.push(
      makeService({
        name: 'tcp',
        namespace: SCENARIO_NAMESPACE,
        clusterIP: TCP_VIP,
        ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: TCP_TARGET }],
      }),
    );
    slices.push(
      makeSlice({
        name: 'tcp-v4',
        namespace: SCENARIO_NAMESPACE,
        service: 'tcp',
        ports: [slicePort('http', TCP_TARGET, 'TCP')],
        endpoints: o.tcp.map(podEndpoint),
      }),
    );
  }
  return {
    services,
    slices,
    node: {
      ...makeNode({ name: P.nodeName, internalIPs: [P.nodeIPv4] }),
      spec: { podCIDR: P.localPodCIDRv4, podCIDRs: [P.localPodCIDRv4] },
    },
  };
}

/** Probe until `accept` says yes or `withinMs` passes; returns the last result and how long it took. */
export async function probeUntil(
  topo: Topology,
  from: string,
  protocol: 'tcp' | 'udp',
  host: string,
  port: number,
  accept: (r: Awaited<ReturnType<Topology['probe']>>) => boolean,
  options: { withinMs: number; localPort?: number; timeoutMs?: number; intervalMs?: number },
): Promise<{ ok: boolean; last: Awaited<ReturnType<Topology['probe']>>; ms: number; attempts: number }> {
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const last = await topo.probe(from, protocol, host, port, {
      timeoutMs: options.timeoutMs ?? 300,
      ...(options.localPort ? { localPort: options.localPort } : {}),
    });
    if (accept(last)) return { ok: true, last, ms: Date.now() - started, attempts };
    if (Date.now() - started > options.withinMs)
      return { ok: false, last, ms: Date.now() - started, attempts };
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/** conntrack entries (orig direction) towards `dst` in the node namespace, as text lines. */
export async function conntrackTo(
  executor: Executor,
  dst: string,
  protocol: 'udp' | 'tcp' = 'udp',
): Promise<string[]> {
  const r = await executor.run('conntrack', ['-L', '-p', protocol, '--orig-dst', dst], {
    allowFailure: true,
  });
  return r.stdout.split('\n').filter((l) => l.includes(dst));
}

/** iptables' built-in tables and base chains: iptables-nft creates them empty on first use. */
const IPTABLES_BUILTIN_TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);
const IPTABLES_BUILTIN_CHAINS = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);

type NftObject = Record<string, Record<string, unknown>>;

/**
 * The nftables ruleset as sorted, handle-free JSON lines, without the empty built-in tables and
 * base chains that iptables-nft leaves behind (kube-proxy's cleanup leaves them too: they hold
 * nothing and every iptables user shares them).
 */
export function normalizeNftRuleset(json: string): string[] {
  let objects: NftObject[];
  try {
    objects = ((JSON.parse(json) as { nftables?: NftObject[] }).nftables ?? []).filter(
      (o) => !('metainfo' in o),
    );
  } catch {
    return [`unparsable: ${json}`];
  }
  const strip = (o: NftObject): NftObject => {
    const [kind, body] = Object.entries(o)[0] ?? ['', {}];
    const { handle: _h, ...rest } = body as Record<string, unknown>;
    return { [kind]: rest };
  };
  const isBuiltinFamily = (b: Record<string, unknown>): boolean =>
    (b.family === 'ip' || b.family === 'ip6') && IPTABLES_BUILTIN_TABLES.has(String(b.table ?? b.name));
  const rulesPerChain = new Map<string, number>();
  for (const o of objects) {
    const r = o.rule;
    if (r)
      rulesPerChain.set(
        `${r.family}/${r.table}/${r.chain}`,
        (rulesPerChain.get(`${r.family}/${r.table}/${r.chain}`) ?? 0) + 1,
      );
  }
  const emptyBuiltinChain = (c: Record<string, unknown>): boolean =>
    isBuiltinFamily(c) &&
    IPTABLES_BUILTIN_CHAINS.has(String(c.name)) &&
    !rulesPerChain.has(`${c.family}/${c.table}/${c.name}`) &&
    (c.policy === undefined || c.policy === 'accept');
  const kept = objects.filter((o) => !(o.chain && emptyBuiltinChain(o.chain)));
  const nonEmptyTables = new Set(
    kept.filter((o) => !o.table).map((o) => `${Object.values(o)[0]?.family}/${Object.values(o)[0]?.table}`),
  );
  return kept
    .filter(
      (o) =>
        !(o.table && isBuiltinFamily(o.table) && !nonEmptyTables.has(`${o.table.family}/${o.table.name}`)),
    )
    .map((o) => JSON.stringify(strip(o)))
    .sort();
}

/**
 * Everything the kernel holds that a proxy could have programmed, as comparable text: the
 * nftables ruleset (which includes iptables-nft; see normalizeNftRuleset), the legacy iptables
 * rules, IPVS services and ipsets.
 */
export async function kernelProxyState(executor: Executor): Promise<string> {
  const parts: string[] = [];
  const tryRun = async (cmd: string, args: string[]): Promise<string | undefined> => {
    try {
      const r = await executor.run(cmd, args, { allowFailure: true, timeoutMs: 20_000 });
      return r.code === 0 ? r.stdout : undefined;
    } catch {
      return undefined; // tool not installed: nothing of that kind can have been programmed through it
    }
  };
  const nft = await tryRun('nft', ['-j', '-s', 'list', 'ruleset']);
  if (nft !== undefined) parts.push('## nft', ...normalizeNftRuleset(nft));
  for (const t of ['iptables-legacy-save', 'ip6tables-legacy-save']) {
    const out = await tryRun(t, []);
    if (out !== undefined) {
      // timestamps and counters vary; empty built-in tables say nothing
      const lines = out
        .split('\n')
        .filter(
          (l) => l && !l.startsWith('#') && l !== 'COMMIT' && !/^:[A-Z]+ ACCEPT/.test(l) && !/^\*/.test(l),
        );
      parts.push(`## ${t}`, ...lines);
    }
  }
  const ipvs = await tryRun('ipvsadm', ['-Ln']);
  if (ipvs !== undefined)
    parts.push('## ipvs', ...ipvs.split('\n').filter((l) => /^(TCP|UDP|SCTP|\s+->\s+\d)/.test(l)));
  const ipset = await tryRun('ipset', ['list', '-n']);
  if (ipset !== undefined) parts.push('## ipset', ...ipset.split('\n').filter(Boolean).sort());
  return parts.join('\n');
}

/** A foreign nftables table and rule that a proxy's cleanup must leave alone. */
export const FOREIGN_NFT = [
  'table inet not-switchyard {',
  '  set keep { type ipv4_addr; elements = { 192.0.2.1 } }',
  '  chain input {',
  '    type filter hook input priority 10; policy accept;',
  '    ip saddr @keep tcp dport 9 counter accept',
  '  }',
  '}',
  '',
].join('\n');

/**
 * Per-scenario timeout: generous, because a loaded 2-core machine can take seconds per `nft`,
 * `iptables-restore` or daemon start; a scenario that works takes well under 5 s.
 */
export const SCENARIO_TIMEOUT_MS = 120_000;

export interface ScenarioContext {
  readonly topo: Topology;
  readonly driver: ClusterDriver;
}

/**
 * Scenarios a backend cannot pass, with the reason, by backend name and scenario title. A
 * listed scenario is reported as skipped for that backend (never silently).
 */
export const LIFECYCLE_EXCEPTIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  userspace: {
    'restart: an established TCP connection survives and new connections work during and after':
      'userspace: the proxy process relays every connection, so a restart closes them and nothing is served while it is down',
  },
};

/**
 * Registers the lifecycle scenarios as `it` blocks, in order (they share one topology and one
 * proxy; the cleanup scenario runs last). `baseline` must be kernelProxyState() of the node
 * taken after FOREIGN_NFT was added and before the proxy programmed anything.
 */
export function defineLifecycleScenarios(
  ctx: () => ScenarioContext,
  baseline: () => string,
  api: {
    it: typeof import('vitest').it;
    expect: typeof import('vitest').expect;
    /** The backend under test: its LIFECYCLE_EXCEPTIONS are skipped, saying why. */
    backend?: string;
  },
): void {
  const { expect } = api;
  const it = (name: string, fn: () => Promise<void>, timeout?: number): void => {
    const reason = api.backend === undefined ? undefined : LIFECYCLE_EXCEPTIONS[api.backend]?.[name];
    // A documented difference must still show: the scenario is expected to fail.
    if (reason !== undefined) api.it.fails(`${name} (differs: ${reason})`, fn, timeout);
    else api.it(name, fn, timeout);
  };
  const names = (rs: readonly { reply?: { name: string } }[]): string[] =>
    [...new Set(rs.map((r) => r.reply?.name ?? '-'))].sort();
  const sample = async (
    n: number,
    protocol: 'tcp' | 'udp',
    host: string,
    port: number,
  ): Promise<Awaited<ReturnType<Topology['probe']>>[]> => {
    const out = [];
    for (let i = 0; i < n; i++)
      out.push(await ctx().topo.probe('pod-b', protocol, host, port, { timeoutMs: 1500 }));
    return out;
  };

  it(
    'endpoint added and removed changes traffic',
    async () => {
      const { driver } = ctx();
      await driver.set(scenarioCluster({ tcp: ['pod-a'] }));
      expect(names(await sample(8, 'tcp', TCP_VIP, 80))).toEqual(['pod-a']);
      await driver.set(scenarioCluster({ tcp: ['pod-a', 'pod-c'] }));
      expect(names(await sample(30, 'tcp', TCP_VIP, 80))).toEqual(['pod-a', 'pod-c']);
      await driver.set(scenarioCluster({ tcp: ['pod-c'] }));
      expect(names(await sample(8, 'tcp', TCP_VIP, 80))).toEqual(['pod-c']);
      await driver.set(scenarioCluster({ tcp: [] }));
      const refused = await sample(2, 'tcp', TCP_VIP, 80);
      expect(refused.map((r) => `${r.result}:${r.code}`)).toEqual([
        'refused:ECONNREFUSED',
        'refused:ECONNREFUSED',
      ]);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'UDP: a flow that started before the Service existed is answered as soon as it gets an endpoint',
    async () => {
      const { driver, topo } = ctx();
      await driver.set(scenarioCluster({ tcp: ['pod-a'] }));
      const port = 41001;
      const before = await topo.probe('pod-b', 'udp', UDP_VIP, 53, { localPort: port, timeoutMs: 500 });
      expect(before.result).not.toBe('reply');
      // The precondition that makes this test meaningful: the node holds a confirmed conntrack
      // entry for the flow without DNAT, which would black-hole it for 30 s unless flushed.
      expect((await conntrackTo(topo.executor, UDP_VIP)).join('\n')).toContain(`sport=${port}`);
      await driver.set(scenarioCluster({ tcp: ['pod-a'], udp: ['pod-a'] }));
      const after = await probeUntil(topo, 'pod-b', 'udp', UDP_VIP, 53, (r) => r.result === 'reply', {
        withinMs: 2000,
        localPort: port,
      });
      expect(after.ok, `still ${JSON.stringify(after.last)} after ${after.ms} ms`).toBe(true);
      expect(after.last.reply?.name).toBe('pod-a');
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'UDP: a client of a Service without endpoints is answered as soon as an endpoint appears',
    async () => {
      const { driver, topo } = ctx();
      await driver.set(scenarioCluster({ tcp: ['pod-a'], udp: [] }));
      const port = 41002;
      const before = await topo.probe('pod-b', 'udp', UDP_VIP, 53, { localPort: port, timeoutMs: 500 });
      expect(`${before.result}:${before.code}`).toBe('refused:ECONNREFUSED');
      await driver.set(scenarioCluster({ tcp: ['pod-a'], udp: ['pod-c'] }));
      const after = await probeUntil(topo, 'pod-b', 'udp', UDP_VIP, 53, (r) => r.result === 'reply', {
        withinMs: 2000,
        localPort: port,
      });
      expect(after.ok, `still ${JSON.stringify(after.last)} after ${after.ms} ms`).toBe(true);
      expect(after.last.reply?.name).toBe('pod-c');
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'UDP: when the endpoint is replaced the client moves to the new one',
    async () => {
      const { driver, topo } = ctx();
      await driver.set(scenarioCluster({ tcp: ['pod-a'], udp: ['pod-a'] }));
      const port = 41003;
      const first = await topo.probe('pod-b', 'udp', UDP_VIP, 53, { localPort: port, timeoutMs: 1000 });
      expect(first.reply?.name).toBe('pod-a');
      expect((await conntrackTo(topo.executor, UDP_VIP)).join('\n')).toContain(`sport=${port}`);
      // pod-a keeps running (it is only removed from the Service): a stale conntrack entry would
      // keep sending this flow to it.
      await driver.set(scenarioCluster({ tcp: ['pod-a'], udp: ['pod-b'] }));
      const moved = await probeUntil(topo, 'pod-b', 'udp', UDP_VIP, 53, (r) => r.reply?.name === 'pod-b', {
        withinMs: 2000,
        localPort: port,
        intervalMs: 50,
      });
      expect(moved.ok, `still ${JSON.stringify(moved.last)} after ${moved.ms} ms`).toBe(true);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'restart: an established TCP connection survives and new connections work during and after',
    async () => {
      const { driver, topo } = ctx();
      await driver.set(scenarioCluster({ tcp: ['pod-a', 'pod-c'], udp: ['pod-b'] }));
      const client = topo.agent('pod-b');
      const open = await client.open(TCP_VIP, 80);
      expect(open.result).toBe('reply');
      const conn = open.conn ?? -1;
      const server = open.reply?.name;
      // Keep opening new connections the whole time: none may fail.
      let stop = false;
      const failures: string[] = [];
      let attempts = 0;
      const loop = (async (): Promise<void> => {
        while (!stop) {
          attempts++;
          const r = await topo.probe('external', 'tcp', TCP_VIP, 80, { timeoutMs: 2000 });
          if (r.result !== 'reply') failures.push(`${r.result}${r.code ? `(${r.code})` : ''}`);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      try {
        await driver.restart(async () => {
          const p = await client.ping(conn, 2000);
          expect(p.result, 'ping while the proxy is down').toBe('reply');
          const fresh = await topo.probe('pod-b', 'tcp', TCP_VIP, 80, { timeoutMs: 2000 });
          expect(fresh.result, 'new connection while the proxy is down').toBe('reply');
        });
        for (let i = 0; i < 3; i++) {
          const p = await client.ping(conn, 2000);
          expect(p.result, 'ping after the restart').toBe('reply');
          expect(p.reply?.name).toBe(server);
        }
        await new Promise((res) => setTimeout(res, 300));
      } finally {
        stop = true;
        await loop;
        await client.closeConnection(conn);
      }
      expect(failures, `${failures.length} of ${attempts} new connections failed`).toEqual([]);
      expect(attempts).toBeGreaterThan(3);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'restart: what changed while the proxy was down is programmed, stale rules are removed',
    async () => {
      const { driver, topo } = ctx();
      await driver.set(scenarioCluster({ tcp: ['pod-a'], udp: ['pod-a'] }));
      expect((await topo.probe('pod-b', 'udp', UDP_VIP, 53)).reply?.name).toBe('pod-a');
      // While down: the UDP Service is deleted and the TCP one moves to pod-c.
      await driver.restart(undefined, scenarioCluster({ tcp: ['pod-c'] }));
      const tcp = await topo.probe('pod-b', 'tcp', TCP_VIP, 80, { timeoutMs: 1500 });
      expect(tcp.reply?.name).toBe('pod-c');
      // The deleted Service's ClusterIP is not proxied any more: it goes upstream and is refused there.
      const udp = await topo.probe('pod-b', 'udp', UDP_VIP, 53, { timeoutMs: 1500 });
      expect(`${udp.result}:${udp.code}`).toBe('refused:EHOSTUNREACH');
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'cleanup removes everything the proxy created and leaves foreign rules alone',
    async () => {
      const { driver, topo } = ctx();
      await driver.set(scenarioCluster({ tcp: ['pod-a'] }));
      expect(await kernelProxyState(topo.executor)).not.toEqual(baseline());
      await driver.cleanup();
      expect(await kernelProxyState(topo.executor)).toEqual(baseline());
      const foreign = await topo.exec('node', ['nft', 'list', 'table', 'inet', 'not-switchyard']);
      expect(foreign.stdout).toContain('ip saddr @keep tcp dport 9');
      // Nothing proxies the ClusterIP any more: it goes upstream and is refused there.
      const r = await topo.probe('pod-b', 'tcp', TCP_VIP, 80, { timeoutMs: 1500 });
      expect(`${r.result}:${r.code}`).toBe('refused:EHOSTUNREACH');
    },
    SCENARIO_TIMEOUT_MS,
  );
}
