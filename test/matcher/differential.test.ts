/**
 * Differential tests: the WebAssembly matcher and the TypeScript reference, given the same
 * seed, the same random snapshots (with reloads that keep, change and drop endpoints) and the
 * same random queries, must agree exactly on every result, detail and table count.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadMatcherSync } from '../../matcher/src/loader.js';
import type { Snapshot } from '../../core/model/snapshot.js';
import type { Matcher, MatcherOptions } from '../../matcher/src/matcher.js';
import { ReferenceMatcher } from '../../matcher/src/reference-matcher.js';
import {
  FLAG_FLOW,
  FLAG_FROM_NODE,
  FLAG_FROM_POD,
  PROTOCOL_NUMBERS,
  decodeDetail,
} from '../../matcher/src/codes.js';
import { formatIP, parseCIDR, parseIP } from '../../matcher/src/ip.js';
import { ensureWasm } from './ensure-wasm.js';
import {
  NODE_PORTS,
  PORTS,
  V4_CLIENTS,
  V4_CLUSTER_IPS,
  V4_EXTERNAL,
  V4_LB,
  V6_CLIENTS,
  V6_CLUSTER_IPS,
  V6_EXTERNAL,
  V6_LB,
  randomShape,
  randomSnapshot,
  seededRng,
  type PlanShape,
  type Rng,
} from './random-snapshots.js';
import { NODE_IP, NODE_IP6 } from './fixtures.js';

beforeAll(() => ensureWasm());

function pair(o: MatcherOptions): [Matcher, Matcher] {
  return [loadMatcherSync(o), new ReferenceMatcher(o)];
}

interface Query {
  family: number;
  d: [number, number, number, number];
  proto: number;
  port: number;
  c: [number, number, number, number];
  cport: number;
  flags: number;
}

function randomQuery(r: Rng, snap?: Snapshot, recent: Query[] = []): Query {
  if (recent.length > 0 && r.bool(0.35)) {
    // the same client again (new connection, or the same one for the flow table)
    const again = r.pick(recent);
    return { ...again, cport: r.bool(0.5) ? again.cport : r.int(65536) };
  }
  const v6 = r.bool(0.3);
  const plans = snap === undefined ? [] : [...snap.servicePorts.values()];
  let dst: string;
  let port: number;
  let proto: number;
  if (plans.length > 0 && r.bool(0.6)) {
    const p = r.pick(plans);
    const fronts: [string, number][] = [[p.clusterIP, p.port]];
    for (const ip of [...p.externalIPs, ...p.loadBalancerIPs]) fronts.push([ip, p.port]);
    if (p.nodePort !== undefined) fronts.push([p.family === 'IPv4' ? NODE_IP : NODE_IP6, p.nodePort]);
    [dst, port] = r.pick(fronts);
    proto = PROTOCOL_NUMBERS[p.protocol];
  } else {
    const dsts = v6
      ? [...V6_CLUSTER_IPS, ...V6_EXTERNAL, ...V6_LB, NODE_IP6, 'fd00:77::9', 'fd00:96::ff']
      : [...V4_CLUSTER_IPS, ...V4_EXTERNAL, ...V4_LB, NODE_IP, '192.168.77.9', '10.96.9.9'];
    dst = r.pick(dsts);
    port = r.bool(0.5) ? r.pick(PORTS) : r.bool(0.8) ? r.pick(NODE_PORTS) : r.int(70000);
    proto = r.bool(0.97) ? r.pick([6, 6, 17, 132]) : r.int(300);
  }
  const d = parseIP(dst)!;
  const c = parseIP(r.pick(d.family === 2 ? V6_CLIENTS : V4_CLIENTS))!;
  const flags =
    (r.bool(0.15) ? FLAG_FROM_NODE : 0) | (r.bool(0.1) ? FLAG_FROM_POD : 0) | (r.bool(0.3) ? FLAG_FLOW : 0);
  const q: Query = {
    family: d.family,
    d: [...d.words],
    proto,
    port,
    c: [...c.words],
    cport: r.bool(0.5) ? 40000 + r.int(4) : r.int(70000),
    flags,
  };
  recent.push(q);
  if (recent.length > 8) recent.shift();
  return q;
}

function deepCopy(s: Snapshot): Snapshot {
  return { ...s, servicePorts: new Map([...s.servicePorts].map(([k, p]) => [k, structuredClone(p)])) };
}

/** How often each outcome was seen (code or decoded detail), so the test knows it covered them. */
const tally = new Map<string, number>();
function count(key: string): void {
  tally.set(key, (tally.get(key) ?? 0) + 1);
}

function runScenario(seed: number, steps: number, options: MatcherOptions): number {
  const r = seededRng(seed);
  const [wasm, ref] = pair({ ...options, seed: seed ^ 0x5bd1e995 });
  let shapes: PlanShape[] = Array.from({ length: 1 + r.int(30) }, (_, i) => randomShape(r, i));
  let nextName = shapes.length;
  let now = r.int(1_000_000);
  let previous: Snapshot | undefined;
  let lastForward: { ep: number; planId: string } | undefined;
  let compared = 0;
  const state = (m: Matcher): object => {
    const s = m.stats();
    return { sp: s.servicePorts, eps: s.endpoints, aff: s.affinityEntries, flows: s.flowEntries };
  };
  for (let gen = 1; gen <= steps; gen++) {
    if (gen > 1) {
      // evolve: drop some shapes, add some; every plan's endpoint lists are redrawn
      shapes = shapes.filter(() => r.bool(0.9));
      const add = r.int(4);
      for (let i = 0; i < add; i++) shapes.push(randomShape(r, nextName++));
    }
    // Drawn once. Unchanged plans are often the same objects as in the previous snapshot; the
    // reference gets a deep copy, so only the WebAssembly matcher takes the unchanged-plan path.
    const snap = randomSnapshot(r, shapes, gen, previous);
    previous = snap;
    const a = wasm.load(snap);
    const b = ref.load(deepCopy(snap));
    expect(a, `seed ${seed} gen ${gen}: load`).toEqual(b);
    expect(state(wasm), `seed ${seed} gen ${gen}: after load`).toEqual(state(ref));

    const queries = 20 + r.int(60);
    const recent: Query[] = [];
    const viaBatch = r.bool(0.4);
    now += r.int(5000);
    if (viaBatch) {
      for (let i = 0; i < queries; i++) {
        const q = randomQuery(r, snap, recent);
        wasm.batch.set(i, q.family, q.d, q.proto, q.port, q.c, q.cport, q.flags);
        ref.batch.set(i, q.family, q.d, q.proto, q.port, q.c, q.cport, q.flags);
      }
      const ra = Array.from(wasm.batch.run(queries, now));
      const rb = Array.from(ref.batch.run(queries, now));
      expect(ra, `seed ${seed} gen ${gen}: batch results`).toEqual(rb);
      expect(Array.from(wasm.batch.servicePorts().subarray(0, queries))).toEqual(
        Array.from(ref.batch.servicePorts().subarray(0, queries)),
      );
      compared += queries;
    } else {
      for (let i = 0; i < queries; i++) {
        const q = randomQuery(r, snap, recent);
        now += r.bool(0.1) ? r.int(15_000) : r.int(50);
        const args = [q.family, ...q.d, q.proto, q.port, ...q.c, q.cport, now, q.flags] as const;
        const ra = wasm.selectRaw(...args);
        const rb = ref.selectRaw(...args);
        const ctx = `seed ${seed} gen ${gen} query ${i}: ${formatIP(q.family, ...q.d)}:${q.port}/${q.proto} from ${formatIP(q.family, ...q.c)} flags ${q.flags} at ${now}`;
        expect(ra, ctx).toBe(rb);
        expect(wasm.lastServicePortId(), ctx).toBe(ref.lastServicePortId());
        expect(wasm.lastDetail(), ctx).toBe(ref.lastDetail());
        const detail = decodeDetail(ref.lastDetail());
        const planId = ref.servicePort(ref.lastServicePortId())?.id;
        if (ra >= 1 && planId !== undefined) lastForward = { ep: ra, planId };
        count(ra >= 1 ? 'forward' : `code ${ra}`);
        for (const v of [detail.path, detail.frontend, detail.reason]) if (v !== undefined) count(v);
        compared++;
      }
    }
    expect(state(wasm), `seed ${seed} gen ${gen}: after queries`).toEqual(state(ref));

    // direct table operations
    for (let i = 0; i < 5; i++) {
      const q = randomQuery(r);
      const sp = 1 + r.int(Math.max(1, wasm.stats().servicePorts + 2));
      expect(wasm.affinityLookupRaw(sp, ...q.c, now)).toBe(ref.affinityLookupRaw(sp, ...q.c, now));
      const flow = {
        protocol: r.pick(['TCP', 'UDP', 'SCTP'] as const),
        client: formatIP(q.family, ...q.c),
        clientPort: q.cport & 0xffff,
        destination: formatIP(q.family, ...q.d),
        port: q.port & 0xffff,
      };
      const op = r.int(4);
      if (op === 0) expect(wasm.flowLookup(flow, now, true)).toBe(ref.flowLookup(flow, now, true));
      if (op === 1) expect(wasm.flowRemove(flow)).toBe(ref.flowRemove(flow));
      if (op === 2) {
        const known = lastForward !== undefined && r.bool(0.6);
        const planId = known ? lastForward!.planId : r.pick([...snap.servicePorts.keys(), 'none']);
        const epId = known ? lastForward!.ep : 1 + r.int(30);
        expect(wasm.flowInsert(flow, epId, planId, now)).toBe(ref.flowInsert(flow, epId, planId, now));
      }
      if (op === 3) expect(wasm.flowLookup(flow, now + 31_000)).toBe(ref.flowLookup(flow, now + 31_000));
    }
    if (r.bool(0.2)) {
      now += r.int(20_000);
      expect(wasm.sweep(now), `seed ${seed} gen ${gen}: sweep`).toBe(ref.sweep(now));
    }
    expect(state(wasm), `seed ${seed} gen ${gen}: end`).toEqual(state(ref));
  }
  return compared;
}

describe('WasmMatcher and ReferenceMatcher agree', () => {
  it('on thousands of random snapshots and queries', () => {
    let compared = 0;
    let snapshots = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const steps = 5 + (seed % 11);
      compared += runScenario(seed * 7919, steps, {
        affinityCapacity: 4096,
        flowCapacity: 4096,
        batchCapacity: 128,
      });
      snapshots += steps;
    }
    expect(snapshots).toBeGreaterThan(500);
    expect(compared).toBeGreaterThan(20_000);
    // every outcome showed up, repeatedly
    for (const key of [
      'forward',
      'code -1',
      'code -2',
      'code -3',
      'internal',
      'external',
      'short-circuit',
      'cluster-ip',
      'external-ip',
      'load-balancer',
      'node-port',
      'plan',
      'source-range',
      'affinity',
      'flow',
      'random',
    ]) {
      expect(tally.get(key) ?? 0, key).toBeGreaterThan(20);
    }
  });

  it('with tiny tables too, as long as nothing must be evicted (capacity equals demand)', () => {
    // The affinity/flow key space of the random pools is small; capacity 2048 never fills.
    for (let seed = 100; seed < 110; seed++)
      runScenario(seed, 8, { affinityCapacity: 2048, flowCapacity: 2048, batchCapacity: 80 });
  });

  it('on arbitrary seeds (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
        runScenario(seed, 4, { affinityCapacity: 1024, flowCapacity: 1024, batchCapacity: 80 });
      }),
      { numRuns: 40 },
    );
  });
});

describe('address parsing', () => {
  it('round-trips IPv4 and IPv6 through words', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const p = parseIP(ip)!;
        expect(p.family).toBe(1);
        expect(formatIP(1, ...p.words)).toBe(ip);
      }),
    );
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const p = parseIP(ip);
        expect(p?.family).toBe(2);
        const again = parseIP(formatIP(2, ...p!.words))!;
        expect(again.words).toEqual(p!.words);
      }),
    );
    expect(parseIP('::ffff:1.2.3.4')?.words).toEqual([0, 0, 0xffff, 0x01020304]);
    expect(formatIP(2, ...parseIP('2001:db8:0:0:1:0:0:1')!.words)).toBe('2001:db8::1:0:0:1');
    for (const bad of ['1.2.3', '1.2.3.256', '::1::2', '1:2:3:4:5:6:7:8:9', 'g::1', ''])
      expect(parseIP(bad)).toBeUndefined();
    expect(parseCIDR('10.244.1.7/16')?.words).toEqual([0x0af40000, 0, 0, 0]);
    expect(parseCIDR('10.0.0.0/33')).toBeUndefined();
    expect(PROTOCOL_NUMBERS.SCTP).toBe(132);
  });
});
