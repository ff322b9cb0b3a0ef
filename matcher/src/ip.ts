/**
 * Addresses as numbers, the way the matcher sees them: a family (1 = IPv4, 2 = IPv6) and four
 * unsigned 32-bit words. IPv4 puts the address in word 0 (words 1-3 are 0); IPv6 puts its 128
 * bits in the four words, most significant first.
 *
 * Text is parsed and formatted by core/net/ip.ts (its lenient dialect, but an IPv4-mapped
 * "::ffff:a.b.c.d" stays an IPv6 address here: the matcher compares exactly what it is given);
 * this module only converts between its bytes and the words.
 */
import type { IPFamily } from '../../core/model/snapshot.js';
import {
  formatIP as formatParsedIP,
  parseCIDR as parseParsedCIDR,
  parseIP as parseParsedIP,
  type ParseCIDROptions,
  type ParseIPOptions,
  type ParsedIP,
} from '../../core/net/ip.js';

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

const PARSE: ParseIPOptions = { keepMapped: true };
const PARSE_CIDR: ParseCIDROptions = { keepMapped: true, bareAddress: true };

/** Four bytes from `i` on as one unsigned word, most significant first. */
function word(bytes: readonly number[], i: number): number {
  let w = 0;
  for (let k = i; k < i + 4; k++) w = w * 256 + (bytes[k] ?? 0);
  return w;
}

function wordsOf(bytes: readonly number[]): [number, number, number, number] {
  if (bytes.length === 4) return [word(bytes, 0), 0, 0, 0];
  return [word(bytes, 0), word(bytes, 4), word(bytes, 8), word(bytes, 12)];
}

function toWords(ip: ParsedIP): IPWords {
  return { family: ip.family === 'IPv4' ? FAMILY_IPV4 : FAMILY_IPV6, words: wordsOf(ip.bytes) };
}

/** Parse an IPv4 or IPv6 address; undefined when it is not one. */
export function parseIP(s: string): IPWords | undefined {
  const ip = parseParsedIP(s, PARSE);
  return ip === undefined ? undefined : toWords(ip);
}

/** Keep the first `bits` bits of a word (bits may be outside 0..32). */
export function maskWord(w: number, bits: number): number {
  if (bits >= 32) return w >>> 0;
  if (bits <= 0) return 0;
  return (w & (0xffffffff << (32 - bits))) >>> 0;
}

/** Parse a CIDR ("10.0.0.0/8", "2001:db8::/32"); a bare address is a host route. */
export function parseCIDR(s: string): CIDRWords | undefined {
  const cidr = parseParsedCIDR(s, PARSE_CIDR);
  return cidr === undefined ? undefined : { ...toWords(cidr.network), prefix: cidr.prefixLength };
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
  const bytes: number[] = [];
  for (const w of family === FAMILY_IPV4 ? [w0] : [w0, w1, w2, w3]) {
    bytes.push((w >>> 24) & 255, (w >>> 16) & 255, (w >>> 8) & 255, w & 255);
  }
  return formatParsedIP({ family: family === FAMILY_IPV4 ? 'IPv4' : 'IPv6', bytes });
}
