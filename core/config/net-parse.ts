/**
 * The addresses that appear in flags and the config file: IPs, CIDRs and host:port pairs.
 * Address syntax is core/net/ip.ts's strict dialect (as Go's netip: no leading zeros in IPv4
 * groups, "::ffff:a.b.c.d" stays IPv6, no zones); this module adds trimming, ports and
 * host:port. Pure functions; they return undefined (or a reason) instead of throwing so that
 * callers can phrase the error with the flag's name.
 */
import type { IPFamily } from '../model/snapshot.js';
import { formatCIDR, formatIP, parseCIDR as parseAnyCIDR, parseIPStrict, type ParsedIP } from '../net/ip.js';

export type AddressFamily = IPFamily;

/** Parses an IPv4 (dotted quad, no leading zeros) or IPv6 address; no zone, no brackets. */
export function parseIP(text: string): ParsedIP | undefined {
  return parseIPStrict(text);
}

/** The IP in canonical form, or undefined when it is not an IP. */
export function normalizeIP(text: string): string | undefined {
  const ip = parseIPStrict(text.trim());
  return ip === undefined ? undefined : formatIP(ip);
}

export interface ParsedCIDR {
  readonly family: AddressFamily;
  /** Canonical network form, host bits cleared (as Go's net.ParseCIDR returns it). */
  readonly cidr: string;
  readonly prefixLength: number;
}

/** Parses `ip/prefix`; host bits are cleared in the canonical form. */
export function parseCIDR(text: string): ParsedCIDR | undefined {
  const parsed = parseAnyCIDR(text.trim(), { strict: true, keepMapped: true });
  if (parsed === undefined) return undefined;
  return { family: parsed.family, cidr: formatCIDR(parsed), prefixLength: parsed.prefixLength };
}

export interface HostPort {
  /** Canonical IP. */
  readonly host: string;
  readonly family: AddressFamily;
  readonly port: number;
}

/** Parses a port number 0..65535 (decimal digits only). */
export function parsePort(text: string, allowZero = true): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  if (port > 65535 || (!allowZero && port === 0)) return undefined;
  return port;
}

/** Parses `ip:port` or `[ipv6]:port` (as Go's net.SplitHostPort, host must be an IP). */
export function parseHostPort(text: string, allowZeroPort = true): HostPort | string {
  const t = text.trim();
  let hostText: string;
  let portText: string;
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0 || t[close + 1] !== ':') return `"${text}" is not in host:port form`;
    hostText = t.slice(1, close);
    portText = t.slice(close + 2);
    if (parseIP(hostText)?.family !== 'IPv6') return `"${hostText}" is not an IPv6 address`;
  } else {
    const colon = t.lastIndexOf(':');
    if (colon < 0) return `"${text}" is not in host:port form`;
    hostText = t.slice(0, colon);
    portText = t.slice(colon + 1);
    if (hostText.includes(':')) return `"${text}": IPv6 addresses need brackets ([addr]:port)`;
  }
  const ip = parseIP(hostText);
  if (ip === undefined) return `"${hostText}" is not an IP address`;
  const port = parsePort(portText, allowZeroPort);
  if (port === undefined) return `"${portText}" is not a valid port`;
  return { host: formatIP(ip), family: ip.family, port };
}

/** Formats host and port, bracketing IPv6 hosts. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
