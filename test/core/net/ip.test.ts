import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  canonicalIPv4Value,
  cidrContains,
  cidrFamilyOf,
  compareIPStrings,
  formatCIDR,
  formatIP,
  hostCIDR,
  ipFamilyOf,
  isZeroCIDR,
  normalizeCIDR,
  normalizeIP,
  parseCIDR,
  parseIP,
  parseIPStrict,
} from '../../../core/net/ip.js';

describe('parseIP / normalizeIP', () => {
  it.each([
    ['10.96.0.10', '10.96.0.10', 'IPv4'],
    ['0.0.0.0', '0.0.0.0', 'IPv4'],
    ['255.255.255.255', '255.255.255.255', 'IPv4'],
    // Sloppy like Go's ParseIPSloppy: leading zeros are decimal.
    ['010.001.000.011', '10.1.0.11', 'IPv4'],
    ['::', '::', 'IPv6'],
    ['::1', '::1', 'IPv6'],
    ['2001:DB8::1', '2001:db8::1', 'IPv6'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1', 'IPv6'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 'IPv6'], // first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', 'IPv6'], // single zero group not compressed
    ['fd00:0:0:1::', 'fd00:0:0:1::', 'IPv6'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0', 'IPv6'],
    ['::1.2.3.4', '::102:304', 'IPv6'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221', 'IPv6'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304', 'IPv6'],
    // IPv4-mapped IPv6 is IPv4, as in Go.
    ['::ffff:10.0.0.1', '10.0.0.1', 'IPv4'],
    ['::ffff:a00:1', '10.0.0.1', 'IPv4'],
  ])('%s -> %s (%s)', (input, canonical, family) => {
    expect(normalizeIP(input)).toBe(canonical);
    expect(ipFamilyOf(input)).toBe(family);
    expect(parseIP(input)?.bytes.length).toBe(family === 'IPv4' ? 4 : 16);
  });

  it.each([
    '',
    '10.96.0',
    '10.96.0.256',
    '10.96.0.1.2',
    '1.2.3.-1',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '1.2.3.0001',
    'a.b.c.d',
    ':::',
    '1:::2',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '12345::',
    'g::1',
    'fe80::1%eth0',
    '[::1]',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::1.2.3',
    ':1.2.3.4',
    '1:',
    '1.2.3.4.',
    '.1.2.3',
    '1..2.3',
    '1.2.3.4.5',
    'None',
    '10.0.0.0/8',
  ])('rejects %j', (input) => {
    expect(parseIP(input)).toBeUndefined();
    expect(normalizeIP(input)).toBeUndefined();
    expect(ipFamilyOf(input)).toBeUndefined();
  });

  it('rejects non-strings', () => {
    expect(parseIP(undefined)).toBeUndefined();
    expect(parseIP(42 as unknown as string)).toBeUndefined();
  });
});

describe('parseCIDR / normalizeCIDR', () => {
  it.each([
    ['203.0.113.0/25', '203.0.113.0/25', 'IPv4'],
    ['10.244.1.7/16', '10.244.0.0/16', 'IPv4'],
    ['0.0.0.0/0', '0.0.0.0/0', 'IPv4'],
    ['192.168.77.2/32', '192.168.77.2/32', 'IPv4'],
    ['010.0.0.0/8', '10.0.0.0/8', 'IPv4'],
    ['2001:DB8::1/64', '2001:db8::/64', 'IPv6'],
    ['::/0', '::/0', 'IPv6'],
    ['fd00::1/128', 'fd00::1/128', 'IPv6'],
    ['2001:db8:abcd:12ff::/60', '2001:db8:abcd:12f0::/60', 'IPv6'],
    ['::ffff:10.1.2.0/120', '10.1.2.0/24', 'IPv4'],
  ])('%s -> %s', (input, canonical, family) => {
    expect(normalizeCIDR(input)).toBe(canonical);
    expect(cidrFamilyOf(input)).toBe(family);
  });

  it.each([
    '10.0.0.0',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/',
    '/8',
    '::/129',
    '10.0.0.0/8/8',
    'x/8',
    '10.0.0.0/ 8',
    ' 10.0.0.0/8',
    '10.0.0.0/1e1',
  ])('rejects %j', (input) => {
    expect(parseCIDR(input)).toBeUndefined();
    expect(normalizeCIDR(input)).toBeUndefined();
  });

  it('knows zero CIDRs', () => {
    expect(isZeroCIDR('0.0.0.0/0')).toBe(true);
    expect(isZeroCIDR('::/0')).toBe(true);
    expect(isZeroCIDR('10.0.0.0/1')).toBe(false);
    expect(isZeroCIDR('junk')).toBe(false);
  });
});

describe('cidrContains', () => {
  it.each([
    ['10.244.0.0/16', '10.244.3.4', true],
    ['10.244.0.0/16', '10.245.0.1', false],
    ['203.0.113.0/25', '203.0.113.127', true],
    ['203.0.113.0/25', '203.0.113.128', false],
    ['0.0.0.0/0', '1.2.3.4', true],
    ['0.0.0.0/0', '::1', false],
    ['::/0', '2001:db8::1', true],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['10.0.0.0/8', '::ffff:10.1.1.1', true],
    ['192.168.77.2/32', '192.168.77.2', true],
    ['192.168.77.2/32', '192.168.77.3', false],
    ['10.0.0.0/12', '10.15.255.255', true],
    ['10.0.0.0/12', '10.16.0.0', false],
    ['junk', '10.0.0.1', false],
    ['10.0.0.0/8', 'junk', false],
  ])('%s contains %s: %s', (cidr, ip, expected) => {
    expect(cidrContains(cidr, ip)).toBe(expected);
  });
});

describe('helpers', () => {
  it('hostCIDR', () => {
    expect(hostCIDR('192.168.77.2')).toBe('192.168.77.2/32');
    expect(hostCIDR('FD00::0002')).toBe('fd00::2/128');
    expect(hostCIDR('nope')).toBeUndefined();
  });

  it('compareIPStrings orders IPv4 numerically, then IPv6, then junk', () => {
    const list = ['fd00::1', '10.0.0.10', 'zzz', '10.0.0.9', '9.255.255.255', '::1', 'aaa'];
    expect([...list].sort(compareIPStrings)).toEqual([
      '9.255.255.255',
      '10.0.0.9',
      '10.0.0.10',
      '::1',
      'fd00::1',
      'aaa',
      'zzz',
    ]);
  });
});

describe('strict dialect (flags, config, nft)', () => {
  it.each([
    ['10.96.0.10', '10.96.0.10', 'IPv4'],
    ['0.0.0.0', '0.0.0.0', 'IPv4'],
    ['2001:DB8::1', '2001:db8::1', 'IPv6'],
    // netip keeps an IPv4-mapped address in the IPv6 family; nft wants it without the tail.
    ['::ffff:10.0.0.1', '::ffff:a00:1', 'IPv6'],
    ['::ffff:a00:1', '::ffff:a00:1', 'IPv6'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221', 'IPv6'],
  ])('%s -> %s (%s)', (input, canonical, family) => {
    const ip = parseIPStrict(input);
    expect(ip && formatIP(ip)).toBe(canonical);
    expect(ip?.family).toBe(family);
  });

  it.each([
    '010.0.0.1',
    '10.00.0.1',
    '1.2.3.01',
    '::ffff:10.0.0.01',
    '::010.0.0.1',
    'fe80::1%eth0',
    ' 1.2.3.4',
  ])('rejects %j', (input) => {
    expect(parseIPStrict(input)).toBeUndefined();
    expect(parseIP(input, { strict: true })).toBeUndefined();
  });

  it('accepts exactly what node:net isIP accepts, zones aside', () => {
    const dec = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^0[0-9]{1,2}$/));
    const v4 = fc.array(dec, { minLength: 3, maxLength: 5 }).map((p) => p.join('.'));
    const group = fc.oneof(fc.stringMatching(/^[0-9a-fA-F]{1,5}$/), fc.constantFrom('0', '', 'ffff'));
    const v6 = fc
      .tuple(fc.array(group, { maxLength: 9 }), fc.option(v4), fc.nat(20))
      .map(([groups, tail, cut]) => {
        let s = groups.join(':');
        if (cut < s.length) s = `${s.slice(0, cut)}::${s.slice(cut)}`;
        return tail === null ? s : `${s}${s.endsWith(':') ? '' : ':'}${tail}`;
      });
    fc.assert(
      fc.property(fc.oneof(v4, v6), (text) => {
        const ip = parseIPStrict(text);
        expect(ip !== undefined).toBe(isIP(text) !== 0);
        if (ip) expect(ip.family).toBe(isIP(text) === 4 ? 'IPv4' : 'IPv6');
      }),
      { numRuns: 3000 },
    );
  });

  it('strict without keepMapped still reads a mapped address as IPv4', () => {
    expect(parseIP('::ffff:10.0.0.1', { strict: true })).toEqual({ family: 'IPv4', bytes: [10, 0, 0, 1] });
    expect(parseIP('::ffff:10.0.0.1', { keepMapped: true })?.bytes).toHaveLength(16);
    expect(parseIP('::ffff:010.0.0.1', { keepMapped: true })?.family).toBe('IPv6');
  });
});

describe('parseCIDR options', () => {
  it('keepMapped keeps the IPv6 prefix length', () => {
    const c = parseCIDR('::ffff:10.1.2.3/120', { keepMapped: true });
    expect(c && formatCIDR(c)).toBe('::ffff:a01:200/120');
    expect(c?.family).toBe('IPv6');
    expect(parseCIDR('::ffff:10.1.2.3/120')?.prefixLength).toBe(24);
  });

  it('bareAddress reads an address as a host route', () => {
    const v4 = parseCIDR('10.1.2.3', { bareAddress: true });
    expect(v4 && formatCIDR(v4)).toBe('10.1.2.3/32');
    const v6 = parseCIDR('FD00::1', { bareAddress: true });
    expect(v6 && formatCIDR(v6)).toBe('fd00::1/128');
    expect(parseCIDR('10.1.2.3')).toBeUndefined();
    expect(parseCIDR('nope', { bareAddress: true })).toBeUndefined();
  });

  it('strict applies to the address part', () => {
    expect(parseCIDR('010.0.0.0/8', { strict: true })).toBeUndefined();
    expect(normalizeCIDR('010.0.0.0/8')).toBe('10.0.0.0/8');
  });
});

describe("canonicalIPv4Value (the planner's fast path)", () => {
  const expectAgrees = (text: string): void => {
    const ip = parseIP(text);
    const canonical = ip !== undefined && ip.family === 'IPv4' && formatIP(ip) === text;
    const value = canonicalIPv4Value(text);
    if (!canonical) expect(value, text).toBe(-1);
    else expect(value, text).toBe(ip.bytes.reduce((v, b) => v * 256 + b, 0));
  };

  it('is the address value exactly for text that parseIP + formatIP give back unchanged', () => {
    for (const t of [
      '0.0.0.0',
      '255.255.255.255',
      '10.244.1.7',
      '010.244.1.7',
      '10.244.01.7',
      '10.0.0.00',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '.1.2.3',
      '1.2.3.',
      '1.2.3.4 ',
      '::ffff:1.2.3.4',
      'fd00::1',
      '',
      '1234.1.1.1',
    ])
      expectAgrees(t);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.ipV4(),
          fc.ipV4Extended(),
          fc.ipV6(),
          fc.string({ maxLength: 16 }),
          fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 3, maxLength: 5 }).map((g) => g.join('.')),
        ),
        (t) => expectAgrees(t),
      ),
      { numRuns: 3000 },
    );
  });

  it('leaves normalizeIP unchanged', () => {
    expect(normalizeIP('10.96.0.1')).toBe('10.96.0.1');
    expect(normalizeIP('010.096.000.001')).toBe('10.96.0.1');
    expect(normalizeIP('::ffff:10.96.0.1')).toBe('10.96.0.1');
  });
});
