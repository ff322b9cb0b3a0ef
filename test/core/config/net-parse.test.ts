import { describe, expect, it } from 'vitest';
import { formatGoDuration, parseGoDuration } from '../../../core/config/duration.js';
import { normalizeIP, parseCIDR, parseHostPort } from '../../../core/config/net-parse.js';

describe('Go durations', () => {
  const ok: [string, number][] = [
    ['0', 0],
    ['0s', 0],
    ['1s', 1000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['2h45m', 9_900_000],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['1500us', 1.5],
    ['1000000ns', 1],
    ['+3s', 3000],
    ['-1s', -1000],
  ];
  for (const [text, ms] of ok) it(`parses ${text}`, () => expect(parseGoDuration(text)).toBeCloseTo(ms, 9));
  for (const bad of ['', '1', '1d', 's', '1 s', '1s2', 'abc', '-', '1.2.3s']) {
    it(`rejects ${JSON.stringify(bad)}`, () => expect(typeof parseGoDuration(bad)).toBe('string'));
  }
  it('formats like Go', () => {
    expect(formatGoDuration(0)).toBe('0s');
    expect(formatGoDuration(500)).toBe('500ms');
    expect(formatGoDuration(30_000)).toBe('30s');
    expect(formatGoDuration(90_000)).toBe('1m30s');
    expect(formatGoDuration(86_400_000)).toBe('24h0m0s');
    expect(parseGoDuration(formatGoDuration(5_400_500))).toBe(5_400_500);
  });
});

describe('IPs and CIDRs', () => {
  it('normalizes IPv6 (RFC 5952) and IPv4', () => {
    expect(normalizeIP('FD00:0:0:0:0:0:0:10')).toBe('fd00::10');
    expect(normalizeIP('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(normalizeIP('::')).toBe('::');
    expect(normalizeIP('::ffff:192.168.77.2')).toBe('::ffff:c0a8:4d02');
    expect(normalizeIP('10.96.0.10')).toBe('10.96.0.10');
    expect(normalizeIP('10.96.0')).toBeUndefined();
    expect(normalizeIP('010.96.0.1')).toBeUndefined();
    expect(normalizeIP('fe80::1%eth0')).toBeUndefined();
  });

  it('clears host bits in CIDRs and rejects bad prefixes', () => {
    expect(parseCIDR('10.244.1.7/16')).toEqual({ family: 'IPv4', cidr: '10.244.0.0/16', prefixLength: 16 });
    expect(parseCIDR('192.168.77.2/32')?.cidr).toBe('192.168.77.2/32');
    expect(parseCIDR('0.0.0.0/0')?.cidr).toBe('0.0.0.0/0');
    expect(parseCIDR('fd00:10:244:1::5/56')?.cidr).toBe('fd00:10:244::/56');
    expect(parseCIDR('203.0.113.200/25')?.cidr).toBe('203.0.113.128/25');
    expect(parseCIDR('10.0.0.0/33')).toBeUndefined();
    expect(parseCIDR('::/129')).toBeUndefined();
    expect(parseCIDR('10.0.0.0/')).toBeUndefined();
    expect(parseCIDR('10.0.0.0/-1')).toBeUndefined();
  });

  it('parses host:port', () => {
    expect(parseHostPort('192.168.77.2:80')).toEqual({ host: '192.168.77.2', family: 'IPv4', port: 80 });
    expect(parseHostPort('[::1]:10249')).toEqual({ host: '::1', family: 'IPv6', port: 10249 });
    expect(typeof parseHostPort('::1:10249')).toBe('string');
    expect(typeof parseHostPort('[10.0.0.1]:80')).toBe('string');
    expect(typeof parseHostPort('host:80')).toBe('string');
    expect(typeof parseHostPort('10.0.0.1:0', false)).toBe('string');
    expect(typeof parseHostPort('10.0.0.1:65536')).toBe('string');
  });
});
