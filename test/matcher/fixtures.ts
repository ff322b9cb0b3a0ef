/**
 * Snapshot builders for the matcher tests. Test IP plan: pods 10.244.0.0/16, ClusterIPs
 * 10.96.0.0/16, node 192.168.77.2, external client 192.168.77.1, LB source range 203.0.113.0/25.
 */
import type {
  EndpointPlan,
  IPFamily,
  NodePortAddresses,
  PerFamily,
  Protocol,
  ServicePortPlan,
  Snapshot,
  TrafficVerdict,
} from '../../core/model/snapshot.js';

export const NODE_IP = '192.168.77.2';
export const NODE_IP6 = 'fd00:77::2';
export const EXTERNAL_CLIENT = '192.168.77.1';
export const POD_CIDR = '10.244.0.0/16';
export const POD_CIDR6 = 'fd00:244::/64';
export const LB_SOURCE_RANGE = '203.0.113.0/25';

export function ep(ip: string, port = 8080, extra: Partial<EndpointPlan> = {}): EndpointPlan {
  return { ip, port, ready: true, serving: true, terminating: false, isLocal: false, ...extra };
}

export interface PlanInput {
  name: string;
  namespace?: string;
  portName?: string;
  protocol?: Protocol;
  family?: IPFamily;
  clusterIP: string;
  port: number;
  nodePort?: number;
  externalIPs?: string[];
  loadBalancerIPs?: string[];
  loadBalancerSourceRanges?: string[];
  affinitySeconds?: number;
  externalPolicyLocal?: boolean;
  internalPolicyLocal?: boolean;
  /** Endpoints for every path unless given per path. */
  endpoints?: EndpointPlan[];
  internalEndpoints?: EndpointPlan[];
  externalEndpoints?: EndpointPlan[];
  shortCircuitEndpoints?: EndpointPlan[];
  internal?: TrafficVerdict;
  external?: TrafficVerdict;
}

function verdictFor(
  eps: readonly EndpointPlan[],
  given: TrafficVerdict | undefined,
  anyEndpoints: boolean,
): TrafficVerdict {
  if (given !== undefined) return given;
  if (eps.length > 0) return 'forward';
  return anyEndpoints ? 'drop' : 'reject';
}

export function plan(p: PlanInput): ServicePortPlan {
  const namespace = p.namespace ?? 'default';
  const protocol = p.protocol ?? 'TCP';
  const family = p.family ?? (p.clusterIP.includes(':') ? 'IPv6' : 'IPv4');
  const portName = p.portName ?? '';
  const all = p.endpoints ?? [];
  const internalEndpoints = p.internalEndpoints ?? all;
  const externalEndpoints = p.externalEndpoints ?? all;
  const shortCircuitEndpoints = p.shortCircuitEndpoints ?? [];
  const union = [
    ...new Map(
      [...internalEndpoints, ...externalEndpoints, ...shortCircuitEndpoints].map((e) => [
        `${e.ip}|${e.port}`,
        e,
      ]),
    ).values(),
  ];
  const anyEndpoints = union.length > 0;
  return {
    id: `${namespace}/${p.name}:${portName}/${protocol}/${family}`,
    serviceKey: `${namespace}/${p.name}`,
    namespace,
    name: p.name,
    portName,
    protocol,
    family,
    clusterIP: p.clusterIP,
    port: p.port,
    ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
    externalIPs: p.externalIPs ?? [],
    loadBalancerIPs: p.loadBalancerIPs ?? [],
    loadBalancerSourceRanges: p.loadBalancerSourceRanges ?? [],
    ...(p.affinitySeconds !== undefined ? { sessionAffinity: { timeoutSeconds: p.affinitySeconds } } : {}),
    internalPolicyLocal: p.internalPolicyLocal ?? false,
    externalPolicyLocal: p.externalPolicyLocal ?? false,
    clusterEndpoints: all,
    localEndpoints: all.filter((e) => e.isLocal),
    internalEndpoints,
    externalEndpoints,
    shortCircuitEndpoints,
    reachableEndpoints: union,
    allEndpoints: union,
    internal: verdictFor(internalEndpoints, p.internal, anyEndpoints),
    external: verdictFor(externalEndpoints, p.external, anyEndpoints),
  };
}

export interface SnapshotInput {
  generation?: number;
  clusterCIDRs?: PerFamily<readonly string[]>;
  nodePortAddresses?: PerFamily<NodePortAddresses>;
  nodeIPs?: PerFamily<readonly string[]>;
}

export function snapshot(plans: readonly ServicePortPlan[], s: SnapshotInput = {}): Snapshot {
  return {
    generation: s.generation ?? 1,
    nodeName: 'node-a',
    nodeLabels: {},
    nodeIPs: s.nodeIPs ?? { IPv4: [NODE_IP], IPv6: [NODE_IP6] },
    families: ['IPv4', 'IPv6'],
    clusterCIDRs: s.clusterCIDRs ?? { IPv4: [POD_CIDR], IPv6: [POD_CIDR6] },
    masqueradeAll: false,
    nodePortAddresses: s.nodePortAddresses ?? {
      IPv4: { kind: 'cidrs', cidrs: [`${NODE_IP}/32`] },
      IPv6: { kind: 'cidrs', cidrs: [`${NODE_IP6}/128`] },
    },
    servicePorts: new Map(plans.map((p) => [p.id, p])),
    healthChecks: [],
  };
}
