/**
 * Matcher benchmark (issue 5, item 6): selections per second and affinity lookups per second at
 * 10k Services / 100k endpoints / 1M affinity entries, for the WebAssembly matcher (batch and
 * single call), the TypeScript reference matcher and a plain idiomatic JavaScript Map version;
 * then heap growth under sustained load.
 *
 *   npm run bench -- matcher      or, after a build:  node dist/test/bench/matcher.bench.js
 *
 * SWITCHYARD_BENCH_MATCHER_SCALE (default 1) scales every size down for a quick look;
 * SWITCHYARD_BENCH_MATCHER_SUSTAIN_MS (default 4000) is the sustained-load duration per mode.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Snapshot } from '../../core/model/snapshot.js';
import { loadMatcherSync } from '../../matcher/src/loader.js';
import { QUERY_WORDS, type Matcher, type WasmMatcher } from '../../matcher/src/matcher.js';
import { ReferenceMatcher } from '../../matcher/src/reference-matcher.js';
import { FLAG_FLOW } from '../../matcher/src/codes.js';
import { formatIP } from '../../matcher/src/ip.js';
import { ep, plan, snapshot } from '../matcher/fixtures.js';
import { seededRng } from '../matcher/random-snapshots.js';
import { MapMatcher } from './matcher-map-baseline.js';

const SCALE = Number(process.env.SWITCHYARD_BENCH_MATCHER_SCALE ?? '1') || 1;
const SUSTAIN_MS = Number(process.env.SWITCHYARD_BENCH_MATCHER_SUSTAIN_MS ?? '4000') || 4000;
const SERVICES = Math.round(10_000 * SCALE);
const PER_SERVICE = 10;
const CLIENTS_PER_SERVICE = 100; // × SERVICES = 1M affinity entries
const QUERIES = Math.round(1_000_000 * SCALE);
const BATCH = 4096;
const ROUNDS = 5;
const AFFINITY_TIMEOUT_S = 10_800;

function clusterIP(i: number): number {
  return (0x0a600000 + i) >>> 0; // 10.96.0.0 + i
}

function buildSnapshot(sticky: boolean): Snapshot {
  const plans = [];
  for (let i = 0; i < SERVICES; i++) {
    const eps = [];
    for (let j = 0; j < PER_SERVICE; j++) {
      const k = i * PER_SERVICE + j;
      eps.push(ep(`10.${100 + (k >>> 16)}.${(k >>> 8) & 255}.${k & 255}`, 8080));
    }
    plans.push(
      plan({
        name: `svc-${i}`,
        namespace: 'bench',
        clusterIP: formatIP(1, clusterIP(i), 0, 0, 0),
        port: 80,
        endpoints: eps,
        ...(sticky ? { affinitySeconds: AFFINITY_TIMEOUT_S } : {}),
      }),
    );
  }
  return snapshot(plans);
}

interface QuerySet {
  /** QUERY_WORDS words per query (the batch layout). */
  readonly words: Uint32Array;
  readonly dst: string[];
  readonly client: string[];
  readonly n: number;
}

/** Random service and client per query; `affinityHits`: clients that were prefilled. */
function buildQueries(n: number, seed: number, affinityHits: boolean, flags = 0): QuerySet {
  const r = seededRng(seed);
  const words = new Uint32Array(n * QUERY_WORDS);
  const dst: string[] = [];
  const client: string[] = [];
  for (let i = 0; i < n; i++) {
    const svc = r.int(SERVICES);
    const c = affinityHits
      ? prefillClient(svc, r.int(CLIENTS_PER_SERVICE))
      : (0x0af40000 + r.int(65536)) >>> 0;
    const b = i * QUERY_WORDS;
    words[b] = 1;
    words[b + 1] = 6;
    words[b + 2] = 80;
    words[b + 3] = flags;
    words[b + 4] = clusterIP(svc);
    words[b + 8] = c;
    words[b + 12] = 1024 + r.int(60000);
    dst.push(formatIP(1, clusterIP(svc), 0, 0, 0));
    client.push(formatIP(1, c, 0, 0, 0));
  }
  return { words, dst, client, n };
}

/** The k-th prefilled client of a service: distinct (service, client) pairs. */
function prefillClient(svc: number, k: number): number {
  return (0x0af40000 + ((svc * CLIENTS_PER_SERVICE + k) % 65536)) >>> 0;
}

type Runner = (qs: QuerySet, now: number) => number;

function wasmBatchRunner(m: Matcher): Runner {
  return (qs, now) => {
    let forwarded = 0;
    for (let off = 0; off < qs.n; off += BATCH) {
      const n = Math.min(BATCH, qs.n - off);
      m.batch.queries().set(qs.words.subarray(off * QUERY_WORDS, (off + n) * QUERY_WORDS));
      const res = m.batch.run(n, now);
      forwarded += res[n - 1]! > 0 ? 1 : 0;
    }
    return forwarded;
  };
}

function singleRunner(m: Matcher): Runner {
  return (qs, now) => {
    const w = qs.words;
    let forwarded = 0;
    for (let i = 0; i < qs.n; i++) {
      const b = i * QUERY_WORDS;
      const r = m.selectRaw(
        w[b]!,
        w[b + 4]!,
        0,
        0,
        0,
        w[b + 1]!,
        w[b + 2]!,
        w[b + 8]!,
        0,
        0,
        0,
        w[b + 12]!,
        now,
        w[b + 3]!,
      );
      if (r > 0) forwarded++;
    }
    return forwarded;
  };
}

function mapRunner(m: MapMatcher): Runner {
  return (qs, now) => {
    let forwarded = 0;
    for (let i = 0; i < qs.n; i++) {
      if (m.select(qs.dst[i]!, 80, 'TCP', qs.client[i]!, now) !== undefined) forwarded++;
    }
    return forwarded;
  };
}

interface Rate {
  /** Operations per wall-clock second, best pass. */
  readonly wall: number;
  /** Operations per second of this process's CPU time, best pass (robust on a shared machine). */
  readonly cpu: number;
}

/**
 * Best of `rounds` timed passes over the query set. The runners take turns round by round, so
 * a burst of load from elsewhere on the machine hits them alike; two warm-up passes each let V8
 * tier the WebAssembly functions and the JavaScript loops up first.
 */
function measureAll(
  runners: Record<string, Runner>,
  qs: QuerySet,
  rounds: number,
  now: number,
): Record<string, Rate> {
  const best: Record<string, { wall: number; cpu: number }> = {};
  for (const [name, run] of Object.entries(runners)) {
    run(qs, now);
    run(qs, now);
    best[name] = { wall: 0, cpu: 0 };
  }
  for (let i = 0; i < rounds; i++) {
    for (const [name, run] of Object.entries(runners)) {
      const c = process.cpuUsage();
      const t = performance.now();
      run(qs, now + i);
      const wall = (performance.now() - t) / 1000;
      const used = process.cpuUsage(c);
      const cpu = (used.user + used.system) / 1e6;
      const b = best[name]!;
      b.wall = Math.max(b.wall, qs.n / wall);
      b.cpu = Math.max(b.cpu, qs.n / Math.max(cpu, 1e-6));
    }
  }
  return best;
}

function fmt(opsPerSecond: number): string {
  if (opsPerSecond >= 1e6) return `${(opsPerSecond / 1e6).toFixed(2)} M/s`;
  return `${(opsPerSecond / 1e3).toFixed(0)} k/s`;
}

function row(name: string, r: Rate, base: Rate): string {
  return `| ${name} | ${fmt(r.cpu)} | ${(r.cpu / base.cpu).toFixed(2)}× | ${fmt(r.wall)} | ${(r.wall / base.wall).toFixed(2)}× |`;
}

function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

interface Sustained {
  readonly mode: string;
  readonly selections: number;
  readonly seconds: number;
  readonly heapStartMB: number;
  readonly heapEndMB: number;
  readonly heapMaxMB: number;
  readonly wasmMemoryStartMB: number;
  readonly wasmMemoryEndMB: number;
  readonly affinityEntries: number;
  readonly flowEntries: number;
}

/**
 * Selections through the affinity and flow tables with new clients every round, so both tables
 * stay full and evict all the time, for SUSTAIN_MS of selection time; the heap is sampled (after
 * forced GC, outside the timed part) every 10 rounds.
 */
function sustain(mode: string, m: WasmMatcher, run: Runner, gc: () => void): Sustained {
  const r = seededRng(99);
  const n = BATCH * 4;
  const qs = buildQueries(n, 7, false, FLAG_FLOW);
  let now = 1_000_000;
  const rotate = (): void => {
    const base = r.int(1 << 24);
    for (let i = 0; i < n; i++) qs.words[i * QUERY_WORDS + 8] = (0x0a000000 + ((base + i) & 0xffffff)) >>> 0;
  };
  for (let i = 0; i < 50; i++) {
    rotate();
    run(qs, now++);
  }
  const heapStart = heapAfterGc(gc);
  const wasmStart = m.exports.memory.buffer.byteLength;
  let heapMax = heapStart;
  let selections = 0;
  let spent = 0;
  for (let round = 1; spent < SUSTAIN_MS; round++) {
    rotate();
    now += 5;
    const t = performance.now();
    run(qs, now);
    spent += performance.now() - t;
    selections += n;
    if (round % 10 === 0) heapMax = Math.max(heapMax, heapAfterGc(gc));
  }
  const heapEnd = heapAfterGc(gc);
  const stats = m.stats();
  return {
    mode,
    selections,
    seconds: spent / 1000,
    heapStartMB: heapStart / 2 ** 20,
    heapEndMB: heapEnd / 2 ** 20,
    heapMaxMB: Math.max(heapMax, heapEnd) / 2 ** 20,
    wasmMemoryStartMB: wasmStart / 2 ** 20,
    wasmMemoryEndMB: m.exports.memory.buffer.byteLength / 2 ** 20,
    affinityEntries: stats.affinityEntries,
    flowEntries: stats.flowEntries,
  };
}

const OPTIONS = { affinityCapacity: 1 << 20, flowCapacity: 1 << 18, batchCapacity: BATCH, seed: 1 };

function time(f: () => void): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

/** A copy of the snapshot with `changed` plans replaced by new objects with one endpoint swapped. */
function churn(s: Snapshot, changed: number, round: number): Snapshot {
  const servicePorts = new Map(s.servicePorts);
  let i = 0;
  for (const [id, p] of s.servicePorts) {
    if (i++ % Math.max(1, Math.floor(s.servicePorts.size / changed)) !== 0) continue;
    const eps = [...p.internalEndpoints.slice(1), ep(`10.250.${round & 255}.${i & 255}`, 8080)];
    servicePorts.set(id, { ...p, internalEndpoints: eps, externalEndpoints: eps, clusterEndpoints: eps });
  }
  return { ...s, generation: s.generation + 1, servicePorts };
}

function loadPhase(plain: Snapshot): Record<string, number> {
  const wasm = loadMatcherSync(OPTIONS);
  const reference = new ReferenceMatcher(OPTIONS);
  const map = new MapMatcher();
  const out: Record<string, number> = {
    'WASM first load': time(() => wasm.load(plain)),
    'TS reference first load': time(() => reference.load(plain)),
    'JS Map first load': time(() => map.load(plain)),
  };
  let s = plain;
  const wasmChurn: number[] = [];
  const refChurn: number[] = [];
  for (let round = 1; round <= 5; round++) {
    s = churn(s, 100, round);
    const next = s;
    wasmChurn.push(time(() => wasm.load(next)));
    refChurn.push(time(() => reference.load(next)));
  }
  out['WASM reload, 100 plans changed (median of 5)'] = wasmChurn.sort((a, b) => a - b)[2]!;
  out['TS reference reload, 100 plans changed (median of 5)'] = refChurn.sort((a, b) => a - b)[2]!;
  return out;
}

function selectionPhase(plain: Snapshot): Record<string, Rate> {
  const qs = buildQueries(QUERIES, 1, false);
  const wasm = loadMatcherSync(OPTIONS);
  const reference = new ReferenceMatcher(OPTIONS);
  const map = new MapMatcher();
  wasm.load(plain);
  reference.load(plain);
  map.load(plain);
  return measureAll(
    {
      'WASM batch': wasmBatchRunner(wasm),
      'WASM single call': singleRunner(wasm),
      'TS reference': singleRunner(reference),
      'plain JS Map': mapRunner(map),
    },
    qs,
    ROUNDS,
    1000,
  );
}

function affinityPhase(sticky: Snapshot): { rates: Record<string, Rate>; entries: Record<string, number> } {
  // 100 clients per Service, every (Service, client) pair distinct: 1M entries at full scale
  const prefill = buildQueries(SERVICES * CLIENTS_PER_SERVICE, 3, false);
  for (let svc = 0, i = 0; svc < SERVICES; svc++) {
    for (let k = 0; k < CLIENTS_PER_SERVICE; k++, i++) {
      prefill.words[i * QUERY_WORDS + 4] = clusterIP(svc);
      prefill.words[i * QUERY_WORDS + 8] = prefillClient(svc, k);
      prefill.dst[i] = formatIP(1, clusterIP(svc), 0, 0, 0);
      prefill.client[i] = formatIP(1, prefillClient(svc, k), 0, 0, 0);
    }
  }
  const hits = buildQueries(QUERIES, 4, true);
  const entries: Record<string, number> = {};
  const wasm = loadMatcherSync(OPTIONS);
  wasm.load(sticky);
  wasmBatchRunner(wasm)(prefill, 0);
  entries['WASM'] = wasm.stats().affinityEntries;
  const ref = new ReferenceMatcher(OPTIONS);
  ref.load(sticky);
  singleRunner(ref)(prefill, 0);
  entries['TS reference'] = ref.stats().affinityEntries;
  const map = new MapMatcher();
  map.load(sticky);
  mapRunner(map)(prefill, 0);
  entries['plain JS Map'] = map.affinityEntries;
  const sp0 = wasm.servicePortId('bench/svc-0:/TCP/IPv4')!;
  const rates = measureAll(
    {
      'WASM batch': wasmBatchRunner(wasm),
      'WASM single call': singleRunner(wasm),
      // the table lookup alone (service ids were assigned in order: svc-i has id sp0 + i)
      'WASM affinityLookupRaw': (q, now) => {
        const w = q.words;
        let found = 0;
        for (let i = 0; i < q.n; i++) {
          const b = i * QUERY_WORDS;
          if (wasm.affinityLookupRaw(sp0 + w[b + 4]! - clusterIP(0), w[b + 8]!, 0, 0, 0, now) > 0) found++;
        }
        if (found !== q.n) throw new Error(`affinityLookupRaw: ${q.n - found} misses`);
        return found;
      },
      'TS reference': singleRunner(ref),
      'plain JS Map': mapRunner(map),
    },
    hits,
    ROUNDS,
    1000,
  );
  // every query was a hit: no implementation added an entry while measuring
  if (
    wasm.stats().affinityEntries !== entries['WASM'] ||
    ref.stats().affinityEntries !== entries['TS reference'] ||
    map.affinityEntries !== entries['plain JS Map']
  ) {
    throw new Error('affinity entries changed during the hit phase');
  }
  return { rates, entries };
}

export interface MatcherBenchResult {
  readonly name: string;
  readonly markdown: string;
  readonly selections: Record<string, Rate>;
  readonly affinity: Record<string, Rate>;
  readonly sustained: readonly Sustained[];
  readonly loadMs: Record<string, number>;
}

export async function run(): Promise<MatcherBenchResult> {
  const gc = gcFunction();
  const loadAtStart = loadavg()[0]!;
  const plain = buildSnapshot(false);
  const sticky = buildSnapshot(true);

  // first, while the heap is small: sustained load and heap growth
  const sustained: Sustained[] = [];
  for (const [mode, runner] of [
    ['WASM batch', wasmBatchRunner],
    ['WASM single call', singleRunner],
  ] as const) {
    const m = loadMatcherSync({ ...OPTIONS, affinityCapacity: 1 << 16, flowCapacity: 1 << 16 });
    m.load(sticky);
    sustained.push(sustain(mode, m, runner(m), gc));
  }
  gc();
  const loadMs = loadPhase(plain);
  gc();
  const selections = selectionPhase(plain);
  gc();
  const { rates: affinity, entries } = affinityPhase(sticky);

  const cpu = cpus();
  const machine = `${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length} (shared), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const base = selections['plain JS Map']!;
  const abase = affinity['plain JS Map']!;
  const lines = [
    `Machine: ${machine}. Scale: ${SERVICES} Services × ${PER_SERVICE} endpoints = ${SERVICES * PER_SERVICE} endpoints; ${QUERIES} queries per pass (random Service, random client), best of ${ROUNDS} interleaved passes after 2 warm-up passes. 1-min load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end (other jobs share the machine; "per CPU-second" divides by this process's CPU time and is the steadier figure).`,
    '',
    '| table load | ms |',
    '|---|---|',
    ...Object.entries(loadMs).map(([k, v]) => `| ${k} | ${v.toFixed(0)} |`),
    '',
    '| selections (ClusterIP, no affinity) | per CPU-second | vs plain JS Map | wall clock | vs plain JS Map |',
    '|---|---|---|---|---|',
    ...Object.entries(selections).map(([k, v]) => row(k, v, base)),
    '',
    `| selections with an affinity hit (${Object.entries(entries)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} live entries) | per CPU-second | vs plain JS Map | wall clock | vs plain JS Map |`,
    '|---|---|---|---|---|',
    ...Object.entries(affinity).map(([k, v]) => row(k, v, abase)),
    '',
    `Sustained load (${SUSTAIN_MS / 1000} s of selection time per mode; affinity and flow tables of 65,536 entries each, FLAG_FLOW on, a new client range every ${BATCH * 4} queries so both tables stay full and evict on every selection; heap after forced GC):`,
    '',
    '| mode | selections | rate | JS heap start → end (max) | WASM memory start → end | affinity / flow entries |',
    '|---|---|---|---|---|---|',
    ...sustained.map(
      (s) =>
        `| ${s.mode} | ${(s.selections / 1e6).toFixed(1)} M | ${fmt(s.selections / s.seconds)} | ${s.heapStartMB.toFixed(2)} → ${s.heapEndMB.toFixed(2)} MB (${s.heapMaxMB.toFixed(2)}) | ${s.wasmMemoryStartMB.toFixed(1)} → ${s.wasmMemoryEndMB.toFixed(1)} MB | ${s.affinityEntries} / ${s.flowEntries} |`,
    ),
  ];
  return { name: 'matcher', markdown: lines.join('\n'), selections, affinity, sustained, loadMs };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then(
    (r) => console.log(r.markdown),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
