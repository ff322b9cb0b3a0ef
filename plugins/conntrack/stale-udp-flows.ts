/**
 * Which UDP conntrack entries a sync makes stale (kube-proxy pkg/proxy/conntrack/cleanup.go).
 * Pure. Shared by every kernel backend.
 *
 * - A UDP Service port that had no usable endpoint and now has one: entries to its ClusterIP,
 *   externalIPs, LB IPs and NodePort were created while it had nowhere to go (e.g. traffic that
 *   reached something else on the node) and would keep black-holing the client.
 * - An endpoint that traffic could reach before and cannot now: entries whose DNAT target is
 *   that endpoint (reply source = endpoint ip:port) for each of the port's destinations.
 */
import type { IPFamily, ServicePortPlan, Snapshot } from '../../core/model/snapshot.js';

export interface ConntrackDeletion {
  readonly family: IPFamily;
  /** Only UDP is cleaned (TCP/SCTP conntrack closes on its own with RST/ABORT). */
  readonly protocol: 'UDP';
  /** Original destination address (ClusterIP, externalIP, LB IP); absent for NodePorts. */
  readonly origDst?: string;
  /** Original destination port (Service port or NodePort). */
  readonly origPortDst: number;
  /** Only entries DNATed to this endpoint (reply source address and port). */
  readonly replySrc?: string;
  readonly replyPortSrc?: number;
}

function hasEndpoints(p: ServicePortPlan | undefined): boolean {
  return p !== undefined && (p.internal === 'forward' || p.external === 'forward');
}

interface Destination {
  readonly ip?: string;
  readonly port: number;
}

function destinations(p: ServicePortPlan): Destination[] {
  const out: Destination[] = [];
  if (p.clusterIP && p.clusterIP !== 'None') out.push({ ip: p.clusterIP, port: p.port });
  for (const ip of [...(p.externalIPs ?? []), ...(p.loadBalancerIPs ?? [])]) out.push({ ip, port: p.port });
  if (p.nodePort !== undefined) out.push({ port: p.nodePort });
  return out;
}

function reachable(p: ServicePortPlan | undefined): Map<string, { ip: string; port: number }> {
  const m = new Map<string, { ip: string; port: number }>();
  for (const e of p?.reachableEndpoints ?? []) m.set(`${e.ip}|${e.port}`, { ip: e.ip, port: e.port });
  return m;
}

/** Stale UDP flows between the last applied snapshot (`prev`) and the one just applied. */
export function staleUdpFlows(prev: Snapshot | undefined, next: Snapshot): ConntrackDeletion[] {
  const out = new Map<string, ConntrackDeletion>();
  const add = (d: ConntrackDeletion): void => {
    out.set(JSON.stringify(d), d);
  };
  // new or changed ports
  for (const [id, p] of next.servicePorts) {
    if (p.protocol !== 'UDP') continue;
    const before = prev?.servicePorts.get(id);
    if (before === p) continue;
    if (hasEndpoints(p) && !hasEndpoints(before)) {
      for (const d of destinations(p))
        add({ family: p.family, protocol: 'UDP', origDst: d.ip, origPortDst: d.port });
    }
    if (before && before.protocol === 'UDP') {
      const now = reachable(p);
      const gone = [...reachable(before).entries()].filter(([k]) => !now.has(k)).map(([, e]) => e);
      for (const e of gone) {
        for (const d of destinations(before)) {
          add({
            family: p.family,
            protocol: 'UDP',
            origDst: d.ip,
            origPortDst: d.port,
            replySrc: e.ip,
            replyPortSrc: e.port,
          });
        }
      }
    }
  }
  // removed ports: every endpoint is gone
  for (const [id, before] of prev?.servicePorts ?? []) {
    if (before.protocol !== 'UDP' || next.servicePorts.has(id)) continue;
    for (const e of reachable(before).values()) {
      for (const d of destinations(before)) {
        add({
          family: before.family,
          protocol: 'UDP',
          origDst: d.ip,
          origPortDst: d.port,
          replySrc: e.ip,
          replyPortSrc: e.port,
        });
      }
    }
  }
  return [...out.values()];
}

/** argv for `conntrack` deleting the flows of one ConntrackDeletion. */
export function conntrackArgs(d: ConntrackDeletion): string[] {
  const args = ['-D', '-f', d.family === 'IPv4' ? 'ipv4' : 'ipv6', '-p', 'udp'];
  if (d.origDst !== undefined) args.push('--orig-dst', d.origDst);
  args.push('--orig-port-dst', String(d.origPortDst));
  if (d.replySrc !== undefined) args.push('--reply-src', d.replySrc);
  if (d.replyPortSrc !== undefined) args.push('--reply-port-src', String(d.replyPortSrc));
  return args;
}
