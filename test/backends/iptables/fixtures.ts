/**
 * Snapshot builders for the iptables backend tests and benchmark.
 * Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
 * external client 192.168.77.1, LB source range 203.0.113.0/25.
 */
import type {
  EndpointPlan,
  IPFamily,
  Protocol,
  ServicePortPlan,
  Snapshot,
  SnapshotDelta,
} from '../../../core/model/snapshot.js';
import type { ProxyConfig } from '../../../core/model/proxy-config.js';
import { testProxyConfig } from '../../support/proxy-config.js';

export function ep(ip: string, port = 8080, isLocal = true, name?: string): EndpointPlan {
  return {
    ip,
    port,
    ready: true,
    serving: true,
    terminating: false,
    isLocal,
    nodeName: isLocal ? 'node-a' : 'node-b',
    targetName: name,
  };
}

export interface PlanInput {
  namespace?: string;
  name: string;
  portName?: string;
  protocol?: Protocol;
  family?: IPFamily;
  clusterIP: string;
  port?: number;
  nodePort?: number;
  externalIPs?: string[];
  loadBalancerIPs?: string[];
  loadBalancerSourceRanges?: string[];
  affinitySeconds?: number;
  internalPolicyLocal?: boolean;
  externalPolicyLocal?: boolean;
  endpoints?: EndpointPlan[];
}

/**
 * A ServicePortPlan with the planner's endpoint lists derived from the flags, so a test states
 * the Service and its endpoints and gets the lists and verdicts the planner would produce.
 */
export function plan(input: PlanInput): ServicePortPlan {
  const namespace = input.namespace ?? 'default';
  const protocol = input.protocol ?? 'TCP';
  const family = input.family ?? 'IPv4';
  const portName = input.portName ?? '';
  const all = input.endpoints ?? [];
  const cluster = all;
  const local = all.filter((e) => e.isLocal);
  const internal = input.internalPolicyLocal ? local : cluster;
  const external = input.externalPolicyLocal ? local : cluster;
  const hasExternal =
    input.nodePort !== undefined ||
    (input.externalIPs?.length ?? 0) > 0 ||
    (input.loadBalancerIPs?.length ?? 0) > 0;
  const shortCircuit = input.externalPolicyLocal && hasExternal ? cluster : [];
  return {
    id: `${namespace}/${input.name}:${portName}/${protocol}/${family}`,
    serviceKey: `${namespace}/${input.name}`,
    namespace,
    name: input.name,
    portName,
    protocol,
    family,
    clusterIP: input.clusterIP,
    port: input.port ?? 80,
    nodePort: input.nodePort,
    externalIPs: input.externalIPs ?? [],
    loadBalancerIPs: input.loadBalancerIPs ?? [],
    loadBalancerSourceRanges: input.loadBalancerSourceRanges ?? [],
    sessionAffinity:
      input.affinitySeconds !== undefined ? { timeoutSeconds: input.affinitySeconds } : undefined,
    internalPolicyLocal: input.internalPolicyLocal ?? false,
    externalPolicyLocal: (input.externalPolicyLocal ?? false) && hasExternal,
    clusterEndpoints: cluster,
    localEndpoints: local,
    internalEndpoints: internal,
    externalEndpoints: hasExternal ? external : [],
    shortCircuitEndpoints: shortCircuit,
    reachableEndpoints: all,
    allEndpoints: all,
    internal: internal.length > 0 ? 'forward' : cluster.length === 0 ? 'reject' : 'drop',
    external: !hasExternal
      ? 'reject'
      : external.length > 0
        ? 'forward'
        : cluster.length === 0
          ? 'reject'
          : 'drop',
  };
}

export interface SnapshotInput {
  generation?: number;
  families?: IPFamily[];
  masqueradeAll?: boolean;
  clusterCIDRsV4?: string[];
  clusterCIDRsV6?: string[];
  nodePortAll?: boolean;
}

export function snapshot(plans: readonly ServicePortPlan[], input: SnapshotInput = {}): Snapshot {
  return {
    generation: input.generation ?? 1,
    nodeName: 'node-a',
    nodeLabels: {},
    nodeIPs: { IPv4: ['192.168.77.2'], IPv6: ['fd00:77::2'] },
    families: input.families ?? ['IPv4'],
    clusterCIDRs: {
      IPv4: input.clusterCIDRsV4 ?? ['10.244.0.0/16'],
      IPv6: input.clusterCIDRsV6 ?? ['fd00:10:244::/48'],
    },
    masqueradeAll: input.masqueradeAll ?? false,
    nodePortAddresses:
      input.nodePortAll === false
        ? {
            IPv4: { kind: 'cidrs', cidrs: ['192.168.77.2/32'] },
            IPv6: { kind: 'cidrs', cidrs: ['fd00:77::2/128'] },
          }
        : { IPv4: { kind: 'all' }, IPv6: { kind: 'all' } },
    servicePorts: new Map(plans.map((p) => [p.id, p])),
    healthChecks: [],
  };
}

export function fullDelta(s: Snapshot): SnapshotDelta {
  return { full: true, changed: new Set(s.servicePorts.keys()), removed: new Set() };
}

export function partialDelta(changed: string[], removed: string[] = []): SnapshotDelta {
  return { full: false, changed: new Set(changed), removed: new Set(removed) };
}

/** A node-sized cluster: `services` ClusterIP Services with `endpoints` endpoints each (IPv4). */
export function bigSnapshot(services: number, endpoints: number, generation = 1): Snapshot {
  const plans: ServicePortPlan[] = [];
  for (let i = 0; i < services; i++) {
    const eps: EndpointPlan[] = [];
    for (let j = 0; j < endpoints; j++) {
      const n = i * endpoints + j;
      eps.push(ep(`10.244.${(n >> 8) & 255}.${n & 255}`, 8080, j === 0));
    }
    const withNodePort = i % 10 === 0;
    plans.push(
      plan({
        name: `svc-${i}`,
        clusterIP: `10.96.${(i >> 8) & 255}.${i & 255}`,
        port: 80,
        nodePort: withNodePort ? 30000 + (i % 2000) : undefined,
        endpoints: eps,
      }),
    );
  }
  return { ...snapshot(plans), generation };
}

/** `base` with one endpoint of the Service port `id` replaced (a new IP). */
export function withEndpointChanged(base: Snapshot, id: string, generation: number): Snapshot {
  const p = base.servicePorts.get(id);
  if (!p) throw new Error(`no ${id}`);
  const eps = [...p.allEndpoints];
  eps[eps.length - 1] = ep(`10.245.${generation & 255}.${(generation >> 8) & 255}`, 8080, false);
  const next = plan({
    name: p.name,
    clusterIP: p.clusterIP,
    port: p.port,
    nodePort: p.nodePort,
    endpoints: eps,
  });
  const map = new Map(base.servicePorts);
  map.set(id, next);
  return { ...base, generation, servicePorts: map };
}

export function testConfig(variant: 'auto' | 'legacy' | 'nft' = 'auto'): ProxyConfig {
  return testProxyConfig({
    mode: 'iptables',
    nodePortAddresses: ['all'],
    healthzBindAddress: '',
    metricsBindAddress: '',
    iptables: { variant, localhostNodePorts: true },
  });
}

export interface RecordedMetric {
  kind: 'gauge' | 'counter';
  name: string;
  value: number;
  labels?: Readonly<Record<string, string>>;
}

export function recordingMetrics(): {
  metrics: {
    gauge: (n: string, h: string, v: number, l?: Readonly<Record<string, string>>) => void;
    counter: (n: string, h: string, v?: number, l?: Readonly<Record<string, string>>) => void;
  };
  recorded: RecordedMetric[];
} {
  const recorded: RecordedMetric[] = [];
  return {
    recorded,
    metrics: {
      gauge: (name, _help, value, labels) => recorded.push({ kind: 'gauge', name, value, labels }),
      counter: (name, _help, value = 1, labels) => recorded.push({ kind: 'counter', name, value, labels }),
    },
  };
}

/** `count` ClusterIP Service ports `m0`… with `endpointsEach` endpoints each (10.96.10.x, 10.244.20+.x). */
export function manyPorts(count: number, endpointsEach: number): ServicePortPlan[] {
  return Array.from({ length: count }, (_, i) =>
    plan({
      name: `m${i}`,
      clusterIP: `10.96.${10 + (i >> 8)}.${(i & 255) + 1}`,
      endpoints: Array.from({ length: endpointsEach }, (_, j) => ep(`10.244.${20 + j}.${(i % 250) + 1}`)),
    }),
  );
}
