/**
 * One Service (and its EndpointSlices) to ServicePortPlans: kube-proxy's
 * servicechangetracker.go + serviceport.go + the endpoint handling of nftables/proxier.go,
 * as pure functions.
 */
import type { KubeEndpointSlice, KubeService } from '../model/kube.js';
import {
  PROTOCOLS,
  type EndpointPlan,
  type HealthCheckPlan,
  type IPFamily,
  type Protocol,
  type ServicePortPlan,
  type SessionAffinity,
  type TrafficVerdict,
} from '../model/snapshot.js';
import { categorizeEndpoints, endpointsForPort, parseSlices, type ParsedSlice } from './endpoints.js';
import { compareIPStrings, formatCIDR, formatIP, parseCIDR, parseIP } from '../net/ip.js';
import { SkipCollector, type PlanSkip } from './skips.js';

/** The node-level inputs a Service plan depends on (the memo is valid while they are equal). */
export interface ServicePlanContext {
  readonly nodeName: string;
  /** The node's topology.kubernetes.io/zone label. */
  readonly zone?: string;
  readonly families: readonly IPFamily[];
}

export interface ServicePlanOutput {
  /** Sorted by id. */
  readonly ports: readonly ServicePortPlan[];
  readonly healthCheck?: HealthCheckPlan;
  readonly skips: readonly PlanSkip[];
}

/** kube-proxy's (and the API's) default ClientIP affinity timeout. */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
/** The API's maximum ClientIP affinity timeout (one day). */
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

const EMPTY: readonly never[] = Object.freeze([] as never[]);

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function validPort(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535;
}

function show(x: unknown): string {
  return JSON.stringify(x ?? null) ?? String(x);
}

interface ValidPort {
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
  readonly nodePort?: number;
}

/** IPs of a list, by family, normalized and de-duplicated; bad entries are skipped. */
function ipsByFamily(
  list: unknown,
  field: string,
  key: string,
  skips: SkipCollector,
): Record<IPFamily, string[]> {
  const out: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  if (list === undefined || list === null) return out;
  if (!Array.isArray(list)) {
    skips.add('Service', key, field, 'not a list; ignored');
    return out;
  }
  list.forEach((raw, i) => {
    const ip = parseIP(typeof raw === 'string' ? raw : undefined);
    if (!ip) {
      skips.add('Service', key, `${field}[${i}]`, `not an IP: ${show(raw)}; entry ignored`);
      return;
    }
    const text = formatIP(ip);
    if (!out[ip.family].includes(text)) out[ip.family].push(text);
  });
  return out;
}

/**
 * Plans one Service. Never throws; whatever is malformed is skipped at the smallest grain
 * (an entry, a port, the Service) and listed in `skips`. Services that kube-proxy does not
 * proxy (ExternalName, headless clusterIP None, no ClusterIP) produce nothing and no skip.
 */
export function planService(
  service: KubeService,
  slices: readonly KubeEndpointSlice[],
  ctx: ServicePlanContext,
): ServicePlanOutput {
  const skips = new SkipCollector();
  const done = (
    ports: readonly ServicePortPlan[] = EMPTY,
    healthCheck?: HealthCheckPlan,
  ): ServicePlanOutput => ({
    ports,
    ...(healthCheck ? { healthCheck } : {}),
    skips: skips.list(),
  });

  const namespace = service?.metadata?.namespace;
  const name = service?.metadata?.name;
  const key = `${namespace ?? ''}/${name ?? ''}`;
  if (typeof namespace !== 'string' || !namespace || typeof name !== 'string' || !name) {
    skips.add('Service', key, 'metadata', 'missing name or namespace; Service ignored');
    return done();
  }
  const spec = service.spec;
  if (!isObject(spec)) {
    skips.add('Service', key, 'spec', 'missing spec; Service ignored');
    return done();
  }

  // Type.
  const type = spec.type === undefined || spec.type === '' ? 'ClusterIP' : spec.type;
  if (type === 'ExternalName') return done();
  if (type !== 'ClusterIP' && type !== 'NodePort' && type !== 'LoadBalancer') {
    skips.add('Service', key, 'spec.type', `unknown type ${show(spec.type)}; Service ignored`);
    return done();
  }

  // ClusterIPs: spec.clusterIPs when set, else spec.clusterIP (older objects). The first
  // entry decides headlessness. An unparsable entry makes the Service unusable; a second
  // address of a family is ignored. The family of each address is read from the address
  // itself; spec.ipFamilies is not consulted (kube-proxy pairs ipFamilies[i] with
  // clusterIPs[i], which the API keeps consistent, so both give the same answer).
  const clusterIPField =
    Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0 ? 'spec.clusterIPs' : 'spec.clusterIP';
  const rawClusterIPs: unknown[] =
    clusterIPField === 'spec.clusterIPs'
      ? (spec.clusterIPs as unknown[])
      : spec.clusterIP === undefined
        ? []
        : [spec.clusterIP];
  if (rawClusterIPs.length === 0 || rawClusterIPs[0] === '' || rawClusterIPs[0] === 'None') return done();
  const clusterIPs: Partial<Record<IPFamily, string>> = {};
  for (let i = 0; i < rawClusterIPs.length; i++) {
    const raw = rawClusterIPs[i];
    const field = clusterIPField === 'spec.clusterIPs' ? `spec.clusterIPs[${i}]` : 'spec.clusterIP';
    const ip = parseIP(typeof raw === 'string' ? raw : undefined);
    if (!ip) {
      skips.add('Service', key, field, `not an IP: ${show(raw)}; Service ignored`);
      return done();
    }
    if (clusterIPs[ip.family] !== undefined) {
      skips.add('Service', key, field, `second ${ip.family} ClusterIP; entry ignored`);
      continue;
    }
    clusterIPs[ip.family] = formatIP(ip);
  }
  const families = ctx.families.filter((f) => clusterIPs[f] !== undefined);
  // The health check counts endpoints of the primary family (the first ClusterIP's) when
  // this node programs it, else of the first family it programs.
  const primaryFamily = parseIP(String(rawClusterIPs[0]))?.family;
  const healthFamily =
    primaryFamily !== undefined && families.includes(primaryFamily) ? primaryFamily : families[0];

  // Ports (validated once for all families).
  const rawPorts: unknown[] = Array.isArray(spec.ports) ? spec.ports : [];
  if (rawPorts.length === 0) {
    skips.add('Service', key, 'spec.ports', 'no ports; nothing to proxy');
    return done();
  }
  const exposesNodePorts = type === 'NodePort' || type === 'LoadBalancer';
  const ports: ValidPort[] = [];
  const seenPort = new Set<string>();
  const seenName = new Set<string>();
  rawPorts.forEach((p, i) => {
    const field = `spec.ports[${i}]`;
    if (!isObject(p)) {
      skips.add('Service', key, field, 'not an object; port ignored');
      return;
    }
    const protocol = p.protocol === undefined || p.protocol === '' ? 'TCP' : p.protocol;
    if (!PROTOCOLS.includes(protocol as Protocol)) {
      skips.add('Service', key, `${field}.protocol`, `unknown protocol ${show(p.protocol)}; port ignored`);
      return;
    }
    if (!validPort(p.port)) {
      skips.add(
        'Service',
        key,
        `${field}.port`,
        `${p.port === undefined ? 'missing' : `invalid port ${show(p.port)}`}; port ignored`,
      );
      return;
    }
    const portName = typeof p.name === 'string' ? p.name : '';
    const byNumber = `${p.port}/${protocol}`;
    const byName = `${portName}/${protocol}`;
    if (seenPort.has(byNumber)) {
      skips.add('Service', key, field, `duplicate port ${byNumber}; port ignored`);
      return;
    }
    if (seenName.has(byName)) {
      skips.add('Service', key, field, `duplicate port name ${show(portName)} for ${protocol}; port ignored`);
      return;
    }
    seenPort.add(byNumber);
    seenName.add(byName);
    let nodePort: number | undefined;
    // nodePort 0/absent means "none" (allocateLoadBalancerNodePorts=false, or ClusterIP type).
    if (exposesNodePorts && p.nodePort !== undefined && p.nodePort !== 0) {
      if (validPort(p.nodePort)) nodePort = p.nodePort;
      else
        skips.add(
          'Service',
          key,
          `${field}.nodePort`,
          `invalid nodePort ${show(p.nodePort)}; no NodePort for this port`,
        );
    }
    ports.push({
      name: portName,
      protocol: protocol as Protocol,
      port: p.port,
      ...(nodePort !== undefined ? { nodePort } : {}),
    });
  });

  // Service-level external addresses and policies.
  const externalIPs = ipsByFamily(spec.externalIPs, 'spec.externalIPs', key, skips);
  const lbIPs: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  const ingress = service.status?.loadBalancer?.ingress;
  if (Array.isArray(ingress)) {
    ingress.forEach((ing, i) => {
      if (!isObject(ing)) return;
      // Hostname-only ingress and ipMode Proxy (the LB proxies; traffic arrives for the node)
      // get no rules, as in kube-proxy.
      if (ing.ip === undefined || ing.ip === '' || ing.ipMode === 'Proxy') return;
      const ip = parseIP(typeof ing.ip === 'string' ? ing.ip : undefined);
      if (!ip) {
        skips.add(
          'Service',
          key,
          `status.loadBalancer.ingress[${i}].ip`,
          `not an IP: ${show(ing.ip)}; entry ignored`,
        );
        return;
      }
      const text = formatIP(ip);
      if (!lbIPs[ip.family].includes(text)) lbIPs[ip.family].push(text);
    });
  }
  const sourceRanges: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  if (Array.isArray(spec.loadBalancerSourceRanges)) {
    spec.loadBalancerSourceRanges.forEach((raw, i) => {
      // The API's validation lets whitespace padding through; kube-proxy trims it.
      const cidr = parseCIDR(typeof raw === 'string' ? raw.trim() : undefined);
      if (!cidr) {
        skips.add(
          'Service',
          key,
          `spec.loadBalancerSourceRanges[${i}]`,
          `not a CIDR: ${show(raw)}; entry ignored`,
        );
        return;
      }
      const text = formatCIDR(cidr);
      if (!sourceRanges[cidr.family].includes(text)) sourceRanges[cidr.family].push(text);
    });
  }

  let sessionAffinity: SessionAffinity | undefined;
  if (spec.sessionAffinity === 'ClientIP') {
    const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (timeout === undefined) sessionAffinity = { timeoutSeconds: DEFAULT_AFFINITY_TIMEOUT_SECONDS };
    else if (Number.isInteger(timeout) && timeout >= 1 && timeout <= MAX_AFFINITY_TIMEOUT_SECONDS)
      sessionAffinity = { timeoutSeconds: timeout };
    else {
      skips.add(
        'Service',
        key,
        'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
        `invalid timeout ${show(timeout)} (1..${MAX_AFFINITY_TIMEOUT_SECONDS}); using ${DEFAULT_AFFINITY_TIMEOUT_SECONDS}`,
      );
      sessionAffinity = { timeoutSeconds: DEFAULT_AFFINITY_TIMEOUT_SECONDS };
    }
  } else if (
    spec.sessionAffinity !== undefined &&
    spec.sessionAffinity !== '' &&
    spec.sessionAffinity !== 'None'
  ) {
    skips.add(
      'Service',
      key,
      'spec.sessionAffinity',
      `unknown value ${show(spec.sessionAffinity)}; using None`,
    );
  }

  const policy = (field: 'externalTrafficPolicy' | 'internalTrafficPolicy'): boolean => {
    const v = spec[field];
    if (v === 'Local') return true;
    if (v !== undefined && v !== '' && v !== 'Cluster') {
      skips.add('Service', key, `spec.${field}`, `unknown value ${show(v)}; using Cluster`);
    }
    return false;
  };
  // apiservice.ExternallyAccessible: LoadBalancer, NodePort, or ClusterIP with externalIPs.
  const externallyAccessible =
    exposesNodePorts || (Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0);
  const etpLocal = policy('externalTrafficPolicy');
  const externalPolicyLocal = externallyAccessible && etpLocal;
  const internalPolicyLocal = policy('internalTrafficPolicy');

  let healthCheckNodePort: number | undefined;
  if (type === 'LoadBalancer' && externalPolicyLocal) {
    if (validPort(spec.healthCheckNodePort)) healthCheckNodePort = spec.healthCheckNodePort;
    else {
      skips.add(
        'Service',
        key,
        'spec.healthCheckNodePort',
        `${spec.healthCheckNodePort === undefined ? 'missing' : `invalid ${show(spec.healthCheckNodePort)}`}; no health check server`,
      );
    }
  }

  // Plans per family and port.
  const plans: ServicePortPlan[] = [];
  const healthLocalIPs = new Set<string>();
  for (const family of families) {
    const parsed: ParsedSlice[] = parseSlices(slices, family, ctx.nodeName, skips);
    for (const port of ports) {
      const candidates = endpointsForPort(parsed, port.name, port.protocol);
      const cat = categorizeEndpoints(candidates, ctx.nodeName, ctx.zone);
      const portExternallyAccessible =
        port.nodePort !== undefined || lbIPs[family].length > 0 || externalIPs[family].length > 0;
      const internalEndpoints = internalPolicyLocal ? cat.localEndpoints : cat.clusterEndpoints;
      const externalEndpoints = externalPolicyLocal ? cat.localEndpoints : cat.clusterEndpoints;
      const shortCircuitEndpoints =
        externalPolicyLocal && portExternallyAccessible ? cat.clusterEndpoints : EMPTY;
      const reachableEndpoints = union(
        internalEndpoints,
        portExternallyAccessible ? externalEndpoints : EMPTY,
        shortCircuitEndpoints,
      );
      const verdict = (list: readonly EndpointPlan[]): TrafficVerdict =>
        !cat.hasAnyEndpoints ? 'reject' : list.length ? 'forward' : 'drop';
      if (family === healthFamily) {
        for (const c of candidates) if (c.plan.isLocal && c.plan.ready) healthLocalIPs.add(c.plan.ip);
      }
      plans.push({
        id: `${namespace}/${name}:${port.name}/${port.protocol}/${family}`,
        serviceKey: `${namespace}/${name}`,
        namespace,
        name,
        portName: port.name,
        protocol: port.protocol,
        family,
        clusterIP: clusterIPs[family] as string,
        port: port.port,
        ...(port.nodePort !== undefined ? { nodePort: port.nodePort } : {}),
        externalIPs: externalIPs[family],
        loadBalancerIPs: lbIPs[family],
        loadBalancerSourceRanges: sourceRanges[family],
        ...(sessionAffinity ? { sessionAffinity } : {}),
        internalPolicyLocal,
        externalPolicyLocal,
        ...(healthCheckNodePort !== undefined ? { healthCheckNodePort } : {}),
        clusterEndpoints: cat.clusterEndpoints,
        localEndpoints: cat.localEndpoints,
        internalEndpoints,
        externalEndpoints,
        shortCircuitEndpoints,
        reachableEndpoints,
        allEndpoints: candidates.map((c) => c.plan),
        internal: verdict(internalEndpoints),
        external: verdict(externalEndpoints),
      });
    }
  }
  plans.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // kube-proxy's health check counts distinct local READY endpoint IPs (not serving+terminating
  // ones: a node whose only endpoints are terminating must fail the check so the LB drains it),
  // across the Service's ports. It runs one server per family; we count the primary family's.
  const healthCheck: HealthCheckPlan | undefined =
    healthCheckNodePort !== undefined && plans.length > 0
      ? {
          serviceKey: `${namespace}/${name}`,
          namespace,
          name,
          port: healthCheckNodePort,
          localEndpoints: healthLocalIPs.size,
        }
      : undefined;
  return done(plans, healthCheck);
}

/** Union of endpoint lists, de-duplicated by ip:port, in IP order; reuses a list when it covers all. */
function union(...lists: (readonly EndpointPlan[])[]): readonly EndpointPlan[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length === 0) return EMPTY;
  if (nonEmpty.every((l) => l === nonEmpty[0])) return nonEmpty[0] as readonly EndpointPlan[];
  const seen = new Map<string, EndpointPlan>();
  for (const l of nonEmpty)
    for (const ep of l) if (!seen.has(`${ep.ip}|${ep.port}`)) seen.set(`${ep.ip}|${ep.port}`, ep);
  for (const l of nonEmpty) if (l.length === seen.size) return l;
  const merged = [...seen.values()];
  merged.sort((a, b) => compareIPStrings(a.ip, b.ip) || a.port - b.port);
  return merged;
}
