/**
 * From EndpointSlices to the endpoint lists of one Service port in one IP family, following
 * kube-proxy's endpointslicecache.go and topology.go (CategorizeEndpoints).
 */
import type { KubeEndpointSlice } from '../model/kube.js';
import { PROTOCOLS, type EndpointPlan, type IPFamily, type Protocol } from '../model/snapshot.js';
import { compareIPs, formatIP, parseIP, type ParsedIP } from '../net/ip.js';
import type { SkipCollector } from './skips.js';

/** An endpoint of a slice after validation, before a port is attached. */
export interface ParsedEndpoint {
  readonly ip: string;
  readonly parsedIP: ParsedIP;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly isLocal: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly targetName?: string;
  /** hints.forZones names; undefined when the endpoint has none. */
  readonly zoneHints?: ReadonlySet<string>;
  /** hints.forNodes names; undefined when the endpoint has none. */
  readonly nodeHints?: ReadonlySet<string>;
}

/** One EndpointSlice of the wanted family, validated. */
export interface ParsedSlice {
  readonly key: string;
  /** `${portName}/${protocol}` -> port number. */
  readonly ports: ReadonlyMap<string, number>;
  readonly endpoints: readonly ParsedEndpoint[];
}

/** An endpoint for one Service port, with the hints topology needs. */
export interface EndpointCandidate {
  readonly plan: EndpointPlan;
  readonly zoneHints?: ReadonlySet<string>;
  readonly nodeHints?: ReadonlySet<string>;
}

export function slicePortKey(name: string, protocol: Protocol): string {
  return `${name}/${protocol}`;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function hintSet(list: unknown): ReadonlySet<string> | undefined {
  if (!Array.isArray(list)) return undefined;
  const names = new Set<string>();
  for (const h of list) if (isObject(h) && typeof h.name === 'string' && h.name) names.add(h.name);
  return names.size ? names : undefined;
}

function optionalBool(x: unknown): boolean | undefined {
  return typeof x === 'boolean' ? x : undefined;
}

/**
 * Validates the slices of one Service for one family. Slices of the other family, and FQDN
 * slices, are left out silently (kube-proxy ignores FQDN slices; the other family's slices
 * belong to the other family's plan). Everything malformed is skipped at the smallest grain
 * and reported to `skips`:
 * - a slice with a missing/unknown addressType: the whole slice;
 * - a slice port without a valid port number or with an unknown protocol, or a second port
 *   with the same name and protocol: that port;
 * - an endpoint without addresses, or whose first address (the only one kube-proxy uses) is
 *   not an IP of the slice's family: that endpoint.
 *
 * Conditions (per the issue; kube-proxy differs on `serving`): ready nil = true, serving nil =
 * the endpoint's ready value (kube-proxy reads nil as true), terminating nil = false.
 * A slice port without a name is treated as the unnamed port '' (kube-proxy ignores ports
 * whose name is nil; hand-written YAML often omits it).
 */
export function parseSlices(
  slices: readonly KubeEndpointSlice[],
  family: IPFamily,
  nodeName: string,
  skips: SkipCollector,
): ParsedSlice[] {
  const out: ParsedSlice[] = [];
  for (const slice of slices) {
    if (typeof slice !== 'object' || slice === null) continue;
    const key = `${slice.metadata?.namespace ?? ''}/${slice.metadata?.name ?? ''}`;
    const addressType = slice.addressType;
    if (addressType === 'FQDN') continue;
    if (addressType !== 'IPv4' && addressType !== 'IPv6') {
      skips.add(
        'EndpointSlice',
        key,
        'addressType',
        `unknown addressType ${JSON.stringify(addressType ?? null)}; slice ignored`,
      );
      continue;
    }
    if (addressType !== family) continue;

    const ports = new Map<string, number>();
    const rawPorts: unknown[] = Array.isArray(slice.ports) ? slice.ports : [];
    rawPorts.forEach((p, i) => {
      if (!isObject(p)) {
        skips.add('EndpointSlice', key, `ports[${i}]`, 'not an object; port ignored');
        return;
      }
      const name = typeof p.name === 'string' ? p.name : '';
      const protocol = p.protocol === undefined || p.protocol === '' ? 'TCP' : p.protocol;
      if (!PROTOCOLS.includes(protocol as Protocol)) {
        skips.add(
          'EndpointSlice',
          key,
          `ports[${i}].protocol`,
          `unknown protocol ${JSON.stringify(protocol)}; port ignored`,
        );
        return;
      }
      const port = p.port;
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
        skips.add(
          'EndpointSlice',
          key,
          `ports[${i}].port`,
          `invalid port ${JSON.stringify(port ?? null)}; port ignored`,
        );
        return;
      }
      const pk = slicePortKey(name, protocol as Protocol);
      if (ports.has(pk)) {
        skips.add(
          'EndpointSlice',
          key,
          `ports[${i}]`,
          `duplicate port ${JSON.stringify(name)}/${protocol}; ignored`,
        );
        return;
      }
      ports.set(pk, port);
    });

    const endpoints: ParsedEndpoint[] = [];
    const rawEndpoints: unknown[] = Array.isArray(slice.endpoints) ? slice.endpoints : [];
    rawEndpoints.forEach((e, i) => {
      if (!isObject(e)) {
        skips.add('EndpointSlice', key, `endpoints[${i}]`, 'not an object; endpoint ignored');
        return;
      }
      const addresses = e.addresses;
      if (!Array.isArray(addresses) || addresses.length === 0) {
        skips.add('EndpointSlice', key, `endpoints[${i}].addresses`, 'no address; endpoint ignored');
        return;
      }
      const parsed = parseIP(typeof addresses[0] === 'string' ? addresses[0] : undefined);
      if (!parsed) {
        skips.add(
          'EndpointSlice',
          key,
          `endpoints[${i}].addresses[0]`,
          `not an IP: ${JSON.stringify(addresses[0])}; endpoint ignored`,
        );
        return;
      }
      if (parsed.family !== family) {
        skips.add(
          'EndpointSlice',
          key,
          `endpoints[${i}].addresses[0]`,
          `${String(addresses[0])} is not ${family} in an ${family} slice; endpoint ignored`,
        );
        return;
      }
      const cond = isObject(e.conditions) ? e.conditions : {};
      const ready = optionalBool(cond.ready) ?? true;
      const serving = optionalBool(cond.serving) ?? ready;
      const terminating = optionalBool(cond.terminating) ?? false;
      const epNode = typeof e.nodeName === 'string' && e.nodeName ? e.nodeName : undefined;
      const zone = typeof e.zone === 'string' && e.zone ? e.zone : undefined;
      const targetName =
        isObject(e.targetRef) && typeof e.targetRef.name === 'string' && e.targetRef.name
          ? e.targetRef.name
          : undefined;
      const hints = isObject(e.hints) ? e.hints : {};
      const zoneHints = hintSet(hints.forZones);
      const nodeHints = hintSet(hints.forNodes);
      endpoints.push({
        ip: formatIP(parsed),
        parsedIP: parsed,
        ready,
        serving,
        terminating,
        isLocal: nodeName !== '' && epNode === nodeName,
        ...(epNode !== undefined ? { nodeName: epNode } : {}),
        ...(zone !== undefined ? { zone } : {}),
        ...(targetName !== undefined ? { targetName } : {}),
        ...(zoneHints ? { zoneHints } : {}),
        ...(nodeHints ? { nodeHints } : {}),
      });
    });
    out.push({ key, ports, endpoints });
  }
  return out;
}

/**
 * The endpoints of one Service port (matched to slice ports by name and protocol, as kube-proxy
 * does; targetPort plays no part), merged over all slices and de-duplicated by ip:port.
 *
 * Duplicates (an endpoint that moves between slices shows up in both for a moment): kube-proxy
 * keeps the first one it sees (Go map order, so effectively arbitrary) unless a later copy is
 * local. We do the same over slices in key order, which makes the choice deterministic.
 * The result is sorted by IP (numerically) then port.
 */
export function endpointsForPort(
  slices: readonly ParsedSlice[],
  portName: string,
  protocol: Protocol,
): EndpointCandidate[] {
  const pk = slicePortKey(portName, protocol);
  const byAddr = new Map<string, { ep: ParsedEndpoint; port: number }>();
  for (const slice of slices) {
    const port = slice.ports.get(pk);
    if (port === undefined) continue;
    for (const ep of slice.endpoints) {
      const addr = `${ep.ip}|${port}`;
      const existing = byAddr.get(addr);
      if (!existing || (ep.isLocal && !existing.ep.isLocal)) byAddr.set(addr, { ep, port });
    }
  }
  const list = [...byAddr.values()];
  list.sort((a, b) => compareIPs(a.ep.parsedIP, b.ep.parsedIP) || a.port - b.port);
  return list.map(({ ep, port }) => {
    const plan: EndpointPlan = {
      ip: ep.ip,
      port,
      ready: ep.ready,
      serving: ep.serving,
      terminating: ep.terminating,
      isLocal: ep.isLocal,
      ...(ep.nodeName !== undefined ? { nodeName: ep.nodeName } : {}),
      ...(ep.zone !== undefined ? { zone: ep.zone } : {}),
      ...(ep.targetName !== undefined ? { targetName: ep.targetName } : {}),
    };
    return {
      plan,
      ...(ep.zoneHints ? { zoneHints: ep.zoneHints } : {}),
      ...(ep.nodeHints ? { nodeHints: ep.nodeHints } : {}),
    };
  });
}

/** '' (no topology), or the hint kind that filters cluster endpoints. */
export type TopologyMode = '' | 'PreferSameZone' | 'PreferSameNode';

/**
 * kube-proxy's topologyModeFromHints. The hints in the slices decide, not the Service: the
 * EndpointSlice controller only writes hints for trafficDistribution PreferClose /
 * PreferSameZone (zone hints) and PreferSameNode (node and zone hints), or the legacy
 * `service.kubernetes.io/topology-mode: Auto` annotation, so following the hints follows
 * those settings (as kube-proxy does since ServiceTrafficDistribution went GA).
 * - PreferSameNode when every ready endpoint has node hints and one is hinted for this node;
 * - else PreferSameZone when every ready endpoint has zone hints, the node has a zone label
 *   and one is hinted for that zone;
 * - else '' (all endpoints), also when there is no ready endpoint.
 */
export function topologyModeFromHints(
  eps: readonly EndpointCandidate[],
  nodeName: string,
  zone: string | undefined,
): TopologyMode {
  let hasReady = false;
  let allNodeHints = true;
  let forNode = false;
  let allZoneHints = true;
  let forZone = false;
  for (const ep of eps) {
    if (!ep.plan.ready) continue;
    hasReady = true;
    if (!ep.nodeHints) allNodeHints = false;
    else if (nodeName !== '' && ep.nodeHints.has(nodeName)) forNode = true;
    if (!ep.zoneHints) allZoneHints = false;
    else if (zone !== undefined && zone !== '' && ep.zoneHints.has(zone)) forZone = true;
  }
  if (!hasReady) return '';
  if (allNodeHints && forNode) return 'PreferSameNode';
  if (allZoneHints && forZone) return 'PreferSameZone';
  return '';
}

function availableForTopology(
  ep: EndpointCandidate,
  mode: TopologyMode,
  nodeName: string,
  zone: string | undefined,
): boolean {
  if (mode === 'PreferSameNode') return ep.nodeHints?.has(nodeName) ?? false;
  if (mode === 'PreferSameZone') return zone !== undefined && (ep.zoneHints?.has(zone) ?? false);
  return true;
}

export interface CategorizedEndpoints {
  /** Ready endpoints (topology-filtered); if none, serving+terminating ones (KEP-1669). */
  readonly clusterEndpoints: EndpointPlan[];
  /** Local ready endpoints; if none, local serving+terminating ones. */
  readonly localEndpoints: EndpointPlan[];
  /** Some endpoint anywhere is usable (ready, or serving and terminating). */
  readonly hasAnyEndpoints: boolean;
  readonly topologyMode: TopologyMode;
}

/**
 * kube-proxy's CategorizeEndpoints, computing both lists always (kube-proxy skips the one a
 * Service never uses; the caller decides which lists are reachable).
 */
export function categorizeEndpoints(
  eps: readonly EndpointCandidate[],
  nodeName: string,
  zone: string | undefined,
): CategorizedEndpoints {
  const topologyMode = topologyModeFromHints(eps, nodeName, zone);
  let clusterEndpoints = eps
    .filter((ep) => ep.plan.ready && availableForTopology(ep, topologyMode, nodeName, zone))
    .map((ep) => ep.plan);
  if (clusterEndpoints.length === 0) {
    clusterEndpoints = eps.filter((ep) => ep.plan.serving && ep.plan.terminating).map((ep) => ep.plan);
  }
  let localEndpoints = eps.filter((ep) => ep.plan.isLocal && ep.plan.ready).map((ep) => ep.plan);
  if (localEndpoints.length === 0) {
    localEndpoints = eps
      .filter((ep) => ep.plan.isLocal && ep.plan.serving && ep.plan.terminating)
      .map((ep) => ep.plan);
  }
  const hasAnyEndpoints = eps.some((ep) => ep.plan.ready || (ep.plan.serving && ep.plan.terminating));
  return { clusterEndpoints, localEndpoints, hasAnyEndpoints, topologyMode };
}
