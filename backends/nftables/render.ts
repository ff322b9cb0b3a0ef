/**
 * The nftables renderer: Snapshot + SnapshotDelta + what was last applied → one nft script.
 * Pure: it reads `lastApplied` and returns a patch; the caller commits the patch after the
 * kernel accepted the script (see `commitPlan`).
 *
 * Layout (per family, table `ip switchyard` / `ip6 switchyard`), chosen by measurement
 * (docs/benchmarks.md): a fixed set of chains and named sets/maps; every Service port lives
 * as ELEMENTS:
 *   service-ips       daddr . proto . port        → goto ep-<kind>-<N> | goto aff-…
 *   service-nodeports proto . port                → goto ep-<kind>-<N> | goto aff-…
 *   ip-endpoints      daddr . proto . port . i    → endpoint addr . port   (i < N)
 *   nodeport-endpoints proto . port . i           → endpoint addr . port
 * and one chain per distinct endpoint count N and kind, holding the only DNAT rule:
 *   dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N map @ip-endpoints
 * Filter chains reject/drop new connections to Service ports without usable endpoints
 * (no-endpoint-* maps), drop sources outside loadBalancerSourceRanges (firewall-* sets) and
 * reject ClusterIP ports the Service does not define (cluster-ips set). Masquerade uses
 * kube-proxy's fwmark bit; hairpin is found after DNAT by the `hairpin` set (addr . addr).
 * ClientIP session affinity (rare) uses kube-proxy's per-endpoint dynamic sets and chains.
 */
import type {
  IPFamily,
  Snapshot,
  SnapshotDelta,
  ServicePortPlan,
  EndpointPlan,
  TrafficVerdict,
} from '../../core/model/snapshot.js';
import { validInterfaceName } from '../../core/net/interface-name.js';
import { canonicalIP, normalizeCIDRs, validPort, validProtocol } from './addr.js';
import {
  CHAINS,
  SETS,
  type GroupKind,
  type SetName,
  affinityChain,
  affinityEndpoint,
  groupChain,
  nftFamily,
  parseGroupChain,
  tableRef,
} from './names.js';

export interface RenderOptions {
  /** kube-proxy's --iptables-masquerade-bit (default 14 → 0x4000). */
  readonly masqueradeBit?: number;
  /** Elements per `add element` statement in a full sync. */
  readonly elementsPerStatement?: number;
  /**
   * A full sync declares a hash set or map that gets at least this many elements with
   * `size` = 2 × its elements, rounded up to a power of two (default SIZE_HINT_MIN). The kernel
   * then allocates its hash table once instead of growing it while 100k elements arrive
   * (nft 1.60 → 1.52 s for a 10k-Service transaction). `size` is also the set's maximum (the
   * kernel refuses a transaction that passes it), so an incremental sync that would pass it is
   * made full instead, and the full sync declares larger sets (FamilyState.sizes / counts).
   */
  readonly sizeHintMin?: number;
}

/** Default RenderOptions.sizeHintMin. */
export const SIZE_HINT_MIN = 4096;

/** Sets and maps that may carry a `size` (hash types; interval sets are left alone). */
const SIZED_SETS: ReadonlySet<SetName> = new Set<SetName>([
  SETS.clusterIPs,
  SETS.serviceIPs,
  SETS.serviceNodePorts,
  SETS.shortCircuitIPs,
  SETS.shortCircuitNodePorts,
  SETS.ipEndpoints,
  SETS.nodePortEndpoints,
  SETS.shortCircuitIPEndpoints,
  SETS.shortCircuitNodePortEndpoints,
  SETS.noEndpointServices,
  SETS.noEndpointNodePorts,
  SETS.firewallIPs,
]);

/** The `size` of a set that gets `count` elements in a full sync, or undefined for none. */
function sizeHint(count: number, min: number): number | undefined {
  if (count < min) return undefined;
  return 2 ** Math.ceil(Math.log2(count * 2));
}

/** Sets whose elements several Service ports may share (reference-counted). */
const SHARED_SETS: ReadonlySet<SetName> = new Set<SetName>([SETS.clusterIPs]);

interface EndpointMapEntries {
  readonly set: SetName;
  readonly key: string;
  readonly eps: readonly EndpointPlan[];
}

/** Calls `fn` for every unique (not shared) element of a contribution. */
function forEachUniqueElement(
  c: Contribution,
  fn: (set: SetName, key: string, value: string | undefined) => void,
): void {
  const e = c.elements;
  for (let i = 0; i < e.length; i += 3) {
    const set = e[i] as SetName;
    if (!SHARED_SETS.has(set)) fn(set, e[i + 1]!, e[i + 2]);
  }
  for (const m of c.endpointMaps) {
    const eps = m.eps;
    for (let i = 0; i < eps.length; i++) fn(m.set, `${m.key} . ${i}`, `${eps[i]!.ip} . ${eps[i]!.port}`);
  }
}

/** What one Service port put into one family's table. */
interface Contribution {
  /** Destination keys this port claims (`D:` daddr . proto . port, `N:` proto . port). */
  readonly claims: readonly string[];
  /**
   * Flat [set, key, value, set, key, value, ...] triples (one array per port keeps the
   * garbage collector quiet at 10k ports). Every element outside SHARED_SETS derives from a
   * destination this port won, so no other port has it.
   */
  readonly elements: readonly (string | undefined)[];
  /**
   * Endpoint map elements, kept compact: `key . i : ip . port` for each endpoint i of `eps`
   * (the snapshot's own list, validated), expanded only when rendered or diffed.
   */
  readonly endpointMaps: readonly EndpointMapEntries[];
  /** Group chains referenced (by name). */
  readonly groups: readonly string[];
  /** Affinity sets (name → declaration body) and chains (name → rules), endpoint chains first. */
  readonly affinitySets: ReadonlyMap<string, string>;
  readonly affinityChains: ReadonlyMap<string, readonly string[]>;
  /** Skipped malformed pieces (bad IP, port, CIDR...). */
  readonly skipped: number;
}

interface FamilyState {
  readonly contributions: Map<string, Contribution>;
  /** destination key → claimant ids, sorted; the first one wins. */
  readonly claims: Map<string, string[]>;
  /** Reference counts of elements in SHARED_SETS. */
  readonly shared: Map<SetName, Map<string, number>>;
  /** group chain → number of contributions referencing it. */
  readonly groups: Map<string, number>;
  /**
   * Group chains present in the kernel. They are only ever created by a full sync: nft 1.0.6
   * cannot add a rule using the endpoint maps in a later transaction ("conflicting protocols
   * specified: ip vs. th" when it reloads the maps' typeof), so a full sync pre-creates
   * counts 1..PRECREATED_GROUPS of every kind, and an incremental sync that needs a count
   * beyond those is upgraded to full.
   */
  readonly groupChains: Set<string>;
  /** The `size` each hash set was declared with by the last full sync (RenderOptions.sizeHintMin). */
  readonly sizes: Map<SetName, number>;
  /** Elements in each of those sets: an incremental sync that would pass a size becomes full. */
  readonly counts: Map<SetName, number>;
}

/** What the backend last applied successfully (kept in memory, never read from the kernel). */
export interface NftablesState {
  /** Node-level settings the fixed chains depend on; a change forces a full sync. */
  readonly fingerprint: string;
  readonly families: ReadonlyMap<IPFamily, FamilyState>;
}

export interface RenderStats {
  readonly servicePorts: number;
  readonly touched: number;
  readonly elementsAdded: number;
  readonly elementsDeleted: number;
  readonly chainsAdded: number;
  readonly chainsDeleted: number;
  readonly skipped: number;
}

export interface RenderPlan {
  /** The script for one `nft -f -`; '' when nothing changed. */
  readonly script: string;
  readonly full: boolean;
  /**
   * The state to keep once the script was applied. Call only after the kernel accepted the
   * script: for an incremental plan it updates `lastApplied`'s maps in place (cheap).
   */
  commit(): NftablesState;
  readonly stats: RenderStats;
}

const DEFAULT_MASQ_BIT = 14;
/**
 * Hairpin detection without an element per endpoint: for every new DNATed connection the
 * masquerading chain first puts `daddr . daddr` into the dynamic `hairpin` set, then looks up
 * `saddr . daddr`. Every element has two equal halves, so the lookup matches exactly when the
 * source is the endpoint chosen: a pod reaching itself through a Service. An element needs to
 * live only between those two rules; the timeout keeps the set to the endpoints that got new
 * connections in the last few seconds, far below HAIRPIN_SIZE (when the set is full, `update`
 * fails and hairpin traffic to an endpoint not already in it would go unmasqueraded).
 */
const HAIRPIN_TIMEOUT = '5s';
const HAIRPIN_SIZE = 65536;
/** Endpoint counts whose group chains every full sync creates, for every kind. */
export const PRECREATED_GROUPS = 64;
const GROUP_KINDS: readonly GroupKind[] = ['ip', 'ipm', 'np', 'npm', 'sc', 'scnp'];

interface FamilyConfig {
  readonly family: IPFamily;
  /** `ip` or `ip6` */
  readonly p: 'ip' | 'ip6';
  readonly addrType: 'ipv4_addr' | 'ipv6_addr';
  readonly table: string;
  readonly clusterCIDRs: readonly string[];
  /**
   * Matches for traffic from this node's pods and for the rest (kube-proxy's
   * LocalTrafficDetector): by source in `cluster-cidrs`, or by input interface name
   * (`--detect-local-mode` BridgeInterface / InterfaceNamePrefix). Undefined: none known.
   */
  readonly local?: { readonly is: string; readonly isNot: string };
  readonly nodePorts: { readonly enabled: boolean; readonly cidrs?: readonly string[] };
  readonly masqueradeAll: boolean;
  readonly markHex: string;
}

function familyConfigs(snapshot: Snapshot, options: RenderOptions): FamilyConfig[] {
  const bit = options.masqueradeBit ?? DEFAULT_MASQ_BIT;
  const markHex = `0x${(2 ** (Number.isInteger(bit) && bit >= 0 && bit <= 31 ? bit : DEFAULT_MASQ_BIT)).toString(16)}`;
  const families = [...new Set(snapshot.families)].filter((f) => f === 'IPv4' || f === 'IPv6').sort();
  return families.map((family) => {
    const npa = snapshot.nodePortAddresses?.[family];
    const nodePorts =
      npa?.kind === 'cidrs'
        ? (() => {
            const cidrs = normalizeCIDRs(family, npa.cidrs ?? []).cidrs;
            return { enabled: cidrs.length > 0, cidrs };
          })()
        : { enabled: true };
    const p = nftFamily(family);
    const clusterCIDRs = normalizeCIDRs(family, snapshot.clusterCIDRs?.[family] ?? []).cidrs;
    const iface = snapshot.localInterface;
    const ifname =
      iface && validInterfaceName(iface.name) ? `"${iface.name}${iface.prefix ? '*' : ''}"` : undefined;
    const local = ifname
      ? { is: `iifname ${ifname}`, isNot: `iifname != ${ifname}` }
      : clusterCIDRs.length > 0
        ? { is: `${p} saddr @${SETS.clusterCIDRs}`, isNot: `${p} saddr != @${SETS.clusterCIDRs}` }
        : undefined;
    return {
      family,
      p,
      addrType: family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr',
      table: tableRef(family),
      clusterCIDRs,
      ...(local ? { local } : {}),
      nodePorts,
      masqueradeAll: snapshot.masqueradeAll === true,
      markHex,
    } as const;
  });
}

function fingerprintOf(configs: readonly FamilyConfig[]): string {
  return JSON.stringify(configs);
}

// ---------------------------------------------------------------------------------------------
// Contributions: one Service port → elements, claims, chains

function proto(p: ServicePortPlan): string {
  return p.protocol.toLowerCase();
}

/** Valid endpoints in canonical spelling; the snapshot's own array when nothing needed fixing. */
function endpointsOf(
  cfg: FamilyConfig,
  list: readonly EndpointPlan[] | undefined,
): { eps: readonly EndpointPlan[]; bad: number } {
  if (list === undefined) return { eps: [], bad: 0 };
  // nearly always every endpoint is valid and canonical: then the list itself, nothing allocated
  let clean = true;
  for (const e of list) {
    if (!e || !validPort(e.port) || canonicalIP(cfg.family, e.ip) !== e.ip) {
      clean = false;
      break;
    }
  }
  if (clean) return { eps: list, bad: 0 };
  const eps: EndpointPlan[] = [];
  let bad = 0;
  for (const e of list) {
    const ip = e ? canonicalIP(cfg.family, e.ip) : undefined;
    if (ip !== undefined && validPort(e.port)) {
      eps.push(ip === e.ip ? e : { ...e, ip });
    } else bad++;
  }
  return { eps, bad };
}

function dnatTarget(cfg: FamilyConfig, e: EndpointPlan): string {
  return cfg.family === 'IPv4' ? `${e.ip}:${e.port}` : `[${e.ip}]:${e.port}`;
}

function verdictElement(v: TrafficVerdict): string {
  return v === 'drop' ? 'drop' : `goto ${CHAINS.reject}`;
}

function affinityTimeout(p: ServicePortPlan | undefined): number | undefined {
  const t = p?.sessionAffinity?.timeoutSeconds;
  if (t === undefined || typeof t !== 'number' || !Number.isFinite(t)) return undefined;
  return Math.min(Math.max(Math.floor(t), 1), 86400);
}

/** Claims of one port (what it would like to own), in priority order. */
function claimsOf(cfg: FamilyConfig, p: ServicePortPlan): string[] {
  if (!p || p.family !== cfg.family || !validProtocol(p.protocol)) return [];
  const out: string[] = [];
  const pr = proto(p);
  if (validPort(p.port)) {
    const cip = canonicalIP(cfg.family, p.clusterIP);
    if (cip !== undefined) out.push(`D:${cip} . ${pr} . ${p.port}`);
    for (const list of [p.externalIPs, p.loadBalancerIPs]) {
      if (list === undefined) continue;
      for (const raw of list) {
        const ip = canonicalIP(cfg.family, raw);
        if (ip !== undefined) out.push(`D:${ip} . ${pr} . ${p.port}`);
      }
    }
  }
  if (cfg.nodePorts.enabled && validPort(p.nodePort)) out.push(`N:${pr} . ${p.nodePort}`);
  if (out.length <= 1 || (out.length === 2 && out[0] !== out[1])) return out;
  return [...new Set(out)];
}

const NO_RANGES: { readonly cidrs: readonly string[]; readonly invalid: number } = { cidrs: [], invalid: 0 };

// Shared, never written: affinity() runs only when a timeout is set, i.e. with fresh Maps.
const NO_AFFINITY_SETS = new Map<string, string>();
const NO_AFFINITY_CHAINS = new Map<string, string[]>();

function contribute(cfg: FamilyConfig, p: ServicePortPlan, wins: (claim: string) => boolean): Contribution {
  const elements: (string | undefined)[] = [];
  const el = (set: SetName, key: string, value?: string): void => {
    elements.push(set, key, value);
  };
  const endpointMaps: EndpointMapEntries[] = [];
  const groups = new Set<string>();
  const timeout = affinityTimeout(p);
  // only Service ports with affinity own objects of their own (saves two Maps per port)
  const affinitySets: Map<string, string> = timeout === undefined ? NO_AFFINITY_SETS : new Map();
  const affinityChains: Map<string, string[]> = timeout === undefined ? NO_AFFINITY_CHAINS : new Map();
  let skipped = 0;
  if (!p || p.family !== cfg.family || !validProtocol(p.protocol)) {
    return { claims: [], elements, endpointMaps: [], groups: [], affinitySets, affinityChains, skipped: 1 };
  }
  const claims = claimsOf(cfg, p);
  const pr = proto(p);
  // the lists are often the very same array (Cluster policies): validate each once
  const internal = endpointsOf(cfg, p.internalEndpoints);
  const external =
    p.externalEndpoints === p.internalEndpoints ? internal : endpointsOf(cfg, p.externalEndpoints);
  const shortCircuit =
    p.shortCircuitEndpoints === p.internalEndpoints
      ? internal
      : p.shortCircuitEndpoints === p.externalEndpoints
        ? external
        : endpointsOf(cfg, p.shortCircuitEndpoints);
  skipped +=
    internal.bad +
    (external !== internal ? external.bad : 0) +
    (shortCircuit !== internal && shortCircuit !== external ? shortCircuit.bad : 0);
  const internalVerdict: TrafficVerdict =
    p.internal === 'forward'
      ? internal.eps.length > 0
        ? 'forward'
        : 'reject'
      : p.internal === 'drop'
        ? 'drop'
        : 'reject';
  const externalVerdict: TrafficVerdict =
    p.external === 'forward'
      ? external.eps.length > 0
        ? 'forward'
        : 'reject'
      : p.external === 'drop'
        ? 'drop'
        : 'reject';
  const externalMasq = !p.externalPolicyLocal;
  // destination keys already handled (the ClusterIP's, then external ones): only Service ports
  // with external destinations need the set
  let usedKeys: Set<string> | undefined;
  let clusterKey: string | undefined;

  const affinity = (path: 'int' | 'ext', eps: readonly EndpointPlan[], markFirst: boolean): string => {
    const dispatch = affinityChain(p.id, path, timeout!);
    if (!affinityChains.has(dispatch)) {
      const unique = [...new Map(eps.map((e) => [`${e.ip}|${e.port}`, e])).values()];
      const names = unique.map((e) => affinityEndpoint(dispatch, `${e.ip}|${e.port}|${pr}`));
      unique.forEach((e, i) => {
        const name = names[i]!;
        affinitySets.set(name, `type ${cfg.addrType}; flags dynamic,timeout; timeout ${timeout}s;`);
        affinityChains.set(name, [
          `update @${name} { ${cfg.p} saddr }`,
          `meta l4proto ${pr} dnat ${cfg.p} to ${dnatTarget(cfg, e)}`,
        ]);
      });
      const rules: string[] = [];
      if (markFirst) rules.push(`jump ${CHAINS.markForMasquerade}`);
      for (const name of names) rules.push(`${cfg.p} saddr @${name} goto ${name}`);
      rules.push(
        `numgen random mod ${names.length} vmap { ${names.map((n, i) => `${i} : goto ${n}`).join(', ')} }`,
      );
      affinityChains.set(dispatch, rules);
    }
    return dispatch;
  };

  const forward = (
    mapSet: SetName,
    epSet: SetName,
    key: string,
    eps: readonly EndpointPlan[],
    kind: GroupKind,
    path: 'int' | 'ext',
    markFirst: boolean,
  ): void => {
    if (timeout !== undefined) {
      el(mapSet, key, `goto ${affinity(path, eps, markFirst)}`);
      return;
    }
    const chain = groupChain(kind, eps.length);
    groups.add(chain);
    el(mapSet, key, `goto ${chain}`);
    endpointMaps.push({ set: epSet, key, eps });
  };

  const shortCircuitPath = (mapSet: SetName, epSet: SetName, key: string, kind: GroupKind): void => {
    if (shortCircuit.eps.length === 0) return;
    const chain = groupChain(kind, shortCircuit.eps.length);
    groups.add(chain);
    el(mapSet, key, `goto ${chain}`);
    endpointMaps.push({ set: epSet, key, eps: shortCircuit.eps });
  };

  if (validPort(p.port)) {
    // ClusterIP
    const clusterIP = canonicalIP(cfg.family, p.clusterIP);
    if (clusterIP !== undefined) {
      el(SETS.clusterIPs, clusterIP, undefined);
      const key = `${clusterIP} . ${pr} . ${p.port}`;
      clusterKey = key;
      if (wins(`D:${key}`)) {
        if (internalVerdict === 'forward')
          forward(SETS.serviceIPs, SETS.ipEndpoints, key, internal.eps, 'ip', 'int', false);
        else el(SETS.noEndpointServices, key, verdictElement(internalVerdict));
      }
    } else if (p.clusterIP !== undefined && p.clusterIP !== '' && p.clusterIP !== 'None') {
      skipped++;
    }
    // externalIPs and load-balancer IPs (most Service ports have none: allocate nothing then)
    const externalDestinations =
      (p.externalIPs?.length ?? 0) + (p.loadBalancerIPs?.length ?? 0) > 0
        ? [...(p.externalIPs ?? []), ...(p.loadBalancerIPs ?? [])]
        : [];
    const lbSet =
      externalDestinations.length > 0
        ? new Set((p.loadBalancerIPs ?? []).map((ip) => canonicalIP(cfg.family, ip)))
        : undefined;
    const ranges =
      (p.loadBalancerSourceRanges?.length ?? 0) > 0
        ? normalizeCIDRs(cfg.family, p.loadBalancerSourceRanges!)
        : NO_RANGES;
    skipped += ranges.invalid;
    for (const raw of externalDestinations) {
      const ip = canonicalIP(cfg.family, raw);
      if (ip === undefined) {
        skipped++;
        continue;
      }
      const key = `${ip} . ${pr} . ${p.port}`;
      usedKeys ??= new Set(clusterKey === undefined ? [] : [clusterKey]);
      if (usedKeys.has(key)) continue;
      usedKeys.add(key);
      if (!wins(`D:${key}`)) continue;
      if (externalVerdict === 'forward') {
        forward(
          SETS.serviceIPs,
          SETS.ipEndpoints,
          key,
          external.eps,
          externalMasq ? 'ipm' : 'ip',
          'ext',
          externalMasq,
        );
      } else {
        el(SETS.noEndpointServices, key, verdictElement(externalVerdict));
      }
      shortCircuitPath(SETS.shortCircuitIPs, SETS.shortCircuitIPEndpoints, key, 'sc');
      if (lbSet?.has(ip) === true && ranges.cidrs.length > 0) {
        el(SETS.firewallIPs, key, undefined);
        for (const c of ranges.cidrs) el(SETS.firewallAllow, `${key} . ${c}`, undefined);
      }
    }
  } else {
    skipped++;
  }
  // NodePort
  if (p.nodePort !== undefined && !validPort(p.nodePort)) skipped++;
  if (cfg.nodePorts.enabled && validPort(p.nodePort)) {
    const key = `${pr} . ${p.nodePort}`;
    if (wins(`N:${key}`)) {
      if (externalVerdict === 'forward') {
        forward(
          SETS.serviceNodePorts,
          SETS.nodePortEndpoints,
          key,
          external.eps,
          externalMasq ? 'npm' : 'np',
          'ext',
          externalMasq,
        );
      } else {
        el(SETS.noEndpointNodePorts, key, verdictElement(externalVerdict));
      }
      shortCircuitPath(SETS.shortCircuitNodePorts, SETS.shortCircuitNodePortEndpoints, key, 'scnp');
    }
  }
  return { claims, elements, endpointMaps, groups: [...groups], affinitySets, affinityChains, skipped };
}

// ---------------------------------------------------------------------------------------------
// Draft: a copy-on-write view of one family's state

class FamilyDraft {
  readonly contributions = new Map<string, Contribution | undefined>();
  readonly claims = new Map<string, string[]>();
  readonly shared = new Map<SetName, Map<string, number>>();
  readonly groups = new Map<string, number>();

  /** `direct`: the base is empty and the overlay becomes the new state as is (full syncs). */
  constructor(
    readonly base: FamilyState,
    private readonly direct = false,
  ) {}

  claimants(key: string): string[] {
    return this.claims.get(key) ?? this.base.claims.get(key) ?? [];
  }

  baseRefs(set: SetName, key: string): number {
    return this.direct ? 0 : (this.base.shared.get(set)?.get(key) ?? 0);
  }

  refs(set: SetName, key: string): number {
    const m = this.shared.get(set);
    const v = m?.get(key);
    return v !== undefined ? v : this.baseRefs(set, key);
  }

  private bump(set: SetName, key: string, by: number): void {
    let m = this.shared.get(set);
    if (m === undefined) {
      m = new Map();
      this.shared.set(set, m);
    }
    const v = m.get(key);
    m.set(key, (v !== undefined ? v : this.baseRefs(set, key)) + by);
  }

  groupRefs(name: string): number {
    return this.groups.get(name) ?? this.base.groups.get(name) ?? 0;
  }

  /** Update claims of `id` from `before` to `after`; returns ids whose winning changed. */
  reclaim(id: string, before: readonly string[], after: readonly string[]): Set<string> {
    const affected = new Set<string>();
    for (const key of before) {
      if (after.includes(key)) continue;
      const old = this.claimants(key);
      const list = old.filter((x) => x !== id);
      this.claims.set(key, list);
      if (old[0] === id && list[0] !== undefined) affected.add(list[0]);
    }
    for (const key of after) {
      if (before.includes(key)) continue;
      const old = this.claimants(key);
      if (old.includes(id)) continue;
      const list = old.length === 0 ? [id] : [...old, id].sort();
      this.claims.set(key, list);
      if (old[0] !== undefined && list[0] === id) affected.add(old[0]);
    }
    return affected;
  }

  remove(c: Contribution): void {
    const e = c.elements;
    for (let i = 0; i < e.length; i += 3) {
      const set = e[i] as SetName;
      if (SHARED_SETS.has(set)) this.bump(set, e[i + 1]!, -1);
    }
    for (const g of c.groups) this.groups.set(g, this.groupRefs(g) - 1);
  }

  add(c: Contribution): void {
    const e = c.elements;
    for (let i = 0; i < e.length; i += 3) {
      const set = e[i] as SetName;
      if (SHARED_SETS.has(set)) this.bump(set, e[i + 1]!, 1);
    }
    for (const g of c.groups) this.groups.set(g, this.groupRefs(g) + 1);
  }

  /**
   * The committed state. A full (direct) draft returns its own maps; an incremental one
   * writes its changes INTO the base maps (the caller owns them and commits only after the
   * kernel accepted the script), so a small change costs a small commit.
   */
  commit(): FamilyState {
    if (this.direct) {
      // a full render's draft started empty: its own maps become the state (nothing copied),
      // once entries that mean "absent" are dropped
      for (const [id, c] of this.contributions) if (!c) this.contributions.delete(id);
      for (const [k, list] of this.claims) if (list.length === 0) this.claims.delete(k);
      for (const m of this.shared.values()) for (const [key, n] of m) if (n <= 0) m.delete(key);
      for (const [g, n] of this.groups) if (n <= 0) this.groups.delete(g);
      return {
        ...emptyFamilyState(),
        contributions: this.contributions as Map<string, Contribution>,
        claims: this.claims,
        shared: this.shared,
        groups: this.groups,
      };
    }
    const target: FamilyState = this.base;
    for (const [id, c] of this.contributions) {
      if (c) target.contributions.set(id, c);
      else target.contributions.delete(id);
    }
    for (const [k, list] of this.claims) {
      if (list.length > 0) target.claims.set(k, list);
      else target.claims.delete(k);
    }
    for (const [set, overlay] of this.shared) {
      let m = target.shared.get(set);
      if (m === undefined) {
        m = new Map();
        target.shared.set(set, m);
      }
      for (const [key, n] of overlay) {
        if (n > 0) m.set(key, n);
        else m.delete(key);
      }
    }
    for (const [g, n] of this.groups) {
      if (n > 0) target.groups.set(g, n);
      else target.groups.delete(g);
    }
    return target;
  }
}

function emptyFamilyState(): FamilyState {
  return {
    contributions: new Map(),
    claims: new Map(),
    shared: new Map(),
    groups: new Map(),
    groupChains: new Set(),
    sizes: new Map(),
    counts: new Map(),
  };
}

// ---------------------------------------------------------------------------------------------
// Script text

function groupRules(cfg: FamilyConfig, name: string): string[] {
  const { kind, count: n } = parseGroupChain(name)!;
  const p = cfg.p;
  const rules: string[] = [];
  if (kind === 'ipm' || kind === 'npm') {
    // the unmarked chain of the same count does the DNAT: each rule that uses an endpoint map
    // is a binding the kernel checks every element of that map against (docs/benchmarks.md)
    return [`jump ${CHAINS.markForMasquerade}`, `goto ${groupChain(kind === 'ipm' ? 'ip' : 'np', n)}`];
  }
  if (kind === 'sc' || kind === 'scnp') {
    rules.push(`fib saddr type local jump ${CHAINS.markForMasquerade}`);
    if (cfg.masqueradeAll) rules.push(`jump ${CHAINS.markForMasquerade}`);
  }
  const byIP = kind === 'ip' || kind === 'sc';
  const map =
    kind === 'sc'
      ? SETS.shortCircuitIPEndpoints
      : kind === 'scnp'
        ? SETS.shortCircuitNodePortEndpoints
        : byIP
          ? SETS.ipEndpoints
          : SETS.nodePortEndpoints;
  const key = byIP ? `${p} daddr . meta l4proto . th dport` : 'meta l4proto . th dport';
  rules.push(`dnat ${p} to ${key} . numgen random mod ${n} map @${map}`);
  return rules;
}

function loopback(cfg: FamilyConfig): string {
  return cfg.family === 'IPv4' ? '127.0.0.0/8' : '::1';
}

function nodePortCondition(cfg: FamilyConfig): string {
  const base = `fib daddr type local ${cfg.p} daddr != ${loopback(cfg)}`;
  return cfg.nodePorts.cidrs ? `${base} ${cfg.p} daddr @${SETS.nodePortAddresses}` : base;
}

function setDeclarations(cfg: FamilyConfig, sizes: ReadonlyMap<SetName, number> = new Map()): string[] {
  const a = cfg.addrType;
  const p = cfg.p;
  const dest = `${a} . inet_proto . inet_service`;
  // (`th dport` here is why group chains are created by full syncs only: see FamilyState.groupChains;
  // `tcp dport` would avoid that nft bug but makes nft add a `meta l4proto tcp` match to the rule)
  const epValue = `${p} daddr . th dport`;
  const decl: string[] = [
    `set ${SETS.clusterIPs} { type ${a}; }`,
    `set ${SETS.clusterCIDRs} { type ${a}; flags interval; auto-merge;${
      cfg.clusterCIDRs.length ? ` elements = { ${cfg.clusterCIDRs.join(', ')} };` : ''
    } }`,
    `set ${SETS.nodePortAddresses} { type ${a}; flags interval; auto-merge;${
      cfg.nodePorts.cidrs?.length ? ` elements = { ${cfg.nodePorts.cidrs.join(', ')} };` : ''
    } }`,
    `map ${SETS.serviceIPs} { type ${dest} : verdict; }`,
    `map ${SETS.serviceNodePorts} { type inet_proto . inet_service : verdict; }`,
    `map ${SETS.shortCircuitIPs} { type ${dest} : verdict; }`,
    `map ${SETS.shortCircuitNodePorts} { type inet_proto . inet_service : verdict; }`,
    `map ${SETS.ipEndpoints} { typeof ${p} daddr . meta l4proto . th dport . numgen random mod 1 : ${epValue}; }`,
    `map ${SETS.nodePortEndpoints} { typeof meta l4proto . th dport . numgen random mod 1 : ${epValue}; }`,
    `map ${SETS.shortCircuitIPEndpoints} { typeof ${p} daddr . meta l4proto . th dport . numgen random mod 1 : ${epValue}; }`,
    `map ${SETS.shortCircuitNodePortEndpoints} { typeof meta l4proto . th dport . numgen random mod 1 : ${epValue}; }`,
    `map ${SETS.noEndpointServices} { type ${dest} : verdict; }`,
    `map ${SETS.noEndpointNodePorts} { type inet_proto . inet_service : verdict; }`,
    `set ${SETS.firewallIPs} { type ${dest}; }`,
    `set ${SETS.firewallAllow} { type ${dest} . ${a}; flags interval; }`,
    // filled by the packet path (masquerading chain), never by a sync: see HAIRPIN_TIMEOUT
    `set ${SETS.hairpin} { type ${a} . ${a}; flags dynamic,timeout; timeout ${HAIRPIN_TIMEOUT}; size ${HAIRPIN_SIZE}; }`,
  ];
  if (sizes.size === 0) return decl;
  return decl.map((d) => {
    const size = sizes.get(d.split(' ', 2)[1] as SetName);
    return size === undefined ? d : `${d.slice(0, -2)} size ${size}; }`;
  });
}

/** Fixed chains in dependency order (callees before callers), with their rules. */
function fixedChains(cfg: FamilyConfig): [string, string | undefined, string[]][] {
  const p = cfg.p;
  const dest = `${p} daddr . meta l4proto . th dport`;
  const local = cfg.local;
  const np = nodePortCondition(cfg);
  const services: string[] = [];
  if (cfg.masqueradeAll) services.push(`${p} daddr @${SETS.clusterIPs} jump ${CHAINS.markForMasquerade}`);
  else if (local)
    services.push(`${local.isNot} ${p} daddr @${SETS.clusterIPs} jump ${CHAINS.markForMasquerade}`);
  if (local) services.push(`${local.is} ${dest} vmap @${SETS.shortCircuitIPs}`);
  services.push(`fib saddr type local ${dest} vmap @${SETS.shortCircuitIPs}`);
  services.push(`${dest} vmap @${SETS.serviceIPs}`);
  if (cfg.nodePorts.enabled) {
    if (local) services.push(`${np} ${local.is} meta l4proto . th dport vmap @${SETS.shortCircuitNodePorts}`);
    services.push(`${np} fib saddr type local meta l4proto . th dport vmap @${SETS.shortCircuitNodePorts}`);
    services.push(`${np} meta l4proto . th dport vmap @${SETS.serviceNodePorts}`);
  }
  const m = cfg.markHex;
  return [
    [CHAINS.markForMasquerade, undefined, [`meta mark set meta mark | ${m}`]],
    [CHAINS.reject, undefined, ['meta l4proto tcp reject with tcp reset', 'reject']],
    [
      CHAINS.masquerading,
      undefined,
      [
        `ct status dnat update @${SETS.hairpin} { ${p} daddr . ${p} daddr }`,
        `ct status dnat ${p} saddr . ${p} daddr @${SETS.hairpin} jump ${CHAINS.markForMasquerade}`,
        `meta mark & ${m} == 0 return`,
        `meta mark set meta mark ^ ${m}`,
        'masquerade fully-random',
      ],
    ],
    [CHAINS.services, undefined, services],
    [
      CHAINS.firewallCheck,
      undefined,
      [`${dest} @${SETS.firewallIPs} ${dest} . ${p} saddr != @${SETS.firewallAllow} drop`],
    ],
    [CHAINS.serviceEndpointsCheck, undefined, [`${dest} vmap @${SETS.noEndpointServices}`]],
    [
      CHAINS.nodePortEndpointsCheck,
      undefined,
      cfg.nodePorts.enabled ? [`${np} meta l4proto . th dport vmap @${SETS.noEndpointNodePorts}`] : [],
    ],
    [CHAINS.clusterIPsCheck, undefined, [`${p} daddr @${SETS.clusterIPs} goto ${CHAINS.reject}`]],
    [
      CHAINS.natPrerouting,
      'type nat hook prerouting priority dstnat; policy accept;',
      [`jump ${CHAINS.services}`],
    ],
    [CHAINS.natOutput, 'type nat hook output priority -100; policy accept;', [`jump ${CHAINS.services}`]],
    [
      CHAINS.natPostrouting,
      'type nat hook postrouting priority srcnat; policy accept;',
      [`jump ${CHAINS.masquerading}`],
    ],
    [
      CHAINS.filterPrerouting,
      'type filter hook prerouting priority dstnat - 10; policy accept;',
      [`ct state new jump ${CHAINS.firewallCheck}`],
    ],
    [
      CHAINS.filterInput,
      'type filter hook input priority -110; policy accept;',
      [
        `ct state new jump ${CHAINS.nodePortEndpointsCheck}`,
        `ct state new jump ${CHAINS.serviceEndpointsCheck}`,
      ],
    ],
    [
      CHAINS.filterForward,
      'type filter hook forward priority -110; policy accept;',
      [`ct state new jump ${CHAINS.serviceEndpointsCheck}`, `ct state new jump ${CHAINS.clusterIPsCheck}`],
    ],
    [
      CHAINS.filterOutput,
      'type filter hook output priority -110; policy accept;',
      [`ct state new jump ${CHAINS.serviceEndpointsCheck}`, `ct state new jump ${CHAINS.firewallCheck}`],
    ],
    [
      CHAINS.filterOutputPostDnat,
      'type filter hook output priority -90; policy accept;',
      [`ct state new jump ${CHAINS.clusterIPsCheck}`],
    ],
  ];
}

function chainBlock(name: string, hook: string | undefined, rules: readonly string[]): string {
  const body = [...(hook ? [hook] : []), ...rules].map((r) => `\t\t${r}`).join('\n');
  return `\tchain ${name} {\n${body}\n\t}`;
}

function elementText(key: string, value: string | undefined): string {
  return value === undefined ? key : `${key} : ${value}`;
}

function elementStatements(
  verb: 'add' | 'delete',
  table: string,
  bySet: ReadonlyMap<SetName, readonly string[]>,
  perStatement: number,
): string[] {
  const out: string[] = [];
  for (const [set, items] of bySet) {
    for (let i = 0; i < items.length; i += perStatement) {
      out.push(`${verb} element ${table} ${set} { ${items.slice(i, i + perStatement).join(', ')} }`);
    }
  }
  return out;
}

/** Set order for element statements: maps referencing chains last is irrelevant, keep stable. */
const SET_ORDER: readonly SetName[] = Object.values(SETS);

// ---------------------------------------------------------------------------------------------
// Planning

interface FamilyResult {
  readonly lines: string[];
  readonly commit: () => FamilyState;
  elementsAdded: number;
  elementsDeleted: number;
  chainsAdded: number;
  chainsDeleted: number;
  skipped: number;
  touched: number;
}

function idsOfFamily(snapshot: Snapshot, family: IPFamily): string[] {
  const ids: string[] = [];
  for (const [id, p] of snapshot.servicePorts) if (p?.family === family) ids.push(id);
  return ids.sort();
}

/** Applies contributions of `touched` ids to a draft; returns the draft and the old/new contributions. */
function applyTouched(
  cfg: FamilyConfig,
  snapshot: Snapshot,
  base: FamilyState,
  touched: Iterable<string>,
  direct: boolean,
): {
  draft: FamilyDraft;
  changes: Map<string, { before?: Contribution; after?: Contribution }>;
  skipped: number;
} {
  const draft = new FamilyDraft(base, direct);
  const planOf = (id: string): ServicePortPlan | undefined => {
    const p = snapshot.servicePorts.get(id);
    return p && p.family === cfg.family ? p : undefined;
  };
  // phase 1: claims
  const all = new Set<string>();
  const queue = [...touched];
  for (const id of queue) {
    if (all.has(id)) continue;
    all.add(id);
    const before = base.contributions.get(id)?.claims ?? [];
    const plan = planOf(id);
    const after = plan ? claimsOf(cfg, plan) : [];
    for (const other of draft.reclaim(id, before, after)) if (!all.has(other)) queue.push(other);
  }
  // phase 2: contributions
  const changes = new Map<string, { before?: Contribution; after?: Contribution }>();
  let skipped = 0;
  for (const id of all) {
    const before = base.contributions.get(id);
    const plan = planOf(id);
    const after = plan ? contribute(cfg, plan, (claim) => draft.claimants(claim)[0] === id) : undefined;
    if (after) skipped += after.skipped;
    if (before) draft.remove(before);
    if (after) draft.add(after);
    draft.contributions.set(id, after);
    changes.set(id, { before, after });
  }
  return { draft, changes, skipped };
}

function renderFullFamily(
  cfg: FamilyConfig,
  snapshot: Snapshot,
  perStatement: number,
  sizeHintMin: number,
): FamilyResult {
  const { draft, changes, skipped } = applyTouched(
    cfg,
    snapshot,
    emptyFamilyState(),
    idsOfFamily(snapshot, cfg.family),
    true,
  );
  const state = draft.commit();
  // element statements are built chunk by chunk (no list of every element text at 10k Services)
  const statements = new Map<SetName, string[]>(SET_ORDER.map((set) => [set, []]));
  const pending = new Map<SetName, string[]>(SET_ORDER.map((set) => [set, []]));
  const counts = new Map<SetName, number>();
  let added = 0;
  const flush = (set: SetName): void => {
    const items = pending.get(set)!;
    if (items.length === 0) return;
    statements.get(set)!.push(`add element ${cfg.table} ${set} { ${items.join(', ')} }`);
    items.length = 0;
  };
  const emit = (set: SetName, text: string): void => {
    const items = pending.get(set)!;
    items.push(text);
    added++;
    counts.set(set, (counts.get(set) ?? 0) + 1);
    if (items.length >= perStatement) flush(set);
  };
  for (const { after } of changes.values()) {
    if (after) forEachUniqueElement(after, (set, key, value) => emit(set, elementText(key, value)));
  }
  for (const set of SHARED_SETS) for (const k of state.shared.get(set)?.keys() ?? []) emit(set, k);
  const sizes = state.sizes;
  for (const [set, n] of counts) {
    const size = SIZED_SETS.has(set) ? sizeHint(n, sizeHintMin) : undefined;
    if (size === undefined) continue;
    sizes.set(set, size);
    state.counts.set(set, n);
  }

  const lines: string[] = [`add table ${cfg.table}`, `delete table ${cfg.table}`];
  const blocks: string[] = setDeclarations(cfg, sizes).map((d) => `\t${d}`);
  let chains = 0;
  // affinity objects
  const affSets: string[] = [];
  const affChains: string[] = [];
  for (const { after } of changes.values()) {
    if (!after) continue;
    for (const [name, body] of after.affinitySets) affSets.push(`\tset ${name} { ${body} }`);
    for (const [name, rules] of after.affinityChains) {
      affChains.push(chainBlock(name, undefined, rules));
      chains++;
    }
  }
  for (const item of affSets) blocks.push(item);
  const fixed = fixedChains(cfg);
  for (const item of fixed.slice(0, 2).map(([n, h, r]) => chainBlock(n, h, r))) blocks.push(item);
  for (const kind of GROUP_KINDS) {
    for (let n = 1; n <= PRECREATED_GROUPS; n++) state.groupChains.add(groupChain(kind, n));
  }
  for (const g of state.groups.keys()) {
    const parsed = parseGroupChain(g);
    // `ipm`/`npm` chains jump to their `ip`/`np` sibling (groupRules), declared first
    if (parsed?.kind === 'ipm') state.groupChains.add(groupChain('ip', parsed.count));
    if (parsed?.kind === 'npm') state.groupChains.add(groupChain('np', parsed.count));
    state.groupChains.add(g);
  }
  for (const g of state.groupChains) {
    blocks.push(chainBlock(g, undefined, groupRules(cfg, g)));
    chains++;
  }
  for (const item of affChains) blocks.push(item);
  for (const item of fixed.slice(2).map(([n, h, r]) => chainBlock(n, h, r))) blocks.push(item);
  chains += fixed.length;
  lines.push(`table ${cfg.table} {\n${blocks.join('\n')}\n}`);
  for (const set of SET_ORDER) {
    flush(set);
    for (const item of statements.get(set)!) lines.push(item);
  }
  return {
    lines,
    commit: () => state,
    elementsAdded: added,
    elementsDeleted: 0,
    chainsAdded: chains,
    chainsDeleted: 0,
    skipped,
    touched: changes.size,
  };
}

function renderIncrementalFamily(
  cfg: FamilyConfig,
  snapshot: Snapshot,
  base: FamilyState,
  touched: Iterable<string>,
  perStatement: number,
): FamilyResult | { needsFull: true } {
  const { draft, changes, skipped } = applyTouched(cfg, snapshot, base, touched, false);
  const t = cfg.table;
  const lines: string[] = [];
  let chainsAdded = 0;
  let chainsDeleted = 0;
  // 1. a group chain the kernel does not have yet: only a full sync may create it
  for (const [g, n] of draft.groups) {
    if (n > 0 && !base.groupChains.has(g)) return { needsFull: true };
  }
  // 2. affinity objects: new sets, new/changed chains (endpoint chains come first in the map)
  const goneAffChains: string[] = [];
  const goneAffSets: string[] = [];
  for (const { before, after } of changes.values()) {
    const oldSets = before?.affinitySets ?? new Map<string, string>();
    const newSets = after?.affinitySets ?? new Map<string, string>();
    const oldChains = before?.affinityChains ?? new Map<string, readonly string[]>();
    const newChains = after?.affinityChains ?? new Map<string, readonly string[]>();
    for (const [name, body] of newSets)
      if (oldSets.get(name) !== body) lines.push(`add set ${t} ${name} { ${body} }`);
    for (const [name, rules] of newChains) {
      const old = oldChains.get(name);
      if (old && old.join('\n') === rules.join('\n')) continue;
      if (old) lines.push(`flush chain ${t} ${name}`);
      else {
        lines.push(`add chain ${t} ${name}`);
        chainsAdded++;
      }
      for (const r of rules) lines.push(`add rule ${t} ${name} ${r}`);
    }
    // dispatch chains (they reference endpoint chains) are the last of each map: delete them first
    for (const name of [...oldChains.keys()].reverse()) if (!newChains.has(name)) goneAffChains.push(name);
    for (const [name, body] of oldSets) if (newSets.get(name) !== body) goneAffSets.push(name);
  }
  // 3. elements: deletes then adds
  const dels = new Map<SetName, string[]>();
  const adds = new Map<SetName, string[]>();
  const push = (m: Map<SetName, string[]>, set: SetName, item: string): void => {
    const list = m.get(set);
    if (list) list.push(item);
    else m.set(set, [item]);
  };
  // unique elements: old values from the ports' previous contributions, new from the current
  const oldEls = new Map<string, string | undefined>();
  const newEls = new Map<string, string | undefined>();
  const sharedKeys = new Set<string>();
  const collect = (c: Contribution | undefined, into: Map<string, string | undefined>): void => {
    if (!c) return;
    const e = c.elements;
    for (let i = 0; i < e.length; i += 3) {
      if (SHARED_SETS.has(e[i] as SetName)) sharedKeys.add(`${e[i]}\u0000${e[i + 1]}`);
    }
    forEachUniqueElement(c, (set, key, value) => into.set(`${set}\u0000${key}`, value));
  };
  for (const { before, after } of changes.values()) {
    collect(before, oldEls);
    collect(after, newEls);
  }
  const split = (k: string): [SetName, string] => {
    const i = k.indexOf('\u0000');
    return [k.slice(0, i) as SetName, k.slice(i + 1)];
  };
  for (const [k, v] of oldEls) {
    if (!newEls.has(k) || newEls.get(k) !== v) push(dels, ...split(k));
  }
  for (const [k, v] of newEls) {
    if (!oldEls.has(k) || oldEls.get(k) !== v) {
      const [set, key] = split(k);
      push(adds, set, elementText(key, v));
    }
  }
  for (const k of sharedKeys) {
    const [set, key] = split(k);
    const was = draft.baseRefs(set, key) > 0;
    const now = draft.refs(set, key) > 0;
    if (was && !now) push(dels, set, key);
    if (!was && now) push(adds, set, key);
  }
  const ordered = (m: Map<SetName, string[]>): Map<SetName, string[]> =>
    new Map(SET_ORDER.filter((s) => m.has(s)).map((s) => [s, m.get(s)!]));
  for (const item of elementStatements('delete', t, ordered(dels), perStatement)) lines.push(item);
  for (const item of elementStatements('add', t, ordered(adds), perStatement)) lines.push(item);
  // 4. stale affinity chains and sets, 5. unused group chains
  for (const name of goneAffChains) {
    lines.push(`delete chain ${t} ${name}`);
    chainsDeleted++;
  }
  for (const name of goneAffSets) lines.push(`delete set ${t} ${name}`);
  let elementsAdded = 0;
  let elementsDeleted = 0;
  for (const l of adds.values()) elementsAdded += l.length;
  for (const l of dels.values()) elementsDeleted += l.length;
  // a set declared with a size must not pass it (the kernel would refuse the transaction)
  const counts = new Map<SetName, number>();
  for (const [set, size] of base.sizes) {
    const n = (base.counts.get(set) ?? 0) + (adds.get(set)?.length ?? 0) - (dels.get(set)?.length ?? 0);
    if (n > size) return { needsFull: true };
    counts.set(set, n);
  }
  return {
    lines,
    commit: () => {
      const state = draft.commit();
      for (const [set, n] of counts) state.counts.set(set, n);
      return state;
    },
    elementsAdded,
    elementsDeleted,
    chainsAdded,
    chainsDeleted,
    skipped,
    touched: changes.size,
  };
}

/**
 * Plans one sync. Full when `delta.full`, when nothing was applied yet, or when a node-level
 * setting changed (families, cluster CIDRs, NodePort addresses, masquerade settings).
 */
export function planSync(
  snapshot: Snapshot,
  delta: SnapshotDelta,
  lastApplied: NftablesState | undefined,
  options: RenderOptions = {},
): RenderPlan {
  const configs = familyConfigs(snapshot, options);
  const fingerprint = fingerprintOf(configs);
  const perStatement = Math.max(1, options.elementsPerStatement ?? 1000);
  let full = delta.full || lastApplied === undefined || lastApplied.fingerprint !== fingerprint;
  let results: FamilyResult[] = [];
  const lines: string[] = [];
  if (!full) {
    const touched = [...new Set([...delta.changed, ...delta.removed])].sort();
    for (const cfg of configs) {
      const base = lastApplied!.families.get(cfg.family) ?? emptyFamilyState();
      const r = renderIncrementalFamily(cfg, snapshot, base, touched, perStatement);
      if ('needsFull' in r) {
        full = true;
        results = [];
        break;
      }
      results.push(r);
    }
  }
  if (full) {
    for (const cfg of configs) {
      const r = renderFullFamily(cfg, snapshot, perStatement, options.sizeHintMin ?? SIZE_HINT_MIN);
      results.push(r);
    }
    // families not programmed any more: remove leftovers (ours only)
    for (const f of ['IPv4', 'IPv6'] as const) {
      if (!configs.some((c) => c.family === f))
        lines.push(`add table ${tableRef(f)}`, `delete table ${tableRef(f)}`);
    }
  }
  for (const r of results) for (const l of r.lines) lines.push(l);
  const sum = (f: (r: FamilyResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  return {
    script: lines.length > 0 ? lines.join('\n') + '\n' : '',
    full,
    commit: (): NftablesState => {
      const families = new Map<IPFamily, FamilyState>();
      configs.forEach((cfg, i) => families.set(cfg.family, results[i]!.commit()));
      return { fingerprint, families };
    },
    stats: {
      servicePorts: snapshot.servicePorts.size,
      touched: sum((r) => r.touched),
      elementsAdded: sum((r) => r.elementsAdded),
      elementsDeleted: sum((r) => r.elementsDeleted),
      chainsAdded: sum((r) => r.chainsAdded),
      chainsDeleted: sum((r) => r.chainsDeleted),
      skipped: sum((r) => r.skipped),
    },
  };
}

/** The nft script for one sync (see `planSync` for the state that goes with it). */
export function render(
  snapshot: Snapshot,
  delta: SnapshotDelta,
  lastApplied: NftablesState | undefined,
  options: RenderOptions = {},
): string {
  return planSync(snapshot, delta, lastApplied, options).script;
}

/** The script that removes everything this backend ever created. */
export function renderCleanup(): string {
  return (['IPv4', 'IPv6'] as const)
    .map((f) => `add table ${tableRef(f)}\ndelete table ${tableRef(f)}\n`)
    .join('');
}
