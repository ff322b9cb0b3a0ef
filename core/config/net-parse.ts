/**
 * Small, strict parsers for the addresses that appear in flags and the config file: IPs,
 * CIDRs and host:port pairs. Pure functions; they return undefined (or a reason) instead of
 * throwing so that callers can phrase the error with the flag's name.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type AddressFamily = 'IPv4' | 'IPv6';

export interface ParsedIP {
  readonly family: AddressFamily;
  /** 4 or 16 bytes. */
  readonly bytes: readonly number[];
}

/** Parses an IPv4 (dotted quad, no leading zeros) or IPv6 address; no zone, no brackets. */
export function parseIP(text: string): ParsedIP | undefined {
  if (isIPv4(text)) {
    const parts = text.split('.');
    // Go's netip rejects leading zeros ("010.0.0.1"); node's isIPv4 already does too.
    return { family: 'IPv4', bytes: parts.map((p) => Number(p)) };
  }
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let head = text;
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    tailV4 = tail.split('.').map((p) => Number(p));
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groupsOf = (s: string | undefined): number[] =>
    s === undefined || s === '' ? [] : s.split(':').map((g) => parseInt(g, 16));
  const l = groupsOf(left);
  const r = groupsOf(right);
  const groups =
    right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  if (groups.length !== 8) return undefined;
  const bytes: number[] = [];
  for (const g of groups) bytes.push((g >> 8) & 0xff, g & 0xff);
  if (tailV4.length === 4) bytes.splice(12, 4, ...tailV4);
  return { family: 'IPv6', bytes };
}

/** Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6. */
export function formatIP(ip: ParsedIP): string {
  if (ip.family === 'IPv4') return ip.bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  // Longest run of zero groups (length >= 2), first one wins on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

/** The IP in canonical form, or undefined when it is not an IP. */
export function normalizeIP(text: string): string | undefined {
  const ip = parseIP(text.trim());
  return ip === undefined ? undefined : formatIP(ip);
}

export interface ParsedCIDR {
  readonly family: AddressFamily;
  /** Canonical network form, host bits cleared (as Go's net.ParseCIDR returns it). */
  readonly cidr: string;
  readonly prefixLength: number;
}

/** Parses `ip/prefix`; host bits are cleared in the canonical form. */
export function parseCIDR(text: string): ParsedCIDR | undefined {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(trimmed.slice(0, slash));
  const prefixText = trimmed.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  const maxBits = ip.bytes.length * 8;
  if (prefixLength > maxBits) return undefined;
  const masked = ip.bytes.map((b, i) => {
    const bitsHere = Math.max(0, Math.min(8, prefixLength - i * 8));
    const mask = bitsHere === 0 ? 0 : (0xff << (8 - bitsHere)) & 0xff;
    return b & mask;
  });
  return {
    family: ip.family,
    cidr: `${formatIP({ family: ip.family, bytes: masked })}/${prefixLength}`,
    prefixLength,
  };
}

export interface HostPort {
  /** Canonical IP. */
  readonly host: string;
  readonly family: AddressFamily;
  readonly port: number;
}

/** Parses a port number 0..65535 (decimal digits only). */
export function parsePort(text: string, allowZero = true): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  if (port > 65535 || (!allowZero && port === 0)) return undefined;
  return port;
}

/** Parses `ip:port` or `[ipv6]:port` (as Go's net.SplitHostPort, host must be an IP). */
export function parseHostPort(text: string, allowZeroPort = true): HostPort | string {
  const t = text.trim();
  let hostText: string;
  let portText: string;
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0 || t[close + 1] !== ':') return `"${text}" is not in host:port form`;
    hostText = t.slice(1, close);
    portText = t.slice(close + 2);
    if (parseIP(hostText)?.family !== 'IPv6') return `"${hostText}" is not an IPv6 address`;
  } else {
    const colon = t.lastIndexOf(':');
    if (colon < 0) return `"${text}" is not in host:port form`;
    hostText = t.slice(0, colon);
    portText = t.slice(colon + 1);
    if (hostText.includes(':')) return `"${text}": IPv6 addresses need brackets ([addr]:port)`;
  }
  const ip = parseIP(hostText);
  if (ip === undefined) return `"${hostText}" is not an IP address`;
  const port = parsePort(portText, allowZeroPort);
  if (port === undefined) return `"${portText}" is not a valid port`;
  return { host: formatIP(ip), family: ip.family, port };
}

/** Formats host and port, bracketing IPv6 hosts. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
