/**
 * The one IP and CIDR parser/formatter of switchyard. Everything that turns address text into
 * numbers or back goes through here: the planner (API objects), the flag and config parsers
 * (core/config/net-parse.ts), the renderers (e.g. backends/nftables/addr.ts) and the matcher
 * (matcher/src/ip.ts, which packs the bytes into 32-bit words).
 *
 * Pure functions, no exceptions: a malformed value yields `undefined` and the caller decides
 * what to skip. By default parsing is as lenient as Go's `netutils.ParseIPSloppy` /
 * `ParseCIDRSloppy`, which kube-proxy uses on API objects:
 * - IPv4 octets may carry leading zeros and are read as DECIMAL ("010.1.1.1" is 10.1.1.1),
 *   because objects created before Kubernetes 1.20 validation may contain them;
 * - an IPv4-mapped IPv6 address ("::ffff:10.0.0.1") is an IPv4 address, as in Go
 *   (`net.IP.To4()` succeeds, so kube-proxy sorts it into the IPv4 family);
 * - a CIDR may have host bits set ("10.0.0.1/8"); it is normalized to its network
 *   ("10.0.0.0/8"), as Go's `ParseCIDR` returns it.
 * Zones ("fe80::1%eth0"), brackets and surrounding whitespace are rejected (callers trim
 * where the API allows padding, e.g. loadBalancerSourceRanges).
 *
 * Two options select the other dialects (see ParseIPOptions):
 * - `strict` rejects IPv4 groups with leading zeros ("010.0.0.1", also in an IPv6 address's
 *   IPv4 tail), as Go's `netip.ParseAddr` and Node's `net.isIPv4`/`isIPv6` do; flags and the
 *   config file are parsed strictly;
 * - `keepMapped` keeps "::ffff:a.b.c.d" a 16-byte IPv6 address (as `netip` and Node do)
 *   instead of reading it as IPv4 (and a CIDR on it keeps its IPv6 prefix length).
 * `parseIPStrict` sets both: it accepts exactly what Node's `net.isIP` accepts, minus zones.
 *
 * Canonical text: dotted decimal for IPv4; RFC 5952 for IPv6 (lower case, no leading zeros,
 * the longest run of two or more zero groups compressed to "::", the first on a tie).
 */
import type { IPFamily } from '../model/snapshot.js';

export interface ParsedIP {
  readonly family: IPFamily;
  /** 4 bytes for IPv4, 16 for IPv6. */
  readonly bytes: readonly number[];
}

export interface ParsedCIDR {
  readonly family: IPFamily;
  /** The network address (host bits cleared). */
  readonly network: ParsedIP;
  readonly prefixLength: number;
}

export interface ParseIPOptions {
  /** Reject IPv4 groups with leading zeros (Go's netip, Node's net.isIP); default: read them as decimal. */
  readonly strict?: boolean;
  /** Keep IPv4-mapped IPv6 addresses ("::ffff:1.2.3.4") as IPv6; default: they are IPv4. */
  readonly keepMapped?: boolean;
}

export interface ParseCIDROptions extends ParseIPOptions {
  /** Accept a bare address as a host route (/32 or /128); default: the "/prefix" is required. */
  readonly bareAddress?: boolean;
}

function parseIPv4Bytes(text: string, strict: boolean): number[] | undefined {
  // Hand-rolled (this runs for every endpoint address): four groups of 1-3 decimal digits.
  const bytes: number[] = [];
  let value = 0;
  let digits = 0;
  let leadingZero = false;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; /* '.' terminates the last group */
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return undefined;
      if (digits === 1) leadingZero = c === 48;
      value = value * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || value > 255 || bytes.length === 4) return undefined;
      if (strict && leadingZero && digits > 1) return undefined;
      bytes.push(value);
      value = 0;
      digits = 0;
    } else {
      return undefined;
    }
  }
  return bytes.length === 4 ? bytes : undefined;
}

function parseIPv6Bytes(text: string, strict: boolean): number[] | undefined {
  if (text.length === 0 || text.includes('%')) return undefined;
  let body = text;
  let tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  if (lastColon < 0) return undefined;
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIPv4Bytes(last, strict);
    if (!v4) return undefined;
    tail = v4;
    body = body.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::", "a:b::1.2.3.4" leaves "a:b::", "a:b:c:d:e:f:1.2.3.4" leaves "...f:".
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1);
  }
  const doubleColon = body.indexOf('::');
  if (doubleColon >= 0 && body.indexOf('::', doubleColon + 1) >= 0) return undefined;
  const groupsOf = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const wanted = tail.length ? 6 : 8;
  let groups: number[];
  if (doubleColon >= 0) {
    const left = groupsOf(body.slice(0, doubleColon));
    const right = groupsOf(body.slice(doubleColon + 2));
    if (!left || !right) return undefined;
    const missing = wanted - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    const all = groupsOf(body);
    if (!all || all.length !== wanted) return undefined;
    groups = all;
  }
  const bytes: number[] = [];
  for (const g of groups) bytes.push((g >> 8) & 0xff, g & 0xff);
  bytes.push(...tail);
  return bytes.length === 16 ? bytes : undefined;
}

function isV4Mapped(bytes: readonly number[]): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Parses an IPv4 or IPv6 address: leniently like kube-proxy on API objects unless `options`
 * say otherwise (see the module comment for the accepted forms).
 */
export function parseIP(text: string | undefined, options?: ParseIPOptions): ParsedIP | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return undefined;
  const strict = options?.strict === true;
  if (text.includes(':')) {
    const bytes = parseIPv6Bytes(text, strict);
    if (!bytes) return undefined;
    if (options?.keepMapped !== true && isV4Mapped(bytes)) return { family: 'IPv4', bytes: bytes.slice(12) };
    return { family: 'IPv6', bytes };
  }
  const bytes = parseIPv4Bytes(text, strict);
  return bytes ? { family: 'IPv4', bytes } : undefined;
}

const STRICT: ParseIPOptions = { strict: true, keepMapped: true };

/**
 * Parses an address the way Go's `netip.ParseAddr` and Node's `net.isIP` read it (for flags and
 * the config file): no leading zeros in IPv4 groups, "::ffff:a.b.c.d" stays IPv6, no zones.
 */
export function parseIPStrict(text: string | undefined): ParsedIP | undefined {
  return parseIP(text, STRICT);
}

/**
 * The 32-bit value of `text` when it is an IPv4 address in canonical form (four decimal groups
 * 0-255 without leading zeros, nothing else), or -1. A fast path for hot callers (every
 * endpoint address of every slice): for such text parseIP gives these bytes and formatIP gives
 * the text back, so they can skip the round trip; anything else returns -1 and goes through
 * parseIP as usual.
 */
export function canonicalIPv4Value(text: string): number {
  const n = text.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let group = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + group;
      dots++;
      group = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && group === 0) return -1; // a leading zero
      group = group * 10 + (c - 48);
      if (++digits > 3 || group > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + group;
}

/** Canonical text of a parsed address. */
export function formatIP(ip: ParsedIP): string {
  if (ip.family === 'IPv4') {
    const b = ip.bytes;
    return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0));
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
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** The canonical form of an address, or undefined when it is not a valid IP. */
export function normalizeIP(text: string | undefined): string | undefined {
  if (typeof text === 'string' && canonicalIPv4Value(text) >= 0) return text;
  const ip = parseIP(text);
  return ip ? formatIP(ip) : undefined;
}

/** The family of an address, or undefined when it is not a valid IP. */
export function ipFamilyOf(text: string | undefined): IPFamily | undefined {
  return parseIP(text)?.family;
}

/**
 * Parses "address/prefix" (the address as parseIP reads it with the same `options`); the
 * address's host bits are cleared. With `bareAddress`, "address" alone is a host route.
 */
export function parseCIDR(text: string | undefined, options?: ParseCIDROptions): ParsedCIDR | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) {
    if (options?.bareAddress !== true) return undefined;
    const ip = parseIP(text, options);
    return ip && { family: ip.family, network: ip, prefixLength: ip.bytes.length * 8 };
  }
  if (slash !== text.lastIndexOf('/')) return undefined;
  const ip = parseIP(text.slice(0, slash), options);
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^[0-9]{1,3}$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  const bits = ip.bytes.length * 8;
  // An IPv4-mapped address with a /96+ prefix (Go accepts "::ffff:1.2.3.0/120") keeps its
  // meaning on the IPv4 address.
  let prefix = prefixLength;
  if (ip.family === 'IPv4' && text.slice(0, slash).includes(':')) {
    if (prefixLength < 96 || prefixLength > 128) return undefined;
    prefix = prefixLength - 96;
  } else if (prefixLength > bits) {
    return undefined;
  }
  return { family: ip.family, network: maskIP(ip, prefix), prefixLength: prefix };
}

function maskIP(ip: ParsedIP, prefixLength: number): ParsedIP {
  const bytes = ip.bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  return { family: ip.family, bytes };
}

/** Canonical text of a CIDR: "network/prefix". */
export function formatCIDR(cidr: ParsedCIDR): string {
  return `${formatIP(cidr.network)}/${cidr.prefixLength}`;
}

/** The canonical form of a CIDR ("10.0.0.1/8" becomes "10.0.0.0/8"), or undefined. */
export function normalizeCIDR(text: string | undefined): string | undefined {
  const cidr = parseCIDR(text);
  return cidr ? formatCIDR(cidr) : undefined;
}

/** The family of a CIDR, or undefined when it is not a valid CIDR. */
export function cidrFamilyOf(text: string | undefined): IPFamily | undefined {
  return parseCIDR(text)?.family;
}

/** True when the CIDR covers the whole address space of its family (0.0.0.0/0, ::/0). */
export function isZeroCIDR(cidr: ParsedCIDR | string): boolean {
  const parsed = typeof cidr === 'string' ? parseCIDR(cidr) : cidr;
  return parsed !== undefined && parsed.prefixLength === 0;
}

/** Whether `ip` lies inside `cidr` (false across families or for invalid input). */
export function cidrContains(cidr: ParsedCIDR | string, ip: ParsedIP | string): boolean {
  const c = typeof cidr === 'string' ? parseCIDR(cidr) : cidr;
  const a = typeof ip === 'string' ? parseIP(ip) : ip;
  if (!c || !a || c.family !== a.family) return false;
  const masked = maskIP(a, c.prefixLength);
  return masked.bytes.every((b, i) => b === c.network.bytes[i]);
}

/** A CIDR holding exactly one address: "a.b.c.d/32" or "x::y/128". */
export function hostCIDR(ip: ParsedIP | string): string | undefined {
  const a = typeof ip === 'string' ? parseIP(ip) : ip;
  if (!a) return undefined;
  return `${formatIP(a)}/${a.family === 'IPv4' ? 32 : 128}`;
}

/** Orders addresses: IPv4 before IPv6, then numerically. */
export function compareIPs(a: ParsedIP, b: ParsedIP): number {
  if (a.bytes.length !== b.bytes.length) return a.bytes.length - b.bytes.length;
  for (let i = 0; i < a.bytes.length; i++) {
    const d = (a.bytes[i] ?? 0) - (b.bytes[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Orders address strings numerically (IPv4 first); invalid strings sort last, by text.
 * Meant for canonical strings, e.g. to sort endpoint lists deterministically.
 */
export function compareIPStrings(a: string, b: string): number {
  const pa = parseIP(a);
  const pb = parseIP(b);
  if (pa && pb) return compareIPs(pa, pb);
  if (pa) return -1;
  if (pb) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
