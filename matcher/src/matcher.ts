/**
 * The matcher's typed API: the `Matcher` contract both implementations share, the common part
 * (stable ids, the string-level API), and `WasmMatcher`, which drives the WebAssembly module.
 *
 * Numbers cross the boundary, nothing else: addresses are a family (1 = IPv4, 2 = IPv6) and
 * four u32 words (see ip.ts), protocols their IANA numbers, times milliseconds.
 */
import type {
  EndpointPlan,
  IPFamily,
  Protocol,
  ServicePortPlan,
  Snapshot,
} from '../../core/model/snapshot.js';
import {
  DEFAULT_SEED,
  DROP,
  FLAG_FLOW,
  FLAG_FROM_NODE,
  FLAG_FROM_POD,
  NO_ENDPOINTS,
  NO_MATCH,
  PROTOCOL_NUMBERS,
  decodeDetail,
  type FrontendKind,
  type SelectionReason,
  type TrafficPath,
} from './codes.js';
import { IdRegistry } from './id-registry.js';
import { familyCode, parseIP, type FamilyCode } from './ip.js';
import type { MatcherExports } from './loader.js';
import {
  AFFINITY_SLOT_BYTES,
  CIDR_WORDS,
  FLOW_SLOT_BYTES,
  FRONT_WORDS,
  H,
  HEADER_WORDS,
  NODE_PORT_TABLE_BYTES,
  QUERY_BYTES,
  TABLE_MAGIC,
  compileTable,
  tableCapacity,
} from './wasm-layout.js';

export interface EndpointRef {
  readonly ip: string;
  readonly port: number;
  readonly family: IPFamily;
  readonly targetName?: string;
}

export type SelectionVerdict = 'forward' | 'reject' | 'drop' | 'no-match';

export interface Selection {
  readonly verdict: SelectionVerdict;
  /** The raw result: an endpoint id (>= 1), NO_MATCH, NO_ENDPOINTS or DROP. */
  readonly code: number;
  readonly endpointId?: number;
  readonly endpoint?: EndpointRef;
  readonly servicePort?: ServicePortPlan;
  readonly path?: TrafficPath;
  readonly frontend?: FrontendKind;
  readonly reason?: SelectionReason;
}

export interface SelectQuery {
  readonly destination: string;
  readonly protocol: Protocol;
  readonly port: number;
  readonly client: string;
  readonly clientPort?: number;
  /** Milliseconds (any monotonic clock, the same for every call). */
  readonly nowMs: number;
  /** The connection comes from the node itself. */
  readonly fromNode?: boolean;
  /** The connection comes from a pod (the matcher also checks clusterCIDR itself). */
  readonly fromPod?: boolean;
  /** Go through the flow table (look the 5-tuple up first; remember a new choice). */
  readonly trackFlow?: boolean;
}

export interface FlowKey {
  readonly protocol: Protocol;
  readonly client: string;
  readonly clientPort: number;
  readonly destination: string;
  readonly port: number;
}

export interface LoadResult {
  readonly servicePorts: number;
  readonly endpoints: number;
  readonly frontends: number;
  /** Addresses or CIDRs in the snapshot that did not parse. */
  readonly skipped: number;
  /** Affinity entries dropped because their endpoint is no longer eligible. */
  readonly purgedAffinity: number;
  /** Flow entries dropped because their endpoint is no longer eligible. */
  readonly purgedFlows: number;
}

export interface MatcherStats {
  readonly implementation: 'wasm' | 'reference';
  readonly servicePorts: number;
  readonly endpoints: number;
  readonly affinityEntries: number;
  readonly flowEntries: number;
  readonly affinityCapacity: number;
  readonly flowCapacity: number;
}

export interface MatcherOptions {
  /** Most affinity entries kept (default 65536). */
  readonly affinityCapacity?: number;
  /** Most flow entries kept (default 65536). */
  readonly flowCapacity?: number;
  /** Queries one batch call can take (default 1024). */
  readonly batchCapacity?: number;
  /** PRNG seed (xorshift32); 0 means the default seed. */
  readonly seed?: number;
  /** Idle timeouts of flow entries. Defaults: TCP 86400 s, UDP 30 s, SCTP as TCP. */
  readonly flowTimeouts?: { readonly tcpMs?: number; readonly udpMs?: number; readonly sctpMs?: number };
}

export interface ResolvedMatcherOptions {
  readonly affinityCapacity: number;
  readonly flowCapacity: number;
  readonly batchCapacity: number;
  readonly seed: number;
  readonly tcpTimeoutMs: number;
  readonly udpTimeoutMs: number;
  readonly sctpTimeoutMs: number;
}

export function resolveMatcherOptions(o: MatcherOptions = {}): ResolvedMatcherOptions {
  const tcp = o.flowTimeouts?.tcpMs ?? 86_400_000;
  return {
    affinityCapacity: Math.max(0, Math.floor(o.affinityCapacity ?? 65_536)),
    flowCapacity: Math.max(0, Math.floor(o.flowCapacity ?? 65_536)),
    batchCapacity: Math.max(1, Math.floor(o.batchCapacity ?? 1024)),
    seed: (o.seed ?? DEFAULT_SEED) >>> 0 || DEFAULT_SEED,
    tcpTimeoutMs: tcp,
    udpTimeoutMs: o.flowTimeouts?.udpMs ?? 30_000,
    sctpTimeoutMs: o.flowTimeouts?.sctpMs ?? tcp,
  };
}

/** Query record layout of a batch: QUERY_WORDS u32 words each. */
export const QUERY_WORDS = 16;
export const Q = { FAMILY: 0, PROTOCOL: 1, PORT: 2, FLAGS: 3, DST: 4, CLIENT: 8, CLIENT_PORT: 12 } as const;

/** Many queries, one call. Views may be re-created when memory grows: fetch them per use. */
export interface SelectBatch {
  readonly capacity: number;
  /** capacity × QUERY_WORDS words (layout: Q). */
  queries(): Uint32Array;
  /** One result per query after `run`. */
  results(): Int32Array;
  /** The service port id each query matched (0: none) after `run`. */
  servicePorts(): Uint32Array;
  set(
    i: number,
    family: number,
    dst: ArrayLike<number>,
    protocol: number,
    port: number,
    client: ArrayLike<number>,
    clientPort: number,
    flags: number,
  ): void;
  /** Select for queries 0..n-1; returns results(). */
  run(n: number, nowMs: number): Int32Array;
}

/** The matcher contract (WasmMatcher and ReferenceMatcher). */
export interface Matcher {
  readonly implementation: 'wasm' | 'reference';
  /** Take a new snapshot; live affinity and flow entries survive while their endpoint stays eligible. */
  load(snapshot: Snapshot): LoadResult;
  select(query: SelectQuery): Selection;
  /** The hot path: numbers in, an endpoint id (>= 1), NO_MATCH, NO_ENDPOINTS or DROP out. */
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
  ): number;
  /** The service port id (>= 1) the last selection matched, 0 when none. */
  lastServicePortId(): number;
  /** path | frontend kind << 4 | reason << 8 of the last selection (decodeDetail). */
  lastDetail(): number;
  readonly batch: SelectBatch;
  endpoint(id: number): EndpointRef | undefined;
  servicePort(id: number): ServicePortPlan | undefined;
  servicePortId(planId: string): number | undefined;
  /** The endpoint a client is stuck to on a Service port (expired entries are removed), if any. */
  affinityLookup(planId: string, client: string, nowMs: number): EndpointRef | undefined;
  affinityLookupRaw(
    servicePortId: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    nowMs: number,
  ): number;
  /** The flow's endpoint id, or NO_MATCH. `touch` restarts its idle timer. */
  flowLookup(flow: FlowKey, nowMs: number, touch?: boolean): number;
  /** Remember a flow's endpoint; refused (false) unless the endpoint is eligible on a path of the plan. */
  flowInsert(flow: FlowKey, endpointId: number, planId: string, nowMs: number): boolean;
  flowTouch(flow: FlowKey, nowMs: number): boolean;
  flowRemove(flow: FlowKey): boolean;
  /** Remove expired affinity and flow entries; returns how many. */
  sweep(nowMs: number): number;
  reseed(seed: number): void;
  stats(): MatcherStats;
}

/** A service port with the ids both implementations use. */
export interface AssignedPlan {
  readonly plan: ServicePortPlan;
  readonly spId: number;
  readonly family: FamilyCode;
  readonly internal: readonly number[];
  readonly external: readonly number[];
  readonly shortCircuit: readonly number[];
}

/** A flow key as numbers. */
export interface RawFlow {
  family: number;
  protocol: number;
  c: readonly [number, number, number, number];
  clientPort: number;
  d: readonly [number, number, number, number];
  port: number;
}

function rawFlow(flow: FlowKey): RawFlow | undefined {
  const c = parseIP(flow.client);
  const d = parseIP(flow.destination);
  if (c === undefined || d === undefined || c.family !== d.family) return undefined;
  return {
    family: c.family,
    protocol: PROTOCOL_NUMBERS[flow.protocol] ?? 0,
    c: c.words,
    clientPort: flow.clientPort & 0xffff,
    d: d.words,
    port: flow.port & 0xffff,
  };
}

/** What both implementations share: stable ids and the string-level API. */
export abstract class MatcherBase implements Matcher {
  abstract readonly implementation: 'wasm' | 'reference';
  abstract readonly batch: SelectBatch;
  protected readonly servicePortIds = new IdRegistry<ServicePortPlan>();
  protected readonly endpointIds = new IdRegistry<EndpointRef>();
  protected readonly options: ResolvedMatcherOptions;

  protected constructor(options: MatcherOptions = {}) {
    this.options = resolveMatcherOptions(options);
  }

  /** The previous load's plans: an unchanged plan (same object) keeps its ids without lookups. */
  private previous = new Map<ServicePortPlan, AssignedPlan>();
  private previousById = new Map<string, AssignedPlan>();

  load(snapshot: Snapshot): LoadResult {
    this.servicePortIds.begin();
    this.endpointIds.begin();
    const plans: AssignedPlan[] = [];
    const current = new Map<ServicePortPlan, AssignedPlan>();
    const currentById = new Map<string, AssignedPlan>();
    // whether some (service port, endpoint) pair eligible before is not any more
    let shrinks = false;
    for (const plan of snapshot.servicePorts.values()) {
      const known = this.previous.get(plan);
      if (known !== undefined) {
        this.servicePortIds.touch(known.spId);
        for (const id of known.internal) this.endpointIds.touch(id);
        for (const id of known.external) this.endpointIds.touch(id);
        for (const id of known.shortCircuit) this.endpointIds.touch(id);
        plans.push(known);
        current.set(plan, known);
        currentById.set(plan.id, known);
        continue;
      }
      const seen = new Map<EndpointPlan, number>();
      const ids = (eps: readonly EndpointPlan[]): number[] =>
        eps.map((e) => {
          let id = seen.get(e);
          if (id === undefined) {
            id = this.endpointIds.acquire(`${e.ip}|${e.port}`, {
              ip: e.ip,
              port: e.port,
              family: plan.family,
              ...(e.targetName !== undefined ? { targetName: e.targetName } : {}),
            });
            seen.set(e, id);
          }
          return id;
        });
      const assigned: AssignedPlan = {
        plan,
        spId: this.servicePortIds.acquire(plan.id, plan),
        family: familyCode(plan.family),
        internal: ids(plan.internalEndpoints),
        external: ids(plan.externalEndpoints),
        shortCircuit: ids(plan.shortCircuitEndpoints),
      };
      plans.push(assigned);
      current.set(plan, assigned);
      currentById.set(plan.id, assigned);
      const before = this.previousById.get(plan.id);
      if (!shrinks && before !== undefined) {
        const now = new Set([...assigned.internal, ...assigned.external, ...assigned.shortCircuit]);
        shrinks = [before.internal, before.external, before.shortCircuit].some((l) =>
          l.some((id) => !now.has(id)),
        );
      }
    }
    if (!shrinks) {
      for (const id of this.previousById.keys()) {
        if (!currentById.has(id)) {
          shrinks = true;
          break;
        }
      }
    }
    this.servicePortIds.end();
    this.endpointIds.end();
    this.previous = current;
    this.previousById = currentById;
    return this.loadAssigned(snapshot, plans, shrinks);
  }

  /**
   * Take the plans with their ids. `shrinks` is false when no (service port, endpoint) pair that
   * was eligible in the previous load has left, so no affinity or flow entry can need purging.
   */
  protected abstract loadAssigned(
    snapshot: Snapshot,
    plans: readonly AssignedPlan[],
    shrinks: boolean,
  ): LoadResult;

  abstract selectRaw(
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
  ): number;
  abstract lastServicePortId(): number;
  abstract lastDetail(): number;
  abstract affinityLookupRaw(
    servicePortId: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    nowMs: number,
  ): number;
  protected abstract flowGetRaw(f: RawFlow, nowMs: number, touch: boolean): number;
  protected abstract flowSetRaw(
    f: RawFlow,
    endpointId: number,
    servicePortId: number,
    nowMs: number,
  ): boolean;
  protected abstract flowDelRaw(f: RawFlow): boolean;
  protected abstract affinityCount(): number;
  protected abstract flowCount(): number;
  abstract sweep(nowMs: number): number;
  abstract reseed(seed: number): void;

  select(q: SelectQuery): Selection {
    const d = parseIP(q.destination);
    const c = parseIP(q.client);
    const proto = PROTOCOL_NUMBERS[q.protocol];
    if (d === undefined || c === undefined || d.family !== c.family || proto === undefined) {
      return { verdict: 'no-match', code: NO_MATCH };
    }
    const flags =
      (q.fromNode ? FLAG_FROM_NODE : 0) | (q.fromPod ? FLAG_FROM_POD : 0) | (q.trackFlow ? FLAG_FLOW : 0);
    const code = this.selectRaw(
      d.family,
      d.words[0],
      d.words[1],
      d.words[2],
      d.words[3],
      proto,
      q.port,
      c.words[0],
      c.words[1],
      c.words[2],
      c.words[3],
      q.clientPort ?? 0,
      q.nowMs,
      flags,
    );
    const detail = decodeDetail(this.lastDetail());
    const spId = this.lastServicePortId();
    const servicePort = spId > 0 ? this.servicePortIds.get(spId) : undefined;
    const common = {
      code,
      ...(servicePort !== undefined ? { servicePort } : {}),
      ...(detail.path !== undefined ? { path: detail.path } : {}),
      ...(detail.frontend !== undefined ? { frontend: detail.frontend } : {}),
      ...(detail.reason !== undefined ? { reason: detail.reason } : {}),
    };
    if (code >= 1) {
      const endpoint = this.endpointIds.get(code);
      return {
        verdict: 'forward',
        endpointId: code,
        ...(endpoint !== undefined ? { endpoint } : {}),
        ...common,
      };
    }
    if (code === NO_ENDPOINTS) return { verdict: 'reject', ...common };
    if (code === DROP) return { verdict: 'drop', ...common };
    return { verdict: 'no-match', ...common };
  }

  endpoint(id: number): EndpointRef | undefined {
    return this.endpointIds.get(id);
  }

  servicePort(id: number): ServicePortPlan | undefined {
    return this.servicePortIds.get(id);
  }

  servicePortId(planId: string): number | undefined {
    return this.servicePortIds.idOf(planId);
  }

  affinityLookup(planId: string, client: string, nowMs: number): EndpointRef | undefined {
    const sp = this.servicePortIds.idOf(planId);
    const c = parseIP(client);
    if (sp === undefined || c === undefined) return undefined;
    const ep = this.affinityLookupRaw(sp, c.words[0], c.words[1], c.words[2], c.words[3], nowMs);
    return ep >= 1 ? this.endpointIds.get(ep) : undefined;
  }

  flowLookup(flow: FlowKey, nowMs: number, touch = false): number {
    const f = rawFlow(flow);
    if (f === undefined) return NO_MATCH;
    const ep = this.flowGetRaw(f, nowMs, touch);
    return ep >= 1 ? ep : NO_MATCH;
  }

  flowInsert(flow: FlowKey, endpointId: number, planId: string, nowMs: number): boolean {
    const f = rawFlow(flow);
    const sp = this.servicePortIds.idOf(planId);
    const assigned = this.previousById.get(planId);
    if (f === undefined || sp === undefined || assigned === undefined) return false;
    // only an endpoint the plan allows on one of its paths (a retry may pick another one of them)
    const eligible = [assigned.internal, assigned.external, assigned.shortCircuit].some((l) =>
      l.includes(endpointId),
    );
    return eligible ? this.flowSetRaw(f, endpointId, sp, nowMs) : false;
  }

  flowTouch(flow: FlowKey, nowMs: number): boolean {
    return this.flowLookup(flow, nowMs, true) >= 1;
  }

  flowRemove(flow: FlowKey): boolean {
    const f = rawFlow(flow);
    return f === undefined ? false : this.flowDelRaw(f);
  }

  stats(): MatcherStats {
    return {
      implementation: this.implementation,
      servicePorts: this.servicePortIds.size,
      endpoints: this.endpointIds.size,
      affinityEntries: this.affinityCount(),
      flowEntries: this.flowCount(),
      affinityCapacity: this.options.affinityCapacity,
      flowCapacity: this.options.flowCapacity,
    };
  }
}

const PAGE = 65536;

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** The WebAssembly matcher. Build it from loadMatcher() / createMatcher(), or from exports. */
export class WasmMatcher extends MatcherBase {
  readonly implementation = 'wasm' as const;
  readonly batch: SelectBatch;
  private readonly ex: MatcherExports;
  private readonly tableBase: number;
  private readonly queryPtr: number;
  private readonly resultPtr: number;
  private readonly spOutPtr: number;
  private buffer: ArrayBuffer | undefined;
  private u32 = new Uint32Array(0);
  private i32 = new Int32Array(0);

  constructor(exports: MatcherExports, options: MatcherOptions = {}) {
    super(options);
    this.ex = exports;
    const o = this.options;
    let at = align(exports.heapBase(), 64);
    const affSlots = tableCapacity(o.affinityCapacity * 2);
    const flowSlots = tableCapacity(o.flowCapacity * 2);
    const affPtr = at;
    at += affSlots * AFFINITY_SLOT_BYTES;
    const flowPtr = at;
    at += flowSlots * FLOW_SLOT_BYTES;
    const npPtr = at;
    at += NODE_PORT_TABLE_BYTES;
    this.queryPtr = at;
    at += o.batchCapacity * QUERY_BYTES;
    this.resultPtr = at;
    at += align(o.batchCapacity * 4, 64);
    this.spOutPtr = at;
    at += align(o.batchCapacity * 4, 64);
    this.tableBase = at;
    this.ensureMemory(at + PAGE);
    exports.init(affPtr, affSlots, o.affinityCapacity, flowPtr, flowSlots, o.flowCapacity, npPtr, o.seed);
    exports.setFlowTimeouts(o.tcpTimeoutMs, o.udpTimeoutMs, o.sctpTimeoutMs);
    this.batch = this.makeBatch();
  }

  /** The module's exports (tests and tools). */
  get exports(): MatcherExports {
    return this.ex;
  }

  private ensureMemory(bytes: number): void {
    const mem = this.ex.memory;
    if (mem.buffer.byteLength < bytes) mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / PAGE));
  }

  /** Typed-array views over linear memory, re-created when memory has grown. */
  private views(): void {
    const buf = this.ex.memory.buffer;
    if (buf !== this.buffer) {
      this.buffer = buf as ArrayBuffer;
      this.u32 = new Uint32Array(buf);
      this.i32 = new Int32Array(buf);
    }
  }

  protected loadAssigned(snapshot: Snapshot, plans: readonly AssignedPlan[], shrinks: boolean): LoadResult {
    const t = compileTable(snapshot, plans);
    const hdrPtr = this.tableBase;
    let at = hdrPtr + HEADER_WORDS * 4;
    const spPtr = at;
    at += align(t.servicePorts.byteLength, 64);
    const listPtr = at;
    at += align(t.lists.byteLength, 64);
    const cidrPtr = at;
    at += align(t.cidrs.byteLength, 64);
    const frontPtr = at;
    at += align(t.frontends.byteLength, 64);
    const frontSlots = tableCapacity(t.frontendCount * 2);
    const frontHashPtr = at;
    at += frontSlots * FRONT_WORDS * 4;
    const eligSlots = tableCapacity(t.lists.length * 2);
    const eligPtr = at;
    at += eligSlots * 8;
    this.ensureMemory(at);
    this.views();
    const u = this.u32;
    u.set(t.servicePorts, spPtr >>> 2);
    u.set(t.lists, listPtr >>> 2);
    u.set(t.cidrs, cidrPtr >>> 2);
    u.set(t.frontends, frontPtr >>> 2);
    const h = hdrPtr >>> 2;
    u.fill(0, h, h + HEADER_WORDS);
    u[h + H.MAGIC] = TABLE_MAGIC;
    u[h + H.VERSION] = 1;
    u[h + H.N_SP] = t.servicePortCount;
    u[h + H.SP_PTR] = spPtr;
    u[h + H.N_LIST] = t.lists.length;
    u[h + H.LIST_PTR] = listPtr;
    u[h + H.N_CIDR] = t.cidrs.length / CIDR_WORDS;
    u[h + H.CIDR_PTR] = cidrPtr;
    u[h + H.N_FRONT] = t.frontendCount;
    u[h + H.FRONT_PTR] = frontPtr;
    u[h + H.FRONT_HASH_PTR] = frontHashPtr;
    u[h + H.FRONT_HASH_MASK] = frontSlots - 1;
    u[h + H.ELIG_PTR] = eligPtr;
    u[h + H.ELIG_MASK] = eligSlots - 1;
    t.clusterCidrs.forEach((v, i) => (u[h + H.CLUSTER_CIDR + i] = v));
    t.nodePortAddresses.forEach((v, i) => (u[h + H.NODE_PORT_ADDR + i] = v));
    u[h + H.PURGE] = shrinks ? 1 : 0;
    this.ex.loadTable(hdrPtr);
    return {
      servicePorts: t.servicePortCount,
      endpoints: this.endpointIds.size,
      frontends: t.frontendCount,
      skipped: t.skipped,
      purgedAffinity: this.ex.lastPurgedAffinity(),
      purgedFlows: this.ex.lastPurgedFlows(),
    };
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
    return this.ex.select(family, d0, d1, d2, d3, protocol, port, c0, c1, c2, c3, clientPort, nowMs, flags);
  }

  lastServicePortId(): number {
    return this.ex.lastServicePort();
  }

  lastDetail(): number {
    return this.ex.lastDetail();
  }

  affinityLookupRaw(
    servicePortId: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    nowMs: number,
  ): number {
    return this.ex.affinityGet(servicePortId, c0, c1, c2, c3, nowMs);
  }

  protected flowGetRaw(f: RawFlow, nowMs: number, touch: boolean): number {
    return this.ex.flowGet(f.family, f.protocol, ...f.c, f.clientPort, ...f.d, f.port, nowMs, touch ? 1 : 0);
  }

  protected flowSetRaw(f: RawFlow, endpointId: number, servicePortId: number, nowMs: number): boolean {
    return (
      this.ex.flowSet(
        f.family,
        f.protocol,
        ...f.c,
        f.clientPort,
        ...f.d,
        f.port,
        endpointId,
        servicePortId,
        nowMs,
      ) !== 0
    );
  }

  protected flowDelRaw(f: RawFlow): boolean {
    return this.ex.flowDel(f.family, f.protocol, ...f.c, f.clientPort, ...f.d, f.port) !== 0;
  }

  protected affinityCount(): number {
    return this.ex.affinityCount();
  }

  protected flowCount(): number {
    return this.ex.flowCountNow();
  }

  sweep(nowMs: number): number {
    return this.ex.sweep(nowMs);
  }

  reseed(seed: number): void {
    this.ex.reseed(seed >>> 0);
  }

  private makeBatch(): SelectBatch {
    const capacity = this.options.batchCapacity;
    const qWord = this.queryPtr >>> 2;
    const rWord = this.resultPtr >>> 2;
    const sWord = this.spOutPtr >>> 2;
    let qView = new Uint32Array(0);
    let rView = new Int32Array(0);
    let sView = new Uint32Array(0);
    let viewBuffer: ArrayBufferLike | undefined;
    const refresh = (): void => {
      this.views();
      if (viewBuffer !== this.buffer) {
        viewBuffer = this.buffer;
        qView = this.u32.subarray(qWord, qWord + capacity * QUERY_WORDS);
        rView = this.i32.subarray(rWord, rWord + capacity);
        sView = this.u32.subarray(sWord, sWord + capacity);
      }
    };
    return {
      capacity,
      queries: (): Uint32Array => {
        refresh();
        return qView;
      },
      results: (): Int32Array => {
        refresh();
        return rView;
      },
      servicePorts: (): Uint32Array => {
        refresh();
        return sView;
      },
      set: (i, family, dst, protocol, port, client, clientPort, flags): void => {
        refresh();
        writeQuery(qView, i, family, dst, protocol, port, client, clientPort, flags);
      },
      run: (n: number, nowMs: number): Int32Array => {
        if (n > capacity || n < 0) throw new RangeError(`batch of ${n} exceeds capacity ${capacity}`);
        this.ex.selectBatch(this.queryPtr, this.resultPtr, this.spOutPtr, n, nowMs);
        refresh();
        return rView;
      },
    };
  }
}

export function writeQuery(
  q: Uint32Array,
  i: number,
  family: number,
  dst: ArrayLike<number>,
  protocol: number,
  port: number,
  client: ArrayLike<number>,
  clientPort: number,
  flags: number,
): void {
  const b = i * QUERY_WORDS;
  q[b + Q.FAMILY] = family;
  q[b + Q.PROTOCOL] = protocol;
  q[b + Q.PORT] = port;
  q[b + Q.FLAGS] = flags;
  q[b + Q.DST] = dst[0] ?? 0;
  q[b + Q.DST + 1] = dst[1] ?? 0;
  q[b + Q.DST + 2] = dst[2] ?? 0;
  q[b + Q.DST + 3] = dst[3] ?? 0;
  q[b + Q.CLIENT] = client[0] ?? 0;
  q[b + Q.CLIENT + 1] = client[1] ?? 0;
  q[b + Q.CLIENT + 2] = client[2] ?? 0;
  q[b + Q.CLIENT + 3] = client[3] ?? 0;
  q[b + Q.CLIENT_PORT] = clientPort;
}

export { NO_MATCH, NO_ENDPOINTS, DROP, FLAG_FROM_NODE, FLAG_FROM_POD, FLAG_FLOW };
