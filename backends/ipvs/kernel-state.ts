/**
 * Parsers for what the kernel holds (`ipvsadm -Sn`, `ipset save`, `ip -o addr show`,
 * `ipvsadm -Ln`), and the rule that tells our virtual servers from anyone else's. Pure.
 *
 * Only full syncs, drain checks and cleanup list the kernel; partial syncs work from memory.
 */
import type { IPFamily, PerFamily, Protocol } from '../../core/model/snapshot.js';
import { normalizeIP, ipFamilyOf } from '../../core/net/ip.js';
import { IPVS_INTERFACE, parseSetName } from './names.js';
import { realKey, vsKey, type KernelState, type RealServer, type VirtualServer } from './render.js';

const PROTO_FLAG: Readonly<Record<string, Protocol>> = { '-t': 'TCP', '-u': 'UDP', '--sctp-service': 'SCTP' };

function splitHostPort(text: string): { ip: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const ip = normalizeIP(m[1]);
  const port = Number(m[2]);
  return ip !== undefined && port >= 0 && port <= 65535 ? { ip, port } : undefined;
}

/** Every virtual server in `ipvsadm -Sn` output (fwmark services are ignored). */
export function parseIpvsSave(text: string): VirtualServer[] {
  const byKey = new Map<string, { vs: Omit<VirtualServer, 'reals'>; reals: Map<string, RealServer> }>();
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    const op = t[0];
    if (op !== '-A' && op !== '-a') continue;
    const protocol = PROTO_FLAG[t[1] ?? ''];
    const hp = splitHostPort(t[2] ?? '');
    if (!protocol || !hp) continue;
    const key = vsKey(protocol, hp.ip, hp.port);
    const opt = (name: string): string | undefined => {
      const i = t.indexOf(name);
      return i >= 0 ? t[i + 1] : undefined;
    };
    if (op === '-A') {
      const p = opt('-p');
      byKey.set(key, {
        vs: {
          family: ipFamilyOf(hp.ip) ?? 'IPv4',
          protocol,
          ip: hp.ip,
          port: hp.port,
          scheduler: opt('-s') ?? 'wlc',
          ...(p !== undefined ? { persistenceSeconds: Number(p) } : {}),
        },
        reals: new Map(),
      });
    } else {
      const r = splitHostPort(opt('-r') ?? '');
      const entry = byKey.get(key);
      if (!r || !entry) continue;
      entry.reals.set(realKey(r.ip, r.port), { ip: r.ip, port: r.port, weight: Number(opt('-w') ?? '1') });
    }
  }
  return [...byKey.values()].map(({ vs, reals }) => ({ ...vs, reals }));
}

/** Our sets and their members from `ipset save` output (`SETNAME member`). */
export function parseIpsetSave(text: string): { sets: Set<string>; entries: Set<string> } {
  const sets = new Set<string>();
  const entries = new Set<string>();
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t.length < 2 || !parseSetName(t[1] ?? '')) continue;
    if (t[0] === 'create') sets.add(t[1]!);
    else if (t[0] === 'add' && t[2] !== undefined) entries.add(`${t[1]} ${normalizeMember(t[2])}`);
  }
  return { sets, entries };
}

/** IPv6 members as canonical text, so they compare equal to what render writes. */
function normalizeMember(member: string): string {
  return member
    .split(',')
    .map((part) => {
      const [addr, len] = part.split('/');
      if (
        addr === undefined ||
        !addr.includes(':') ||
        addr.startsWith('tcp:') ||
        addr.startsWith('udp:') ||
        addr.startsWith('sctp:')
      )
        return part;
      const ip = normalizeIP(addr);
      return ip === undefined ? part : len !== undefined ? `${ip}/${len}` : ip;
    })
    .join(',');
}

export interface ParsedAddresses {
  /** Addresses of our interface; undefined when it does not exist. */
  readonly own: string[] | undefined;
  /** Other global addresses (not loopback, not IPv6 link-local), per family. */
  readonly local: PerFamily<string[]>;
}

/** `ip -o addr show` output → our interface's addresses and the node's other addresses. */
export function parseAddresses(text: string): ParsedAddresses {
  let own: string[] | undefined;
  const local: { IPv4: string[]; IPv6: string[] } = { IPv4: [], IPv6: [] };
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+([^\s:@]+)(?:@\S+)?\s+(inet6?)\s+([^/\s]+)\/\d+(.*)$/.exec(line);
    if (!m) continue;
    const [, dev, , addrText, rest] = m;
    const ip = normalizeIP(addrText);
    if (ip === undefined) continue;
    if (dev === IPVS_INTERFACE) {
      (own ??= []).push(ip);
      continue;
    }
    const family: IPFamily | undefined = ipFamilyOf(ip);
    if (!family) continue;
    if (/\bscope (host|link)\b/.test(rest ?? '')) continue;
    if (family === 'IPv4' && ip.startsWith('127.')) continue;
    if (family === 'IPv6' && (ip === '::1' || /^fe[89ab]/i.test(ip))) continue;
    local[family].push(ip);
  }
  return { own, local };
}

/**
 * Ours: a virtual server on an address of our interface, or one whose destination is a member
 * of one of our destination sets (NodePorts live on the node's own addresses; the NODE-PORT sets,
 * which survive a restart in the kernel, say which of those we created). Everything else in IPVS
 * belongs to someone else and is never touched.
 */
export function isOwnVirtualServer(
  vs: VirtualServer,
  ownAddresses: ReadonlySet<string>,
  entries: ReadonlySet<string>,
): boolean {
  if (ownAddresses.has(vs.ip)) return true;
  const member = `${vs.ip},${vs.protocol.toLowerCase()}:${vs.port}`;
  const prefix = vs.family === 'IPv4' ? 'SYV-' : 'SYV6-';
  for (const kind of [
    'NODE-PORT',
    'NODE-PORT-LOCAL',
    'CLUSTER-IP',
    'EXTERNAL-IP',
    'EXTERNAL-IP-LOCAL',
    'LOAD-BALANCER',
  ]) {
    if (entries.has(`${prefix}${kind} ${member}`)) return true;
  }
  return false;
}

/**
 * The kernel state the backend sees, from the three listings; `interfaceExists` from
 * `ip link show` (an interface without addresses does not show in `ip -o addr`).
 */
export function kernelStateFrom(
  ipvsSave: string,
  ipsetSave: string,
  addrShow: string,
  interfaceExists: boolean,
): KernelState {
  const { sets, entries } = parseIpsetSave(ipsetSave);
  const addrs = parseAddresses(addrShow);
  const own = new Set(addrs.own ?? []);
  const virtualServers = new Map<string, VirtualServer>();
  for (const vs of parseIpvsSave(ipvsSave)) {
    if (isOwnVirtualServer(vs, own, entries)) virtualServers.set(vsKey(vs.protocol, vs.ip, vs.port), vs);
  }
  return {
    virtualServers,
    entries,
    sets,
    addresses: own,
    interfaceExists: interfaceExists || addrs.own !== undefined,
    localAddresses: addrs.local,
  };
}

export interface RealServerConnections {
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  readonly active: number;
  readonly inactive: number;
}

/** Real servers and their connection counts from `ipvsadm -Ln [-t X]` output. */
export function parseConnections(text: string): Map<string, Map<string, RealServerConnections>> {
  const out = new Map<string, Map<string, RealServerConnections>>();
  let current: Map<string, RealServerConnections> | undefined;
  for (const line of text.split('\n')) {
    const svc = /^(TCP|UDP|SCTP)\s+(\S+)\s/.exec(line);
    if (svc) {
      const hp = splitHostPort(svc[2] ?? '');
      current = undefined;
      if (hp) {
        current = new Map();
        out.set(vsKey(svc[1] as Protocol, hp.ip, hp.port), current);
      }
      continue;
    }
    const real = /^\s+->\s+(\S+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (real && current) {
      const hp = splitHostPort(real[1] ?? '');
      if (!hp) continue;
      current.set(realKey(hp.ip, hp.port), {
        ...hp,
        weight: Number(real[2]),
        active: Number(real[3]),
        inactive: Number(real[4]),
      });
    }
  }
  return out;
}
