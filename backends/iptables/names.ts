/**
 * Chain names of the iptables backend. Every chain switchyard owns starts with `SY-`; the
 * per-Service-port and per-endpoint chains carry a hash like kube-proxy's: the first 16
 * characters of the base32 (RFC 4648) encoding of a SHA-256, so a name is at most
 * `SY-XXX-` (7) + 16 = 23 characters, inside iptables' 28-character limit.
 */
import * as crypto from 'node:crypto';

/** iptables' limit on a chain name (XT_EXTENSION_MAXNAMELEN - 1 = 28). */
export const MAX_CHAIN_NAME = 28;

/** The prefix of every chain switchyard creates; cleanup removes exactly these. */
export const CHAIN_PREFIX = 'SY-';

/** Fixed chains. nat and filter both have a SY-SERVICES and a SY-NODEPORTS, as kube-proxy's KUBE-*. */
export const CHAINS = {
  services: 'SY-SERVICES',
  nodePorts: 'SY-NODEPORTS',
  externalServices: 'SY-EXTERNAL-SERVICES',
  firewall: 'SY-FIREWALL',
  forward: 'SY-FORWARD',
  markMasq: 'SY-MARK-MASQ',
  postrouting: 'SY-POSTROUTING',
  /** Marks for masquerade unless the source is inside one of several cluster CIDRs. */
  masqNonPod: 'SY-MASQ-NONPOD',
} as const;

/** Per-Service-port chain kinds. */
export const SERVICE_CHAIN_PREFIX = {
  /** Traffic to the ClusterIP: masquerade check + endpoint choice over internalEndpoints. */
  svc: 'SY-SVC-',
  /** Traffic to NodePort / externalIPs / LB IPs: masquerade or short-circuit + choice over externalEndpoints. */
  ext: 'SY-EXT-',
  /** externalTrafficPolicy Local short-circuit for pods and the node: choice over shortCircuitEndpoints. */
  svx: 'SY-SVX-',
  /** loadBalancerSourceRanges: allowed sources jump to SY-EXT-, the rest falls through to a DROP. */
  fw: 'SY-FW-',
  /** One endpoint: hairpin masquerade + DNAT. */
  sep: 'SY-SEP-',
} as const;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (no padding) of the first bytes of `buf`, cut to `chars` characters. */
export function base32(buf: Uint8Array, chars: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (let i = 0; i < buf.length && out.length < chars; i++) {
    value = (value << 8) | buf[i]!;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (out.length < chars && bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** 16 base32 characters of sha256(text). */
export function hash16(text: string): string {
  // crypto.hash (Node >= 20.12) is ~1.7x faster than createHash for short inputs.
  const digest =
    typeof crypto.hash === 'function'
      ? crypto.hash('sha256', text, 'buffer')
      : crypto.createHash('sha256').update(text).digest();
  return base32(digest, 16);
}

/** The hash shared by a Service port's SVC/EXT/SVX/FW chains (its id includes protocol and family). */
export function servicePortHash(servicePortId: string): string {
  return hash16(servicePortId);
}

/** An endpoint's chain: unique per (Service port, endpoint ip, port). */
export function endpointChainName(servicePortId: string, ip: string, port: number): string {
  return SERVICE_CHAIN_PREFIX.sep + hash16(`${servicePortId}|${ip}|${port}`);
}

/** True for a chain name switchyard created. */
export function isOwnChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX);
}
