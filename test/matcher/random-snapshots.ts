/**
 * Seeded random snapshots and queries for the differential tests and the benchmark.
 * Addresses come from small pools so frontends collide, clients repeat (affinity hits) and
 * reloads keep some endpoints and drop others.
 */
import type {
  EndpointPlan,
  NodePortAddresses,
  Protocol,
  ServicePortPlan,
  Snapshot,
  TrafficVerdict,
} from '../../core/model/snapshot.js';
import { ep, plan, snapshot, NODE_IP, NODE_IP6, POD_CIDR, POD_CIDR6 } from './fixtures.js';

export interface Rng {
  /** 0 <= n < max */
  int(max: number): number;
  bool(p?: number): boolean;
  pick<T>(xs: readonly T[]): T;
  subset<T>(xs: readonly T[], max: number): T[];
}

/** mulberry32: small, fast, seedable. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r: Rng = {
    int: (max) => Math.floor(next() * max),
    bool: (p = 0.5) => next() < p,
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    subset: (xs, max) => {
      const n = Math.floor(next() * (max + 1));
      const out: (typeof xs)[number][] = [];
      for (let i = 0; i < n; i++) {
        const x = xs[Math.floor(next() * xs.length)]!;
        if (!out.includes(x)) out.push(x);
      }
      return out;
    },
  };
  return r;
}

const V4_EPS: EndpointPlan[] = [];
const V6_EPS: EndpointPlan[] = [];
for (let i = 0; i < 24; i++) {
  V4_EPS.push(ep(`10.244.${i >> 3}.${(i & 7) + 1}`, i % 3 === 0 ? 8443 : 8080));
  V6_EPS.push(ep(`fd00:244::${(i + 1).toString(16)}`, 8080));
}

export const V4_CLUSTER_IPS = Array.from({ length: 24 }, (_, i) => `10.96.0.${i + 1}`);
export const V6_CLUSTER_IPS = Array.from({ length: 12 }, (_, i) => `fd00:96::${(i + 1).toString(16)}`);
export const V4_EXTERNAL = Array.from({ length: 6 }, (_, i) => `198.51.100.${i + 1}`);
export const V6_EXTERNAL = Array.from({ length: 4 }, (_, i) => `2001:db8:e::${i + 1}`);
export const V4_LB = Array.from({ length: 6 }, (_, i) => `203.0.113.${200 + i}`);
export const V6_LB = Array.from({ length: 4 }, (_, i) => `2001:db8:1::${100 + i}`);
const V4_RANGES = [
  '203.0.113.0/25',
  '198.51.100.0/24',
  '192.168.77.0/24',
  '10.244.0.0/16',
  '0.0.0.0/0',
  'not-a-cidr',
];
const V6_RANGES = ['2001:db8:ff::/48', 'fd00:244::/64', '::/0', 'fd00:77::/64'];
export const V4_CLIENTS = [
  '10.244.0.9',
  '10.244.1.7',
  '10.244.3.3',
  '192.168.77.1',
  NODE_IP,
  '203.0.113.5',
  '203.0.113.130',
  '198.51.100.9',
  ...V4_LB.slice(0, 2),
  '8.8.8.8',
];
export const V6_CLIENTS = [
  'fd00:244::99',
  'fd00:244::abc',
  '2001:db8:ff:1::5',
  '2001:db8:fe::5',
  NODE_IP6,
  V6_LB[0]!,
  '2001:4860::8888',
];
export const PORTS = [80, 443, 53, 8080];
export const NODE_PORTS = Array.from({ length: 12 }, (_, i) => 30000 + i);
const PROTOCOLS: Protocol[] = ['TCP', 'TCP', 'UDP', 'SCTP'];

/** A Service port "shape" kept across reloads (its endpoint lists are redrawn). */
export interface PlanShape {
  name: string;
  family: 'IPv4' | 'IPv6';
  protocol: Protocol;
  clusterIP: string;
  port: number;
  nodePort?: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  loadBalancerSourceRanges: string[];
  affinitySeconds?: number;
  local: boolean;
}

export function randomShape(r: Rng, i: number): PlanShape {
  const v6 = r.bool(0.3);
  return {
    name: `svc-${i}`,
    family: v6 ? 'IPv6' : 'IPv4',
    protocol: r.pick(PROTOCOLS),
    clusterIP: r.pick(v6 ? V6_CLUSTER_IPS : V4_CLUSTER_IPS),
    port: r.pick(PORTS),
    ...(r.bool(0.4) ? { nodePort: r.pick(NODE_PORTS) } : {}),
    externalIPs: r.subset(v6 ? V6_EXTERNAL : V4_EXTERNAL, 2),
    loadBalancerIPs: r.subset(v6 ? V6_LB : V4_LB, 2),
    loadBalancerSourceRanges: r.bool(0.5) ? r.subset(v6 ? V6_RANGES : V4_RANGES, 2) : [],
    ...(r.bool(0.4) ? { affinitySeconds: 1 + r.int(20) } : {}),
    local: r.bool(0.3),
  };
}

function verdict(r: Rng, eps: readonly EndpointPlan[]): TrafficVerdict {
  if (eps.length > 0) return r.bool(0.05) ? r.pick(['reject', 'drop'] as const) : 'forward';
  return r.bool(0.1) ? 'forward' : r.pick(['reject', 'drop'] as const);
}

export function planFromShape(r: Rng, s: PlanShape): ServicePortPlan {
  const pool = s.family === 'IPv6' ? V6_EPS : V4_EPS;
  const cluster = r.subset(pool, 6);
  const local = cluster.filter(() => r.bool(0.4));
  const internal = r.bool(0.2) ? local : cluster;
  const external = s.local ? local : cluster;
  const shortCircuit = s.local && cluster.length > 0 ? cluster : [];
  return plan({
    name: s.name,
    protocol: s.protocol,
    family: s.family,
    clusterIP: s.clusterIP,
    port: s.port,
    ...(s.nodePort !== undefined ? { nodePort: s.nodePort } : {}),
    externalIPs: s.externalIPs,
    loadBalancerIPs: s.loadBalancerIPs,
    loadBalancerSourceRanges: s.loadBalancerSourceRanges,
    ...(s.affinitySeconds !== undefined ? { affinitySeconds: s.affinitySeconds } : {}),
    externalPolicyLocal: s.local,
    endpoints: cluster,
    internalEndpoints: internal,
    externalEndpoints: external,
    shortCircuitEndpoints: shortCircuit,
    internal: verdict(r, internal),
    external: verdict(r, external),
  });
}

/**
 * A snapshot of these shapes. With `previous`, about half the plans whose shape is unchanged are
 * the very same objects as before (as the planner reuses unchanged plans).
 */
export function randomSnapshot(
  r: Rng,
  shapes: readonly PlanShape[],
  generation: number,
  previous?: Snapshot,
): Snapshot {
  const reuse = (s: PlanShape): ServicePortPlan | undefined => {
    if (previous === undefined || !r.bool(0.5)) return undefined;
    for (const p of previous.servicePorts.values()) if (p.name === s.name) return p;
    return undefined;
  };
  const npa = (kind: number, family: 'IPv4' | 'IPv6'): NodePortAddresses => {
    if (kind === 0) return { kind: 'all' };
    if (kind === 1)
      return { kind: 'cidrs', cidrs: [family === 'IPv4' ? `${NODE_IP}/32` : `${NODE_IP6}/128`] };
    return { kind: 'cidrs', cidrs: [family === 'IPv4' ? '192.168.77.0/24' : 'fd00:77::/64'] };
  };
  return snapshot(
    shapes.map((s) => reuse(s) ?? planFromShape(r, s)),
    {
      generation,
      clusterCIDRs: r.bool(0.8) ? { IPv4: [POD_CIDR], IPv6: [POD_CIDR6] } : { IPv4: [], IPv6: [] },
      nodePortAddresses: { IPv4: npa(r.int(3), 'IPv4'), IPv6: npa(r.int(3), 'IPv6') },
    },
  );
}
