/**
 * Compiles a Snapshot into the flat arrays the WebAssembly matcher reads (its linear-memory
 * layout), and nothing else: pure, no memory access. matcher/assembly/index.ts reads the same
 * layout; keep the two in step.
 */
import type { Snapshot } from '../../core/model/snapshot.js';
import {
  KIND_CLUSTER_IP,
  KIND_EXTERNAL_IP,
  KIND_LOAD_BALANCER,
  KIND_NODE_PORT,
  PROTOCOL_NUMBERS,
  VERDICT_CODES,
} from './codes.js';
import { cidrContains, familyCode, parseCIDR, parseIP, type CIDRWords, type FamilyCode } from './ip.js';
import type { AssignedPlan } from './matcher.js';

export const TABLE_MAGIC = 0x53594d31;
export const HEADER_WORDS = 32;
export const H = {
  MAGIC: 0,
  VERSION: 1,
  N_SP: 2,
  SP_PTR: 3,
  N_LIST: 4,
  LIST_PTR: 5,
  N_CIDR: 6,
  CIDR_PTR: 7,
  N_FRONT: 8,
  FRONT_PTR: 9,
  FRONT_HASH_PTR: 10,
  FRONT_HASH_MASK: 11,
  ELIG_PTR: 12,
  ELIG_MASK: 13,
  CLUSTER_CIDR: 14,
  NODE_PORT_ADDR: 18,
  /** 1: drop affinity and flow entries whose endpoint left; 0: nothing left, skip the scan. */
  PURGE: 24,
} as const;

export const SP_WORDS = 16;
export const SP = {
  ID: 0,
  AFFINITY_MS: 1,
  FAMILY: 2,
  INT_VERDICT: 3,
  INT_OFF: 4,
  INT_CNT: 5,
  EXT_VERDICT: 6,
  EXT_OFF: 7,
  EXT_CNT: 8,
  SC_OFF: 9,
  SC_CNT: 10,
  SRC_OFF: 11,
  SRC_CNT: 12,
  ALLOW_FROM_NODE: 13,
  PROTOCOL: 14,
} as const;

export const FRONT_WORDS = 8;
export const CIDR_WORDS = 8;
export const AFFINITY_SLOT_BYTES = 32;
export const FLOW_SLOT_BYTES = 64;
export const NODE_PORT_TABLE_BYTES = 2 * 3 * 65536 * 4;
export const QUERY_BYTES = 64;

export interface CompiledTable {
  /** SP_WORDS words per service port. */
  readonly servicePorts: Uint32Array;
  readonly servicePortCount: number;
  /** Endpoint ids of every path, concatenated. */
  readonly lists: Uint32Array;
  /** CIDR_WORDS words each: family, prefix, 4 masked words. */
  readonly cidrs: Uint32Array;
  /** FRONT_WORDS words each: meta (family << 24 | protocol << 16 | port), 4 address words, spIndex << 2 | kind. */
  readonly frontends: Uint32Array;
  readonly frontendCount: number;
  /** [IPv4 offset, count, IPv6 offset, count] into cidrs. */
  readonly clusterCidrs: readonly number[];
  /** [IPv4 all, offset, count, IPv6 all, offset, count]. */
  readonly nodePortAddresses: readonly number[];
  /** Addresses or CIDRs that did not parse (skipped). */
  readonly skipped: number;
}

/** Smallest power of two >= max(n, 16). */
export function tableCapacity(n: number): number {
  let c = 16;
  while (c < n) c *= 2;
  return c;
}

export function compileTable(snapshot: Snapshot, plans: readonly AssignedPlan[]): CompiledTable {
  // exact upper bounds first: one allocation per array, no growth
  let listLen = 0;
  let frontMax = 0;
  let cidrMax =
    snapshot.clusterCIDRs.IPv4.length +
    snapshot.clusterCIDRs.IPv6.length +
    (snapshot.nodePortAddresses.IPv4.kind === 'cidrs' ? snapshot.nodePortAddresses.IPv4.cidrs.length : 0) +
    (snapshot.nodePortAddresses.IPv6.kind === 'cidrs' ? snapshot.nodePortAddresses.IPv6.cidrs.length : 0);
  for (const a of plans) {
    listLen += a.internal.length + a.external.length + a.shortCircuit.length;
    frontMax += 2 + a.plan.externalIPs.length + a.plan.loadBalancerIPs.length;
    cidrMax += a.plan.loadBalancerSourceRanges.length;
  }
  const sps = new Uint32Array(plans.length * SP_WORDS);
  const lists = new Uint32Array(listLen);
  const cidrs = new Uint32Array(cidrMax * CIDR_WORDS);
  const fronts = new Uint32Array(frontMax * FRONT_WORDS);
  let listAt = 0;
  let cidrCount = 0;
  let frontCount = 0;
  let skipped = 0;

  const addCidrs = (texts: readonly string[], family: FamilyCode): [number, number, CIDRWords[]] => {
    const off = cidrCount;
    const parsed: CIDRWords[] = [];
    for (const t of texts) {
      const c = parseCIDR(t);
      if (c === undefined || c.family !== family) {
        skipped++;
        continue;
      }
      const b = cidrCount * CIDR_WORDS;
      cidrs[b] = c.family;
      cidrs[b + 1] = c.prefix;
      cidrs.set(c.words, b + 2);
      cidrCount++;
      parsed.push(c);
    }
    return [off, cidrCount - off, parsed];
  };
  const addFront = (meta: number, words: readonly number[], value: number): void => {
    const b = frontCount * FRONT_WORDS;
    fronts[b] = meta;
    fronts.set(words, b + 1);
    fronts[b + 5] = value;
    frontCount++;
  };

  const [c4off, c4cnt] = addCidrs(snapshot.clusterCIDRs.IPv4, 1);
  const [c6off, c6cnt] = addCidrs(snapshot.clusterCIDRs.IPv6, 2);
  const npa: number[] = [];
  for (const family of ['IPv4', 'IPv6'] as const) {
    const addrs = snapshot.nodePortAddresses[family];
    if (addrs.kind === 'all') {
      npa.push(1, 0, 0);
    } else {
      const [off, cnt] = addCidrs(addrs.cidrs, familyCode(family));
      npa.push(0, off, cnt);
    }
  }
  const nodeIPs = {
    1: snapshot.nodeIPs.IPv4.map(parseIP).filter((a) => a !== undefined),
    2: snapshot.nodeIPs.IPv6.map(parseIP).filter((a) => a !== undefined),
  };
  const NO_WORDS = [0, 0, 0, 0];

  plans.forEach((a, index) => {
    const { plan } = a;
    const family = a.family;
    const proto = PROTOCOL_NUMBERS[plan.protocol] ?? 0;
    const base = index * SP_WORDS;
    const iOff = listAt;
    for (const id of a.internal) lists[listAt++] = id;
    const eOff = listAt;
    for (const id of a.external) lists[listAt++] = id;
    const sOff = listAt;
    for (const id of a.shortCircuit) lists[listAt++] = id;
    const iCnt = a.internal.length;
    const eCnt = a.external.length;
    const sCnt = a.shortCircuit.length;
    let rOff = cidrCount;
    let rCnt = 0;
    let allowFromNode = false;
    if (plan.loadBalancerSourceRanges.length > 0) {
      const [off, cnt, ranges] = addCidrs(plan.loadBalancerSourceRanges, family);
      rOff = off;
      rCnt = cnt;
      allowFromNode = ranges.some((r) => nodeIPs[family].some((n) => cidrContains(r, n.family, ...n.words)));
    }
    sps[base + SP.ID] = a.spId;
    sps[base + SP.AFFINITY_MS] = affinityMs(plan.sessionAffinity?.timeoutSeconds);
    sps[base + SP.FAMILY] = family;
    sps[base + SP.INT_VERDICT] = VERDICT_CODES[plan.internal] ?? 1;
    sps[base + SP.INT_OFF] = iOff;
    sps[base + SP.INT_CNT] = iCnt;
    sps[base + SP.EXT_VERDICT] = VERDICT_CODES[plan.external] ?? 1;
    sps[base + SP.EXT_OFF] = eOff;
    sps[base + SP.EXT_CNT] = eCnt;
    sps[base + SP.SC_OFF] = sOff;
    sps[base + SP.SC_CNT] = sCnt;
    sps[base + SP.SRC_OFF] = rOff;
    sps[base + SP.SRC_CNT] = rCnt;
    sps[base + SP.ALLOW_FROM_NODE] = allowFromNode ? 1 : 0;
    sps[base + SP.PROTOCOL] = proto;
    if (proto === 0) return;
    const meta = ((family << 24) | (proto << 16)) >>> 0;
    const add = (ip: string, kind: number): void => {
      const p = parseIP(ip);
      if (p === undefined || p.family !== family || !validPort(plan.port)) {
        skipped++;
        return;
      }
      addFront((meta | plan.port) >>> 0, p.words, ((index << 2) | kind) >>> 0);
    };
    if (plan.clusterIP !== '' && plan.clusterIP !== 'None') add(plan.clusterIP, KIND_CLUSTER_IP);
    for (const ip of plan.externalIPs) add(ip, KIND_EXTERNAL_IP);
    for (const ip of plan.loadBalancerIPs) add(ip, KIND_LOAD_BALANCER);
    if (plan.nodePort !== undefined && validPort(plan.nodePort)) {
      addFront((meta | plan.nodePort) >>> 0, NO_WORDS, ((index << 2) | KIND_NODE_PORT) >>> 0);
    }
  });

  return {
    servicePorts: sps,
    servicePortCount: plans.length,
    lists,
    cidrs: cidrs.subarray(0, cidrCount * CIDR_WORDS),
    frontends: fronts.subarray(0, frontCount * FRONT_WORDS),
    frontendCount: frontCount,
    clusterCidrs: [c4off, c4cnt, c6off, c6cnt],
    nodePortAddresses: npa,
    skipped,
  };
}

export function validPort(port: number): boolean {
  return Number.isInteger(port) && port > 0 && port <= 65535;
}

/** The affinity timeout in ms (0: no affinity), as both matchers use it. */
export function affinityMs(timeoutSeconds: number | undefined): number {
  if (timeoutSeconds === undefined || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) return 0;
  return Math.min(0xffffffff, Math.round(timeoutSeconds * 1000));
}
