import { describe, expect, it } from 'vitest';
import { formatBindAddress, parseBindAddress } from '../../../core/server/parse-bind-address.js';

describe('parseBindAddress', () => {
  it('parses IPv4 host:port', () => {
    expect(parseBindAddress('0.0.0.0:10256')).toEqual({ host: '0.0.0.0', port: 10256 });
    expect(parseBindAddress(' 127.0.0.1:10249 ')).toEqual({ host: '127.0.0.1', port: 10249 });
  });

  it('parses bracketed IPv6', () => {
    expect(parseBindAddress('[::]:10256')).toEqual({ host: '::', port: 10256 });
    expect(parseBindAddress('[fd00::1]:80')).toEqual({ host: 'fd00::1', port: 80 });
  });

  it("appends the default port to a bare IP, as kube-proxy's AppendPortIfNeeded", () => {
    expect(parseBindAddress('0.0.0.0', 10256)).toEqual({ host: '0.0.0.0', port: 10256 });
    expect(parseBindAddress('::1', 10249)).toEqual({ host: '::1', port: 10249 });
    expect(parseBindAddress('[::1]', 10249)).toEqual({ host: '::1', port: 10249 });
    expect(() => parseBindAddress('0.0.0.0')).toThrow(/no port/);
  });

  it("'' disables; ':port' means every IPv4 address; port 0 is ephemeral", () => {
    expect(parseBindAddress('')).toBeUndefined();
    expect(parseBindAddress('   ')).toBeUndefined();
    expect(parseBindAddress(':10249')).toEqual({ host: '0.0.0.0', port: 10249 });
    expect(parseBindAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('rejects malformed addresses with a message naming the input', () => {
    for (const bad of [
      'localhost:80',
      '1.2.3.4:http',
      '1.2.3.4:65536',
      '[::1',
      '[::1]x',
      '[1.2.3.4]:80',
      '1.2.3.4:-1',
      'abc',
      '1.2.3:80',
    ]) {
      expect(() => parseBindAddress(bad), bad).toThrow(
        new RegExp(`invalid bind address "${bad.replace(/[[\]().*+?]/g, '\\$&')}"`),
      );
    }
  });

  it('formats back with brackets for IPv6', () => {
    expect(formatBindAddress({ host: '::', port: 10256 })).toBe('[::]:10256');
    expect(formatBindAddress({ host: '0.0.0.0', port: 1 })).toBe('0.0.0.0:1');
  });
});
