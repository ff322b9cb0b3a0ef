/**
 * From EndpointSlices to the endpoint lists of one Service port in one IP family, following
 * kube-proxy's endpointslicecache.go and topology.go (CategorizeEndpoints).
 */
import type { KubeEndpointSlice } from '../model/kube.js';
import { PROTOCOLS, type EndpointPlan, type IPFamily, type Protocol } from '../model/snapshot.js';
import { canonicalIPv4Value, compareIPs, formatIP, parseIP, type ParsedIP } from '../net/ip.js';
import type { SkipCollector } from './skips.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

type Hints = ReadonlySet<string> | undefined;

/**
 * One EndpointSlice of the wanted family, validated. Its endpoints are held in parallel arrays
 * (index i of each is endpoint i), sorted by address (stably: copies of an address keep their
 * order in the slice), so that the common case (a slice with one port) makes one object per
 * endpoint: the EndpointPlan the snapshot keeps.
 */
export interface ParsedSlice {
  readonly key: string;
  /** [`${portName}/${protocol}`, port number] (a handful: a list is cheaper than a Map). */
  readonly ports: readonly (readonly [string, number])[];
  /**
   * The endpoints' plans: for the slice's port when it has exactly one, else with port 0 (a
   * copy with the right port is made per Service port).
   */
  readonly plans: readonly EndpointPlan[];
  /** IPv4: the addresses as 32-bit numbers (the sort key); IPv6: zeros. */
  readonly v4: readonly number[];
  /** IPv6 only: the parsed addresses (the sort key). */
  readonly v6?: readonly ParsedIP[];
  /** hints.forZones names per endpoint; absent when no endpoint has any. */
  readonly zoneHints?: readonly Hints[];
  /** hints.forNodes names per endpoint; absent when no endpoint has any. */
  readonly nodeHints?: readonly Hints[];
}

/**
 * The endpoints of one Service port, sorted by address then port: their plans, and (at the
 * same index, when any endpoint has hints) the hints topology needs.
 */
export interface PortEndpoints {
  readonly plans: readonly EndpointPlan[];
  readonly zoneHints?: readonly Hints[];
  readonly nodeHints?: readonly Hints[];
}

/** The slice's port number for a `${portName}/${protocol}` key, or undefined. */
function slicePort(slice: ParsedSlice, pk: string): number | undefined {
  for (const [k, port] of slice.ports) if (k === pk) return port;
  return undefined;
}

/** Orders endpoint i of slice a and endpoint j of slice b by address. */
function compareAddresses(a: ParsedSlice, i: number, b: ParsedSlice, j: number): number {
  const d = (a.v4[i] as number) - (b.v4[j] as number);
  if (d !== 0 || a.v6 === undefined || b.v6 === undefined) return d;
  return compareIPs(a.v6[i] as ParsedIP, b.v6[j] as ParsedIP);
}

/** The same plan for another port (key order kept). */
function withPort(plan: EndpointPlan, port: number): EndpointPlan {
  return plan.port === port ? plan : { ...plan, port };
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

    const ports: [string, number][] = [];
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
      if (ports.some((e) => e[0] === pk)) {
        skips.add(
          'EndpointSlice',
          key,
          `ports[${i}]`,
          `duplicate port ${JSON.stringify(name)}/${protocol}; ignored`,
        );
        return;
      }
      ports.push([pk, port]);
    });

    const planPort = ports.length === 1 ? (ports[0] as [string, number])[1] : 0;
    const plans: EndpointPlan[] = [];
    const v4s: number[] = [];
    let v6s: ParsedIP[] | undefined;
    let zoneHints: Hints[] | undefined;
    let nodeHints: Hints[] | undefined;
    const rawEndpoints: unknown[] = Array.isArray(slice.endpoints) ? slice.endpoints : [];
    for (let i = 0; i < rawEndpoints.length; i++) {
      const e = rawEndpoints[i];
      if (!isObject(e)) {
        skips.add('EndpointSlice', key, `endpoints[${i}]`, 'not an object; endpoint ignored');
        continue;
      }
      const addresses = e.addresses;
      if (!Array.isArray(addresses) || addresses.length === 0) {
        skips.add('EndpointSlice', key, `endpoints[${i}].addresses`, 'no address; endpoint ignored');
        continue;
      }
      const text: unknown = addresses[0];
      let ip: string;
      let v4 = 0;
      let v6: ParsedIP | undefined;
      const fast = typeof text === 'string' ? canonicalIPv4Value(text) : -1;
      if (fast >= 0) {
        // Canonical dotted quad: no parse/format round trip.
        if (family !== 'IPv4') {
          skips.add(
            'EndpointSlice',
            key,
            `endpoints[${i}].addresses[0]`,
            `${text as string} is not ${family} in an ${family} slice; endpoint ignored`,
          );
          continue;
        }
        ip = text as string;
        v4 = fast;
      } else {
        const parsed = parseIP(typeof text === 'string' ? text : undefined);
        if (!parsed) {
          skips.add(
            'EndpointSlice',
            key,
            `endpoints[${i}].addresses[0]`,
            `not an IP: ${JSON.stringify(text)}; endpoint ignored`,
          );
          continue;
        }
        if (parsed.family !== family) {
          skips.add(
            'EndpointSlice',
            key,
            `endpoints[${i}].addresses[0]`,
            `${String(text)} is not ${family} in an ${family} slice; endpoint ignored`,
          );
          continue;
        }
        ip = formatIP(parsed);
        const b = parsed.bytes;
        if (family === 'IPv4')
          v4 =
            (b[0] as number) * 16777216 +
            (b[1] as number) * 65536 +
            (b[2] as number) * 256 +
            (b[3] as number);
        else v6 = parsed;
      }
      const cond = isObject(e.conditions) ? e.conditions : undefined;
      const ready = optionalBool(cond?.ready) ?? true;
      const serving = optionalBool(cond?.serving) ?? ready;
      const terminating = optionalBool(cond?.terminating) ?? false;
      const epNode = typeof e.nodeName === 'string' && e.nodeName ? e.nodeName : undefined;
      // Built field by field in EndpointPlan's key order (no temporary objects).
      const plan: Mutable<EndpointPlan> = {
        ip,
        port: planPort,
        ready,
        serving,
        terminating,
        isLocal: nodeName !== '' && epNode === nodeName,
      };
      if (epNode !== undefined) plan.nodeName = epNode;
      if (typeof e.zone === 'string' && e.zone) plan.zone = e.zone;
      const ref = e.targetRef;
      if (isObject(ref) && typeof ref.name === 'string' && ref.name) plan.targetName = ref.name;
      const n = plans.length;
      plans.push(plan);
      v4s.push(v4);
      if (v6) (v6s ??= []).push(v6);
      if (e.hints !== undefined) {
        const hints = isObject(e.hints) ? e.hints : {};
        const zh = hintSet(hints.forZones);
        const nh = hintSet(hints.forNodes);
        if (zh) (zoneHints ??= new Array<Hints>(n).fill(undefined))[n] = zh;
        if (nh) (nodeHints ??= new Array<Hints>(n).fill(undefined))[n] = nh;
      }
      if (zoneHints && zoneHints.length <= n) zoneHints.push(undefined);
      if (nodeHints && nodeHints.length <= n) nodeHints.push(undefined);
    }
    out.push(
      sortedSlice({
        key,
        ports,
        plans,
        v4: v4s,
        ...(v6s ? { v6: v6s } : {}),
        ...(zoneHints ? { zoneHints } : {}),
        ...(nodeHints ? { nodeHints } : {}),
      }),
    );
  }
  return out;
}

/** The slice with its endpoints sorted by address (stable); the same object when they are. */
function sortedSlice(slice: ParsedSlice): ParsedSlice {
  const n = slice.plans.length;
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) if (compareAddresses(slice, i - 1, slice, i) > 0) sorted = false;
  if (sorted) return slice;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((i, j) => compareAddresses(slice, i, slice, j) || i - j);
  const pick = <T>(list: readonly T[]): T[] => order.map((i) => list[i] as T);
  return {
    key: slice.key,
    ports: slice.ports,
    plans: pick(slice.plans),
    v4: pick(slice.v4),
    ...(slice.v6 ? { v6: pick(slice.v6) } : {}),
    ...(slice.zoneHints ? { zoneHints: pick(slice.zoneHints) } : {}),
    ...(slice.nodeHints ? { nodeHints: pick(slice.nodeHints) } : {}),
  };
}

/** Builds a PortEndpoints from chosen (slice, endpoint, port) triples in order. */
class PortEndpointsBuilder {
  readonly plans: EndpointPlan[] = [];
  private zoneHints: Hints[] | undefined;
  private nodeHints: Hints[] | undefined;

  add(slice: ParsedSlice, i: number, port: number): void {
    const n = this.plans.length;
    this.plans.push(withPort(slice.plans[i] as EndpointPlan, port));
    const zh = slice.zoneHints?.[i];
    const nh = slice.nodeHints?.[i];
    if (zh) (this.zoneHints ??= new Array<Hints>(n).fill(undefined))[n] = zh;
    else if (this.zoneHints) this.zoneHints.push(undefined);
    if (nh) (this.nodeHints ??= new Array<Hints>(n).fill(undefined))[n] = nh;
    else if (this.nodeHints) this.nodeHints.push(undefined);
  }

  build(): PortEndpoints {
    return {
      plans: this.plans,
      ...(this.zoneHints ? { zoneHints: this.zoneHints } : {}),
      ...(this.nodeHints ? { nodeHints: this.nodeHints } : {}),
    };
  }
}

const NO_ENDPOINTS: PortEndpoints = Object.freeze({ plans: Object.freeze([]) as readonly EndpointPlan[] });

/**
 * The endpoints of one Service port (matched to slice ports by name and protocol, as kube-proxy
 * does; targetPort plays no part), merged over all slices and de-duplicated by ip:port.
 *
 * Duplicates (an endpoint that moves between slices shows up in both for a moment): kube-proxy
 * keeps the first one it sees (Go map order, so effectively arbitrary) unless a later copy is
 * local. We do the same over slices in key order, which makes the choice deterministic: the
 * first local copy, else the first copy.
 * The result is sorted by IP (numerically) then port.
 */
export function endpointsForPort(
  slices: readonly ParsedSlice[],
  portName: string,
  protocol: Protocol,
): PortEndpoints {
  const pk = slicePortKey(portName, protocol);
  let only: ParsedSlice | undefined;
  let onlyPort = 0;
  let matching = 0;
  for (const slice of slices) {
    const port = slicePort(slice, pk);
    if (port === undefined) continue;
    matching++;
    only = slice;
    onlyPort = port;
  }
  if (matching === 0 || only === undefined) return NO_ENDPOINTS;
  if (matching === 1) {
    // One slice (the common case): sorted by address already, so copies of an address are
    // adjacent and in slice order.
    const slice = only;
    const eps = slice.plans;
    let dupes = false;
    for (let i = 1; i < eps.length && !dupes; i++)
      if ((eps[i] as EndpointPlan).ip === (eps[i - 1] as EndpointPlan).ip) dupes = true;
    if (!dupes && slice.ports.length === 1) {
      // The slice's own arrays (its plans carry this port) are the answer.
      return {
        plans: eps,
        ...(slice.zoneHints ? { zoneHints: slice.zoneHints } : {}),
        ...(slice.nodeHints ? { nodeHints: slice.nodeHints } : {}),
      };
    }
    const out = new PortEndpointsBuilder();
    for (let i = 0; i < eps.length;) {
      let chosen = i;
      let j = i + 1;
      for (; j < eps.length && (eps[j] as EndpointPlan).ip === (eps[i] as EndpointPlan).ip; j++) {
        if (!(eps[chosen] as EndpointPlan).isLocal && (eps[j] as EndpointPlan).isLocal) chosen = j;
      }
      out.add(slice, chosen, onlyPort);
      i = j;
    }
    return out.build();
  }
  // Several slices: every (slice, endpoint, port), ordered by address then port; the sort is
  // stable, so copies of one ip:port stay in slice order.
  const cs: ParsedSlice[] = [];
  const ci: number[] = [];
  const cp: number[] = [];
  for (const slice of slices) {
    const port = slicePort(slice, pk);
    if (port === undefined) continue;
    for (let i = 0; i < slice.plans.length; i++) {
      cs.push(slice);
      ci.push(i);
      cp.push(port);
    }
  }
  const order = Array.from({ length: cs.length }, (_, k) => k);
  order.sort(
    (a, b) =>
      compareAddresses(cs[a] as ParsedSlice, ci[a] as number, cs[b] as ParsedSlice, ci[b] as number) ||
      (cp[a] as number) - (cp[b] as number) ||
      a - b,
  );
  const planAt = (k: number): EndpointPlan => (cs[k] as ParsedSlice).plans[ci[k] as number] as EndpointPlan;
  const out = new PortEndpointsBuilder();
  for (let x = 0; x < order.length;) {
    const first = order[x] as number;
    let chosen = first;
    let y = x + 1;
    for (; y < order.length; y++) {
      const k = order[y] as number;
      if (planAt(k).ip !== planAt(first).ip || cp[k] !== cp[first]) break;
      if (!planAt(chosen).isLocal && planAt(k).isLocal) chosen = k;
    }
    out.add(cs[chosen] as ParsedSlice, ci[chosen] as number, cp[chosen] as number);
    x = y;
  }
  return out.build();
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
  eps: PortEndpoints,
  nodeName: string,
  zone: string | undefined,
): TopologyMode {
  const { plans, zoneHints, nodeHints } = eps;
  // Without hints on any endpoint, neither mode can apply.
  if (!zoneHints && !nodeHints) return '';
  let hasReady = false;
  let allNodeHints = true;
  let forNode = false;
  let allZoneHints = true;
  let forZone = false;
  for (let i = 0; i < plans.length; i++) {
    if (!(plans[i] as EndpointPlan).ready) continue;
    hasReady = true;
    const nh = nodeHints?.[i];
    const zh = zoneHints?.[i];
    if (!nh) allNodeHints = false;
    else if (nodeName !== '' && nh.has(nodeName)) forNode = true;
    if (!zh) allZoneHints = false;
    else if (zone !== undefined && zone !== '' && zh.has(zone)) forZone = true;
    if (!allNodeHints && !allZoneHints) return '';
  }
  if (!hasReady) return '';
  if (allNodeHints && forNode) return 'PreferSameNode';
  if (allZoneHints && forZone) return 'PreferSameZone';
  return '';
}

function availableForTopology(
  eps: PortEndpoints,
  i: number,
  mode: TopologyMode,
  nodeName: string,
  zone: string | undefined,
): boolean {
  if (mode === 'PreferSameNode') return eps.nodeHints?.[i]?.has(nodeName) ?? false;
  if (mode === 'PreferSameZone') return zone !== undefined && (eps.zoneHints?.[i]?.has(zone) ?? false);
  return true;
}

export interface CategorizedEndpoints {
  /** Ready endpoints (topology-filtered); if none, serving+terminating ones (KEP-1669). */
  readonly clusterEndpoints: readonly EndpointPlan[];
  /** Local ready endpoints; if none, local serving+terminating ones. */
  readonly localEndpoints: readonly EndpointPlan[];
  /** Some endpoint anywhere is usable (ready, or serving and terminating). */
  readonly hasAnyEndpoints: boolean;
  readonly topologyMode: TopologyMode;
}

const NONE: readonly EndpointPlan[] = Object.freeze([]);

/**
 * kube-proxy's CategorizeEndpoints, computing both lists always (kube-proxy skips the one a
 * Service never uses; the caller decides which lists are reachable). A list that holds every
 * endpoint is `port.plans` itself (shared, not copied).
 */
export function categorizeEndpoints(
  port: PortEndpoints,
  nodeName: string,
  zone: string | undefined,
): CategorizedEndpoints {
  const plans = port.plans;
  const topologyMode = topologyModeFromHints(port, nodeName, zone);
  const inCluster = (i: number): boolean =>
    topologyMode === '' || availableForTopology(port, i, topologyMode, nodeName, zone);
  const n = plans.length;
  let ready = 0;
  let cluster = 0;
  let local = 0;
  let fallback = 0;
  let localFallback = 0;
  for (let i = 0; i < n; i++) {
    const ep = plans[i] as EndpointPlan;
    if (ep.ready) {
      ready++;
      if (inCluster(i)) cluster++;
      if (ep.isLocal) local++;
    } else if (ep.serving && ep.terminating) {
      fallback++;
      if (ep.isLocal) localFallback++;
    }
  }
  // Ready endpoints are never serving-and-terminating fallbacks (those are not ready), and
  // when any endpoint is ready some ready one passes topology (a mode needs a hint for this
  // node or zone on a ready endpoint), so the counts say which filter applies and whether it
  // keeps everything.
  const pick = (count: number, keep: (ep: EndpointPlan, i: number) => boolean): readonly EndpointPlan[] => {
    if (count === 0) return NONE;
    if (count === n) return plans;
    const out: EndpointPlan[] = [];
    for (let i = 0; i < n; i++) if (keep(plans[i] as EndpointPlan, i)) out.push(plans[i] as EndpointPlan);
    return out;
  };
  const clusterEndpoints =
    cluster > 0
      ? pick(cluster, (ep, i) => ep.ready && inCluster(i))
      : pick(fallback, (ep) => !ep.ready && ep.serving && ep.terminating);
  const localEndpoints =
    local > 0
      ? pick(local, (ep) => ep.isLocal && ep.ready)
      : pick(localFallback, (ep) => ep.isLocal && !ep.ready && ep.serving && ep.terminating);
  const hasAnyEndpoints = ready > 0 || fallback > 0;
  return { clusterEndpoints, localEndpoints, hasAnyEndpoints, topologyMode };
}
