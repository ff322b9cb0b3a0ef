/**
 * Chain names of the iptables backend. Every chain switchyard owns starts with `SY-`. A Service
 * port's chains are `SY-<h>-SVC`, `-EXT`, `-SVX`, `-FW` and its endpoints' `SY-<h>-<e>`, where
 * `<h>` is 16 lowercase letters of the SHA-256 of the Service port id and `<e>` 8 lowercase
 * letters of a fast hash of the endpoint (unique within the port; at most 3 + 16 + 1 + 8 = 28
 * characters, iptables' limit). kube-proxy names them
 * KUBE-SVC-<hash> / KUBE-SEP-<hash>; switchyard groups a port's chains under one prefix, and the
 * lowercase hashes sort after every fixed (uppercase) name, because iptables-nft 1.8.x keeps the
 * chain names a `--noflush` restore mentions in a sorted linked list: with kube-proxy's naming a
 * full restore at 2k Services takes 37 s there, at 10k tens of minutes. Written port by port in
 * descending hash order (render.ts), each name is inserted at the head of that list.
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

/** Per-Service-port chain kinds (the suffix of `SY-<h>-<KIND>`). */
export type ServiceChainKind =
  /** Traffic to the ClusterIP: masquerade check + endpoint choice over internalEndpoints. */
  | 'SVC'
  /** Traffic to NodePort / externalIPs / LB IPs: masquerade or short-circuit + choice over externalEndpoints. */
  | 'EXT'
  /** externalTrafficPolicy Local short-circuit for pods and the node: choice over shortCircuitEndpoints. */
  | 'SVX'
  /** loadBalancerSourceRanges: allowed sources jump to SY-<h>-EXT, the rest falls through to a DROP. */
  | 'FW';

/** `chars` lowercase letters from sha256(text). */
export function hashLetters(text: string, chars: number): string {
  // crypto.hash (Node >= 20.12) is ~1.7x faster than createHash for short inputs.
  const digest =
    typeof crypto.hash === 'function'
      ? crypto.hash('sha256', text, 'buffer')
      : crypto.createHash('sha256').update(text).digest();
  let out = '';
  for (let i = 0; i < chars; i++) out += String.fromCharCode(97 + (digest[i]! % 26));
  return out;
}

/** The hash shared by a Service port's chains (its id includes protocol and family). */
export function servicePortHash(servicePortId: string): string {
  return hashLetters(servicePortId, 16);
}

/** A Service port's SVC / EXT / SVX / FW chain. */
export function serviceChainName(kind: ServiceChainKind, hash: string): string {
  return `${CHAIN_PREFIX}${hash}-${kind}`;
}

/**
 * 8 lowercase letters of a fast 53-bit non-cryptographic hash of `text` (cyrb53-style: two
 * 32-bit multiply-xorshift lanes). Endpoint names only need to differ within one Service port
 * (collisions are resolved with `attempt`) and stay the same across runs; a SHA-256 per endpoint
 * was a tenth of a 10k-Service render.
 */
function fastLetters8(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  let v = 4294967296 * (2097151 & h2) + (h1 >>> 0);
  let out = '';
  for (let i = 0; i < 8; i++) {
    out += String.fromCharCode(97 + (v % 26));
    v = Math.floor(v / 26);
  }
  return out;
}

/**
 * An endpoint's chain: unique per (Service port, endpoint ip, port). `attempt` > 0 picks another
 * name when two endpoints of one port would share one (8 letters, 26^8: ~1 in 400 000 for a
 * port with 1000 endpoints).
 */
export function endpointChainName(
  servicePortId: string,
  ip: string,
  port: number,
  portHash: string = servicePortHash(servicePortId),
  attempt = 0,
): string {
  const salt = attempt === 0 ? '' : `|${attempt}`;
  return `${CHAIN_PREFIX}${portHash}-${fastLetters8(`${servicePortId}|${ip}|${port}${salt}`)}`;
}

/** True for a chain name switchyard created. */
export function isOwnChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX);
}
