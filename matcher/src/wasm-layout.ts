/**
 * Compiles a Snapshot into the flat arrays the WebAssembly matcher reads (its linear-memory
 * layout), and nothing else: pure, no memory access. matcher/assembly/index.ts reads the same
 * layout; keep the two in step.
 */
import type { Snapshot } from '../../core/model/snapshot.js';
import { KIND_CLUSTER_IP, KIND_EXTERNAL_IP, KIND_LOAD_BALANCER, KIND_NODE_PORT, PROTOCOL_NUMBERS, VERDICT_CODES } from './codes.js';
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

class Growable {
  private data: Uint32Array;
  length = 0;
  constructor(initial: number) {
    this.data = new Uint32Array(Math.max(16, initial));
  }
  push(...values: number[]): void {
    if (this.length + values.length > this.data.length) {
      const next = new Uint32Array(Math.max(this.data.length * 2, this.length + values.length));
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    }
    for (const v of values) this.data[this.length++] = v >>> 0;
  }
  finish(): Uint32Array {
    return this.data.slice(0, this.length);
  }
}

export function compileTable(snapshot: Snapshot, plans: readonly AssignedPlan[]): CompiledTable {
  const sps = new Uint32Array(plans.length * SP_WORDS);
  const lists = new Growable(plans.length * 8);
  const cidrs = new Growable(64);
  const fronts = new Growable(plans.length * FRONT_WORDS * 2);
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
      cidrs.push(c.family, c.prefix, ...c.words, 0, 0);
      cidrCount++;
      parsed.push(c);
    }
    return [off, cidrCount - off, parsed];
  };
  const addList = (ids: readonly number[]): [number, number] => {
    const off = lists.length;
    lists.push(...ids);
    return [off, ids.length];
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

  plans.forEach((a, index) => {
    const { plan } = a;
    const family = a.family;
    const proto = PROTOCOL_NUMBERS[plan.protocol] ?? 0;
    const base = index * SP_WORDS;
    const [iOff, iCnt] = addList(a.internal);
    const [eOff, eCnt] = addList(a.external);
    const [sOff, sCnt] = addList(a.shortCircuit);
    const [rOff, rCnt, ranges] = addCidrs(plan.loadBalancerSourceRanges, family);
    const allowFromNode = ranges.some((r) => nodeIPs[family].some((n) => cidrContains(r, n.family, ...n.words)));
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
    const addFront = (ip: string, port: number, kind: number): void => {
      const p = parseIP(ip);
      if (p === undefined || p.family !== family || !validPort(port)) {
        skipped++;
        return;
      }
      fronts.push(((family << 24) | (proto << 16) | port) >>> 0, ...p.words, ((index << 2) | kind) >>> 0, 0, 0);
      frontCount++;
    };
    if (plan.clusterIP !== '' && plan.clusterIP !== 'None') addFront(plan.clusterIP, plan.port, KIND_CLUSTER_IP);
    for (const ip of plan.externalIPs) addFront(ip, plan.port, KIND_EXTERNAL_IP);
    for (const ip of plan.loadBalancerIPs) addFront(ip, plan.port, KIND_LOAD_BALANCER);
    if (plan.nodePort !== undefined && validPort(plan.nodePort)) {
      fronts.push(((family << 24) | (proto << 16) | plan.nodePort) >>> 0, 0, 0, 0, 0, ((index << 2) | KIND_NODE_PORT) >>> 0, 0, 0);
      frontCount++;
    }
  });

  return {
    servicePorts: sps,
    servicePortCount: plans.length,
    lists: lists.finish(),
    cidrs: cidrs.finish(),
    frontends: fronts.finish(),
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
