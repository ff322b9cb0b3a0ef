/**
 * Address helpers for rendering: validation and CIDR normalization. Pure. Parsing and the
 * canonical text come from core/net/ip.ts, in its strict dialect (what nft itself accepts:
 * no leading zeros, "::ffff:a.b.c.d" is an IPv6 address, no zones).
 */
import type { IPFamily, Protocol } from '../../core/model/snapshot.js';
import { PROTOCOLS } from '../../core/model/snapshot.js';
import {
  cidrContains,
  compareIPs,
  formatCIDR,
  formatIP,
  parseCIDR,
  canonicalIPv4Value,
  parseIPStrict,
  type ParseCIDROptions,
  type ParsedCIDR,
} from '../../core/net/ip.js';

export function validIP(family: IPFamily, ip: unknown): ip is string {
  return typeof ip === 'string' && parseIPStrict(ip)?.family === family;
}

export function validPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

export function validProtocol(protocol: unknown): protocol is Protocol {
  return typeof protocol === 'string' && (PROTOCOLS as readonly string[]).includes(protocol);
}

const CIDR_OPTIONS: ParseCIDROptions = { strict: true, keepMapped: true, bareAddress: true };

function parseFamilyCIDR(family: IPFamily, cidr: unknown): ParsedCIDR | undefined {
  if (typeof cidr !== 'string') return undefined;
  const parsed = parseCIDR(cidr, CIDR_OPTIONS);
  return parsed?.family === family ? parsed : undefined;
}

function contains(outer: ParsedCIDR, inner: ParsedCIDR): boolean {
  return outer.prefixLength <= inner.prefixLength && cidrContains(outer, inner.network);
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
    const p = parseFamilyCIDR(family, c);
    if (p) parsed.push(p);
    else invalid++;
  }
  parsed.sort((a, b) => a.prefixLength - b.prefixLength || compareIPs(a.network, b.network));
  const kept: ParsedCIDR[] = [];
  for (const p of parsed) {
    if (!kept.some((k) => contains(k, p))) kept.push(p);
  }
  return { cidrs: kept.map(formatCIDR), invalid };
}

/**
 * The address in the one spelling nft parses back (IPv6 compressed, lower-case, no embedded
 * IPv4 tail), or undefined when it is not an address of the family.
 */
export function canonicalIP(family: IPFamily, ip: unknown): string | undefined {
  if (typeof ip !== 'string') return undefined;
  // Nearly every address is already canonical IPv4: skip the parse/format round trip for those.
  if (family === 'IPv4' && canonicalIPv4Value(ip) >= 0) return ip;
  const parsed = parseIPStrict(ip);
  return parsed?.family === family ? formatIP(parsed) : undefined;
}
