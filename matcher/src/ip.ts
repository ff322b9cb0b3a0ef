/**
 * Addresses as numbers, the way the matcher sees them: a family (1 = IPv4, 2 = IPv6) and four
 * unsigned 32-bit words. IPv4 puts the address in word 0 (words 1-3 are 0); IPv6 puts its 128
 * bits in the four words, most significant first.
 */
import type { IPFamily } from '../../core/model/snapshot.js';

export type FamilyCode = 1 | 2;
export const FAMILY_IPV4: FamilyCode = 1;
export const FAMILY_IPV6: FamilyCode = 2;

export interface IPWords {
  readonly family: FamilyCode;
  readonly words: readonly [number, number, number, number];
}

export interface CIDRWords extends IPWords {
  /** Prefix length; `words` are already masked to it. */
  readonly prefix: number;
}

export function familyCode(family: IPFamily): FamilyCode {
  return family === 'IPv6' ? FAMILY_IPV6 : FAMILY_IPV4;
}

function parseIPv4Value(s: string): number | undefined {
  // by hand: this runs for every address of every snapshot
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (++digits > 3) return undefined;
      part = part * 10 + (c - 48);
      if (part > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return (v * 256 + part) >>> 0;
}

function parseIPv6Words(input: string): [number, number, number, number] | undefined {
  let s = input;
  const zone = s.indexOf('%');
  if (zone >= 0) return undefined;
  const groups: number[] = [];
  // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) >= 0) {
    const v4 = parseIPv4Value(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0] ?? '');
  if (head === undefined) return undefined;
  if (halves.length === 2) {
    const tail = parseGroups(halves[1] ?? '');
    if (tail === undefined || head.length + tail.length > 7) return undefined;
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    if (head.length !== 8) return undefined;
    groups.push(...head);
  }
  const w = (i: number): number => (((groups[2 * i] ?? 0) << 16) | (groups[2 * i + 1] ?? 0)) >>> 0;
  return [w(0), w(1), w(2), w(3)];
}

/** Parse an IPv4 or IPv6 address; undefined when it is not one. */
export function parseIP(s: string): IPWords | undefined {
  if (s.includes(':')) {
    const words = parseIPv6Words(s);
    return words === undefined ? undefined : { family: FAMILY_IPV6, words };
  }
  const v = parseIPv4Value(s);
  return v === undefined ? undefined : { family: FAMILY_IPV4, words: [v, 0, 0, 0] };
}

/** Keep the first `bits` bits of a word (bits may be outside 0..32). */
export function maskWord(w: number, bits: number): number {
  if (bits >= 32) return w >>> 0;
  if (bits <= 0) return 0;
  return (w & (0xffffffff << (32 - bits))) >>> 0;
}

/** Parse a CIDR ("10.0.0.0/8", "2001:db8::/32"); a bare address is a host route. */
export function parseCIDR(s: string): CIDRWords | undefined {
  const slash = s.indexOf('/');
  const ip = parseIP(slash >= 0 ? s.slice(0, slash) : s);
  if (ip === undefined) return undefined;
  const max = ip.family === FAMILY_IPV4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  const [a, b, c, d] = ip.words;
  const words: [number, number, number, number] = [
    maskWord(a, prefix),
    maskWord(b, prefix - 32),
    maskWord(c, prefix - 64),
    maskWord(d, prefix - 96),
  ];
  return { family: ip.family, prefix, words };
}

/** Whether the address is inside the CIDR (families must match). */
export function cidrContains(
  cidr: CIDRWords,
  family: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): boolean {
  if (cidr.family !== family) return false;
  const p = cidr.prefix;
  const [a, b, c, d] = cidr.words;
  if (maskWord(w0, p) !== a) return false;
  if (family === FAMILY_IPV6) {
    if (maskWord(w1, p - 32) !== b || maskWord(w2, p - 64) !== c || maskWord(w3, p - 96) !== d) return false;
  }
  return true;
}

/** Format words back to text (IPv6 in canonical compressed form). */
export function formatIP(family: number, w0: number, w1: number, w2: number, w3: number): string {
  if (family === FAMILY_IPV4) {
    return [w0 >>> 24, (w0 >>> 16) & 255, (w0 >>> 8) & 255, w0 & 255].join('.');
  }
  const groups: number[] = [];
  for (const w of [w0, w1, w2, w3]) groups.push((w >>> 16) & 0xffff, w & 0xffff);
  // longest run of zero groups (length >= 2) becomes '::'
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
