/**
 * Builders for Snapshots without the planner: single Service ports for unit tests and big
 * synthetic clusters for benchmarks (N Services × M endpoints). Test IP plan (DESIGN.md):
 * pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
 * 192.168.77.1, LB source range 203.0.113.0/25.
 */
import type {
  EndpointPlan,
  IPFamily,
  ServicePortPlan,
  Snapshot,
  SnapshotDelta,
  Protocol,
} from '../../core/model/snapshot.js';

export function endpoint(ip: string, port: number, extra: Partial<EndpointPlan> = {}): EndpointPlan {
  return { ip, port, ready: true, serving: true, terminating: false, isLocal: false, ...extra };
}

export interface PortOptions extends Partial<ServicePortPlan> {
  readonly namespace?: string;
  readonly name?: string;
}

/**
 * A ServicePortPlan with consistent derived fields: give `clusterEndpoints` (and optionally
 * `localEndpoints`) and the policy flags; endpoint lists and verdicts follow the planner's
 * rules unless given explicitly.
 */
export function servicePort(opts: PortOptions): ServicePortPlan {
  const namespace = opts.namespace ?? 'default';
  const name = opts.name ?? 'svc';
  const portName = opts.portName ?? '';
  const protocol: Protocol = opts.protocol ?? 'TCP';
  const family: IPFamily = opts.family ?? 'IPv4';
  const cluster = opts.clusterEndpoints ?? [];
  const local = opts.localEndpoints ?? cluster.filter((e) => e.isLocal);
  const internalPolicyLocal = opts.internalPolicyLocal ?? false;
  const externalPolicyLocal = opts.externalPolicyLocal ?? false;
  const internalEndpoints = opts.internalEndpoints ?? (internalPolicyLocal ? local : cluster);
  const externalEndpoints = opts.externalEndpoints ?? (externalPolicyLocal ? local : cluster);
  const external =
    opts.nodePort !== undefined ||
    (opts.externalIPs?.length ?? 0) > 0 ||
    (opts.loadBalancerIPs?.length ?? 0) > 0;
  const shortCircuitEndpoints =
    opts.shortCircuitEndpoints ?? (external && externalPolicyLocal ? cluster : []);
  const verdict = (eps: readonly EndpointPlan[], localPolicy: boolean): 'forward' | 'reject' | 'drop' =>
    eps.length > 0 ? 'forward' : localPolicy && cluster.length > 0 ? 'drop' : 'reject';
  const all = new Map<string, EndpointPlan>();
  for (const e of [...internalEndpoints, ...externalEndpoints, ...shortCircuitEndpoints])
    all.set(`${e.ip}|${e.port}`, e);
  return {
    id: `${namespace}/${name}:${portName}/${protocol}/${family}`,
    serviceKey: `${namespace}/${name}`,
    namespace,
    name,
    portName,
    protocol,
    family,
    clusterIP: opts.clusterIP ?? (family === 'IPv4' ? '10.96.0.10' : 'fd00:96::10'),
    port: opts.port ?? 80,
    nodePort: opts.nodePort,
    externalIPs: opts.externalIPs ?? [],
    loadBalancerIPs: opts.loadBalancerIPs ?? [],
    loadBalancerSourceRanges: opts.loadBalancerSourceRanges ?? [],
    sessionAffinity: opts.sessionAffinity,
    internalPolicyLocal,
    externalPolicyLocal,
    healthCheckNodePort: opts.healthCheckNodePort,
    clusterEndpoints: cluster,
    localEndpoints: local,
    internalEndpoints,
    externalEndpoints,
    shortCircuitEndpoints,
    reachableEndpoints: opts.reachableEndpoints ?? [...all.values()],
    allEndpoints: opts.allEndpoints ?? cluster,
    internal: opts.internal ?? verdict(internalEndpoints, internalPolicyLocal),
    external: opts.external ?? verdict(externalEndpoints, externalPolicyLocal),
  };
}

export interface SnapshotOptions {
  readonly generation?: number;
  readonly families?: readonly IPFamily[];
  readonly clusterCIDRs?: { IPv4?: readonly string[]; IPv6?: readonly string[] };
  readonly masqueradeAll?: boolean;
  readonly nodePortAddresses?: Snapshot['nodePortAddresses'];
}

export function snapshotOf(ports: readonly ServicePortPlan[], opts: SnapshotOptions = {}): Snapshot {
  return {
    generation: opts.generation ?? 1,
    nodeName: 'node-a',
    nodeLabels: {},
    nodeIPs: { IPv4: ['192.168.77.2'], IPv6: ['fd00:77::2'] },
    families: opts.families ?? ['IPv4'],
    clusterCIDRs: {
      IPv4: opts.clusterCIDRs?.IPv4 ?? ['10.244.0.0/16'],
      IPv6: opts.clusterCIDRs?.IPv6 ?? ['fd00:244::/56'],
    },
    masqueradeAll: opts.masqueradeAll ?? false,
    nodePortAddresses: opts.nodePortAddresses ?? { IPv4: { kind: 'all' }, IPv6: { kind: 'all' } },
    servicePorts: new Map(ports.map((p) => [p.id, p])),
    healthChecks: [],
  };
}

export function fullDelta(snapshot: Snapshot): SnapshotDelta {
  return { full: true, changed: new Set(snapshot.servicePorts.keys()), removed: new Set() };
}

export function partialDelta(changed: Iterable<string>, removed: Iterable<string> = []): SnapshotDelta {
  return { full: false, changed: new Set(changed), removed: new Set(removed) };
}

/** Replaces, adds or removes ports of a snapshot (new object; the others keep their identity). */
export function withPorts(
  snapshot: Snapshot,
  upsert: readonly ServicePortPlan[],
  remove: readonly string[] = [],
): Snapshot {
  const m = new Map(snapshot.servicePorts);
  for (const id of remove) m.delete(id);
  for (const p of upsert) m.set(p.id, p);
  return { ...snapshot, generation: snapshot.generation + 1, servicePorts: m };
}

function v4(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The i-th ClusterIP in 10.96.0.0/16 (skipping .0) */
export function clusterIPv4(i: number): string {
  return v4(((10 << 24) | (96 << 16)) + 1 + i);
}

/** The i-th pod IP in 10.244.0.0/16. */
export function podIPv4(i: number): string {
  return v4(((10 << 24) | (244 << 16)) + 2 + i);
}

export interface ClusterShape {
  readonly services: number;
  readonly endpointsPerService: number;
  /** Every k-th Service is a NodePort Service (0: none). */
  readonly nodePortEvery?: number;
  /** Every k-th Service is UDP (0: none). */
  readonly udpEvery?: number;
}

/**
 * A big synthetic cluster: `services` ClusterIP Services (TCP port 80 → 8080) with
 * `endpointsPerService` ready endpoints each, some NodePort/UDP as asked. Deterministic.
 */
export function bigSnapshot(shape: ClusterShape, opts: SnapshotOptions = {}): Snapshot {
  const ports: ServicePortPlan[] = [];
  let pod = 0;
  for (let s = 0; s < shape.services; s++) {
    const eps: EndpointPlan[] = [];
    for (let e = 0; e < shape.endpointsPerService; e++) eps.push(endpoint(podIPv4(pod++ % 65000), 8080));
    const nodePort = shape.nodePortEvery && s % shape.nodePortEvery === 0 ? 30000 + (s % 2768) : undefined;
    ports.push(
      servicePort({
        namespace: `ns-${s % 50}`,
        name: `svc-${s}`,
        protocol: shape.udpEvery && s % shape.udpEvery === 0 ? 'UDP' : 'TCP',
        clusterIP: clusterIPv4(s),
        port: 80,
        nodePort,
        clusterEndpoints: eps,
      }),
    );
  }
  return snapshotOf(ports, opts);
}
