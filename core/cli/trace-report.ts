/**
 * `switchyard trace`, the pure part: given this node's Snapshot, a packet (source, destination,
 * protocol) and a matcher loaded with the snapshot, say which Service port matches, which
 * endpoints are eligible and why the others are not, and the verdict (DNAT / REJECT / DROP,
 * masqueraded or not). The matcher is the authority on matching and selection (it is what the
 * userspace backend runs); this file explains its answer with the planner's semantics.
 */
import type { Matcher, Selection } from '../../matcher/src/index.js';
import type { EndpointPlan, IPFamily, Protocol, ServicePortPlan, Snapshot } from '../model/snapshot.js';
import { cidrContains, normalizeIP, parseIP } from '../net/ip.js';

export type SourceKind = 'pod' | 'node' | 'external';
export type TraceVerdict = 'DNAT' | 'REJECT' | 'DROP' | 'NOT-PROXIED';
export type FrontendKindName = 'ClusterIP' | 'externalIP' | 'LoadBalancer IP' | 'NodePort';

export interface TraceQuery {
  readonly source: string;
  readonly destination: string;
  readonly port: number;
  readonly protocol: Protocol;
  /**
   * What the snapshot's `clusterCIDRs` are, in explanations (default `--cluster-cidr`; e.g.
   * "the Node's podCIDRs" with `--detect-local-mode=NodeCIDR`).
   */
  readonly localLabel?: string;
}

export interface TraceEndpoint {
  readonly address: string;
  readonly targetName?: string;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly local: boolean;
  readonly state: 'ready' | 'serving-terminating' | 'terminating' | 'not-ready';
  readonly eligible: boolean;
  /** Why it is (or is not) eligible on this path. */
  readonly why: string;
}

export interface TraceMatch {
  readonly servicePortId: string;
  readonly service: string;
  readonly portName: string;
  readonly frontend: FrontendKindName;
  /** How the destination matched, e.g. "NodePort 30080 on node address 192.168.77.2". */
  readonly how: string;
  /** internal (ClusterIP), external (from outside), short-circuit (pod/node to an external address). */
  readonly path: 'internal' | 'external' | 'short-circuit';
  readonly pathWhy: string;
  readonly sessionAffinitySeconds?: number;
}

export interface TraceReport {
  readonly packet: TraceQuery & { readonly family: IPFamily };
  readonly node: string;
  readonly sourceKind: SourceKind;
  readonly sourceWhy: string;
  readonly match?: TraceMatch;
  readonly endpoints: readonly TraceEndpoint[];
  readonly verdict: TraceVerdict;
  readonly verdictWhy: string;
  /** DNAT: every endpoint the connection may go to. */
  readonly dnatTo: readonly string[];
  /** DNAT: one pick through the matcher. */
  readonly samplePick?: string;
  readonly masquerade?: { readonly masqueraded: boolean; readonly why: string };
  readonly notes: readonly string[];
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function epAddress(e: { readonly ip: string; readonly port: number }): string {
  return hostPort(e.ip, e.port);
}

function inAny(cidrs: readonly string[], ip: string): string | undefined {
  return cidrs.find((c) => cidrContains(c, ip));
}

/** pod (inside --cluster-cidr), node (one of the node IPs, or loopback), or external. */
export function classifySource(
  snapshot: Snapshot,
  source: string,
  family: IPFamily,
  label = '--cluster-cidr',
): { kind: SourceKind; why: string } {
  const nodeIPs = snapshot.nodeIPs[family];
  if (nodeIPs.includes(source))
    return { kind: 'node', why: `${source} is an address of node ${snapshot.nodeName}` };
  if (source === '::1' || source.startsWith('127.'))
    return { kind: 'node', why: `${source} is a loopback address of node ${snapshot.nodeName}` };
  const cidr = inAny(snapshot.clusterCIDRs[family], source);
  if (cidr !== undefined) return { kind: 'pod', why: `${source} is inside ${label} ${cidr}` };
  const known = snapshot.clusterCIDRs[family].length === 0 ? `no ${family} ${label} is set, ` : '';
  return {
    kind: 'external',
    why: `${known}${source} is neither a node address nor inside ${label}${known ? '' : ` ${snapshot.clusterCIDRs[family].join(', ')}`}`,
  };
}

function stateOf(ep: EndpointPlan): TraceEndpoint['state'] {
  if (ep.ready) return 'ready';
  if (ep.serving && ep.terminating) return 'serving-terminating';
  if (ep.terminating) return 'terminating';
  return 'not-ready';
}

function pathList(sp: ServicePortPlan, path: TraceMatch['path']): readonly EndpointPlan[] {
  if (path === 'internal') return sp.internalEndpoints;
  if (path === 'short-circuit') return sp.shortCircuitEndpoints;
  return sp.externalEndpoints;
}

function pathLocal(
  sp: ServicePortPlan,
  path: TraceMatch['path'],
): 'internalTrafficPolicy' | 'externalTrafficPolicy' | undefined {
  if (path === 'internal') return sp.internalPolicyLocal ? 'internalTrafficPolicy' : undefined;
  if (path === 'external') return sp.externalPolicyLocal ? 'externalTrafficPolicy' : undefined;
  return undefined;
}

/** Each endpoint of the Service port, eligible on this path or not, and why. */
export function explainEndpoints(
  snapshot: Snapshot,
  sp: ServicePortPlan,
  path: TraceMatch['path'],
): TraceEndpoint[] {
  const list = pathList(sp, path);
  const localPolicy = pathLocal(sp, path);
  const inList = new Set(list.map(epAddress));
  const anyReady = (eps: readonly EndpointPlan[]): boolean => eps.some((e) => e.ready);
  const scope = localPolicy !== undefined ? sp.allEndpoints.filter((e) => e.isLocal) : sp.allEndpoints;
  const where = (ep: EndpointPlan): string =>
    ep.isLocal ? 'local' : `on node ${ep.nodeName ?? '(unknown)'}`;
  return sp.allEndpoints.map((ep) => {
    const state = stateOf(ep);
    const eligible = inList.has(epAddress(ep));
    let why: string;
    if (eligible) {
      why =
        state === 'ready'
          ? `ready, ${where(ep)}`
          : `serving but terminating, ${where(ep)}: used as a fallback because no ${localPolicy ? 'local ' : ''}endpoint is ready`;
    } else if (localPolicy !== undefined && !ep.isLocal) {
      why = `not local (${where(ep)}) and ${localPolicy} is Local`;
    } else if (state === 'not-ready') {
      why = 'not ready';
    } else if (state === 'terminating') {
      why = 'terminating and not serving';
    } else if (state === 'serving-terminating') {
      why = anyReady(scope)
        ? `terminating (still serving): no fallback, ${localPolicy ? 'a local' : 'an'} endpoint is ready`
        : 'terminating (still serving)';
    } else {
      // Ready, Cluster policy, and still left out: topology-aware routing filtered it.
      const zone = snapshot.zone ?? '(no zone label)';
      why = `ready, but topology hints send this node's traffic elsewhere: hinted for other ${ep.zone !== undefined && ep.zone !== snapshot.zone ? 'zones' : 'nodes/zones'} (endpoint zone ${ep.zone ?? '(none)'}, this node ${snapshot.nodeName} in zone ${zone})`;
    }
    return {
      address: epAddress(ep),
      ...(ep.targetName !== undefined ? { targetName: ep.targetName } : {}),
      ...(ep.nodeName !== undefined ? { nodeName: ep.nodeName } : {}),
      ...(ep.zone !== undefined ? { zone: ep.zone } : {}),
      local: ep.isLocal,
      state,
      eligible,
      why,
    };
  });
}

const FRONTEND_NAMES: Readonly<Record<string, FrontendKindName>> = {
  'cluster-ip': 'ClusterIP',
  'external-ip': 'externalIP',
  'load-balancer': 'LoadBalancer IP',
  'node-port': 'NodePort',
};

function describeNodePortAddresses(snapshot: Snapshot, family: IPFamily): string {
  const n = snapshot.nodePortAddresses[family];
  return n.kind === 'all' ? 'all local addresses' : n.cidrs.length ? n.cidrs.join(', ') : '(none)';
}

function masqueradeOf(
  snapshot: Snapshot,
  sp: ServicePortPlan,
  path: TraceMatch['path'],
  source: { kind: SourceKind },
  family: IPFamily,
  label = '--cluster-cidr',
): { masqueraded: boolean; why: string } {
  if (snapshot.masqueradeAll) return { masqueraded: true, why: '--masquerade-all' };
  if (path === 'internal') {
    if (snapshot.clusterCIDRs[family].length === 0) {
      return {
        masqueraded: false,
        why: `no ${family} ${label}: traffic to a ClusterIP is not masqueraded`,
      };
    }
    return source.kind === 'pod'
      ? { masqueraded: false, why: `a pod (inside ${label}) to a ClusterIP keeps its address` }
      : { masqueraded: true, why: `traffic to a ClusterIP from outside ${label} is masqueraded` };
  }
  if (path === 'short-circuit') {
    return source.kind === 'node'
      ? {
          masqueraded: true,
          why: "the node's own traffic to an external address of a Local-policy Service is masqueraded",
        }
      : {
          masqueraded: false,
          why: 'a pod to an external address of a Local-policy Service short-circuits and keeps its address',
        };
  }
  return sp.externalPolicyLocal
    ? { masqueraded: false, why: 'externalTrafficPolicy Local keeps the client address' }
    : { masqueraded: true, why: 'external traffic with externalTrafficPolicy Cluster is masqueraded' };
}

function noMatch(
  snapshot: Snapshot,
  q: TraceQuery,
  family: IPFamily,
): { verdict: TraceVerdict; why: string; notes: string[] } {
  const notes: string[] = [];
  const plans = [...snapshot.servicePorts.values()].filter((sp) => sp.family === family);
  const byClusterIP = plans.filter((sp) => sp.clusterIP === q.destination);
  const list = (sps: readonly ServicePortPlan[]): string =>
    sps.map((sp) => `${sp.port}/${sp.protocol}`).join(', ');
  if (byClusterIP.length > 0) {
    return {
      verdict: 'REJECT',
      why: `${q.destination} is the ClusterIP of ${byClusterIP[0]!.serviceKey}, which has no port ${q.port}/${q.protocol} (it has ${list(byClusterIP)}): rejected`,
      notes,
    };
  }
  const external = plans.filter(
    (sp) => sp.externalIPs.includes(q.destination) || sp.loadBalancerIPs.includes(q.destination),
  );
  if (external.length > 0) {
    notes.push(
      `${q.destination} is an external address of ${external[0]!.serviceKey} (ports ${list(external)}), but not for ${q.port}/${q.protocol}`,
    );
  }
  const nodePort = plans.find((sp) => sp.nodePort === q.port && sp.protocol === q.protocol);
  if (nodePort !== undefined) {
    notes.push(
      `NodePort ${q.port}/${q.protocol} of ${nodePort.serviceKey} is not served on ${q.destination} (--nodeport-addresses: ${describeNodePortAddresses(snapshot, family)})`,
    );
  }
  return {
    verdict: 'NOT-PROXIED',
    why: `no Service port matches ${hostPort(q.destination, q.port)}/${q.protocol}: the proxy leaves the packet alone`,
    notes,
  };
}

function describeMatch(
  snapshot: Snapshot,
  sel: Selection,
  q: TraceQuery,
  family: IPFamily,
): Pick<TraceMatch, 'frontend' | 'how'> {
  const frontend = FRONTEND_NAMES[sel.frontend ?? 'cluster-ip'] ?? 'ClusterIP';
  if (frontend === 'NodePort') {
    const nodeIP = snapshot.nodeIPs[family].includes(q.destination);
    return {
      frontend,
      how: `NodePort ${q.port}/${q.protocol} on ${nodeIP ? 'node address' : 'address'} ${q.destination} (--nodeport-addresses: ${describeNodePortAddresses(snapshot, family)})`,
    };
  }
  return { frontend, how: `${frontend} ${hostPort(q.destination, q.port)}/${q.protocol}` };
}

function pathWhy(sp: ServicePortPlan, path: TraceMatch['path'], source: SourceKind): string {
  if (path === 'internal')
    return `traffic to the ClusterIP uses internalTrafficPolicy ${sp.internalPolicyLocal ? 'Local (local endpoints only)' : 'Cluster'}`;
  if (path === 'short-circuit') {
    return `externalTrafficPolicy is Local, but traffic from ${source === 'node' ? 'the node itself' : 'a pod'} short-circuits to every cluster endpoint`;
  }
  return `traffic from outside uses externalTrafficPolicy ${sp.externalPolicyLocal ? 'Local (local endpoints only)' : 'Cluster'}`;
}

/** Explain what this node does with the packet. `matcher` must hold `snapshot`. */
export function traceReport(snapshot: Snapshot, matcher: Matcher, q: TraceQuery): TraceReport {
  const source = normalizeIP(q.source) ?? q.source;
  const destination = normalizeIP(q.destination) ?? q.destination;
  const query: TraceQuery = { ...q, source, destination };
  const family: IPFamily = parseIP(destination)?.family ?? 'IPv4';
  const src = classifySource(snapshot, source, family, q.localLabel);
  const base = {
    packet: { ...query, family },
    node: snapshot.nodeName,
    sourceKind: src.kind,
    sourceWhy: src.why,
  };
  const notes: string[] = [];
  if (parseIP(source)?.family !== family) {
    return {
      ...base,
      endpoints: [],
      verdict: 'NOT-PROXIED',
      verdictWhy: 'source and destination are of different IP families',
      dnatTo: [],
      notes,
    };
  }
  if (!snapshot.families.includes(family)) notes.push(`this node does not program ${family}`);
  const sel = matcher.select({
    destination,
    protocol: q.protocol,
    port: q.port,
    client: source,
    clientPort: 0,
    nowMs: 0,
    fromNode: src.kind === 'node',
    fromPod: src.kind === 'pod',
  });
  const sp = sel.servicePort;
  if (sel.verdict === 'no-match' || sp === undefined || sel.path === undefined) {
    const n = noMatch(snapshot, query, family);
    return {
      ...base,
      endpoints: [],
      verdict: n.verdict,
      verdictWhy: n.why,
      dnatTo: [],
      notes: [...notes, ...n.notes],
    };
  }
  const path = sel.path;
  const m = describeMatch(snapshot, sel, query, family);
  if (m.frontend === 'NodePort' && !snapshot.nodeIPs[family].includes(destination)) {
    notes.push(
      `assuming ${destination} is a local address of node ${snapshot.nodeName} (it is not one of its node IPs)`,
    );
  }
  const match: TraceMatch = {
    servicePortId: sp.id,
    service: sp.serviceKey,
    portName: sp.portName,
    ...m,
    path,
    pathWhy: pathWhy(sp, path, src.kind),
    ...(sp.sessionAffinity ? { sessionAffinitySeconds: sp.sessionAffinity.timeoutSeconds } : {}),
  };
  const endpoints = explainEndpoints(snapshot, sp, path);
  const withMatch = { ...base, match, endpoints };
  if (sel.verdict === 'drop') {
    const why =
      sel.reason === 'source-range'
        ? `source ${source} is outside loadBalancerSourceRanges (${sp.loadBalancerSourceRanges.join(', ')})`
        : `${pathLocal(sp, path) ?? 'the traffic policy'} is Local and no endpoint runs on node ${snapshot.nodeName}`;
    return { ...withMatch, verdict: 'DROP', verdictWhy: why, dnatTo: [], notes };
  }
  if (sel.verdict === 'reject') {
    const why =
      sp.allEndpoints.length === 0
        ? `${sp.serviceKey} has no endpoints`
        : `${sp.serviceKey} has no usable endpoint (none is ready, none is serving while terminating)`;
    return { ...withMatch, verdict: 'REJECT', verdictWhy: why, dnatTo: [], notes };
  }
  const list = pathList(sp, path);
  const masquerade = masqueradeOf(snapshot, sp, path, src, family, q.localLabel);
  const hairpin = list.filter((e) => e.ip === source);
  const pick = sel.endpoint;
  const samplePickHairpin = pick !== undefined && pick.ip === source && !masquerade.masqueraded;
  if (hairpin.length > 0 && !masquerade.masqueraded && !samplePickHairpin) {
    notes.push(
      `hairpin: when the pick is ${hairpin.map(epAddress).join(', ')} (the source itself), the packet is masqueraded`,
    );
  }
  const pickText =
    pick === undefined ? undefined : `${epAddress(pick)}${pick.targetName ? ` (${pick.targetName})` : ''}`;
  const affinity = sp.sessionAffinity
    ? `; sessionAffinity ClientIP: the client then sticks to its pick for ${sp.sessionAffinity.timeoutSeconds} s`
    : '';
  return {
    ...withMatch,
    verdict: 'DNAT',
    verdictWhy: `one of ${list.length} endpoint${list.length === 1 ? '' : 's'}, picked at random per connection${affinity}`,
    dnatTo: list.map(epAddress),
    ...(pickText !== undefined ? { samplePick: pickText } : {}),
    masquerade: samplePickHairpin
      ? { masqueraded: true, why: 'hairpin: the sample pick is the source itself' }
      : masquerade,
    notes,
  };
}
