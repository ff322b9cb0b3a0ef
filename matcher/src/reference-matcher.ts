/**
 * The matcher contract in plain TypeScript, written from the contract and not from the
 * WebAssembly code: Maps instead of hand-made hash tables, the Snapshot read directly. It backs
 * the differential tests and is the fallback when WebAssembly cannot load.
 *
 * It agrees with WasmMatcher exactly on every result, detail and table count, with one
 * documented exception: when a full affinity or flow table must evict a live entry to make room,
 * which entry goes is implementation-defined (here: the least recently used among the oldest,
 * unless one of those has expired).
 */
import type { Snapshot, TrafficVerdict } from '../../core/model/snapshot.js';
import {
  DROP,
  FLAG_FLOW,
  FLAG_FROM_NODE,
  FLAG_FROM_POD,
  KIND_CLUSTER_IP,
  KIND_EXTERNAL_IP,
  KIND_LOAD_BALANCER,
  KIND_NODE_PORT,
  NO_ENDPOINTS,
  NO_MATCH,
  PATH_EXTERNAL,
  PATH_INTERNAL,
  PATH_SHORT_CIRCUIT,
  PROTOCOL_NUMBERS,
  REASON_AFFINITY,
  REASON_FLOW,
  REASON_PLAN,
  REASON_RANDOM,
  REASON_SOURCE_RANGE,
  xorshift32,
} from './codes.js';
import { cidrContains, parseCIDR, parseIP, type CIDRWords } from './ip.js';
import {
  MatcherBase,
  QUERY_WORDS,
  Q,
  type AssignedPlan,
  type LoadResult,
  type MatcherOptions,
  type RawFlow,
  type SelectBatch,
  writeQuery,
} from './matcher.js';
import { affinityMs, validPort } from './wasm-layout.js';

interface RefPath {
  readonly verdict: TrafficVerdict | 'invalid';
  readonly endpoints: readonly number[];
}

interface RefServicePort {
  readonly spId: number;
  readonly affinityMs: number;
  readonly internal: RefPath;
  readonly external: RefPath;
  readonly shortCircuit: readonly number[];
  readonly sourceRanges: readonly CIDRWords[];
  readonly allowFromNode: boolean;
  /** Endpoint ids of every path. */
  readonly eligible: ReadonlySet<number>;
}

interface RefFrontend {
  readonly sp: RefServicePort;
  readonly kind: number;
}

interface Entry {
  ep: number;
  sp: number;
  expiry: number;
}

const EVICT_SCAN = 32;

function addrKey(w0: number, w1: number, w2: number, w3: number): string {
  return `${w0 >>> 0}.${w1 >>> 0}.${w2 >>> 0}.${w3 >>> 0}`;
}

/** A Map with a size limit: touching moves an entry to the end; eviction starts at the front. */
class BoundedTable {
  private readonly map = new Map<string, Entry>();
  constructor(private readonly limit: number) {}

  get size(): number {
    return this.map.size;
  }

  /** The live entry, removing it when expired. */
  get(key: string, now: number): Entry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiry <= now) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  touch(key: string, e: Entry, expiry: number): void {
    e.expiry = expiry;
    this.map.delete(key);
    this.map.set(key, e);
  }

  put(key: string, ep: number, sp: number, expiry: number, now: number): boolean {
    if (this.limit === 0) return false;
    const existing = this.map.get(key);
    if (existing !== undefined) {
      existing.ep = ep;
      existing.sp = sp;
      this.touch(key, existing, expiry);
      return true;
    }
    if (this.map.size >= this.limit) this.evict(now);
    this.map.set(key, { ep, sp, expiry });
    return true;
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  private evict(now: number): void {
    let n = 0;
    let first: string | undefined;
    for (const [k, e] of this.map) {
      first ??= k;
      if (e.expiry <= now) {
        this.map.delete(k);
        return;
      }
      if (++n >= EVICT_SCAN) break;
    }
    if (first !== undefined) this.map.delete(first);
  }

  /** Remove entries for which `keep` is false; returns how many. */
  retain(keep: (e: Entry) => boolean): number {
    let removed = 0;
    for (const [k, e] of this.map) {
      if (!keep(e)) {
        this.map.delete(k);
        removed++;
      }
    }
    return removed;
  }
}

export class ReferenceMatcher extends MatcherBase {
  readonly implementation = 'reference' as const;
  readonly batch: SelectBatch;
  private loaded = false;
  private frontends = new Map<string, RefFrontend>();
  private nodePorts = new Map<string, RefServicePort>();
  private clusterCidrs: Record<number, readonly CIDRWords[]> = { 1: [], 2: [] };
  private nodePortAll: Record<number, boolean> = { 1: false, 2: false };
  private nodePortCidrs: Record<number, readonly CIDRWords[]> = { 1: [], 2: [] };
  private readonly affinity: BoundedTable;
  private readonly flows: BoundedTable;
  private rng: number;
  private lastSp = 0;
  private lastBits = 0;

  constructor(options: MatcherOptions = {}) {
    super(options);
    this.affinity = new BoundedTable(this.options.affinityCapacity);
    this.flows = new BoundedTable(this.options.flowCapacity);
    this.rng = this.options.seed;
    this.batch = this.makeBatch();
  }

  /** Always checks every entry (`shrinks` is only an optimisation hint, ignored here on purpose). */
  protected loadAssigned(snapshot: Snapshot, plans: readonly AssignedPlan[], _shrinks: boolean): LoadResult {
    let skipped = 0;
    const cidrsOf = (texts: readonly string[], family: number): CIDRWords[] => {
      const out: CIDRWords[] = [];
      for (const t of texts) {
        const c = parseCIDR(t);
        if (c === undefined || c.family !== family) skipped++;
        else out.push(c);
      }
      return out;
    };
    const clusterCidrs = {
      1: cidrsOf(snapshot.clusterCIDRs.IPv4, 1),
      2: cidrsOf(snapshot.clusterCIDRs.IPv6, 2),
    };
    const v4 = snapshot.nodePortAddresses.IPv4;
    const v6 = snapshot.nodePortAddresses.IPv6;
    const nodePortAll = { 1: v4.kind === 'all', 2: v6.kind === 'all' };
    const nodePortCidrs = {
      1: v4.kind === 'cidrs' ? cidrsOf(v4.cidrs, 1) : [],
      2: v6.kind === 'cidrs' ? cidrsOf(v6.cidrs, 2) : [],
    };
    const nodeIPs = [...snapshot.nodeIPs.IPv4, ...snapshot.nodeIPs.IPv6]
      .map(parseIP)
      .filter((a) => a !== undefined);

    const frontends = new Map<string, RefFrontend>();
    const nodePorts = new Map<string, RefServicePort>();
    const byId = new Map<number, RefServicePort>();
    for (const a of plans) {
      const { plan, family } = a;
      const sourceRanges = cidrsOf(plan.loadBalancerSourceRanges, family);
      const verdictOf = (v: TrafficVerdict): TrafficVerdict | 'invalid' =>
        v === 'forward' || v === 'reject' || v === 'drop' ? v : 'invalid';
      const sp: RefServicePort = {
        spId: a.spId,
        affinityMs: affinityMs(plan.sessionAffinity?.timeoutSeconds),
        internal: { verdict: verdictOf(plan.internal), endpoints: a.internal },
        external: { verdict: verdictOf(plan.external), endpoints: a.external },
        shortCircuit: a.shortCircuit,
        sourceRanges,
        allowFromNode: sourceRanges.some((r) => nodeIPs.some((n) => cidrContains(r, n.family, ...n.words))),
        eligible: new Set([...a.internal, ...a.external, ...a.shortCircuit]),
      };
      byId.set(a.spId, sp);
      const proto = PROTOCOL_NUMBERS[plan.protocol];
      if (proto === undefined) continue;
      const add = (ip: string, kind: number): void => {
        const p = parseIP(ip);
        if (p === undefined || p.family !== family || !validPort(plan.port)) {
          skipped++;
          return;
        }
        const key = `${family}/${proto}/${plan.port}/${addrKey(...p.words)}`;
        if (!frontends.has(key)) frontends.set(key, { sp, kind });
      };
      if (plan.clusterIP !== '' && plan.clusterIP !== 'None') add(plan.clusterIP, KIND_CLUSTER_IP);
      for (const ip of plan.externalIPs) add(ip, KIND_EXTERNAL_IP);
      for (const ip of plan.loadBalancerIPs) add(ip, KIND_LOAD_BALANCER);
      if (plan.nodePort !== undefined && validPort(plan.nodePort)) {
        const key = `${family}/${proto}/${plan.nodePort}`;
        if (!nodePorts.has(key)) nodePorts.set(key, sp);
      }
    }
    this.frontends = frontends;
    this.nodePorts = nodePorts;
    this.clusterCidrs = clusterCidrs;
    this.nodePortAll = nodePortAll;
    this.nodePortCidrs = nodePortCidrs;
    this.loaded = true;

    const stillEligible = (e: Entry): boolean => byId.get(e.sp)?.eligible.has(e.ep) ?? false;
    const purgedAffinity = this.affinity.retain(stillEligible);
    const purgedFlows = this.flows.retain(stillEligible);
    let frontendCount = 0;
    for (const a of plans) {
      if (PROTOCOL_NUMBERS[a.plan.protocol] === undefined) continue;
      const ips = [a.plan.clusterIP, ...a.plan.externalIPs, ...a.plan.loadBalancerIPs];
      frontendCount += ips.filter((ip) => {
        const p = parseIP(ip);
        return p !== undefined && p.family === a.family && validPort(a.plan.port);
      }).length;
      if (a.plan.nodePort !== undefined && validPort(a.plan.nodePort)) frontendCount++;
    }
    return {
      servicePorts: plans.length,
      endpoints: this.endpointIds.size,
      frontends: frontendCount,
      skipped,
      purgedAffinity,
      purgedFlows,
    };
  }

  private random(n: number): number {
    this.rng = xorshift32(this.rng);
    return this.rng % n;
  }

  private flowTimeout(proto: number): number {
    if (proto === 17) return this.options.udpTimeoutMs;
    if (proto === 132) return this.options.sctpTimeoutMs;
    return this.options.tcpTimeoutMs;
  }

  selectRaw(
    family: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    protocol: number,
    port: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    clientPort: number,
    nowMs: number,
    flags: number,
  ): number {
    this.lastSp = 0;
    this.lastBits = 0;
    if (!this.loaded || (family !== 1 && family !== 2) || protocol > 255 || protocol < 0) return NO_MATCH;
    const dport = port & 0xffff;
    const cport = clientPort & 0xffff;
    const c = [c0 >>> 0, c1 >>> 0, c2 >>> 0, c3 >>> 0] as const;
    const d = [d0 >>> 0, d1 >>> 0, d2 >>> 0, d3 >>> 0] as const;
    const flow: RawFlow = { family, protocol, c, clientPort: cport, d, port: dport };
    if (flags & FLAG_FLOW) {
      const ep = this.flowGetRaw(flow, nowMs, true);
      if (ep >= 1) {
        this.lastBits = REASON_FLOW << 8;
        return ep;
      }
    }
    let front = this.frontends.get(`${family}/${protocol}/${dport}/${addrKey(...d)}`);
    if (front === undefined) {
      const sp = this.nodePorts.get(`${family}/${protocol}/${dport}`);
      if (sp === undefined) return NO_MATCH;
      const listening =
        this.nodePortAll[family] || this.nodePortCidrs[family]!.some((r) => cidrContains(r, family, ...d));
      if (!listening) return NO_MATCH;
      front = { sp, kind: KIND_NODE_PORT };
    }
    const { sp, kind } = front;
    this.lastSp = sp.spId;
    let detail = kind << 4;
    let verdict: TrafficVerdict | 'invalid';
    let endpoints: readonly number[];
    if (kind === KIND_CLUSTER_IP) {
      ({ verdict, endpoints } = sp.internal);
      detail |= PATH_INTERNAL;
    } else {
      if (kind === KIND_LOAD_BALANCER && sp.sourceRanges.length > 0) {
        const allowed =
          sp.sourceRanges.some((r) => cidrContains(r, family, ...c)) ||
          (sp.allowFromNode && c.every((w, i) => w === d[i]));
        if (!allowed) {
          this.lastBits = detail | PATH_EXTERNAL | (REASON_SOURCE_RANGE << 8);
          return DROP;
        }
      }
      const local =
        sp.shortCircuit.length > 0 &&
        ((flags & (FLAG_FROM_NODE | FLAG_FROM_POD)) !== 0 ||
          this.clusterCidrs[family]!.some((r) => cidrContains(r, family, ...c)));
      if (local) {
        verdict = 'forward';
        endpoints = sp.shortCircuit;
        detail |= PATH_SHORT_CIRCUIT;
      } else {
        ({ verdict, endpoints } = sp.external);
        detail |= PATH_EXTERNAL;
      }
    }
    if (verdict !== 'forward' || endpoints.length === 0) {
      this.lastBits = detail | (REASON_PLAN << 8);
      return verdict === 'drop' ? DROP : NO_ENDPOINTS;
    }
    let chosen: number;
    if (sp.affinityMs > 0) {
      const key = `${sp.spId}/${addrKey(...c)}`;
      const remembered = this.affinity.get(key, nowMs);
      if (remembered !== undefined && endpoints.includes(remembered.ep)) {
        this.affinity.touch(key, remembered, nowMs + sp.affinityMs);
        this.lastBits = detail | (REASON_AFFINITY << 8);
        chosen = remembered.ep;
      } else {
        chosen = endpoints[this.random(endpoints.length)]!;
        this.affinity.put(key, chosen, sp.spId, nowMs + sp.affinityMs, nowMs);
        this.lastBits = detail | (REASON_RANDOM << 8);
      }
    } else {
      chosen = endpoints[this.random(endpoints.length)]!;
      this.lastBits = detail | (REASON_RANDOM << 8);
    }
    if (flags & FLAG_FLOW) this.flowSetRaw(flow, chosen, sp.spId, nowMs);
    return chosen;
  }

  lastServicePortId(): number {
    return this.lastSp;
  }

  lastDetail(): number {
    return this.lastBits;
  }

  affinityLookupRaw(
    servicePortId: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    nowMs: number,
  ): number {
    const e = this.affinity.get(`${servicePortId}/${addrKey(c0, c1, c2, c3)}`, nowMs);
    return e === undefined ? -1 : e.ep;
  }

  private flowKey(f: RawFlow): string {
    return `${f.family}/${f.protocol}/${addrKey(...f.c)}/${f.clientPort & 0xffff}/${addrKey(...f.d)}/${f.port & 0xffff}`;
  }

  protected flowGetRaw(f: RawFlow, nowMs: number, touch: boolean): number {
    const key = this.flowKey(f);
    const e = this.flows.get(key, nowMs);
    if (e === undefined) return -1;
    if (touch) this.flows.touch(key, e, nowMs + this.flowTimeout(f.protocol));
    this.lastSp = e.sp;
    return e.ep;
  }

  protected flowSetRaw(f: RawFlow, endpointId: number, servicePortId: number, nowMs: number): boolean {
    return this.flows.put(
      this.flowKey(f),
      endpointId,
      servicePortId,
      nowMs + this.flowTimeout(f.protocol),
      nowMs,
    );
  }

  protected flowDelRaw(f: RawFlow): boolean {
    return this.flows.delete(this.flowKey(f));
  }

  protected affinityCount(): number {
    return this.affinity.size;
  }

  protected flowCount(): number {
    return this.flows.size;
  }

  sweep(nowMs: number): number {
    const live = (e: Entry): boolean => e.expiry > nowMs;
    return this.affinity.retain(live) + this.flows.retain(live);
  }

  reseed(seed: number): void {
    this.rng = seed >>> 0 || 0x9e3779b9;
  }

  private makeBatch(): SelectBatch {
    const capacity = this.options.batchCapacity;
    const queries = new Uint32Array(capacity * QUERY_WORDS);
    const results = new Int32Array(capacity);
    const servicePorts = new Uint32Array(capacity);
    return {
      capacity,
      queries: () => queries,
      results: () => results,
      servicePorts: () => servicePorts,
      set(i, family, dst, protocol, port, client, clientPort, flags): void {
        writeQuery(queries, i, family, dst, protocol, port, client, clientPort, flags);
      },
      run: (n: number, nowMs: number): Int32Array => {
        if (n > capacity || n < 0) throw new RangeError(`batch of ${n} exceeds capacity ${capacity}`);
        for (let i = 0; i < n; i++) {
          const b = i * QUERY_WORDS;
          results[i] = this.selectRaw(
            queries[b + Q.FAMILY]!,
            queries[b + Q.DST]!,
            queries[b + Q.DST + 1]!,
            queries[b + Q.DST + 2]!,
            queries[b + Q.DST + 3]!,
            queries[b + Q.PROTOCOL]!,
            queries[b + Q.PORT]!,
            queries[b + Q.CLIENT]!,
            queries[b + Q.CLIENT + 1]!,
            queries[b + Q.CLIENT + 2]!,
            queries[b + Q.CLIENT + 3]!,
            queries[b + Q.CLIENT_PORT]!,
            nowMs,
            queries[b + Q.FLAGS]!,
          );
          servicePorts[i] = this.lastSp;
        }
        return results;
      },
    };
  }
}
