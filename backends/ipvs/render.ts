/**
 * The IPVS backend's pure middle: Snapshot → desired kernel objects → the text for one
 * `ipset restore -exist`, `ip -batch -`, `ipvsadm --restore` and `iptables-restore --noflush`
 * run each.
 *
 * Layout (kube-proxy's IPVS mode, pkg/proxy/ipvs/proxier.go, under our own names):
 * - every Service IP (ClusterIP, externalIPs, LB ingress IPs) is an address of the dummy
 *   interface `swy-ipvs0` (left DOWN), so the node accepts the traffic and IPVS (LOCAL_IN)
 *   takes it over;
 * - one IPVS virtual server per (IP, protocol, port), plus one per (node address, protocol,
 *   nodePort) for NodePorts; endpoints are real servers in masquerade (NAT) mode, weight 1;
 *   ClientIP affinity is IPVS persistence (`-p timeout`); the scheduler comes from the config;
 * - ipsets classify destinations; a fixed set of iptables rules (render `renderIptables`) marks
 *   for masquerade by class, masquerades hairpin traffic, enforces loadBalancerSourceRanges,
 *   REJECTs Service ports without endpoints, DROPs Local-policy ports without local endpoints and
 *   REJECTs new traffic to a Service IP on a port no Service defines.
 *
 * Incremental syncs: every Service port contributes virtual servers, set entries and addresses;
 * the state keeps the contributions and reference counts, so a partial sync recomputes only
 * the changed ports and emits only the objects whose presence or content changed. A full sync
 * diffs against what the kernel holds (listed by the backend), so it also repairs drift and
 * takes over what an earlier process left.
 *
 * Endpoints that leave a TCP/SCTP virtual server are not cut off: their weight drops to 0 (no
 * new connections) and the backend removes them once IPVS reports no connections (`draining`).
 * UDP real servers are removed at once, as kube-proxy does.
 */
import type {
  EndpointPlan,
  IPFamily,
  PerFamily,
  Protocol,
  LocalInterface,
  ServicePortPlan,
  Snapshot,
  SnapshotDelta,
} from '../../core/model/snapshot.js';
import { validInterfaceName } from '../../core/net/interface-name.js';
import { cidrContains, normalizeIP, parseCIDR, ipFamilyOf } from '../../core/net/ip.js';
import { CHAINS, IPVS_INTERFACE, SET_KINDS, SET_TYPES, setName, type SetKind } from './names.js';

// ------------------------------------------------------------------------- model

export interface RealServer {
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
}

export interface VirtualServer {
  readonly family: IPFamily;
  readonly protocol: Protocol;
  readonly ip: string;
  readonly port: number;
  readonly scheduler: string;
  /** IPVS persistence timeout (ClientIP session affinity). */
  readonly persistenceSeconds?: number;
  /** Keyed by `ip|port`. */
  readonly reals: ReadonlyMap<string, RealServer>;
}

/** What one Service port puts into the kernel. */
export interface Contribution {
  readonly virtualServers: readonly VirtualServer[];
  /** `SETNAME entry`. */
  readonly entries: readonly string[];
  /** Addresses of the dummy interface. */
  readonly addresses: readonly string[];
}

/** What the kernel holds, as listed (full syncs and cleanup). */
export interface KernelState {
  /** Our virtual servers (see `ownVirtualServers`), keyed by vsKey. */
  readonly virtualServers: ReadonlyMap<string, VirtualServer>;
  /** `SETNAME entry` of our sets. */
  readonly entries: ReadonlySet<string>;
  /** Our sets that exist. */
  readonly sets: ReadonlySet<string>;
  /** Addresses of our interface. */
  readonly addresses: ReadonlySet<string>;
  readonly interfaceExists: boolean;
  /** Every other local address of the node (NodePort candidates), per family. */
  readonly localAddresses: PerFamily<readonly string[]>;
}

/** What this process applied last (kept in memory; the base of a partial sync). */
export interface IpvsState {
  readonly families: readonly IPFamily[];
  readonly scheduler: string;
  readonly nodePortIPs: PerFamily<readonly string[]>;
  readonly contributions: ReadonlyMap<string, Contribution>;
  /** vsKey → (service-port id → its version of the virtual server); the first owner wins. */
  readonly vsOwners: ReadonlyMap<string, ReadonlyMap<string, VirtualServer>>;
  /** The virtual servers as applied, including draining real servers (weight 0). */
  readonly virtualServers: ReadonlyMap<string, VirtualServer>;
  /** vsKey → real server keys at weight 0 waiting for their connections to end. */
  readonly draining: ReadonlyMap<string, ReadonlySet<string>>;
  readonly entries: ReadonlyMap<string, number>;
  readonly addresses: ReadonlyMap<string, number>;
  /** Real servers in `virtualServers` (draining ones included). */
  readonly realServers: number;
}

export interface RenderOptions {
  readonly scheduler: string;
  /** Resolved NodePort addresses per family (the backend lists the node's addresses). */
  readonly nodePortIPs: PerFamily<readonly string[]>;
}

export interface IpvsPlan {
  readonly full: boolean;
  /** `ipset restore -exist`: creates (full syncs) and additions; run first. */
  readonly ipsetAdd: string;
  /** `ipset restore -exist`: deletions; run last. */
  readonly ipsetDel: string;
  /** `ip -batch -`: interface addresses to add (before IPVS). */
  readonly addressAdd: string;
  /** `ip -batch -`: interface addresses to remove (after IPVS). */
  readonly addressDel: string;
  /** `ipvsadm --restore`. */
  readonly ipvs: string;
  /**
   * The state after this plan, once the kernel accepted it. Writes this plan's changes into the
   * maps of the state it was planned from (the caller's last state must not be used again).
   */
  readonly commit: () => IpvsState;
  readonly stats: Readonly<Record<string, number>>;
}

// ------------------------------------------------------------------------- helpers

export function vsKey(protocol: Protocol, ip: string, port: number): string {
  return `${protocol}|${ip}|${port}`;
}

export function realKey(ip: string, port: number): string {
  return `${ip}|${port}`;
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function serviceFlag(protocol: Protocol): string {
  return protocol === 'TCP' ? '-t' : protocol === 'UDP' ? '-u' : '--sctp-service';
}

/** `-t 10.96.0.10:80` */
export function serviceSpec(vs: Pick<VirtualServer, 'protocol' | 'ip' | 'port'>): string {
  return `${serviceFlag(vs.protocol)} ${hostPort(vs.ip, vs.port)}`;
}

function proto(protocol: Protocol): string {
  return protocol.toLowerCase();
}

function validPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

function ipOf(family: IPFamily, text: string | undefined): string | undefined {
  if (text === undefined || text === 'None' || text === '') return undefined;
  const ip = normalizeIP(text);
  return ip !== undefined && ipFamilyOf(ip) === family ? ip : undefined;
}

/** An ipset `net` member: a host route is written without its /32 or /128, as ipset lists it. */
function netMember(family: IPFamily, cidr: string): string | undefined {
  const parsed = parseCIDR(cidr);
  if (!parsed || parsed.family !== family || parsed.prefixLength === 0) return undefined;
  const text = cidr.includes('/') ? cidr : `${cidr}/${family === 'IPv4' ? 32 : 128}`;
  const [addr, len] = text.split('/');
  const ip = normalizeIP(addr);
  if (ip === undefined) return undefined;
  const full = family === 'IPv4' ? '32' : '128';
  return len === full ? ip : `${ip}/${len}`;
}

const ENTRY_SEP = ' ';

function entry(kind: SetKind, family: IPFamily, member: string): string {
  return `${setName(kind, family)}${ENTRY_SEP}${member}`;
}

// ------------------------------------------------------------------------- desired state

function realsOf(family: IPFamily, endpoints: readonly EndpointPlan[]): Map<string, RealServer> {
  const m = new Map<string, RealServer>();
  for (const e of endpoints) {
    const ip = ipOf(family, e.ip);
    if (ip === undefined || !validPort(e.port)) continue;
    m.set(realKey(ip, e.port), { ip, port: e.port, weight: 1 });
  }
  return m;
}

/**
 * The virtual servers, set entries and addresses of one Service port. Malformed pieces (an
 * address of the wrong family, a bad port) are left out and counted in `skipped`.
 */
export function contributionOf(
  p: ServicePortPlan,
  options: RenderOptions,
): { contribution: Contribution; skipped: number } {
  let skipped = 0;
  const family = p.family;
  const vss: VirtualServer[] = [];
  const entries = new Set<string>();
  const addresses = new Set<string>();
  if (
    !validPort(p.port) ||
    (p.protocol !== 'TCP' && p.protocol !== 'UDP' && p.protocol !== 'SCTP') ||
    (family !== 'IPv4' && family !== 'IPv6')
  ) {
    return { contribution: { virtualServers: [], entries: [], addresses: [] }, skipped: 1 };
  }
  const persistence =
    p.sessionAffinity && p.sessionAffinity.timeoutSeconds > 0
      ? Math.min(p.sessionAffinity.timeoutSeconds, 2678400)
      : undefined;
  const member = (ip: string, port: number): string => `${ip},${proto(p.protocol)}:${port}`;
  const internalReals = realsOf(family, p.internalEndpoints ?? []);
  const externalReals = realsOf(family, p.externalEndpoints ?? []);
  const vs = (ip: string, port: number, reals: Map<string, RealServer>): VirtualServer => ({
    family,
    protocol: p.protocol,
    ip,
    port,
    scheduler: options.scheduler,
    ...(persistence !== undefined ? { persistenceSeconds: persistence } : {}),
    reals,
  });
  const verdict = (v: ServicePortPlan['internal'], m: string): void => {
    if (v === 'reject') entries.add(entry('REJECT', family, m));
    else if (v === 'drop') entries.add(entry('DROP', family, m));
  };

  const clusterIP = ipOf(family, p.clusterIP);
  if (clusterIP !== undefined) {
    vss.push(vs(clusterIP, p.port, internalReals));
    addresses.add(clusterIP);
    entries.add(entry('CLUSTER-IP', family, member(clusterIP, p.port)));
    entries.add(entry('IPS', family, clusterIP));
    verdict(p.internal, member(clusterIP, p.port));
  } else if (p.clusterIP !== 'None' && p.clusterIP !== undefined && p.clusterIP !== '') {
    skipped++;
  }

  for (const raw of p.externalIPs ?? []) {
    const ip = ipOf(family, raw);
    if (ip === undefined) {
      skipped++;
      continue;
    }
    vss.push(vs(ip, p.port, externalReals));
    addresses.add(ip);
    entries.add(
      entry(p.externalPolicyLocal ? 'EXTERNAL-IP-LOCAL' : 'EXTERNAL-IP', family, member(ip, p.port)),
    );
    entries.add(entry('IPS', family, ip));
    verdict(p.external, member(ip, p.port));
  }

  const ranges: string[] = [];
  let openToAll = false;
  for (const r of p.loadBalancerSourceRanges ?? []) {
    const parsed = parseCIDR(r);
    if (parsed && parsed.family === family && parsed.prefixLength === 0) openToAll = true;
    const m = netMember(family, r);
    if (m === undefined) {
      if (!(parsed && parsed.prefixLength === 0)) skipped++;
      continue;
    }
    ranges.push(m);
  }
  for (const raw of p.loadBalancerIPs ?? []) {
    const ip = ipOf(family, raw);
    if (ip === undefined) {
      skipped++;
      continue;
    }
    const m = member(ip, p.port);
    vss.push(vs(ip, p.port, externalReals));
    addresses.add(ip);
    entries.add(entry('LOAD-BALANCER', family, m));
    if (p.externalPolicyLocal) entries.add(entry('LOAD-BALANCER-LOCAL', family, m));
    if (ranges.length > 0 && !openToAll) {
      entries.add(entry('LOAD-BALANCER-FW', family, m));
      for (const r of ranges) entries.add(entry('LOAD-BALANCER-SOURCE-CIDR', family, `${m},${r}`));
    }
    entries.add(entry('IPS', family, ip));
    verdict(p.external, m);
  }

  if (p.nodePort !== undefined) {
    if (!validPort(p.nodePort)) skipped++;
    else {
      for (const ip of options.nodePortIPs[family] ?? []) {
        const m = member(ip, p.nodePort);
        vss.push(vs(ip, p.nodePort, externalReals));
        entries.add(entry(p.externalPolicyLocal ? 'NODE-PORT-LOCAL' : 'NODE-PORT', family, m));
        verdict(p.external, m);
      }
    }
  }

  // hairpin: a local endpoint reaching itself through any of the port's destinations
  for (const e of p.reachableEndpoints ?? []) {
    if (!e.isLocal) continue;
    const ip = ipOf(family, e.ip);
    if (ip === undefined || !validPort(e.port)) continue;
    entries.add(entry('LOOP-BACK', family, `${ip},${proto(p.protocol)}:${e.port},${ip}`));
  }

  return { contribution: { virtualServers: vss, entries: [...entries], addresses: [...addresses] }, skipped };
}

/** NodePort addresses: the node's local addresses that `--nodeport-addresses` selects. */
export function selectNodePortIPs(
  snapshot: Snapshot,
  local: PerFamily<readonly string[]>,
): PerFamily<readonly string[]> {
  const pick = (family: IPFamily): string[] => {
    if (!snapshot.families.includes(family)) return [];
    const spec = snapshot.nodePortAddresses[family];
    const addrs = [...new Set(local[family])].sort();
    if (spec.kind === 'all') return addrs;
    return addrs.filter((a) => spec.cidrs.some((c) => cidrContains(c, a)));
  };
  return { IPv4: pick('IPv4'), IPv6: pick('IPv6') };
}

// ------------------------------------------------------------------------- diff + text

/**
 * A write layer over a map: reads fall through to `base`, writes stay here until `applyTo`.
 * A partial sync thus costs what it touches, never a copy of the whole state.
 */
class Overlay<V> {
  private readonly changes = new Map<string, V | undefined>();
  private sizeDelta = 0;

  constructor(private readonly base: ReadonlyMap<string, V>) {}

  get(k: string): V | undefined {
    return this.changes.has(k) ? this.changes.get(k) : this.base.get(k);
  }

  has(k: string): boolean {
    return this.changes.has(k) ? this.changes.get(k) !== undefined : this.base.has(k);
  }

  set(k: string, v: V): void {
    if (!this.has(k)) this.sizeDelta++;
    this.changes.set(k, v);
  }

  delete(k: string): void {
    if (this.has(k)) this.sizeDelta--;
    this.changes.set(k, undefined);
  }

  get size(): number {
    return this.base.size + this.sizeDelta;
  }

  applyTo(target: Map<string, V>): void {
    for (const [k, v] of this.changes) {
      if (v === undefined) target.delete(k);
      else target.set(k, v);
    }
  }
}

interface Diff {
  ipvs: string[];
  ipsetAdd: string[];
  ipsetDel: string[];
  addrAdd: string[];
  addrDel: string[];
  virtualServers: Overlay<VirtualServer>;
  draining: Overlay<ReadonlySet<string>>;
  /** Real servers added minus removed (draining ones count until removed). */
  realServersDelta: number;
  stats: Record<string, number>;
}

function sameService(a: VirtualServer, b: VirtualServer): boolean {
  return a.scheduler === b.scheduler && a.persistenceSeconds === b.persistenceSeconds;
}

function serviceLine(op: '-A' | '-E', vs: VirtualServer): string {
  return `${op} ${serviceSpec(vs)} -s ${vs.scheduler}${vs.persistenceSeconds !== undefined ? ` -p ${vs.persistenceSeconds}` : ''}`;
}

function realLine(op: '-a' | '-e', vs: VirtualServer, r: RealServer): string {
  return `${op} ${serviceSpec(vs)} -r ${hostPort(r.ip, r.port)} -m -w ${r.weight}`;
}

/** ipvsadm lines to remove real servers (after their connections drained). Pure. */
export function renderRemoveReals(vs: VirtualServer, keys: Iterable<string>): string[] {
  const out: string[] = [];
  for (const k of keys) {
    const r = vs.reals.get(k);
    if (r) out.push(`-d ${serviceSpec(vs)} -r ${hostPort(r.ip, r.port)}`);
  }
  return out;
}

/** Emits the ipvsadm lines turning `before` into `after` for one virtual server. */
function diffVirtualServer(
  key: string,
  before: VirtualServer | undefined,
  after: VirtualServer | undefined,
  d: Diff,
): void {
  const previous = d.virtualServers.get(key);
  d.realServersDelta -= previous?.reals.size ?? 0;
  if (!after) {
    if (before) {
      d.ipvs.push(`-D ${serviceSpec(before)}`);
      d.stats.virtualServersDeleted++;
    }
    d.virtualServers.delete(key);
    d.draining.delete(key);
    return;
  }
  const reals = new Map(after.reals);
  const draining = new Set<string>();
  if (!before) {
    d.ipvs.push(serviceLine('-A', after));
    d.stats.virtualServersAdded++;
    for (const r of after.reals.values()) {
      d.ipvs.push(realLine('-a', after, r));
      d.stats.realServersAdded++;
    }
  } else {
    if (!sameService(before, after)) {
      d.ipvs.push(serviceLine('-E', after));
      d.stats.virtualServersEdited++;
    }
    for (const r of after.reals.values()) {
      const old = before.reals.get(realKey(r.ip, r.port));
      if (!old) {
        d.ipvs.push(realLine('-a', after, r));
        d.stats.realServersAdded++;
      } else if (old.weight !== r.weight) {
        d.ipvs.push(realLine('-e', after, r));
        d.stats.realServersEdited++;
      }
    }
    for (const [k, old] of before.reals) {
      if (after.reals.has(k)) continue;
      if (after.protocol === 'UDP') {
        d.ipvs.push(`-d ${serviceSpec(after)} -r ${hostPort(old.ip, old.port)}`);
        d.stats.realServersDeleted++;
        continue;
      }
      // TCP/SCTP: stop new connections, keep the established ones until they end
      const zero = { ...old, weight: 0 };
      if (old.weight !== 0) {
        d.ipvs.push(realLine('-e', after, zero));
        d.stats.realServersDrained++;
      }
      reals.set(k, zero);
      draining.add(k);
    }
  }
  d.virtualServers.set(key, { ...after, reals });
  d.realServersDelta += reals.size;
  if (draining.size > 0) d.draining.set(key, draining);
  else d.draining.delete(key);
}

function ipBatchAddress(op: 'add' | 'del', ip: string): string {
  const family: IPFamily = ip.includes(':') ? 'IPv6' : 'IPv4';
  const len = family === 'IPv4' ? 32 : 128;
  return `address ${op} ${ip}/${len} dev ${IPVS_INTERFACE}${op === 'add' && family === 'IPv6' ? ' nodad' : ''}`;
}

/** `create` lines for every set of these families (ipset restore -exist keeps existing ones). */
export function renderSetCreates(families: readonly IPFamily[]): string[] {
  const out: string[] = [];
  for (const family of families) {
    for (const kind of SET_KINDS) {
      out.push(
        `create ${setName(kind, family)} ${SET_TYPES[kind]} family ${family === 'IPv4' ? 'inet' : 'inet6'} hashsize 1024 maxelem 1048576`,
      );
    }
  }
  return out;
}

function addRef(m: Overlay<number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function dropRef(m: Overlay<number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

function effective(owners: ReadonlyMap<string, VirtualServer> | undefined): VirtualServer | undefined {
  if (!owners) return undefined;
  for (const v of owners.values()) return v;
  return undefined;
}

function text(lines: readonly string[]): string {
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}

function emptyStats(): Record<string, number> {
  return {
    virtualServersAdded: 0,
    virtualServersEdited: 0,
    virtualServersDeleted: 0,
    realServersAdded: 0,
    realServersEdited: 0,
    realServersDeleted: 0,
    realServersDrained: 0,
    entriesAdded: 0,
    entriesDeleted: 0,
    addressesAdded: 0,
    addressesDeleted: 0,
    servicePortsWritten: 0,
    skipped: 0,
  };
}

/**
 * Plan one sync. Pure until `commit()`.
 * - Full (`kernel` given): everything is recomputed and diffed against the kernel listing.
 * - Partial (`last` given, `kernel` undefined): only `delta.changed` and `delta.removed` are
 *   recomputed and diffed against `last`.
 */
export function planSync(
  snapshot: Snapshot,
  delta: SnapshotDelta,
  last: IpvsState | undefined,
  kernel: KernelState | undefined,
  options: RenderOptions,
): IpvsPlan {
  const full = kernel !== undefined || last === undefined;
  // the maps this plan writes over: the last state's (partial) or fresh ones (full); they are
  // only changed by commit(), after the kernel accepted the plan
  const base: IpvsState = full ? emptyState(snapshot.families, options) : last;
  const d: Diff = {
    ipvs: [],
    ipsetAdd: [],
    ipsetDel: [],
    addrAdd: [],
    addrDel: [],
    virtualServers: new Overlay(base.virtualServers),
    draining: new Overlay(base.draining),
    realServersDelta: 0,
    stats: emptyStats(),
  };
  const families = snapshot.families;
  const contributions = new Overlay(base.contributions);
  const vsOwners = new Overlay(base.vsOwners);
  // the inner owner maps are copied once, when this plan first changes one
  const ownedHere = new Set<string>();
  const ownersForWrite = (k: string): Map<string, VirtualServer> => {
    const current = vsOwners.get(k);
    if (current && ownedHere.has(k)) return current as Map<string, VirtualServer>;
    const copy = new Map(current ?? []);
    vsOwners.set(k, copy);
    ownedHere.add(k);
    return copy;
  };
  const entries = new Overlay(base.entries);
  const addresses = new Overlay(base.addresses);
  const touchedVs = new Set<string>();
  const touchedEntries = new Set<string>();
  const touchedAddresses = new Set<string>();

  const withdraw = (id: string): void => {
    const c = contributions.get(id);
    if (!c) return;
    contributions.delete(id);
    for (const vs of c.virtualServers) {
      const k = vsKey(vs.protocol, vs.ip, vs.port);
      if (vsOwners.get(k)?.has(id)) {
        const owners = ownersForWrite(k);
        owners.delete(id);
        if (owners.size === 0) vsOwners.delete(k);
      }
      touchedVs.add(k);
    }
    for (const e of c.entries) {
      dropRef(entries, e);
      touchedEntries.add(e);
    }
    for (const a of c.addresses) {
      dropRef(addresses, a);
      touchedAddresses.add(a);
    }
  };
  const contribute = (id: string, p: ServicePortPlan): void => {
    if (!families.includes(p.family)) return;
    const { contribution, skipped } = contributionOf(p, options);
    d.stats.skipped += skipped;
    d.stats.servicePortsWritten++;
    contributions.set(id, contribution);
    for (const vs of contribution.virtualServers) {
      const k = vsKey(vs.protocol, vs.ip, vs.port);
      const owners = ownersForWrite(k);
      if (!owners.has(id) && owners.size > 0) d.stats.skipped++; // another port owns it
      owners.set(id, vs);
      touchedVs.add(k);
    }
    for (const e of contribution.entries) {
      addRef(entries, e);
      touchedEntries.add(e);
    }
    for (const a of contribution.addresses) {
      addRef(addresses, a);
      touchedAddresses.add(a);
    }
  };

  if (full) {
    for (const [id, p] of snapshot.servicePorts) contribute(id, p);
  } else {
    for (const id of delta.removed) withdraw(id);
    for (const id of delta.changed) {
      withdraw(id);
      const p = snapshot.servicePorts.get(id);
      if (p) contribute(id, p);
    }
  }

  // ---- virtual servers
  const beforeVs: ReadonlyMap<string, VirtualServer> = kernel
    ? kernel.virtualServers
    : (last?.virtualServers ?? new Map());
  if (kernel) for (const k of kernel.virtualServers.keys()) touchedVs.add(k);
  for (const k of [...touchedVs].sort()) {
    diffVirtualServer(k, beforeVs.get(k), effective(vsOwners.get(k)), d);
  }

  // ---- set entries
  if (full) d.ipsetAdd.push(...renderSetCreates(families));
  const beforeEntries: ReadonlySet<string> | ReadonlyMap<string, number> = kernel
    ? kernel.entries
    : (last?.entries ?? new Map());
  if (kernel) for (const e of kernel.entries) touchedEntries.add(e);
  for (const e of [...touchedEntries].sort()) {
    const was = beforeEntries.has(e);
    const is = entries.has(e);
    if (is && !was) {
      d.ipsetAdd.push(`add ${e}`);
      d.stats.entriesAdded++;
    } else if (was && !is) {
      d.ipsetDel.push(`del ${e}`);
      d.stats.entriesDeleted++;
    }
  }

  // ---- interface addresses
  const beforeAddr: ReadonlySet<string> | ReadonlyMap<string, number> = kernel
    ? kernel.addresses
    : (last?.addresses ?? new Map());
  if (kernel) for (const a of kernel.addresses) touchedAddresses.add(a);
  for (const a of [...touchedAddresses].sort()) {
    const was = beforeAddr.has(a);
    const is = addresses.has(a);
    if (is && !was) {
      d.addrAdd.push(ipBatchAddress('add', a));
      d.stats.addressesAdded++;
    } else if (was && !is) {
      d.addrDel.push(ipBatchAddress('del', a));
      d.stats.addressesDeleted++;
    }
  }

  const realServers = base.realServers + d.realServersDelta;
  let committed: IpvsState | undefined;
  const commit = (): IpvsState => {
    if (committed) return committed;
    const m = <V>(x: ReadonlyMap<string, V>): Map<string, V> => x as Map<string, V>;
    contributions.applyTo(m(base.contributions));
    vsOwners.applyTo(m(base.vsOwners));
    d.virtualServers.applyTo(m(base.virtualServers));
    d.draining.applyTo(m(base.draining));
    entries.applyTo(m(base.entries));
    addresses.applyTo(m(base.addresses));
    committed = {
      ...base,
      families: [...families],
      scheduler: options.scheduler,
      nodePortIPs: options.nodePortIPs,
      realServers,
    };
    return committed;
  };
  return {
    full,
    ipsetAdd: text(d.ipsetAdd),
    ipsetDel: text(d.ipsetDel),
    addressAdd: text(d.addrAdd),
    addressDel: text(d.addrDel),
    ipvs: text(d.ipvs),
    commit,
    stats: {
      ...d.stats,
      virtualServers: d.virtualServers.size,
      realServers,
      entries: entries.size,
      addresses: addresses.size,
    },
  };
}

function emptyState(families: readonly IPFamily[], options: RenderOptions): IpvsState {
  return {
    families: [...families],
    scheduler: options.scheduler,
    nodePortIPs: options.nodePortIPs,
    contributions: new Map(),
    vsOwners: new Map(),
    virtualServers: new Map(),
    draining: new Map(),
    entries: new Map(),
    addresses: new Map(),
    realServers: 0,
  };
}

/**
 * Removes drained real servers from a committed state, in place (the state belongs to the
 * backend that committed it), and returns it.
 */
export function withoutDrained(
  state: IpvsState,
  removed: ReadonlyMap<string, ReadonlySet<string>>,
): IpvsState {
  const virtualServers = state.virtualServers as Map<string, VirtualServer>;
  const draining = state.draining as Map<string, ReadonlySet<string>>;
  let gone = 0;
  for (const [k, keys] of removed) {
    const vs = virtualServers.get(k);
    if (vs) {
      const reals = new Map(vs.reals);
      for (const r of keys) if (reals.delete(r)) gone++;
      virtualServers.set(k, { ...vs, reals });
    }
    const left = new Set([...(draining.get(k) ?? [])].filter((r) => !keys.has(r)));
    if (left.size > 0) draining.set(k, left);
    else draining.delete(k);
  }
  return { ...state, realServers: state.realServers - gone };
}

// ------------------------------------------------------------------------- iptables

export interface IptablesOptions {
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  /** --cluster-cidr of this family (the Snapshot's local CIDRs). */
  readonly clusterCIDRs: readonly string[];
  /** The Snapshot's localInterface (`--detect-local-mode` by interface); replaces clusterCIDRs. */
  readonly localInterface?: LocalInterface;
}

function markHex(bit: number): string {
  return `0x${((1 << bit) >>> 0).toString(16)}`;
}

/** Every chain of a table, in declaration order. */
export const TABLE_CHAINS = {
  nat: [CHAINS.services, CHAINS.masqNonPod, CHAINS.markMasq, CHAINS.postrouting],
  filter: [CHAINS.filter, CHAINS.firewall, CHAINS.forward],
} as const;

/**
 * Our fixed chains for one family, for `iptables-restore --noflush` (declaring a chain flushes
 * it, so the text replaces their content atomically per table). Pure.
 */
export function renderIptables(family: IPFamily, o: IptablesOptions): string {
  const s = (kind: SetKind): string => setName(kind, family);
  const mark = markHex(o.masqueradeBit);
  const match = (kind: SetKind, dirs = 'dst,dst'): string => `-m set --match-set ${s(kind)} ${dirs}`;
  const cidrs = o.clusterCIDRs.filter((c) => parseCIDR(c)?.family === family);
  const nat: string[] = ['*nat', ...TABLE_CHAINS.nat.map((c) => `:${c} - [0:0]`)];
  const C = CHAINS;
  // ClusterIP: masquerade what does not come from a pod (or everything with --masquerade-all)
  if (o.masqueradeAll)
    nat.push(
      `-A ${C.services} ${match('CLUSTER-IP')} -m comment --comment "cluster IP, masquerade all" -j ${C.markMasq}`,
    );
  else if (o.localInterface && validInterfaceName(o.localInterface.name))
    nat.push(
      `-A ${C.services} ${match('CLUSTER-IP')} ! -i ${o.localInterface.name}${o.localInterface.prefix ? '+' : ''} -m comment --comment "cluster IP from outside the pod interfaces" -j ${C.markMasq}`,
    );
  else if (cidrs.length > 0)
    nat.push(
      `-A ${C.services} ${match('CLUSTER-IP')} -m comment --comment "cluster IP from outside the cluster CIDR" -j ${C.masqNonPod}`,
    );
  nat.push(`-A ${C.services} ${match('CLUSTER-IP')} -j RETURN`);
  for (const c of cidrs) nat.push(`-A ${C.masqNonPod} -s ${c} -j RETURN`);
  nat.push(`-A ${C.masqNonPod} -j ${C.markMasq}`);
  // externalIPs, LB IPs, NodePorts: Local policy keeps the client address, Cluster masquerades
  nat.push(`-A ${C.services} ${match('EXTERNAL-IP-LOCAL')} -j RETURN`);
  nat.push(`-A ${C.services} ${match('EXTERNAL-IP')} -m comment --comment "external IP" -j ${C.markMasq}`);
  nat.push(`-A ${C.services} ${match('EXTERNAL-IP')} -j RETURN`);
  nat.push(`-A ${C.services} ${match('LOAD-BALANCER-LOCAL')} -j RETURN`);
  nat.push(
    `-A ${C.services} ${match('LOAD-BALANCER')} -m comment --comment "load balancer IP" -j ${C.markMasq}`,
  );
  nat.push(`-A ${C.services} ${match('LOAD-BALANCER')} -j RETURN`);
  nat.push(`-A ${C.services} ${match('NODE-PORT-LOCAL')} -j RETURN`);
  nat.push(`-A ${C.services} ${match('NODE-PORT')} -m comment --comment "node port" -j ${C.markMasq}`);
  nat.push(`-A ${C.markMasq} -j MARK --set-xmark ${mark}/${mark}`);
  nat.push(
    `-A ${C.postrouting} ${match('LOOP-BACK', 'dst,dst,src')} -m comment --comment "hairpin" -j MASQUERADE`,
  );
  nat.push(`-A ${C.postrouting} -m mark ! --mark ${mark}/${mark} -j RETURN`);
  nat.push(`-A ${C.postrouting} -j MARK --set-xmark 0x0/${mark}`);
  nat.push(
    `-A ${C.postrouting} -m comment --comment "switchyard service traffic requiring SNAT" -j MASQUERADE --random-fully`,
  );
  nat.push('COMMIT');

  const filter: string[] = ['*filter', ...TABLE_CHAINS.filter.map((c) => `:${c} - [0:0]`)];
  filter.push(
    `-A ${C.filter} ${match('LOAD-BALANCER-FW')} -m comment --comment "load balancer source ranges" -j ${C.firewall}`,
  );
  filter.push(
    `-A ${C.filter} -m conntrack --ctstate NEW ${match('DROP')} -m comment --comment "local traffic policy without local endpoints" -j DROP`,
  );
  filter.push(
    `-A ${C.filter} -m conntrack --ctstate NEW ${match('REJECT')} -m comment --comment "service has no endpoints" -j REJECT`,
  );
  for (const kind of ['CLUSTER-IP', 'EXTERNAL-IP', 'EXTERNAL-IP-LOCAL', 'LOAD-BALANCER'] as const) {
    filter.push(`-A ${C.filter} ${match(kind)} -j RETURN`);
  }
  filter.push(
    `-A ${C.filter} -m conntrack --ctstate NEW ${match('IPS', 'dst')} -m comment --comment "no service on this port" -j REJECT`,
  );
  filter.push(`-A ${C.firewall} ${match('LOAD-BALANCER-SOURCE-CIDR', 'dst,dst,src')} -j RETURN`);
  filter.push(`-A ${C.firewall} -m comment --comment "source outside loadBalancerSourceRanges" -j DROP`);
  filter.push(`-A ${C.forward} -m mark --mark ${mark}/${mark} -j ACCEPT`);
  filter.push(`-A ${C.forward} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  filter.push('COMMIT');
  return [...nat, ...filter, ''].join('\n');
}

export interface JumpRule {
  readonly table: 'nat' | 'filter';
  readonly chain: string;
  readonly spec: readonly string[];
}

const jumpComment = (text: string): string[] => ['-m', 'comment', '--comment', text];

/** The only rules in built-in chains: jumps into ours. */
export const JUMPS: readonly JumpRule[] = [
  {
    table: 'nat',
    chain: 'PREROUTING',
    spec: [...jumpComment('switchyard ipvs service portals'), '-j', CHAINS.services],
  },
  {
    table: 'nat',
    chain: 'OUTPUT',
    spec: [...jumpComment('switchyard ipvs service portals'), '-j', CHAINS.services],
  },
  {
    table: 'nat',
    chain: 'POSTROUTING',
    spec: [...jumpComment('switchyard ipvs postrouting rules'), '-j', CHAINS.postrouting],
  },
  {
    table: 'filter',
    chain: 'INPUT',
    spec: [...jumpComment('switchyard ipvs service filter'), '-j', CHAINS.filter],
  },
  {
    table: 'filter',
    chain: 'FORWARD',
    spec: [...jumpComment('switchyard ipvs forwarding rules'), '-j', CHAINS.forward],
  },
];

function jumpLine(op: '-A' | '-I' | '-D', j: JumpRule): string {
  const spec = j.spec.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ');
  return op === '-I' ? `-I ${j.chain} 1 ${spec}` : `${op} ${j.chain} ${spec}`;
}

/** `iptables-save` output → table → lines. */
function tablesOf(save: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table: string[] | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) out.set(line.slice(1).trim(), (table = []));
    else if (table && line !== 'COMMIT' && !line.startsWith('#')) table.push(line);
  }
  return out;
}

function jumpPresent(lines: readonly string[] | undefined, j: JumpRule): boolean {
  const target = j.spec[j.spec.length - 1];
  return (lines ?? []).some(
    (l) => l.startsWith(`-A ${j.chain} `) && l.endsWith(`-j ${target}`) && l.includes('switchyard ipvs'),
  );
}

/**
 * The full-sync iptables input for one family: our chains, plus the jumps that `save` (the
 * family's `iptables-save` output) lacks, inserted at the top of the built-in chains. One
 * `iptables-restore --noflush` run, no per-rule `-C` calls. Pure.
 */
export function renderIptablesSync(family: IPFamily, o: IptablesOptions, save: string): string {
  const tables = tablesOf(save);
  const blocks = renderIptables(family, o).split(/(?=^\*)/m);
  return blocks
    .map((block) => {
      const table = block.slice(1, block.indexOf('\n'));
      const missing = JUMPS.filter((j) => j.table === table && !jumpPresent(tables.get(table), j));
      if (missing.length === 0) return block;
      const inserts = [...missing].reverse().map((j) => jumpLine('-I', j));
      return block.replace(/^COMMIT$/m, [...inserts, 'COMMIT'].join('\n'));
    })
    .join('');
}

/**
 * Cleanup input for one family from its `iptables-save` output: delete every jump into our
 * chains (as saved), then flush and delete our chains. Empty when nothing of ours is there. Pure.
 */
export function renderIptablesCleanup(save: string): string {
  const out: string[] = [];
  for (const [table, lines] of tablesOf(save)) {
    const chains = lines.filter((l) => /^:SYV-\S+ /.test(l)).map((l) => l.slice(1).split(' ')[0]!);
    const builtins = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
    const jumps = lines.filter((l) => {
      const m = /^-A (\S+) .*-j (SYV-\S+)$/.exec(l);
      return m !== null && builtins.has(m[1]!);
    });
    if (chains.length === 0 && jumps.length === 0) continue;
    out.push(
      `*${table}`,
      ...jumps.map((l) => `-D${l.slice(2)}`),
      ...chains.map((c) => `:${c} - [0:0]`),
      ...chains.map((c) => `-X ${c}`),
      'COMMIT',
    );
  }
  return out.length === 0 ? '' : out.join('\n') + '\n';
}
