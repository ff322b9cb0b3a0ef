/**
 * Names of every kernel object the nftables backend creates.
 *
 * The layout is fixed: a handful of base chains, helper chains and named sets/maps whose count
 * does not depend on the number of Services. Only two kinds of names vary:
 * - endpoint-count group chains (`ep-<kind>-<N>`), one per distinct endpoint count in use;
 * - session-affinity objects, one dispatch chain plus one set and one chain per endpoint of a
 *   Service port that asks for ClientIP affinity (rare; named from a hash of the service-port
 *   id with a readable tail, within nft's 256-byte name limit).
 */
import { createHash } from 'node:crypto';
import type { IPFamily } from '../../core/model/snapshot.js';

/** Both families use a table of this name: `ip switchyard` and `ip6 switchyard`. */
export const TABLE_NAME = 'switchyard';

/** nft's address family keyword for a Snapshot family. */
export function nftFamily(family: IPFamily): 'ip' | 'ip6' {
  return family === 'IPv4' ? 'ip' : 'ip6';
}

/** `ip switchyard` / `ip6 switchyard` */
export function tableRef(family: IPFamily): string {
  return `${nftFamily(family)} ${TABLE_NAME}`;
}

/** Named sets and maps (fixed). */
export const SETS = {
  /** Every ClusterIP (masquerade marking, reject of undefined ports). */
  clusterIPs: 'cluster-ips',
  /** --cluster-cidr of the family (interval). */
  clusterCIDRs: 'cluster-cidrs',
  /** --nodeport-addresses CIDRs of the family (interval). */
  nodePortAddresses: 'nodeport-addresses',
  /** daddr . l4proto . dport → goto group/affinity chain (ClusterIPs, externalIPs, LB IPs). */
  serviceIPs: 'service-ips',
  /** l4proto . dport → goto group/affinity chain (NodePorts). */
  serviceNodePorts: 'service-nodeports',
  /** daddr . l4proto . dport → goto short-circuit group chain (Local policy, pods and node). */
  shortCircuitIPs: 'short-circuit-ips',
  /** l4proto . dport → goto short-circuit group chain. */
  shortCircuitNodePorts: 'short-circuit-nodeports',
  /** daddr . l4proto . dport . index → endpoint addr . port. */
  ipEndpoints: 'ip-endpoints',
  /** l4proto . dport . index → endpoint addr . port. */
  nodePortEndpoints: 'nodeport-endpoints',
  /** short-circuit variants of the two maps above. */
  shortCircuitIPEndpoints: 'short-circuit-ip-endpoints',
  shortCircuitNodePortEndpoints: 'short-circuit-nodeport-endpoints',
  /** daddr . l4proto . dport → drop / goto reject-chain (no usable endpoint). */
  noEndpointServices: 'no-endpoint-services',
  /** l4proto . dport → drop / goto reject-chain. */
  noEndpointNodePorts: 'no-endpoint-nodeports',
  /** LB daddr . l4proto . dport with loadBalancerSourceRanges. */
  firewallIPs: 'firewall-ips',
  /** LB daddr . l4proto . dport . allowed saddr range (interval). */
  firewallAllow: 'firewall-allow',
  /** endpoint addr . same addr, filled by the packet path: hairpin detection after DNAT. */
  hairpin: 'hairpin',
} as const;

export type SetName = (typeof SETS)[keyof typeof SETS];

/** Fixed chains. */
export const CHAINS = {
  natPrerouting: 'nat-prerouting',
  natOutput: 'nat-output',
  natPostrouting: 'nat-postrouting',
  filterPrerouting: 'filter-prerouting',
  filterInput: 'filter-input',
  filterForward: 'filter-forward',
  filterOutput: 'filter-output',
  filterOutputPostDnat: 'filter-output-post-dnat',
  services: 'services',
  markForMasquerade: 'mark-for-masquerade',
  masquerading: 'masquerading',
  firewallCheck: 'firewall-check',
  serviceEndpointsCheck: 'service-endpoints-check',
  nodePortEndpointsCheck: 'nodeport-endpoints-check',
  clusterIPsCheck: 'cluster-ips-check',
  reject: 'reject-chain',
} as const;

/**
 * Kinds of endpoint-count group chains:
 * - `ip`  : DNAT by daddr . proto . port (ClusterIP; externalIP/LB with Local policy)
 * - `ipm` : same, marking for masquerade first (externalIP/LB with Cluster policy)
 * - `np`  : DNAT by proto . nodePort (Local policy)
 * - `npm` : same, masquerade-marked (Cluster policy)
 * - `sc`  : short-circuit by daddr (pods and the node itself, node masqueraded)
 * - `scnp`: short-circuit by nodePort
 */
export type GroupKind = 'ip' | 'ipm' | 'np' | 'npm' | 'sc' | 'scnp';

export function groupChain(kind: GroupKind, count: number): string {
  return `ep-${kind}-${count}`;
}

/** Parses a group chain name back (for state bookkeeping); undefined when it is not one. */
export function parseGroupChain(name: string): { kind: GroupKind; count: number } | undefined {
  const m = /^ep-(ip|ipm|np|npm|sc|scnp)-(\d+)$/.exec(name);
  return m ? { kind: m[1] as GroupKind, count: Number(m[2]) } : undefined;
}

/** A short, stable hash (base36 of sha256), for object names. */
export function shortHash(text: string, length = 10): string {
  const h = createHash('sha256').update(text).digest();
  return BigInt('0x' + h.subarray(0, 10).toString('hex'))
    .toString(36)
    .padStart(length, '0')
    .slice(0, length);
}

/** A readable, nft-safe tail: lower-case [a-z0-9-], at most `max` characters. */
export function readableTail(text: string, max = 40): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
}

/** `aff-<hash>-<tail>`: the affinity dispatch chain of one service port path. */
export function affinityChain(servicePortId: string, path: 'int' | 'ext', timeoutSeconds: number): string {
  const tail = readableTail(`${servicePortId.split('/').slice(0, 2).join('-')}`, 40);
  return `aff-${shortHash(`${servicePortId}|${path}|${timeoutSeconds}`)}-${path}${tail ? `-${tail}` : ''}`;
}

/** The per-endpoint affinity chain and set (same name: sets and chains live in separate namespaces). */
export function affinityEndpoint(dispatchChain: string, endpoint: string): string {
  const base = dispatchChain.slice(0, 4 + 10); // `aff-` + hash
  return `${base}-ep-${shortHash(`${dispatchChain}|${endpoint}`, 8)}`;
}
