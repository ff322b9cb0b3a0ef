import { describe, expect, it } from 'vitest';
import { canonicalIP, normalizeCIDRs, validIP } from '../../../backends/nftables/addr.js';

describe('nftables addresses', () => {
  it.each([
    ['IPv4', '10.96.0.10', '10.96.0.10'],
    ['IPv6', '2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    // An embedded IPv4 tail is written as hex groups: the spelling nft lists back.
    ['IPv6', '::ffff:10.0.0.1', '::ffff:a00:1'],
    ['IPv6', '64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['IPv6', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ] as const)('canonicalIP(%s, %s) = %s', (family, input, canonical) => {
    expect(validIP(family, input)).toBe(true);
    expect(canonicalIP(family, input)).toBe(canonical);
  });

  it.each([
    ['IPv4', '010.0.0.1'],
    ['IPv4', '::ffff:10.0.0.1'],
    ['IPv6', '10.0.0.1'],
    ['IPv6', 'fe80::1%eth0'],
    ['IPv6', ':::1'],
    ['IPv4', 42],
  ] as const)('rejects %s %j', (family, input) => {
    expect(validIP(family, input)).toBe(false);
    expect(canonicalIP(family, input)).toBeUndefined();
  });

  it('normalizes CIDR lists: host routes, host bits, covered ranges, order, invalid count', () => {
    expect(
      normalizeCIDRs('IPv4', [
        '10.1.2.3',
        '10.0.0.0/8',
        '192.168.1.77/24',
        '10.9.0.0/16',
        '::/0',
        'junk',
        7,
        '1.2.3.4/33',
      ]),
    ).toEqual({ cidrs: ['10.0.0.0/8', '192.168.1.0/24'], invalid: 4 });
    expect(normalizeCIDRs('IPv6', ['fd00::1', '::ffff:10.0.0.0/104', 'FD00::/8', '2001:db8::/32'])).toEqual({
      cidrs: ['fd00::/8', '2001:db8::/32', '::ffff:a00:0/104'],
      invalid: 0,
    });
  });
});
