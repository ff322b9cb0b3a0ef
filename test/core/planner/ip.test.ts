import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  cidrFamilyOf,
  compareIPStrings,
  hostCIDR,
  ipFamilyOf,
  isZeroCIDR,
  normalizeCIDR,
  normalizeIP,
  parseCIDR,
  parseIP,
} from '../../../core/planner/ip.js';

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
