import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  FAMILY_IPV4,
  FAMILY_IPV6,
  formatIP,
  parseCIDR,
  parseIP,
} from '../../matcher/src/ip.js';

describe('matcher words', () => {
  it('packs addresses into words', () => {
    expect(parseIP('10.96.0.1')).toEqual({ family: FAMILY_IPV4, words: [0x0a600001, 0, 0, 0] });
    expect(parseIP('010.096.000.001')).toEqual({ family: FAMILY_IPV4, words: [0x0a600001, 0, 0, 0] });
    expect(parseIP('2001:db8::ffff:1')).toEqual({
      family: FAMILY_IPV6,
      words: [0x20010db8, 0, 0, 0xffff0001],
    });
    // A mapped address stays IPv6 in the matcher.
    expect(parseIP('::ffff:10.0.0.1')).toEqual({ family: FAMILY_IPV6, words: [0, 0, 0xffff, 0x0a000001] });
    expect(parseIP('fe80::1%eth0')).toBeUndefined();
    expect(parseIP('1.2.3')).toBeUndefined();
  });

  it('parses CIDRs (a bare address is a host route) and masks them', () => {
    expect(parseCIDR('10.1.2.3/8')).toEqual({ family: FAMILY_IPV4, prefix: 8, words: [0x0a000000, 0, 0, 0] });
    expect(parseCIDR('10.1.2.3')).toEqual({ family: FAMILY_IPV4, prefix: 32, words: [0x0a010203, 0, 0, 0] });
    expect(parseCIDR('2001:db8:1:2::/33')).toEqual({
      family: FAMILY_IPV6,
      prefix: 33,
      words: [0x20010db8, 0, 0, 0],
    });
    expect(parseCIDR('10.0.0.0/33')).toBeUndefined();
    const c = parseCIDR('2001:db8::/32')!;
    expect(cidrContains(c, FAMILY_IPV6, 0x20010db8, 1, 2, 3)).toBe(true);
    expect(cidrContains(c, FAMILY_IPV6, 0x20010db9, 0, 0, 0)).toBe(false);
    expect(cidrContains(c, FAMILY_IPV4, 0x20010db8, 0, 0, 0)).toBe(false);
  });

  it('formats words back to canonical text', () => {
    expect(formatIP(FAMILY_IPV4, 0xc0a84d02, 0, 0, 0)).toBe('192.168.77.2');
    expect(formatIP(FAMILY_IPV6, 0x20010db8, 0, 0, 1)).toBe('2001:db8::1');
    expect(formatIP(FAMILY_IPV6, 0, 0, 0xffff, 0x0a000001)).toBe('::ffff:a00:1');
    for (const text of ['fd00:10:244:1::5', '::', '1:0:0:1::1', '1::1:0:0:1', '255.255.255.255']) {
      const ip = parseIP(text)!;
      expect(formatIP(ip.family, ...ip.words)).toBe(text);
    }
  });
});
