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
import { canonicalIPv4Value, compareIPStrings, formatCIDR, formatIP, parseCIDR, parseIP } from '../net/ip.js';
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

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

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

/** Per-family lists that share the frozen empty list until something is added. */
function familyLists(): Record<IPFamily, readonly string[]> {
  return { IPv4: EMPTY, IPv6: EMPTY };
}

function addUnique(lists: Record<IPFamily, readonly string[]>, family: IPFamily, text: string): void {
  const list = lists[family];
  if (list === EMPTY) lists[family] = [text];
  else if (!list.includes(text)) (list as string[]).push(text);
}

/** The family and canonical text of an address (canonical IPv4 text is taken as it is). */
function normalizedIP(raw: unknown): { family: IPFamily; text: string } | undefined {
  if (typeof raw !== 'string') return undefined;
  if (canonicalIPv4Value(raw) >= 0) return { family: 'IPv4', text: raw };
  const ip = parseIP(raw);
  return ip && { family: ip.family, text: formatIP(ip) };
}

/** IPs of a list, by family, normalized and de-duplicated; bad entries are skipped. */
function ipsByFamily(
  list: unknown,
  field: string,
  key: string,
  skips: SkipCollector,
): Record<IPFamily, readonly string[]> {
  const out = familyLists();
  if (list === undefined || list === null) return out;
  if (!Array.isArray(list)) {
    skips.add('Service', key, field, 'not a list; ignored');
    return out;
  }
  list.forEach((raw, i) => {
    const ip = normalizedIP(raw);
    if (!ip) {
      skips.add('Service', key, `${field}[${i}]`, `not an IP: ${show(raw)}; entry ignored`);
      return;
    }
    addUnique(out, ip.family, ip.text);
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
  let primaryFamily: IPFamily | undefined;
  for (let i = 0; i < rawClusterIPs.length; i++) {
    const raw = rawClusterIPs[i];
    const field = clusterIPField === 'spec.clusterIPs' ? `spec.clusterIPs[${i}]` : 'spec.clusterIP';
    const ip = normalizedIP(raw);
    if (!ip) {
      skips.add('Service', key, field, `not an IP: ${show(raw)}; Service ignored`);
      return done();
    }
    if (clusterIPs[ip.family] !== undefined) {
      skips.add('Service', key, field, `second ${ip.family} ClusterIP; entry ignored`);
      continue;
    }
    clusterIPs[ip.family] = ip.text;
    primaryFamily ??= ip.family;
  }
  const families = ctx.families.filter((f) => clusterIPs[f] !== undefined);
  // The health check counts endpoints of the primary family (the first ClusterIP's) when
  // this node programs it, else of the first family it programs.
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
    if (ports.some((q) => q.port === p.port && q.protocol === protocol)) {
      skips.add('Service', key, field, `duplicate port ${p.port}/${protocol}; port ignored`);
      return;
    }
    if (ports.some((q) => q.name === portName && q.protocol === protocol)) {
      skips.add('Service', key, field, `duplicate port name ${show(portName)} for ${protocol}; port ignored`);
      return;
    }
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
  const lbIPs = familyLists();
  const ingress = service.status?.loadBalancer?.ingress;
  if (Array.isArray(ingress)) {
    ingress.forEach((ing, i) => {
      if (!isObject(ing)) return;
      // Hostname-only ingress and ipMode Proxy (the LB proxies; traffic arrives for the node)
      // get no rules, as in kube-proxy.
      if (ing.ip === undefined || ing.ip === '' || ing.ipMode === 'Proxy') return;
      const ip = normalizedIP(ing.ip);
      if (!ip) {
        skips.add(
          'Service',
          key,
          `status.loadBalancer.ingress[${i}].ip`,
          `not an IP: ${show(ing.ip)}; entry ignored`,
        );
        return;
      }
      const text = ip.text;
      addUnique(lbIPs, ip.family, text);
    });
  }
  const sourceRanges = familyLists();
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
      addUnique(sourceRanges, cidr.family, text);
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
  const healthLocalIPs = healthCheckNodePort !== undefined ? new Set<string>() : undefined;
  for (const family of families) {
    const parsed: ParsedSlice[] = parseSlices(slices, family, ctx.nodeName, skips);
    for (const port of ports) {
      const portEndpoints = endpointsForPort(parsed, port.name, port.protocol);
      const cat = categorizeEndpoints(portEndpoints, ctx.nodeName, ctx.zone);
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
      if (healthLocalIPs && family === healthFamily) {
        for (const ep of portEndpoints.plans) if (ep.isLocal && ep.ready) healthLocalIPs.add(ep.ip);
      }
      // Built field by field (same key order as the interface): conditional spreads would
      // allocate a temporary object each, for every port of every Service.
      const plan = {
        id: `${key}:${port.name}/${port.protocol}/${family}`,
        serviceKey: key,
        namespace,
        name,
        portName: port.name,
        protocol: port.protocol,
        family,
        clusterIP: clusterIPs[family] as string,
        port: port.port,
      } as Mutable<ServicePortPlan>;
      if (port.nodePort !== undefined) plan.nodePort = port.nodePort;
      plan.externalIPs = externalIPs[family];
      plan.loadBalancerIPs = lbIPs[family];
      plan.loadBalancerSourceRanges = sourceRanges[family];
      if (sessionAffinity) plan.sessionAffinity = sessionAffinity;
      plan.internalPolicyLocal = internalPolicyLocal;
      plan.externalPolicyLocal = externalPolicyLocal;
      if (healthCheckNodePort !== undefined) plan.healthCheckNodePort = healthCheckNodePort;
      plan.clusterEndpoints = cat.clusterEndpoints;
      plan.localEndpoints = cat.localEndpoints;
      plan.internalEndpoints = internalEndpoints;
      plan.externalEndpoints = externalEndpoints;
      plan.shortCircuitEndpoints = shortCircuitEndpoints;
      plan.reachableEndpoints = reachableEndpoints;
      plan.allEndpoints = portEndpoints.plans;
      plan.internal = verdict(internalEndpoints);
      plan.external = verdict(externalEndpoints);
      plans.push(plan);
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
          localEndpoints: healthLocalIPs?.size ?? 0,
        }
      : undefined;
  return done(plans, healthCheck);
}

/** Union of endpoint lists, de-duplicated by ip:port, in IP order; reuses a list when it covers all. */
function union(
  a: readonly EndpointPlan[],
  b: readonly EndpointPlan[],
  c: readonly EndpointPlan[],
): readonly EndpointPlan[] {
  // The common case: one list (or the same list more than once) and empty ones.
  const x = a.length ? a : b.length ? b : c;
  if ((b.length === 0 || b === x) && (c.length === 0 || c === x)) return x.length ? x : EMPTY;
  return merge([a, b, c]);
}

function merge(lists: (readonly EndpointPlan[])[]): readonly EndpointPlan[] {
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
