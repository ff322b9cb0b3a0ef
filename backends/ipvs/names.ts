/**
 * Names of every kernel object the IPVS backend creates.
 *
 * Like kube-proxy's IPVS mode (pkg/proxy/ipvs), but under switchyard's own names so the two
 * never touch each other's objects:
 * - the dummy interface holding every Service IP (kube-proxy: kube-ipvs0);
 * - ipsets `SYV-*` (IPv4) and `SYV6-*` (IPv6), each at most 31 characters (IPSET_MAXNAMELEN - 1);
 * - iptables chains `SYV-*`, at most 28 characters, in the nat and filter tables of both
 *   families. The iptables backend's chains start with `SY-`, so neither cleanup removes the
 *   other's chains.
 *
 * The layout is fixed: the number of sets, chains and rules does not depend on the number of
 * Services; Services live in IPVS virtual servers, set entries and interface addresses.
 */
import type { IPFamily } from '../../core/model/snapshot.js';

/** The dummy interface holding every Service IP (≤ 15 characters, IFNAMSIZ - 1). */
export const IPVS_INTERFACE = 'swy-ipvs0';

/** Prefix of every ipset and chain this backend creates (both families). */
export const OWN_PREFIX = 'SYV';

/** ipset kinds (suffixes); see SET_TYPES for what each holds. */
export const SET_KINDS = [
  'CLUSTER-IP',
  'EXTERNAL-IP',
  'EXTERNAL-IP-LOCAL',
  'LOAD-BALANCER',
  'LOAD-BALANCER-LOCAL',
  'LOAD-BALANCER-FW',
  'LOAD-BALANCER-SOURCE-CIDR',
  'NODE-PORT',
  'NODE-PORT-LOCAL',
  'LOOP-BACK',
  'REJECT',
  'DROP',
  'IPS',
] as const;
export type SetKind = (typeof SET_KINDS)[number];

/**
 * The ipset type of each kind. Entries (as `ipset add` writes them):
 * - `hash:ip,port`     `10.96.0.10,tcp:80`             (a Service destination)
 * - `hash:ip,port,net` `198.51.100.10,tcp:80,203.0.113.0/25` (LB IP + allowed source range)
 * - `hash:ip,port,ip`  `10.244.1.10,tcp:8080,10.244.1.10`     (endpoint reaching itself: hairpin)
 * - `hash:ip`          `10.96.0.10`                    (every Service IP: undefined ports are rejected)
 */
export const SET_TYPES: Readonly<
  Record<SetKind, 'hash:ip,port' | 'hash:ip,port,net' | 'hash:ip,port,ip' | 'hash:ip'>
> = {
  /** ClusterIP destinations. */
  'CLUSTER-IP': 'hash:ip,port',
  /** externalIP destinations, externalTrafficPolicy Cluster (masqueraded). */
  'EXTERNAL-IP': 'hash:ip,port',
  /** externalIP destinations, externalTrafficPolicy Local (client IP kept). */
  'EXTERNAL-IP-LOCAL': 'hash:ip,port',
  /** LoadBalancer ingress destinations (all). */
  'LOAD-BALANCER': 'hash:ip,port',
  /** LoadBalancer ingress destinations with policy Local (not masqueraded). */
  'LOAD-BALANCER-LOCAL': 'hash:ip,port',
  /** LoadBalancer ingress destinations that have loadBalancerSourceRanges. */
  'LOAD-BALANCER-FW': 'hash:ip,port',
  /** LB destination + an allowed source range. */
  'LOAD-BALANCER-SOURCE-CIDR': 'hash:ip,port,net',
  /** NodePort destinations (node address, nodePort), policy Cluster. */
  'NODE-PORT': 'hash:ip,port',
  /** NodePort destinations, policy Local. */
  'NODE-PORT-LOCAL': 'hash:ip,port',
  /** Local endpoints, for hairpin masquerade. */
  'LOOP-BACK': 'hash:ip,port,ip',
  /** Destinations refused at once: a Service port without any usable endpoint. */
  REJECT: 'hash:ip,port',
  /** Destinations silently dropped: a Local traffic policy without a local endpoint. */
  DROP: 'hash:ip,port',
  /** Every Service IP on the interface: new traffic to a port no Service defines is rejected. */
  IPS: 'hash:ip',
};

/** `SYV-CLUSTER-IP` / `SYV6-CLUSTER-IP`. */
export function setName(kind: SetKind, family: IPFamily): string {
  return `${family === 'IPv4' ? OWN_PREFIX : `${OWN_PREFIX}6`}-${kind}`;
}

/** The set kind and family of one of our set names; undefined when it is not ours. */
export function parseSetName(name: string): { kind: SetKind; family: IPFamily } | undefined {
  const m = /^SYV(6?)-(.+)$/.exec(name);
  if (!m) return undefined;
  const kind = SET_KINDS.find((k) => k === m[2]);
  return kind ? { kind, family: m[1] === '6' ? 'IPv6' : 'IPv4' } : undefined;
}

/** Chains (the same names in iptables and ip6tables). */
export const CHAINS = {
  /** nat PREROUTING/OUTPUT: marks for masquerade by destination class. */
  services: 'SYV-SERVICES',
  /** nat: sources outside --cluster-cidr are marked (ClusterIP traffic). */
  masqNonPod: 'SYV-MASQ-NONPOD',
  markMasq: 'SYV-MARK-MASQ',
  /** nat POSTROUTING: hairpin and marked traffic is masqueraded. */
  postrouting: 'SYV-POSTROUTING',
  /** filter INPUT: source ranges, DROP/REJECT of Service ports without endpoints, undefined ports. */
  filter: 'SYV-FILTER',
  /** filter: loadBalancerSourceRanges. */
  firewall: 'SYV-FIREWALL',
  /** filter FORWARD: accept masquerade-marked and established traffic. */
  forward: 'SYV-FORWARD',
} as const;

/** True for an ipset or chain this backend created. */
export function isOwnName(name: string): boolean {
  return name.startsWith(`${OWN_PREFIX}-`) || name.startsWith(`${OWN_PREFIX}6-`);
}

/** Schedulers `--ipvs-scheduler` accepts (the kernel's ip_vs_* scheduler modules). */
export const SCHEDULERS = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'dh',
  'sh',
  'sed',
  'nq',
  'mh',
  'fo',
  'ovf',
  'twos',
] as const;
