/**
 * Pure rendering of `iptables-restore --noflush` / `ip6tables-restore --noflush` input for one
 * IP family, in kube-proxy's iptables layout (pkg/proxy/iptables/proxier.go) under switchyard's
 * own `SY-` chains:
 *
 * nat
 *   SY-SERVICES      dispatch: ClusterIP → SY-h-SVC, externalIPs → SY-h-EXT, LB IPs → SY-h-FW or
 *                    SY-h-EXT, last: local destinations (nodePortAddresses) → SY-NODEPORTS
 *   SY-NODEPORTS     dispatch: nodePort → SY-h-EXT
 *   SY-h-SVC         ClusterIP path: masquerade check, then the choice over internalEndpoints
 *                    (`recent` affinity checks first, then `statistic --mode random`)
 *   SY-h-EXT         external path: Cluster policy → mark for masquerade; Local policy → pods and
 *                    the node short-circuit to SY-h-SVX; then the choice over externalEndpoints
 *   SY-h-SVX         the choice over shortCircuitEndpoints
 *   SY-h-FW          loadBalancerSourceRanges: allowed sources → SY-h-EXT; the rest is not
 *                    DNATed and meets the DROP in filter SY-FIREWALL
 *   SY-h-e         one endpoint: hairpin masquerade mark, (`recent --set`), DNAT
 *   SY-MARK-MASQ / SY-POSTROUTING   the mark-and-masquerade pair (bit masqueradeBit)
 *   SY-MASQ-NONPOD   used when the family has several cluster CIDRs
 * filter (all dispatch, rewritten every sync; packets that were DNATed no longer match)
 *   SY-SERVICES           ClusterIP ports whose internal verdict is reject/drop; then one REJECT
 *                         per ClusterIP for every port the Service does not define
 *   SY-EXTERNAL-SERVICES  external destinations whose external verdict is reject/drop
 *   SY-FIREWALL           LB IP:port with source ranges → DROP (what SY-h-FW did not DNAT)
 *   SY-NODEPORTS          ACCEPT healthCheckNodePorts
 *   SY-FORWARD            ACCEPT marked and established forwarded traffic
 *
 * From `dispatchBucketMin` Service ports of the family on, SY-SERVICES (nat and filter) holds
 * one jump per bucket chain SY-SERVICES-00…63, matching the low 6 bits of the destination address
 * (`-d 0.0.0.7/0.0.0.63`), and each bucket holds the rules of the destinations in it; nat
 * SY-NODEPORTS jumps by port range (`--dport 30016:30079`) to SY-NODEPORTS-00…63. A new
 * connection then walks 64 jumps and one bucket instead of a rule per Service port (at 10k
 * Services: ≈ 220 rules instead of 20k across nat and filter).
 *
 * A partial render rewrites the chains of the Service ports in delta.changed / delta.removed,
 * the dispatch / fixed chains whose rules differ from what `last` applied (only those), and
 * deletes (flush + -X) the chains no longer used, computed from `last`, never from a kernel
 * listing.
 */
import { validInterfaceName } from '../../core/net/interface-name.js';
import type {
  EndpointPlan,
  IPFamily,
  ServicePortPlan,
  Snapshot,
  SnapshotDelta,
  TrafficVerdict,
} from '../../core/model/snapshot.js';
import {
  CHAIN_PREFIX,
  CHAINS,
  endpointChainName,
  isOwnChain,
  serviceChainName,
  servicePortHash,
} from './names.js';

/** Remembers endpoint chain names between renders (hashing dominates a large render). */
export interface NameCache {
  get(key: string): string | undefined;
  set(key: string, name: string): unknown;
}

export interface RenderOptions {
  /** Bit of the fwmark used for masquerade (kube-proxy --iptables-masquerade-bit). */
  readonly masqueradeBit: number;
  /** IPv4 NodePorts answer on 127.0.0.1 too (kube-proxy --iptables-localhost-nodeports). */
  readonly localhostNodePorts: boolean;
  /** Optional cache of endpoint chain names, keyed `${servicePortId}|${ip}|${port}`. */
  readonly names?: NameCache;
  /**
   * From this many Service ports of the family on, SY-SERVICES (nat and filter) and nat
   * SY-NODEPORTS jump to DISPATCH_BUCKETS bucket chains, by destination address and node port
   * range, that hold the per-Service-port rules (default DEFAULT_BUCKET_MIN; 0 = always,
   * Infinity = never).
   */
  readonly dispatchBucketMin?: number;
}

/**
 * Number of bucket chains a bucketed dispatch chain is split into. SY-SERVICES buckets by the
 * low 6 bits of the destination address (one masked `-d` jump per bucket, so a packet walks 64
 * jumps and one bucket's rules instead of every Service's); SY-NODEPORTS by port range.
 */
export const DISPATCH_BUCKETS = 64;
/** Default RenderOptions.dispatchBucketMin. */
export const DEFAULT_BUCKET_MIN = 1000;
/** NodePorts of one SY-NODEPORTS jump: ranges of 2^6 ports. */
const NODEPORT_RANGE_BITS = 6;

const bucketName = (dispatch: string, n: number): string => `${dispatch}-${String(n).padStart(2, '0')}`;

/** The low byte of a canonical address (the last IPv4 octet or the last IPv6 group's low byte). */
function lowByte(ip: string): number {
  const dot = ip.lastIndexOf('.');
  if (dot >= 0) return Number(ip.slice(dot + 1)) & 0xff;
  const group = ip.slice(ip.lastIndexOf(':') + 1);
  return group === '' ? 0 : parseInt(group, 16) & 0xff;
}

/** The SY-SERVICES bucket chain (in nat and in filter) of a destination address. */
export function addressBucket(ip: string): string {
  return bucketName(CHAINS.services, lowByte(ip) % DISPATCH_BUCKETS);
}

/** The SY-NODEPORTS bucket chain of a node port. */
export function nodePortBucket(port: number): string {
  return bucketName(CHAINS.nodePorts, (port >> NODEPORT_RANGE_BITS) % DISPATCH_BUCKETS);
}

/** The jump from SY-SERVICES to an address bucket: `-d` with a non-contiguous mask. */
function addressBucketJump(bucket: string, family: IPFamily): string {
  const n = Number(bucket.slice(-2));
  const mask = DISPATCH_BUCKETS - 1;
  const match = family === 'IPv4' ? `0.0.0.${n}/0.0.0.${mask}` : `::${n.toString(16)}/::${mask.toString(16)}`;
  return `-A ${CHAINS.services} -d ${match} -j ${bucket}`;
}

/** The jump from SY-NODEPORTS to the bucket of a node port's range, for its protocol. */
function nodePortBucketJump(proto: string, port: number): string {
  const lo = (port >> NODEPORT_RANGE_BITS) << NODEPORT_RANGE_BITS;
  const hi = lo + (1 << NODEPORT_RANGE_BITS) - 1;
  return `-A ${CHAINS.nodePorts} ${proto} --dport ${lo}:${hi} -j ${nodePortBucket(port)}`;
}

/** One Service port's rules in the dispatch chains (reused while the port is unchanged). */
export interface PortDispatch {
  /**
   * Whether the rules were rendered into bucket chains (nat SY-SERVICES and SY-NODEPORTS,
   * filter SY-SERVICES); each rule then names its bucket (`-A SY-SERVICES-07 …`).
   */
  readonly bucketed: boolean;
  /** nat SY-SERVICES (or its buckets) rules. */
  readonly natServices: readonly string[];
  /** nat SY-NODEPORTS (or its bucket) rules. */
  readonly natNodePorts: readonly string[];
  /** Bucketed only: the SY-NODEPORTS jump to the node port's bucket. */
  readonly nodePortJump?: string;
  /** filter SY-SERVICES (or its bucket) rules. */
  readonly filterServices: readonly string[];
  readonly filterExternal: readonly string[];
  readonly filterFirewall: readonly string[];
  /** The filter SY-SERVICES REJECT of the ClusterIP's undefined ports (deduplicated per IP). */
  readonly clusterIPReject: string;
}

/** What was applied for one Service port. */
export interface AppliedServicePort {
  readonly hash: string;
  /** Every nat chain of this Service port (SVC/EXT/SVX/FW/SEP). */
  readonly chains: readonly string[];
  /** Rules in those chains. */
  readonly natRules: number;
  readonly dispatch: PortDispatch;
}

/** Rules of each dispatch / fixed chain, chain → rules, in the order they are written. */
export type ChainRules = ReadonlyMap<string, readonly string[]>;

/** What was applied for one family; the input of the next partial render. */
export interface AppliedFamily {
  readonly services: ReadonlyMap<string, AppliedServicePort>;
  readonly natRules: number;
  readonly filterRules: number;
  /**
   * The rules of every dispatch and fixed chain as applied (nat: SY-SERVICES, SY-NODEPORTS,
   * their buckets, SY-MARK-MASQ, SY-POSTROUTING, SY-MASQ-NONPOD; filter: all five). A partial
   * render writes only the ones whose rules differ.
   */
  readonly dispatch: { readonly nat: ChainRules; readonly filter: ChainRules };
  /** Everything besides the Service ports that the rules depend on; a change forces a full render. */
  readonly contextKey: string;
}

/** Chains found in the kernel (full syncs only), so leftovers of an earlier run get deleted. */
export interface ExistingChains {
  readonly nat: ReadonlySet<string>;
  readonly filter: ReadonlySet<string>;
}

export interface FamilyRenderStats {
  readonly natRules: number;
  readonly filterRules: number;
  /** Service ports whose chains were (re)written. */
  readonly servicePortsWritten: number;
  /** Dispatch / fixed chains (both tables) written. */
  readonly dispatchChainsWritten: number;
  readonly chainsWritten: number;
  readonly chainsDeleted: number;
}

/** Lines added at the end of each table's input: the jump inserts into built-in chains. */
export interface ExtraRules {
  readonly nat: readonly string[];
  readonly filter: readonly string[];
}

/** One Service port's nat chains in the restore input. */
export interface ServicePortLines {
  readonly hash: string;
  readonly lines: readonly string[];
}

/** The pieces of one render; restoreText assembles them. */
export interface RenderParts {
  /**
   * Every rewritten Service port's nat chains (declarations, then rules), port after port in
   * descending hash order.
   */
  readonly servicePorts: readonly ServicePortLines[];
  /** The dispatch / fixed nat chains to (re)write: all on a full render, changed ones on a partial one. */
  readonly natChains: ChainRules;
  /** nat chains to flush and delete. */
  readonly natDeletes: readonly string[];
  /** The filter chains to (re)write (same rule as natChains). */
  readonly filterChains: ChainRules;
  readonly filterDeletes: readonly string[];
}

export interface FamilyRender {
  readonly parts: RenderParts;
  readonly full: boolean;
  /** The state to remember once `text` was applied. */
  readonly applied: AppliedFamily;
  readonly stats: FamilyRenderStats;
}

const NAT_FIXED = [
  CHAINS.services,
  CHAINS.nodePorts,
  CHAINS.markMasq,
  CHAINS.postrouting,
  CHAINS.masqNonPod,
] as const;
const FILTER_FIXED = [
  CHAINS.services,
  CHAINS.externalServices,
  CHAINS.firewall,
  CHAINS.nodePorts,
  CHAINS.forward,
] as const;

/** The fixed chains of each table (declared and rewritten by every render). */
export const FIXED_CHAINS: { readonly nat: readonly string[]; readonly filter: readonly string[] } = {
  nat: NAT_FIXED,
  filter: FILTER_FIXED,
};

export function markHex(bit: number): string {
  return `0x${((1 << bit) >>> 0).toString(16)}`;
}

function hostCidr(ip: string, family: IPFamily): string {
  return family === 'IPv4' ? `${ip}/32` : `${ip}/128`;
}

function dnatTarget(ep: EndpointPlan, family: IPFamily): string {
  return family === 'IPv4' ? `${ep.ip}:${ep.port}` : `[${ep.ip}]:${ep.port}`;
}

function protoMatch(plan: ServicePortPlan): string {
  const p = plan.protocol.toLowerCase();
  return `-p ${p} -m ${p}`;
}

function verdictTarget(v: TrafficVerdict): string {
  return v === 'drop' ? 'DROP' : 'REJECT';
}

/** `1/n` as kube-proxy writes it, precomputed for the endpoint counts that matter (a 10k render asks 100k times). */
const PROBABILITIES: readonly string[] = Array.from({ length: 1025 }, (_, n) => (1 / n).toFixed(10));

function probability(n: number): string {
  return n < PROBABILITIES.length ? PROBABILITIES[n]! : (1 / n).toFixed(10);
}

/** Which nat chains a Service port needs, from the snapshot's verdicts and endpoint lists only. */
interface PortLayout {
  readonly svc: boolean;
  readonly ext: boolean;
  readonly svx: boolean;
  readonly fw: boolean;
  readonly hasExternalDestinations: boolean;
}

function layoutOf(plan: ServicePortPlan): PortLayout {
  const hasExternalDestinations =
    plan.nodePort !== undefined || plan.externalIPs.length > 0 || plan.loadBalancerIPs.length > 0;
  const svc = plan.internal === 'forward' && plan.internalEndpoints.length > 0;
  const svx = hasExternalDestinations && plan.externalPolicyLocal && plan.shortCircuitEndpoints.length > 0;
  const ext =
    hasExternalDestinations && ((plan.external === 'forward' && plan.externalEndpoints.length > 0) || svx);
  const fw = ext && plan.loadBalancerIPs.length > 0 && plan.loadBalancerSourceRanges.length > 0;
  return { svc, ext, svx, fw, hasExternalDestinations };
}

/** Shared, per-render context. */
interface FamilyContext {
  readonly family: IPFamily;
  readonly clusterCIDRs: readonly string[];
  /**
   * `-i` argument matching pod traffic when `--detect-local-mode` is by interface (`cbr0`, or
   * `veth+` for a prefix); it replaces `clusterCIDRs` then.
   */
  readonly localInterface?: string;
  readonly masqueradeAll: boolean;
  readonly mark: string;
  /** Match strings selecting a NodePort destination (one rule per entry). */
  readonly nodePortMatches: readonly string[];
  readonly names?: NameCache;
}

function nodePortMatches(snapshot: Snapshot, family: IPFamily, options: RenderOptions): string[] {
  const npa = snapshot.nodePortAddresses[family];
  if (npa.kind === 'all') {
    if (family === 'IPv6') return ['! -d ::1/128 -m addrtype --dst-type LOCAL'];
    return options.localhostNodePorts
      ? ['-m addrtype --dst-type LOCAL']
      : ['! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL'];
  }
  return npa.cidrs.map((c) => `-d ${c} -m addrtype --dst-type LOCAL`);
}

/**
 * Appends the nat chains of one Service port to `out` (declarations first, then rules); returns
 * its applied state.
 */
function renderServicePort(
  plan: ServicePortPlan,
  hash: string,
  ctx: FamilyContext,
  out: string[],
): Omit<AppliedServicePort, 'dispatch'> {
  const decl: string[] = [];
  const rules: string[] = [];
  const layout = layoutOf(plan);
  const chains: string[] = [];
  const start = rules.length;
  const sepNames = new Map<string, string>();
  const usedNames = new Set<string>();
  const affinity = plan.sessionAffinity;
  const proto = protoMatch(plan);

  const sepOf = (ep: EndpointPlan): string => {
    const key = `${ep.ip}|${ep.port}`;
    let name = sepNames.get(key);
    if (name === undefined) {
      const cacheKey = `${plan.id}|${key}`;
      name = ctx.names?.get(cacheKey);
      if (name === undefined || usedNames.has(name)) {
        name = endpointChainName(plan.id, ep.ip, ep.port, hash);
        for (let attempt = 1; usedNames.has(name); attempt++)
          name = endpointChainName(plan.id, ep.ip, ep.port, hash, attempt);
        ctx.names?.set(cacheKey, name);
      }
      usedNames.add(name);
      sepNames.set(key, name);
      chains.push(name);
      decl.push(`:${name} - [0:0]`);
      rules.push(`-A ${name} -s ${hostCidr(ep.ip, ctx.family)} -j ${CHAINS.markMasq}`);
      rules.push(
        affinity
          ? `-A ${name} ${proto} -m recent --name ${name} --set -j DNAT --to-destination ${dnatTarget(ep, ctx.family)}`
          : `-A ${name} ${proto} -j DNAT --to-destination ${dnatTarget(ep, ctx.family)}`,
      );
    }
    return name;
  };

  const choose = (chain: string, eps: readonly EndpointPlan[]): void => {
    const names = eps.map(sepOf);
    if (affinity) {
      for (const n of names) {
        rules.push(
          `-A ${chain} -m recent --name ${n} --rcheck --seconds ${affinity.timeoutSeconds} --reap -j ${n}`,
        );
      }
    }
    const count = names.length;
    for (let i = 0; i < count; i++) {
      rules.push(
        i < count - 1
          ? `-A ${chain} -m statistic --mode random --probability ${probability(count - i)} -j ${names[i]}`
          : `-A ${chain} -j ${names[i]}`,
      );
    }
  };

  const declare = (name: string): void => {
    chains.push(name);
    decl.push(`:${name} - [0:0]`);
  };

  if (layout.svc) {
    const svc = serviceChainName('SVC', hash);
    declare(svc);
    if (ctx.masqueradeAll) rules.push(`-A ${svc} -j ${CHAINS.markMasq}`);
    else if (ctx.localInterface !== undefined)
      rules.push(`-A ${svc} ! -i ${ctx.localInterface} -j ${CHAINS.markMasq}`);
    else if (ctx.clusterCIDRs.length === 1)
      rules.push(`-A ${svc} ! -s ${ctx.clusterCIDRs[0]} -j ${CHAINS.markMasq}`);
    else if (ctx.clusterCIDRs.length > 1) rules.push(`-A ${svc} -j ${CHAINS.masqNonPod}`);
    choose(svc, plan.internalEndpoints);
  }
  if (layout.ext) {
    const ext = serviceChainName('EXT', hash);
    declare(ext);
    if (layout.svx) {
      const svx = serviceChainName('SVX', hash);
      const fromPods =
        ctx.localInterface !== undefined
          ? [`-i ${ctx.localInterface}`]
          : ctx.clusterCIDRs.map((c) => `-s ${c}`);
      for (const match of fromPods) {
        rules.push(
          `-A ${ext} ${match} -m comment --comment "pod traffic for ${plan.id} external destinations" -j ${svx}`,
        );
      }
      rules.push(
        `-A ${ext} -m comment --comment "masquerade LOCAL traffic for ${plan.id} external destinations" -m addrtype --src-type LOCAL -j ${CHAINS.markMasq}`,
      );
      rules.push(
        `-A ${ext} -m comment --comment "route LOCAL traffic for ${plan.id} external destinations" -m addrtype --src-type LOCAL -j ${svx}`,
      );
    }
    if (!plan.externalPolicyLocal) rules.push(`-A ${ext} -j ${CHAINS.markMasq}`);
    if (plan.external === 'forward' && plan.externalEndpoints.length > 0) choose(ext, plan.externalEndpoints);
    if (layout.svx) {
      const svx = serviceChainName('SVX', hash);
      declare(svx);
      choose(svx, plan.shortCircuitEndpoints);
    }
  }
  if (layout.fw) {
    const fw = serviceChainName('FW', hash);
    const ext = serviceChainName('EXT', hash);
    declare(fw);
    for (const range of plan.loadBalancerSourceRanges) {
      rules.push(`-A ${fw} -s ${range} -m comment --comment "${plan.id} loadbalancer IP" -j ${ext}`);
    }
    // Anything else falls through un-DNATed and is dropped by filter SY-FIREWALL.
  }
  pushAll(out, decl);
  pushAll(out, rules);
  return { hash, chains, natRules: rules.length - start };
}

/** Renders the nat and filter dispatch rules of one Service port. */
function renderDispatch(
  plan: ServicePortPlan,
  hash: string,
  ctx: FamilyContext,
  bucketed: boolean,
): PortDispatch {
  const natServices: string[] = [];
  const natNodePorts: string[] = [];
  const filterServices: string[] = [];
  const filterExternal: string[] = [];
  const filterFirewall: string[] = [];
  // Bucketed: every SY-SERVICES rule (nat and filter) goes to its destination's bucket.
  const servicesChain = (dst: string): string => (bucketed ? addressBucket(dst) : CHAINS.services);
  const nodePortsChain =
    bucketed && plan.nodePort !== undefined ? nodePortBucket(plan.nodePort) : CHAINS.nodePorts;
  const layout = layoutOf(plan);
  const proto = protoMatch(plan);
  const dport = `${proto} --dport ${plan.port}`;
  const id = plan.id;
  const clusterIPChain = servicesChain(plan.clusterIP);
  const clusterIPReject = `-A ${clusterIPChain} -d ${hostCidr(plan.clusterIP, ctx.family)} -m comment --comment "ClusterIP ${plan.clusterIP}: port not defined by any Service" -j REJECT`;
  let nodePortJump: string | undefined;
  const result = (): PortDispatch => ({
    bucketed,
    natServices,
    natNodePorts,
    ...(nodePortJump === undefined ? {} : { nodePortJump }),
    filterServices,
    filterExternal,
    filterFirewall,
    clusterIPReject,
  });
  if (layout.svc) {
    natServices.push(
      `-A ${clusterIPChain} -d ${hostCidr(plan.clusterIP, ctx.family)} ${dport} -m comment --comment "${id} cluster IP" -j ${serviceChainName('SVC', hash)}`,
    );
  } else {
    const why = plan.internal === 'drop' ? 'has no local endpoints' : 'has no endpoints';
    filterServices.push(
      `-A ${clusterIPChain} -d ${hostCidr(plan.clusterIP, ctx.family)} ${dport} -m comment --comment "${id} ${why}" -j ${verdictTarget(plan.internal === 'forward' ? 'reject' : plan.internal)}`,
    );
  }
  if (!layout.hasExternalDestinations) return result();

  const extChain = serviceChainName('EXT', hash);
  if (layout.ext) {
    for (const ip of plan.externalIPs) {
      natServices.push(
        `-A ${servicesChain(ip)} -d ${hostCidr(ip, ctx.family)} ${dport} -m comment --comment "${id} external IP" -j ${extChain}`,
      );
    }
    const lbTarget = layout.fw ? serviceChainName('FW', hash) : extChain;
    for (const ip of plan.loadBalancerIPs) {
      natServices.push(
        `-A ${servicesChain(ip)} -d ${hostCidr(ip, ctx.family)} ${dport} -m comment --comment "${id} loadbalancer IP" -j ${lbTarget}`,
      );
    }
    if (plan.nodePort !== undefined) {
      natNodePorts.push(
        `-A ${nodePortsChain} ${proto} --dport ${plan.nodePort} -m comment --comment "${id}" -j ${extChain}`,
      );
      if (bucketed) nodePortJump = nodePortBucketJump(proto, plan.nodePort);
    }
  }
  if (layout.fw) {
    for (const ip of plan.loadBalancerIPs) {
      filterFirewall.push(
        `-A ${CHAINS.firewall} -d ${hostCidr(ip, ctx.family)} ${dport} -m comment --comment "${id} traffic not accepted by SY-FW" -j DROP`,
      );
    }
  }
  // External traffic that the nat rules did not DNAT (no usable endpoint on this path).
  const externalForwarded = plan.external === 'forward' && plan.externalEndpoints.length > 0;
  if (!externalForwarded) {
    const target = verdictTarget(plan.external === 'forward' ? 'reject' : plan.external);
    const why = target === 'DROP' ? 'has no local endpoints' : 'has no endpoints';
    for (const ip of plan.externalIPs) {
      filterExternal.push(
        `-A ${CHAINS.externalServices} -d ${hostCidr(ip, ctx.family)} ${dport} -m comment --comment "${id} ${why}" -j ${target}`,
      );
    }
    for (const ip of plan.loadBalancerIPs) {
      filterExternal.push(
        `-A ${CHAINS.externalServices} -d ${hostCidr(ip, ctx.family)} ${dport} -m comment --comment "${id} ${why}" -j ${target}`,
      );
    }
    if (plan.nodePort !== undefined) {
      for (const m of ctx.nodePortMatches) {
        filterExternal.push(
          `-A ${CHAINS.externalServices} ${m} ${proto} --dport ${plan.nodePort} -m comment --comment "${id} ${why}" -j ${target}`,
        );
      }
    }
  }
  return result();
}

function isIP(s: string): boolean {
  return s.includes('.') || s.includes(':');
}

function sameRules(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameDispatch(a: PortDispatch, b: PortDispatch): boolean {
  return (
    a.bucketed === b.bucketed &&
    a.clusterIPReject === b.clusterIPReject &&
    a.nodePortJump === b.nodePortJump &&
    sameRules(a.natServices, b.natServices) &&
    sameRules(a.natNodePorts, b.natNodePorts) &&
    sameRules(a.filterServices, b.filterServices) &&
    sameRules(a.filterExternal, b.filterExternal) &&
    sameRules(a.filterFirewall, b.filterFirewall)
  );
}

const BUCKET_SUFFIX = /-\d\d$/;

/** The chain a rule appends to (`-A NAME …`). */
const ruleChain = (rule: string): string => rule.slice(3, rule.indexOf(' ', 3));

function isBucket(chain: string): boolean {
  return (
    BUCKET_SUFFIX.test(chain) &&
    (chain.startsWith(`${CHAINS.services}-`) || chain.startsWith(`${CHAINS.nodePorts}-`))
  );
}

/**
 * The Service-port-derived dispatch chains from every port's dispatch rules: nat SY-SERVICES,
 * SY-NODEPORTS and their buckets into `nat`; filter SY-SERVICES (and its buckets),
 * SY-EXTERNAL-SERVICES and SY-FIREWALL into `filter`. Bucketed rules already name their bucket;
 * the dispatch chains jump to the non-empty buckets, in a stable order.
 */
function buildDispatch(
  services: Iterable<AppliedServicePort>,
  bucketed: boolean,
  ctx: FamilyContext,
  nat: Map<string, readonly string[]>,
  filter: Map<string, readonly string[]>,
): void {
  const natServices: string[] = [];
  const natNodePorts: string[] = [];
  const natBuckets = new Map<string, string[]>();
  const filterServices: string[] = [];
  const filterBuckets = new Map<string, string[]>();
  const filterExternal: string[] = [];
  const filterFirewall: string[] = [];
  const clusterIPRejects = new Set<string>();
  const nodePortJumps = new Set<string>();
  const addTo = (buckets: Map<string, string[]>, rules: readonly string[]): void => {
    for (const rule of rules) {
      const chain = ruleChain(rule);
      let b = buckets.get(chain);
      if (!b) buckets.set(chain, (b = []));
      b.push(rule);
    }
  };
  for (const s of services) {
    const d = s.dispatch;
    if (bucketed) {
      addTo(natBuckets, d.natServices);
      addTo(natBuckets, d.natNodePorts);
      addTo(filterBuckets, d.filterServices);
      if (d.nodePortJump !== undefined) nodePortJumps.add(d.nodePortJump);
    } else {
      pushAll(natServices, d.natServices);
      pushAll(natNodePorts, d.natNodePorts);
      pushAll(filterServices, d.filterServices);
    }
    pushAll(filterExternal, d.filterExternal);
    pushAll(filterFirewall, d.filterFirewall);
    clusterIPRejects.add(d.clusterIPReject);
  }
  // ClusterIP on a port the Service does not define: REJECT what the nat rules did not DNAT
  // (after the ports' own rules of the same ClusterIP, which sit in the same chain).
  if (bucketed) addTo(filterBuckets, [...clusterIPRejects]);
  else pushAll(filterServices, [...clusterIPRejects]);

  const natBucketNames = [...natBuckets.keys()].sort();
  for (const b of natBucketNames) {
    if (b.startsWith(`${CHAINS.services}-`)) natServices.push(addressBucketJump(b, ctx.family));
  }
  pushAll(natNodePorts, [...nodePortJumps].sort());
  for (const m of ctx.nodePortMatches) {
    natServices.push(
      `-A ${CHAINS.services} ${m} -m comment --comment "switchyard service nodeports; NOTE: this must be the last rule in this chain" -j ${CHAINS.nodePorts}`,
    );
  }
  const filterBucketNames = [...filterBuckets.keys()].sort();
  for (const b of filterBucketNames) filterServices.push(addressBucketJump(b, ctx.family));

  nat.set(CHAINS.services, natServices);
  nat.set(CHAINS.nodePorts, natNodePorts);
  for (const b of natBucketNames) nat.set(b, natBuckets.get(b)!);
  filter.set(CHAINS.services, filterServices);
  filter.set(CHAINS.externalServices, filterExternal);
  filter.set(CHAINS.firewall, filterFirewall);
  for (const b of filterBucketNames) filter.set(b, filterBuckets.get(b)!);
}

/**
 * Render the restore input for one family. Partial when `last` is known, the delta is not full
 * and nothing outside the Service ports changed (contextKey); otherwise full (every chain of
 * every Service port; stale = last ∪ existing − new).
 *
 * Dispatch and fixed chains: a full render writes them all; a partial render writes only those
 * whose rules differ from what `last` applied (rewriting a chain with the rules it already holds
 * changes nothing), so an endpoint change sends only the Service port's own chains. Unchanged
 * Service ports reuse their dispatch rules from `last`.
 */
export function renderFamily(
  snapshot: Snapshot,
  family: IPFamily,
  delta: SnapshotDelta,
  last: AppliedFamily | undefined,
  options: RenderOptions,
  existing?: ExistingChains,
): FamilyRender {
  const iface = snapshot.localInterface;
  const localInterface =
    iface && validInterfaceName(iface.name) ? `${iface.name}${iface.prefix ? '+' : ''}` : undefined;
  const ctx: FamilyContext = {
    family,
    clusterCIDRs: localInterface ? [] : snapshot.clusterCIDRs[family],
    ...(localInterface ? { localInterface } : {}),
    masqueradeAll: snapshot.masqueradeAll,
    mark: markHex(options.masqueradeBit),
    nodePortMatches: nodePortMatches(snapshot, family, options),
    names: options.names,
  };
  const contextKey = JSON.stringify([
    family,
    ctx.clusterCIDRs,
    ctx.localInterface ?? '',
    ctx.masqueradeAll,
    ctx.mark,
    ctx.nodePortMatches,
  ]);
  const full = delta.full || last === undefined || last.contextKey !== contextKey;

  const ports: { readonly plan: ServicePortPlan; readonly hash: string }[] = [];
  const ours = (plan: ServicePortPlan | undefined): plan is ServicePortPlan =>
    plan !== undefined && plan.family === family && isIP(plan.clusterIP);
  // Descending hash order, everywhere (chains written, dispatch rules): see names.ts. The ports
  // `last` knew come first, already in that order, so the sort has little left to do.
  if (last !== undefined) {
    for (const [id, prev] of last.services) {
      const plan = snapshot.servicePorts.get(id);
      if (ours(plan)) ports.push({ plan, hash: prev.hash });
    }
  }
  for (const plan of snapshot.servicePorts.values()) {
    if (ours(plan) && last?.services.has(plan.id) !== true)
      ports.push({ plan, hash: servicePortHash(plan.id) });
  }
  ports.sort((x, y) =>
    x.hash !== y.hash
      ? x.hash < y.hash
        ? 1
        : -1
      : x.plan.id < y.plan.id
        ? 1
        : x.plan.id > y.plan.id
          ? -1
          : 0,
  );
  const bucketed = ports.length >= (options.dispatchBucketMin ?? DEFAULT_BUCKET_MIN);

  const servicePortLines: ServicePortLines[] = [];
  let serviceChainCount = 0;
  const services = new Map<string, AppliedServicePort>();
  const toDelete = new Set<string>();
  let servicePortsWritten = 0;

  // Whether any Service port's dispatch rules differ from `last` (else the dispatch chains are
  // reused as they are: no O(Service ports) rebuild on an endpoint change).
  let dispatchChanged = full;
  for (const { plan, hash } of ports) {
    const prev = last?.services.get(plan.id);
    if (full || delta.changed.has(plan.id) || prev === undefined) {
      const lines: string[] = [];
      const applied = renderServicePort(plan, hash, ctx, lines);
      servicePortLines.push({ hash, lines });
      serviceChainCount += applied.chains.length;
      let dispatch = renderDispatch(plan, hash, ctx, bucketed);
      if (prev !== undefined && sameDispatch(prev.dispatch, dispatch)) dispatch = prev.dispatch;
      else dispatchChanged = true;
      services.set(plan.id, { ...applied, dispatch });
      servicePortsWritten++;
      if (prev && !full) {
        const keep = new Set(applied.chains);
        for (const c of prev.chains) if (!keep.has(c)) toDelete.add(c);
      }
    } else if (prev.dispatch.bucketed !== bucketed) {
      services.set(plan.id, { ...prev, dispatch: renderDispatch(plan, hash, ctx, bucketed) });
      dispatchChanged = true;
    } else {
      services.set(plan.id, prev);
    }
  }
  if (last !== undefined && services.size !== last.services.size) dispatchChanged = true;

  const natFixed = new Map<string, readonly string[]>();
  const filterServicesChains = new Map<string, readonly string[]>();
  if (!dispatchChanged && last !== undefined) {
    // Same Service ports (same count, each present in last), same dispatch rules.
    for (const [c, rules] of last.dispatch.nat) {
      if (c === CHAINS.services || c === CHAINS.nodePorts || isBucket(c)) natFixed.set(c, rules);
    }
    for (const c of [CHAINS.services, CHAINS.externalServices, CHAINS.firewall])
      filterServicesChains.set(c, last.dispatch.filter.get(c) ?? []);
    for (const [c, rules] of last.dispatch.filter) if (isBucket(c)) filterServicesChains.set(c, rules);
  } else {
    buildDispatch(services.values(), bucketed, ctx, natFixed, filterServicesChains);
  }

  natFixed.set(CHAINS.markMasq, [`-A ${CHAINS.markMasq} -j MARK --or-mark ${ctx.mark}`]);
  natFixed.set(CHAINS.postrouting, [
    `-A ${CHAINS.postrouting} -m mark ! --mark ${ctx.mark}/${ctx.mark} -j RETURN`,
    `-A ${CHAINS.postrouting} -j MARK --xor-mark ${ctx.mark}`,
    `-A ${CHAINS.postrouting} -m comment --comment "switchyard service traffic requiring SNAT" -j MASQUERADE --random-fully`,
  ]);
  const masqNonPod: string[] = [];
  if (!ctx.masqueradeAll && ctx.clusterCIDRs.length > 1) {
    for (const c of ctx.clusterCIDRs) masqNonPod.push(`-A ${CHAINS.masqNonPod} -s ${c} -j RETURN`);
    masqNonPod.push(`-A ${CHAINS.masqNonPod} -j ${CHAINS.markMasq}`);
  }
  natFixed.set(CHAINS.masqNonPod, masqNonPod);

  const filterNodePorts: string[] = [];
  const hcPorts = new Set<number>();
  for (const hc of snapshot.healthChecks) {
    if (hcPorts.has(hc.port)) continue;
    hcPorts.add(hc.port);
    filterNodePorts.push(
      `-A ${CHAINS.nodePorts} -p tcp -m tcp --dport ${hc.port} -m comment --comment "${hc.serviceKey} health check node port" -j ACCEPT`,
    );
  }
  const filterFixed = new Map<string, readonly string[]>([
    [
      CHAINS.forward,
      [
        `-A ${CHAINS.forward} -m comment --comment "switchyard forwarding rules" -m mark --mark ${ctx.mark}/${ctx.mark} -j ACCEPT`,
        `-A ${CHAINS.forward} -m comment --comment "switchyard forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      ],
    ],
    [CHAINS.nodePorts, filterNodePorts],
    [CHAINS.services, filterServicesChains.get(CHAINS.services)!],
    [CHAINS.externalServices, filterServicesChains.get(CHAINS.externalServices)!],
    [CHAINS.firewall, filterServicesChains.get(CHAINS.firewall)!],
  ]);
  for (const [c, rules] of filterServicesChains) if (isBucket(c)) filterFixed.set(c, rules);

  // Stale chains.
  if (full) {
    const keep = new Set<string>(natFixed.keys());
    for (const s of services.values()) for (const c of s.chains) keep.add(c);
    if (last) {
      for (const s of last.services.values()) for (const c of s.chains) if (!keep.has(c)) toDelete.add(c);
      for (const c of last.dispatch.nat.keys()) if (!keep.has(c)) toDelete.add(c);
    }
    if (existing) for (const c of existing.nat) if (isOwnChain(c) && !keep.has(c)) toDelete.add(c);
  } else if (last) {
    // Removed Service ports (and any id the snapshot no longer has): all their chains go.
    for (const [id, prev] of last.services) {
      if (services.has(id)) continue;
      for (const c of prev.chains) toDelete.add(c);
    }
    // Bucket chains that became empty.
    for (const c of last.dispatch.nat.keys()) if (!natFixed.has(c)) toDelete.add(c);
  }
  const filterDeletes = new Set<string>();
  if (full && existing) {
    const keepFilter = new Set<string>(filterFixed.keys());
    for (const c of existing.filter) if (isOwnChain(c) && !keepFilter.has(c)) filterDeletes.add(c);
  }
  if (last) {
    // Filter bucket chains that became empty (or the layout left buckets).
    for (const c of last.dispatch.filter.keys()) if (!filterFixed.has(c)) filterDeletes.add(c);
  }

  // What to write: everything on a full render, else the chains whose rules changed.
  const changedOnly = (now: ChainRules, before: ChainRules | undefined): ChainRules => {
    if (full || before === undefined) return now;
    const out = new Map<string, readonly string[]>();
    for (const [c, rules] of now) if (!sameRules(before.get(c), rules)) out.set(c, rules);
    return out;
  };
  const natChains = changedOnly(natFixed, last?.dispatch.nat);
  const filterChains = changedOnly(filterFixed, last?.dispatch.filter);

  let natRules = 0;
  for (const s of services.values()) natRules += s.natRules;
  for (const rules of natFixed.values()) natRules += rules.length;
  let filterRules = 0;
  for (const rules of filterFixed.values()) filterRules += rules.length;

  const deletions = [...toDelete];
  const filterDelList = [...filterDeletes];
  return {
    parts: {
      servicePorts: servicePortLines,
      natChains,
      natDeletes: deletions,
      filterChains,
      filterDeletes: filterDelList,
    },
    full,
    applied: {
      services,
      natRules,
      filterRules,
      dispatch: { nat: natFixed, filter: filterFixed },
      contextKey,
    },
    stats: {
      natRules,
      filterRules,
      servicePortsWritten,
      dispatchChainsWritten: natChains.size + filterChains.size,
      chainsWritten: natChains.size + serviceChainCount + filterChains.size,
      chainsDeleted: deletions.length + filterDelList.length,
    },
  };
}

const decl = (c: string): string => `:${c} - [0:0]`;

/**
 * The whole render as one restore input: one atomic `iptables-restore` run per table (legacy
 * commits nat, then filter; nft commits both in one transaction). Per table: the dispatch / fixed
 * chains to write and the chains to delete are declared (created or flushed); Service ports'
 * chains (declared before their rules); the dispatch rules, which jump to them; then the
 * deletions, unreferenced by now; then `extra` (jumps from built-in chains, inserted in the same
 * transaction as our chains). A table with nothing to write is left out (legacy then does not
 * read and rewrite it at all); with nothing at all to write the text is empty.
 */
export function restoreText(r: FamilyRender, extra: ExtraRules = { nat: [], filter: [] }): string {
  const p = r.parts;
  const lines: string[] = [];
  if (
    r.full ||
    p.servicePorts.length > 0 ||
    p.natChains.size > 0 ||
    p.natDeletes.length > 0 ||
    extra.nat.length > 0
  ) {
    lines.push('*nat');
    for (const c of p.natChains.keys()) lines.push(decl(c));
    for (const c of p.natDeletes) lines.push(decl(c));
    // Port by port: its chains, then the rules of the dispatch chains being written that jump to
    // them (each chain's rules stay in their order). iptables-nft then finds every name it is
    // given near the head of its sorted list (names.ts); legacy does not care.
    const pending = [...p.natChains.values()].map((rules) => ({ rules, next: 0 }));
    for (const port of p.servicePorts) {
      pushAll(lines, port.lines);
      const target = ` -j ${CHAIN_PREFIX}${port.hash}-`;
      for (const c of pending) {
        while (c.next < c.rules.length && jumpsTo(c.rules[c.next]!, target)) lines.push(c.rules[c.next++]!);
      }
    }
    for (const c of pending) for (; c.next < c.rules.length; c.next++) lines.push(c.rules[c.next]!);
    for (const c of p.natDeletes) lines.push(`-X ${c}`);
    pushAll(lines, extra.nat);
    lines.push('COMMIT');
  }
  if (r.full || p.filterChains.size > 0 || p.filterDeletes.length > 0 || extra.filter.length > 0) {
    lines.push('*filter');
    for (const c of p.filterChains.keys()) lines.push(decl(c));
    for (const c of p.filterDeletes) lines.push(decl(c));
    for (const rules of p.filterChains.values()) pushAll(lines, rules);
    for (const c of p.filterDeletes) lines.push(`-X ${c}`);
    pushAll(lines, extra.filter);
    lines.push('COMMIT');
  }
  if (lines.length === 0) return '';
  lines.push('');
  return lines.join('\n');
}

/** Whether `rule` ends in a jump whose target starts with `target` (` -j SY-<h>-`). */
function jumpsTo(rule: string, target: string): boolean {
  const j = rule.lastIndexOf(' -j ');
  return j >= 0 && rule.startsWith(target, j);
}

function pushAll(into: string[], from: readonly string[]): void {
  for (const s of from) into.push(s);
}

/**
 * The restore lines that delete `chains` (ours, one table) after `jumpDeletes` (the jumps from
 * built-in chains). The fixed and other chains are flushed first, which unreferences every
 * Service port's chains; then each port's group `SY-<h>-…` is flushed and deleted, groups in
 * descending `h`; then the rest is deleted. iptables-nft 1.8.x walks a sorted list of every
 * chain name the input mentions (names.ts): flushing all 100k chains first and deleting them
 * after costs minutes at 10k Services; group by group, each name is met near the list's head.
 */
export function cleanupLines(chains: readonly string[], jumpDeletes: readonly string[]): string[] {
  const groups = new Map<string, string[]>();
  const rest: string[] = [];
  for (const c of chains) {
    const h = portGroup(c);
    if (h === undefined) rest.push(c);
    else {
      let g = groups.get(h);
      if (!g) groups.set(h, (g = []));
      g.push(c);
    }
  }
  const lines: string[] = [...jumpDeletes];
  for (const c of rest) lines.push(`:${c} - [0:0]`);
  for (const h of [...groups.keys()].sort().reverse()) {
    const g = groups.get(h)!;
    for (const c of g) lines.push(`:${c} - [0:0]`);
    for (const c of g) lines.push(`-X ${c}`);
  }
  for (const c of rest) lines.push(`-X ${c}`);
  return lines;
}

/** The `h` of a Service port's chain `SY-<h>-…`, else undefined. */
function portGroup(chain: string): string | undefined {
  return /^SY-([a-z]{16})-/.exec(chain)?.[1];
}

/**
 * From this many chains to delete, a sync deletes them in a restore of its own after the main
 * one, group by group (cleanupLines), instead of declaring them all at the top of the main
 * input: iptables-nft walks a sorted list of every name an input mentions (names.ts), so
 * deleting the 55k chains of 5 000 removed Services inside the main restore costs minutes.
 * They are unreferenced once the main restore is in (its dispatch chains no longer jump to
 * them), so traffic does not see the split.
 */
export const DEFERRED_DELETE_MIN = 1000;

/** Whether `r` deletes enough chains to do it in a restore of its own. */
export function deletesDeferred(r: FamilyRender): boolean {
  return r.parts.natDeletes.length + r.parts.filterDeletes.length >= DEFERRED_DELETE_MIN;
}

/** `r` without its deletions (for the main restore when they are deferred). */
export function withoutDeletes(r: FamilyRender): FamilyRender {
  return { ...r, parts: { ...r.parts, natDeletes: [], filterDeletes: [] } };
}

/** The restore input deleting `r`'s chains group by group, nat then filter. */
export function deletionText(r: FamilyRender): string {
  const lines: string[] = [];
  for (const [table, chains] of [
    ['nat', r.parts.natDeletes],
    ['filter', r.parts.filterDeletes],
  ] as const) {
    if (chains.length === 0) continue;
    lines.push(`*${table}`);
    for (const l of cleanupLines(chains, [])) lines.push(l);
    lines.push('COMMIT');
  }
  lines.push('');
  return lines.join('\n');
}

/** Chain names declared in `iptables-save` output (`:NAME POLICY [p:b]` lines), per table. */
export function parseSaveChains(save: string): Map<string, Set<string>> {
  const tables = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      current = new Set();
      tables.set(line.slice(1).trim(), current);
    } else if (line.startsWith(':') && current) {
      const end = line.indexOf(' ');
      current.add(end > 0 ? line.slice(1, end) : line.slice(1));
    }
  }
  return tables;
}
