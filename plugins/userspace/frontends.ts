/**
 * Which frontends (destination address, protocol, port) the userspace backend serves, and what
 * the kernel does with each: steer it to a local listener, reject it, or drop it. Pure: a
 * Snapshot in, plain data out.
 *
 * A frontend's address is an IP, or '*' for a NodePort on every local address
 * (nodePortAddresses 'all').
 */
import type { IPFamily, ServicePortPlan, Snapshot, TrafficVerdict } from '../sdk/index.js';
import { cidrContains, parseCIDR, parseIP } from '../../matcher/src/index.js';

export type FrontendProtocol = 'TCP' | 'UDP';
export type FrontendKind = 'cluster-ip' | 'external-ip' | 'load-balancer' | 'node-port';

export interface Frontend {
  /** `${family}|${protocol}|${address}|${port}`: stable across snapshots. */
  readonly key: string;
  readonly family: IPFamily;
  readonly protocol: FrontendProtocol;
  /** An IP, or '*' for a NodePort on every local address. */
  readonly address: string;
  readonly port: number;
  readonly kind: FrontendKind;
  /** The ServicePortPlan id. */
  readonly servicePortId: string;
  /** Some traffic to it is forwarded: it needs a listener. */
  readonly listen: boolean;
  /** The kernel rejects new connections to it (no endpoints: TCP RST / ICMP unreachable). */
  readonly reject: boolean;
  /** The kernel drops new connections from outside the cluster CIDR (Local policy, no local endpoint). */
  readonly dropExternal: boolean;
  /** The kernel drops new connections from everyone (internalTrafficPolicy Local, no local endpoint). */
  readonly dropAll: boolean;
  /** loadBalancerSourceRanges (LB IPs only): other sources are dropped. */
  readonly sourceRanges: readonly string[];
}

export interface FrontendSet {
  readonly frontends: readonly Frontend[];
  /** ClusterIPs per family: connections to an undefined port are rejected. */
  readonly clusterIPs: Readonly<Record<IPFamily, readonly string[]>>;
  /** Service ports not served (SCTP: userspace relays TCP and UDP only). */
  readonly unsupported: number;
}

export function frontendKey(
  family: IPFamily,
  protocol: FrontendProtocol,
  address: string,
  port: number,
): string {
  return `${family}|${protocol}|${address}|${port}`;
}

function validPort(p: number | undefined): p is number {
  return p !== undefined && Number.isInteger(p) && p >= 1 && p <= 65535;
}

function sameFamily(ip: string, family: IPFamily): boolean {
  const p = parseIP(ip);
  return p !== undefined && p.family === (family === 'IPv4' ? 1 : 2);
}

/** The node addresses NodePorts listen on: '*' for all, else the node IPs inside the CIDRs. */
export function nodePortAddressesOf(snapshot: Snapshot, family: IPFamily): readonly string[] {
  const npa = snapshot.nodePortAddresses[family];
  if (npa.kind === 'all') return ['*'];
  const cidrs = npa.cidrs.map(parseCIDR).filter((c) => c !== undefined);
  return snapshot.nodeIPs[family].filter((ip) => {
    const p = parseIP(ip);
    return p !== undefined && cidrs.some((c) => cidrContains(c, p.family, ...p.words));
  });
}

function verdictFlags(
  verdict: TrafficVerdict,
  shortCircuit: boolean,
): Pick<Frontend, 'listen' | 'reject' | 'dropExternal' | 'dropAll'> {
  switch (verdict) {
    case 'forward':
      return { listen: true, reject: false, dropExternal: false, dropAll: false };
    case 'reject':
      return { listen: false, reject: true, dropExternal: false, dropAll: false };
    case 'drop':
      // Pods and the node short-circuit to the cluster-wide endpoints; the rest is dropped.
      return shortCircuit
        ? { listen: true, reject: false, dropExternal: true, dropAll: false }
        : { listen: false, reject: false, dropExternal: false, dropAll: true };
  }
}

/** The frontends of one service port (none for SCTP). */
export function frontendsOfPlan(plan: ServicePortPlan, nodePortAddresses: readonly string[]): Frontend[] {
  if (plan.protocol !== 'TCP' && plan.protocol !== 'UDP') return [];
  const protocol: FrontendProtocol = plan.protocol;
  const out: Frontend[] = [];
  const add = (
    address: string,
    port: number,
    kind: FrontendKind,
    verdict: TrafficVerdict,
    ranges: readonly string[],
  ): void => {
    if (!validPort(port) || (address !== '*' && !sameFamily(address, plan.family))) return;
    const shortCircuit = kind !== 'cluster-ip' && plan.shortCircuitEndpoints.length > 0;
    out.push({
      key: frontendKey(plan.family, protocol, address, port),
      family: plan.family,
      protocol,
      address,
      port,
      kind,
      servicePortId: plan.id,
      ...verdictFlags(verdict, shortCircuit),
      sourceRanges: ranges,
    });
  };
  if (plan.clusterIP !== '' && plan.clusterIP !== 'None')
    add(plan.clusterIP, plan.port, 'cluster-ip', plan.internal, []);
  for (const ip of plan.externalIPs) add(ip, plan.port, 'external-ip', plan.external, []);
  for (const ip of plan.loadBalancerIPs)
    add(ip, plan.port, 'load-balancer', plan.external, plan.loadBalancerSourceRanges);
  if (plan.nodePort !== undefined) {
    for (const address of nodePortAddresses) add(address, plan.nodePort, 'node-port', plan.external, []);
  }
  return out;
}

/** Every frontend of the snapshot; the first plan to claim an (address, protocol, port) wins. */
export function frontendsOf(snapshot: Snapshot): FrontendSet {
  const byKey = new Map<string, Frontend>();
  const clusterIPs: Record<IPFamily, Set<string>> = { IPv4: new Set(), IPv6: new Set() };
  const npa: Record<IPFamily, readonly string[]> = {
    IPv4: nodePortAddressesOf(snapshot, 'IPv4'),
    IPv6: nodePortAddressesOf(snapshot, 'IPv6'),
  };
  let unsupported = 0;
  const ids = [...snapshot.servicePorts.keys()].sort();
  for (const id of ids) {
    const plan = snapshot.servicePorts.get(id);
    if (plan === undefined || !snapshot.families.includes(plan.family)) continue;
    if (plan.protocol !== 'TCP' && plan.protocol !== 'UDP') {
      unsupported++;
      continue;
    }
    if (plan.clusterIP !== '' && plan.clusterIP !== 'None' && sameFamily(plan.clusterIP, plan.family)) {
      clusterIPs[plan.family].add(plan.clusterIP);
    }
    for (const f of frontendsOfPlan(plan, npa[plan.family])) if (!byKey.has(f.key)) byKey.set(f.key, f);
  }
  return {
    frontends: [...byKey.values()],
    clusterIPs: { IPv4: [...clusterIPs.IPv4].sort(), IPv6: [...clusterIPs.IPv6].sort() },
    unsupported,
  };
}
