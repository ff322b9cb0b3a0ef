/**
 * Address helpers for rendering: validation and CIDR normalization. Pure.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { IPFamily, Protocol } from '../../core/model/snapshot.js';
import { PROTOCOLS } from '../../core/model/snapshot.js';

export function validIP(family: IPFamily, ip: unknown): ip is string {
  if (typeof ip !== 'string') return false;
  return family === 'IPv4' ? isIPv4(ip) : isIPv6(ip) && !ip.includes('%');
}

export function validPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

export function validProtocol(protocol: unknown): protocol is Protocol {
  return typeof protocol === 'string' && (PROTOCOLS as readonly string[]).includes(protocol);
}

interface ParsedCIDR {
  readonly bits: number;
  readonly prefix: number;
  readonly value: bigint;
}

function ipToBigInt(family: IPFamily, ip: string): bigint {
  if (family === 'IPv4') {
    return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  let text = ip;
  // embedded IPv4 tail (::ffff:1.2.3.4)
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToBigInt('IPv4', v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headParts = head ? head.split(':').filter((p) => p !== '') : [];
  const tailParts = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...Array<string>(tail !== undefined ? missing : 0).fill('0'), ...tailParts];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}

function bigIntToIP(family: IPFamily, value: bigint): string {
  if (family === 'IPv4') {
    return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 0xffn).toString()).join('.');
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  // compress the longest run of zero groups
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

function parseCIDR(family: IPFamily, cidr: unknown): ParsedCIDR | undefined {
  if (typeof cidr !== 'string') return undefined;
  const slash = cidr.indexOf('/');
  const bits = family === 'IPv4' ? 32 : 128;
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  const prefixText = slash < 0 ? String(bits) : cidr.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bits || !validIP(family, ip)) return undefined;
  const all = (1n << BigInt(bits)) - 1n;
  const mask = prefix === 0 ? 0n : (all << BigInt(bits - prefix)) & all;
  return { bits, prefix, value: ipToBigInt(family, ip) & mask };
}

function contains(outer: ParsedCIDR, inner: ParsedCIDR): boolean {
  if (outer.prefix > inner.prefix) return false;
  const shift = BigInt(outer.bits - outer.prefix);
  return outer.prefix === 0 || inner.value >> shift === outer.value >> shift;
}

/**
 * Valid CIDRs of the family (a bare address becomes /32 or /128), host bits cleared, and
 * with every range already covered by another one removed, sorted. Invalid entries are
 * dropped (the count is returned so callers can report it).
 */
export function normalizeCIDRs(
  family: IPFamily,
  cidrs: readonly unknown[],
): { cidrs: string[]; invalid: number } {
  const parsed: ParsedCIDR[] = [];
  let invalid = 0;
  for (const c of cidrs) {
    const p = parseCIDR(family, c);
    if (p) parsed.push(p);
    else invalid++;
  }
  parsed.sort((a, b) => a.prefix - b.prefix || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  const kept: ParsedCIDR[] = [];
  for (const p of parsed) {
    if (!kept.some((k) => contains(k, p))) kept.push(p);
  }
  return { cidrs: kept.map((k) => `${bigIntToIP(family, k.value)}/${k.prefix}`), invalid };
}

/**
 * The address in the one spelling nft parses back (IPv6 compressed, lower-case, no embedded
 * IPv4 tail), or undefined when it is not an address of the family.
 */
export function canonicalIP(family: IPFamily, ip: unknown): string | undefined {
  if (!validIP(family, ip)) return undefined;
  if (family === 'IPv4') return ip;
  return bigIntToIP(family, ipToBigInt(family, ip.toLowerCase()));
}
