/**
 * The network-namespace test bed: one Kubernetes "node" in a namespace, pods in namespaces of
 * their own behind routed /32 veths, an external client, optionally a second node holding
 * non-local endpoints, and a management link from the root namespace (where an API server
 * fixture listens) into the node namespace (where the daemon runs).
 *
 * IP plan (DESIGN.md): pods 10.244.0.0/16 (this node 10.244.1.0/24, the other 10.244.2.0/24),
 * ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client 192.168.77.1, LB source range
 * 203.0.113.0/25. IPv6: pods fd00:10:244:1::/64 and fd00:10:244:2::/64, node fd00:77::2,
 * client fd00:77::1, ClusterIPs fd00:10:96::/112.
 *
 * ```
 *   root ns ── swy…(100.64.N.1/30) ══ mgmt0 (100.64.N.2/30)
 *                                       │  up0 192.168.99.2 ══ "up" ns 192.168.99.1: the node's
 *                                       │  default route; rejects (admin-prohibited) all it gets
 *   client "external" eth0 ═══ ext0   NODE ns (node-a)   peer0 ═══ eth0 "other" ns (node-b)
 *     192.168.77.1/24          192.168.77.2/24            192.168.66.2   192.168.66.3
 *     192.168.88.1/24          192.168.88.2/24              │              │
 *     203.0.113.10/32 (allowed)  vpN (10.244.1.1, fe80::1)  │             vpN (10.244.2.1)
 *     203.0.113.200/32 (denied)  ═══ eth0 pod ns 10.244.1.x/32            ═══ eth0 pod ns 10.244.2.x/32
 * ```
 *
 * Every namespace name starts with `swy-<pid>-<random>-`, so parallel test files never
 * collide and a later run can sweep what a dead process left behind.
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import {
  SpawnExecutor,
  type ExecOptions,
  type ExecResult,
  type Executor,
} from '../../backends/exec/executor.js';
import { Agent, type ProbeOptions, type ProbeProtocol, type ProbeResult } from './agent-client.js';
import { NetnsExecutor } from './netns-executor.js';
import { SctpProber } from './agent-sctp.js';

/** Fixed addresses of the test bed (the same in every topology; namespaces isolate them). */
export const TOPOLOGY_PLAN = {
  nodeName: 'node-a',
  otherNodeName: 'node-b',
  nodeIPv4: '192.168.77.2',
  nodeIPv6: 'fd00:77::2',
  /** A second node address, outside `--nodeport-addresses=192.168.77.0/24`. */
  secondNodeIPv4: '192.168.88.2',
  secondNodeIPv6: 'fd00:88::2',
  clientIPv4: '192.168.77.1',
  clientIPv6: 'fd00:77::1',
  /** External-client source inside loadBalancerSourceRanges 203.0.113.0/25. */
  clientAllowedIPv4: '203.0.113.10',
  /** External-client source outside 203.0.113.0/25. */
  clientDeniedIPv4: '203.0.113.200',
  /** The node's address towards its upstream router (its default route). */
  nodeUplinkIPv4: '192.168.99.2',
  nodeUplinkIPv6: 'fd00:99::2',
  upstreamIPv4: '192.168.99.1',
  upstreamIPv6: 'fd00:99::1',
  /** The node's address on the link to the other node. */
  nodeLinkIPv4: '192.168.66.2',
  nodeLinkIPv6: 'fd00:66::2',
  otherNodeIPv4: '192.168.66.3',
  otherNodeIPv6: 'fd00:66::3',
  clusterCIDRv4: '10.244.0.0/16',
  clusterCIDRv6: 'fd00:10:244::/48',
  localPodCIDRv4: '10.244.1.0/24',
  localPodCIDRv6: 'fd00:10:244:1::/64',
  remotePodCIDRv4: '10.244.2.0/24',
  remotePodCIDRv6: 'fd00:10:244:2::/64',
  /** The node's own address on every pod veth (what masquerade towards a local pod yields). */
  localPodGatewayIPv4: '10.244.1.1',
  localPodGatewayIPv6: 'fd00:10:244:1::1',
  remotePodGatewayIPv4: '10.244.2.1',
  remotePodGatewayIPv6: 'fd00:10:244:2::1',
  serviceCIDRv4: '10.96.0.0/16',
  serviceCIDRv6: 'fd00:10:96::/112',
} as const;

export interface PodSpec {
  /** Short name (the echo servers answer with it); also the Pod name in EndpointSlices. */
  readonly name: string;
  /** 'local' (default): on the node under test; 'remote': on the other node. */
  readonly node?: 'local' | 'remote';
  readonly tcpPorts?: readonly number[];
  readonly udpPorts?: readonly number[];
  /** Last octet / group of the pod's address (default: 10, 11, ... in creation order). */
  readonly host?: number;
}

export interface TopologySpec {
  readonly pods: readonly PodSpec[];
  /** Give every pod and node an IPv6 address too (default true). */
  readonly ipv6?: boolean;
  /** Create the other node even without remote pods (default: only when a pod is remote). */
  readonly otherNode?: boolean;
  /** Echo servers in the node namespace itself (they answer with the name 'node'). */
  readonly nodeServers?: { readonly tcpPorts?: readonly number[]; readonly udpPorts?: readonly number[] };
  /** Diagnostics sink (agent stderr). */
  readonly log?: (line: string) => void;
}

export interface PodInfo {
  readonly name: string;
  readonly netns: string;
  /** 'node-a' (local) or 'node-b' (remote). */
  readonly nodeName: string;
  readonly local: boolean;
  readonly ipv4: string;
  readonly ipv6?: string;
  /** The pod's veth on its node's side. */
  readonly hostVeth: string;
}

/** A place traffic can start from: 'node', 'external', 'other', or a pod name. */
export type Place = string;

export interface Topology {
  /** Unique prefix of every namespace of this topology. */
  readonly id: string;
  readonly nodeNs: string;
  readonly clientNs: string;
  readonly otherNs?: string;
  readonly pods: readonly PodInfo[];
  /** The management link: the API fixture listens on `rootIp`, the daemon reaches it from `nodeIp`. */
  readonly management: { readonly rootIp: string; readonly nodeIp: string; readonly rootVeth: string };
  readonly ipv6: boolean;
  /** Runs programs inside the node namespace: hand it to a backend to program "the node". */
  readonly executor: Executor;
  /** The namespace of a place. */
  netnsOf(place: Place): string;
  pod(name: string): PodInfo;
  /** Run argv inside a place's namespace. */
  exec(place: Place, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  executorFor(place: Place): Executor;
  /** The traffic agent of a place. */
  agent(place: Place): Agent;
  /**
   * One request from a place. TCP/UDP: through the place's agent. SCTP: a raw INIT observed by
   * the pods (agent-sctp.ts; needs python3): 'reply' names the pod that got it and the source
   * it saw, else 'timeout'; SCTP probes are serialized.
   */
  probe(
    from: Place,
    protocol: ProbeProtocol,
    host: string,
    port: number,
    options?: ProbeOptions,
  ): Promise<ProbeResult>;
  /** Kill every process, delete every namespace and interface; idempotent. */
  destroy(): Promise<void>;
}

const NS_PREFIX = 'swy-';
const NS_RE = /^swy-(\d+)-([0-9a-z]+)-/;
const ROOT_VETH_RE = /^swy([0-9a-z]+)m[0-9a-z]+$/;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function runSync(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

function listNetns(): string[] {
  return runSync('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

function killNetnsProcesses(ns: string): void {
  for (const p of runSync('ip', ['netns', 'pids', ns]).split(/\s+/)) {
    const pid = Number(p);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}

function deleteNetnsSync(ns: string): void {
  killNetnsProcesses(ns);
  runSync('ip', ['netns', 'del', ns]);
}

/**
 * Remove namespaces and root-side management veths left by test processes that died without
 * cleaning up (their creating pid is gone). Returns what was removed.
 */
export function sweepStaleTopologies(): string[] {
  const removed: string[] = [];
  for (const ns of listNetns()) {
    const m = NS_RE.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    deleteNetnsSync(ns);
    removed.push(ns);
  }
  const links = runSync('ip', ['-o', 'link', 'show']);
  for (const line of links.split('\n')) {
    const name = /^\d+:\s+([^:@]+)/.exec(line)?.[1];
    const m = name ? ROOT_VETH_RE.exec(name) : null;
    if (!name || !m) continue;
    const pid = parseInt(m[1] ?? '', 36);
    if (pid === process.pid || pidAlive(pid)) continue;
    runSync('ip', ['link', 'del', name]);
    removed.push(name);
  }
  return removed;
}

/** Names every switchyard test namespace currently present (for leak checks). */
export function listTopologyNamespaces(): string[] {
  return listNetns().filter((n) => NS_RE.test(n));
}

/** Pick a /30 in 100.64.0.0/10 that no root-namespace address uses. */
function pickManagementSubnet(): { rootIp: string; nodeIp: string } {
  const used = runSync('ip', ['-4', '-o', 'addr', 'show']);
  for (let attempt = 0; attempt < 100; attempt++) {
    const block = randomInt(0, 1 << 20);
    const base = (100 << 24) + (64 << 16) + block * 4;
    const ip = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
    const root = ip(base + 1);
    const node = ip(base + 2);
    if (!used.includes(` ${root}/`) && !used.includes(` ${node}/`)) return { rootIp: root, nodeIp: node };
  }
  throw new Error('no free management subnet in 100.64.0.0/10');
}

class TopologyImpl implements Topology {
  readonly pods: PodInfo[] = [];
  readonly executor: Executor;
  readonly otherNs?: string;
  private readonly agents = new Map<Place, Agent>();
  private sctpProber: SctpProber | undefined;
  private readonly createdNs: string[] = [];
  private destroyed = false;
  readonly spawn = new SpawnExecutor();
  private readonly exitHandler = (): void => this.destroySync();
  private readonly signalHandler = (signal: NodeJS.Signals): void => {
    this.destroySync();
    process.kill(process.pid, signal);
  };

  constructor(
    readonly id: string,
    readonly nodeNs: string,
    readonly clientNs: string,
    otherNs: string | undefined,
    readonly management: { rootIp: string; nodeIp: string; rootVeth: string },
    readonly ipv6: boolean,
  ) {
    this.otherNs = otherNs;
    this.executor = new NetnsExecutor(nodeNs);
    process.once('exit', this.exitHandler);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, this.signalHandler);
  }

  netnsOf(place: Place): string {
    if (place === 'node') return this.nodeNs;
    if (place === 'external' || place === 'client') return this.clientNs;
    if (place === 'other') {
      if (!this.otherNs) throw new Error('this topology has no other node');
      return this.otherNs;
    }
    return this.pod(place).netns;
  }

  pod(name: string): PodInfo {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod or place named ${name}`);
    return p;
  }

  exec(place: Place, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const [cmd, ...args] = argv;
    if (!cmd) throw new Error('exec: empty argv');
    return this.executorFor(place).run(cmd, args, options);
  }

  executorFor(place: Place): Executor {
    return new NetnsExecutor(this.netnsOf(place));
  }

  agent(place: Place): Agent {
    const key = place === 'client' ? 'external' : place;
    const a = this.agents.get(key);
    if (!a) throw new Error(`no agent in ${place}`);
    return a;
  }

  probe(
    from: Place,
    protocol: ProbeProtocol,
    host: string,
    port: number,
    options?: ProbeOptions,
  ): Promise<ProbeResult> {
    if (protocol === 'sctp') {
      this.sctpProber ??= new SctpProber(
        this.pods.map((p) => ({ name: p.name, executor: this.executorFor(p.name) })),
      );
      return this.sctpProber.probe(this.executorFor(from), host, port, {
        ...(options?.localAddress ? { localAddress: options.localAddress } : {}),
        ...(options?.timeoutMs ? { waitMs: Math.min(options.timeoutMs, 1000) } : {}),
      });
    }
    return this.agent(from).probe(protocol, host, port, options);
  }

  // ------------------------------------------------------------ construction

  async ns(name: string): Promise<string> {
    const full = `${this.id}${name}`;
    await this.spawn.run('ip', ['netns', 'add', full]);
    this.createdNs.push(full);
    await this.ipBatch(full, ['link set lo up']);
    await this.sysctl(full, [
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
      'net.ipv6.conf.all.disable_ipv6=0',
      'net.ipv6.conf.default.disable_ipv6=0',
      // No ICMP error rate limit: a REJECT must be seen at once on every probe, not after the
      // per-peer token bucket (1/s after a burst of 6) runs dry under many probes.
      'net.ipv4.icmp_ratelimit=0',
      'net.ipv6.icmp.ratelimit=0',
      'net.ipv4.icmp_msgs_per_sec=100000',
      'net.ipv4.icmp_msgs_burst=10000',
      // The node forwards some traffic back out the interface it came in on (to the upstream
      // router); no redirects, so clients keep sending through the node.
      'net.ipv4.conf.all.send_redirects=0',
      'net.ipv4.conf.default.send_redirects=0',
    ]);
    return full;
  }

  ipBatch(ns: string, lines: readonly string[]): Promise<ExecResult> {
    return this.spawn.run('ip', ['-n', ns, '-batch', '-'], { stdin: lines.join('\n') + '\n' });
  }

  sysctl(ns: string, settings: readonly string[]): Promise<ExecResult> {
    return this.spawn.run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...settings]);
  }

  async startAgent(
    place: Place,
    ns: string,
    name: string,
    tcp?: readonly number[],
    udp?: readonly number[],
    log?: (l: string) => void,
  ): Promise<void> {
    const agent = await Agent.start({
      netns: ns,
      name,
      tcpPorts: tcp,
      udpPorts: udp,
      onStderr: log ? (l) => log(`[${name}] ${l}`) : undefined,
    });
    this.agents.set(place, agent);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all([...this.agents.values()].map((a) => a.stop().catch(() => undefined)));
    this.destroySync();
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.exitHandler);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(s, this.signalHandler);
    for (const a of this.agents.values()) a.killNow();
    for (const ns of [...this.createdNs].reverse()) deleteNetnsSync(ns);
    // Deleting the node namespace destroys the management veth pair; make sure anyway.
    if (runSync('ip', ['-o', 'link', 'show', this.management.rootVeth]).length > 0) {
      runSync('ip', ['link', 'del', this.management.rootVeth]);
    }
  }
}

/** Build a topology. On any failure everything made so far is removed before the error is rethrown. */
export async function createTopology(spec: TopologySpec): Promise<Topology> {
  sweepStaleTopologies();
  const ipv6 = spec.ipv6 ?? true;
  const rand = randomInt(0, 36 ** 3).toString(36);
  const id = `${NS_PREFIX}${process.pid}-${rand}-`;
  const rootVeth = `swy${process.pid.toString(36)}m${rand}`;
  if (rootVeth.length > 15) throw new Error(`interface name too long: ${rootVeth}`);
  const mgmt = pickManagementSubnet();
  const needOther = spec.otherNode === true || spec.pods.some((p) => p.node === 'remote');
  const P = TOPOLOGY_PLAN;

  const topo = new TopologyImpl(
    id,
    `${id}node`,
    `${id}ext`,
    needOther ? `${id}other` : undefined,
    { ...mgmt, rootVeth },
    ipv6,
  );
  try {
    await topo.ns('node');
    await topo.ns('ext');
    const up = await topo.ns('up');
    if (topo.otherNs) await topo.ns('other');
    const node = topo.nodeNs;
    const ext = topo.clientNs;
    const fwd = ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'];
    await topo.sysctl(node, fwd);

    // Node <-> external client.
    const nodeLines = [
      `link add ext0 type veth peer name eth0 netns ${ext}`,
      'link set ext0 up',
      `addr add ${P.nodeIPv4}/24 dev ext0`,
      `addr add ${P.secondNodeIPv4}/24 dev ext0`,
      `route add 203.0.113.0/24 via ${P.clientIPv4} dev ext0`,
      `link add up0 type veth peer name eth0 netns ${up}`,
      'link set up0 up',
      `addr add ${P.nodeUplinkIPv4}/24 dev up0`,
      `route add default via ${P.upstreamIPv4} dev up0`,
    ];
    // The upstream router: the node's default route. It answers whatever the node forwards to
    // it with ICMP "administratively prohibited" (a hard error for TCP and UDP sockets alike),
    // so traffic a backend failed to program shows as EHOSTUNREACH/EACCES, never as silence
    // (which would pass for DROP) nor as ECONNREFUSED (which would pass for REJECT). An nft
    // reject, because the kernel's own unreachable-route errors are rate limited per host
    // (route/error_cost is not per namespace).
    await topo.sysctl(up, fwd);
    const upLines = [
      'link set eth0 up',
      `addr add ${P.upstreamIPv4}/24 dev eth0`,
      `route add default via ${P.nodeUplinkIPv4} dev eth0`,
    ];
    if (ipv6)
      upLines.push(
        `addr add ${P.upstreamIPv6}/64 dev eth0 nodad`,
        `route add default via ${P.nodeUplinkIPv6} dev eth0`,
      );
    const extLines = [
      'link set eth0 up',
      `addr add ${P.clientIPv4}/24 dev eth0`,
      'addr add 192.168.88.1/24 dev eth0',
      `addr add ${P.clientAllowedIPv4}/32 dev eth0`,
      `addr add ${P.clientDeniedIPv4}/32 dev eth0`,
      `route add default via ${P.nodeIPv4} dev eth0`,
    ];
    if (ipv6) {
      nodeLines.push(
        `addr add ${P.nodeIPv6}/64 dev ext0 nodad`,
        `addr add ${P.secondNodeIPv6}/64 dev ext0 nodad`,
        `addr add ${P.nodeUplinkIPv6}/64 dev up0 nodad`,
        `route add default via ${P.upstreamIPv6} dev up0`,
      );
      extLines.push(
        `addr add ${P.clientIPv6}/64 dev eth0 nodad`,
        'addr add fd00:88::1/64 dev eth0 nodad',
        `route add default via ${P.nodeIPv6} dev eth0`,
      );
    }
    // Management link: root side stays in the root namespace.
    await topo.spawn.run('ip', [
      'link',
      'add',
      rootVeth,
      'type',
      'veth',
      'peer',
      'name',
      'mgmt0',
      'netns',
      node,
    ]);
    await topo.spawn.run('ip', ['addr', 'add', `${mgmt.rootIp}/30`, 'dev', rootVeth]);
    await topo.spawn.run('ip', ['link', 'set', rootVeth, 'up']);
    nodeLines.push('link set mgmt0 up', `addr add ${mgmt.nodeIp}/30 dev mgmt0`);

    // Node <-> other node.
    const otherLines: string[] = [];
    if (topo.otherNs) {
      const other = topo.otherNs;
      await topo.sysctl(other, fwd);
      nodeLines.push(
        `link add peer0 type veth peer name eth0 netns ${other}`,
        'link set peer0 up',
        `addr add ${P.nodeLinkIPv4}/24 dev peer0`,
        `route add ${P.remotePodCIDRv4} via ${P.otherNodeIPv4} dev peer0`,
      );
      otherLines.push(
        'link set eth0 up',
        `addr add ${P.otherNodeIPv4}/24 dev eth0`,
        `route add default via ${P.nodeLinkIPv4} dev eth0`,
      );
      if (ipv6) {
        nodeLines.push(
          `addr add ${P.nodeLinkIPv6}/64 dev peer0 nodad`,
          `route add ${P.remotePodCIDRv6} via ${P.otherNodeIPv6} dev peer0`,
        );
        otherLines.push(
          `addr add ${P.otherNodeIPv6}/64 dev eth0 nodad`,
          `route add default via ${P.nodeLinkIPv6} dev eth0`,
        );
      }
    }

    // Pods: routed /32 (/128) veths, no bridge.
    const podLines = new Map<string, string[]>();
    let localIndex = 0;
    let remoteIndex = 0;
    for (const [i, spec_] of spec.pods.entries()) {
      const local = spec_.node !== 'remote';
      if (!local && !topo.otherNs) throw new Error('remote pod without other node');
      const index = local ? localIndex++ : remoteIndex++;
      const subnet = local ? 1 : 2;
      const host = spec_.host ?? 10 + index;
      const podNs = await topo.ns(`p${i}`);
      const hostVeth = `vp${i}`;
      const gw = local ? P.localPodGatewayIPv4 : P.remotePodGatewayIPv4;
      const info: PodInfo = {
        name: spec_.name,
        netns: podNs,
        nodeName: local ? P.nodeName : P.otherNodeName,
        local,
        ipv4: `10.244.${subnet}.${host}`,
        ipv6: ipv6 ? `fd00:10:244:${subnet}::${host}` : undefined,
        hostVeth,
      };
      topo.pods.push(info);
      const hostLines = local ? nodeLines : otherLines;
      hostLines.push(
        `link add ${hostVeth} type veth peer name eth0 netns ${podNs}`,
        `link set ${hostVeth} up`,
        `addr add ${gw}/32 dev ${hostVeth} noprefixroute`,
        `route add ${info.ipv4}/32 dev ${hostVeth}`,
      );
      const lines = [
        'link set eth0 up',
        `addr add ${info.ipv4}/32 dev eth0`,
        `route add default via ${gw} dev eth0 onlink`,
      ];
      if (ipv6 && info.ipv6) {
        // fe80::1 is the pods' gateway; the global /128 makes the node's source address towards
        // its pods deterministic (what masquerade yields), as 10.244.x.1 does for IPv4.
        hostLines.push(
          `addr add fe80::1/64 dev ${hostVeth} nodad`,
          `addr add fd00:10:244:${subnet}::1/128 dev ${hostVeth} nodad noprefixroute`,
          `route add ${info.ipv6}/128 dev ${hostVeth}`,
        );
        lines.push(`addr add ${info.ipv6}/128 dev eth0 nodad`, 'route add default via fe80::1 dev eth0');
      }
      podLines.set(podNs, lines);
    }

    await topo.ipBatch(node, nodeLines);
    await topo.ipBatch(ext, extLines);
    await topo.ipBatch(up, upLines);
    await topo.spawn.run('ip', ['netns', 'exec', up, 'nft', '-f', '-'], {
      stdin: [
        'table inet upstream {',
        '  chain forward {',
        '    type filter hook forward priority 0; policy accept;',
        '    reject with icmpx type admin-prohibited',
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    if (topo.otherNs) await topo.ipBatch(topo.otherNs, otherLines);
    for (const [ns, lines] of podLines) await topo.ipBatch(ns, lines);

    // Agents: echo servers in every pod; clients everywhere.
    const starts: Promise<void>[] = [];
    for (const [i, p] of topo.pods.entries()) {
      const ps = spec.pods[i];
      starts.push(topo.startAgent(p.name, p.netns, p.name, ps?.tcpPorts, ps?.udpPorts, spec.log));
    }
    starts.push(
      topo.startAgent('node', node, 'node', spec.nodeServers?.tcpPorts, spec.nodeServers?.udpPorts, spec.log),
    );
    starts.push(topo.startAgent('external', ext, 'external', undefined, undefined, spec.log));
    if (topo.otherNs)
      starts.push(topo.startAgent('other', topo.otherNs, 'other', undefined, undefined, spec.log));
    await Promise.all(starts);
    return topo;
  } catch (e) {
    await topo.destroy().catch(() => undefined);
    throw e;
  }
}
