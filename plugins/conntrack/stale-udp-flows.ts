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
  /** Original source (one precise flow; set by the start-up sweep). */
  readonly origSrc?: string;
  readonly origPortSrc?: number;
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
  if (d.origSrc !== undefined) args.push('--orig-src', d.origSrc);
  if (d.origPortSrc !== undefined) args.push('--orig-port-src', String(d.origPortSrc));
  if (d.origDst !== undefined) args.push('--orig-dst', d.origDst);
  args.push('--orig-port-dst', String(d.origPortDst));
  if (d.replySrc !== undefined) args.push('--reply-src', d.replySrc);
  if (d.replyPortSrc !== undefined) args.push('--reply-port-src', String(d.replyPortSrc));
  return args;
}

interface ListedFlow {
  readonly origSrc: string;
  readonly origDst: string;
  readonly origPortSrc: number;
  readonly origPortDst: number;
  readonly replySrc: string;
}

/** Parses `conntrack -L -p udp` output (one flow per line; the first tuple is the original). */
export function parseConntrackList(text: string): ListedFlow[] {
  const out: ListedFlow[] = [];
  for (const line of text.split('\n')) {
    if (!/^\s*udp\s/.test(line)) continue;
    const src = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1]!);
    const dst = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => m[1]!);
    const sport = [...line.matchAll(/\bsport=(\d+)/g)].map((m) => Number(m[1]));
    const dport = [...line.matchAll(/\bdport=(\d+)/g)].map((m) => Number(m[1]));
    if (src.length < 2 || dst.length < 1 || sport.length < 1 || dport.length < 1) continue;
    out.push({
      origSrc: src[0]!,
      origDst: dst[0]!,
      origPortSrc: sport[0]!,
      origPortDst: dport[0]!,
      replySrc: src[1]!,
    });
  }
  return out;
}

/**
 * The start-up sweep (no previous snapshot in this process): UDP flows to a destination of a
 * UDP Service port that now has endpoints, and that were NOT DNATed (their reply comes from
 * the very address they were sent to), were created while nothing handled the Service (say,
 * before switchyard started) and would black-hole the client until they time out. Flows that
 * were DNATed to an endpoint are left alone, so a restart does not disturb live UDP traffic.
 * `listing` is `conntrack -L -p udp -f <family>` output for `family`.
 */
export function unhandledUdpFlows(next: Snapshot, family: IPFamily, listing: string): ConntrackDeletion[] {
  const byIP = new Set<string>();
  const byNodePort = new Set<number>();
  for (const p of next.servicePorts.values()) {
    if (p.protocol !== 'UDP' || p.family !== family || !hasEndpoints(p)) continue;
    for (const d of destinations(p)) {
      if (d.ip === undefined) byNodePort.add(d.port);
      else byIP.add(`${d.ip}|${d.port}`);
    }
  }
  const out: ConntrackDeletion[] = [];
  for (const f of parseConntrackList(listing)) {
    if (f.replySrc !== f.origDst) continue; // DNATed (or otherwise rewritten): not ours to judge
    if (!byIP.has(`${f.origDst}|${f.origPortDst}`) && !byNodePort.has(f.origPortDst)) continue;
    out.push({
      family,
      protocol: 'UDP',
      origSrc: f.origSrc,
      origPortSrc: f.origPortSrc,
      origDst: f.origDst,
      origPortDst: f.origPortDst,
    });
  }
  return out;
}
