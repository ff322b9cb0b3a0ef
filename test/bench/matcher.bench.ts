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
import { QUERY_WORDS, type Matcher } from '../../matcher/src/matcher.js';
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
    const c = affinityHits ? prefillClient(svc, r.int(CLIENTS_PER_SERVICE)) : (0x0af40000 + r.int(65536)) >>> 0;
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
      const r = m.selectRaw(w[b]!, w[b + 4]!, 0, 0, 0, w[b + 1]!, w[b + 2]!, w[b + 8]!, 0, 0, 0, w[b + 12]!, now, w[b + 3]!);
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
function measureAll(runners: Record<string, Runner>, qs: QuerySet, rounds: number, now: number): Record<string, Rate> {
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
  readonly heapStartMB: number;
  readonly heapEndMB: number;
  readonly heapMaxMB: number;
  readonly wasmMemoryMB: number;
  readonly affinityEntries: number;
  readonly flowEntries: number;
}

/** Run selections (affinity + flow table, time advancing) for SUSTAIN_MS; sample heap after GC. */
function sustain(mode: string, m: Matcher & { exports?: { memory: { buffer: ArrayBuffer } } }, run: Runner, gc: () => void): Sustained {
  const r = seededRng(99);
  const n = BATCH * 16;
  const qs = buildQueries(n, 7, false, FLAG_FLOW);
  let now = 1_000_000;
  // a fresh client range every round: tables fill, evict, and keep churning
  const rotate = (): void => {
    const base = r.int(1 << 24);
    for (let i = 0; i < n; i++) qs.words[i * QUERY_WORDS + 8] = (0x0a000000 + ((base + i) & 0xffffff)) >>> 0;
  };
  rotate();
  run(qs, now);
  const heapStart = heapAfterGc(gc);
  let heapMax = heapStart;
  let selections = 0;
  const started = performance.now();
  let nextSample = started + 500;
  while (performance.now() - started < SUSTAIN_MS) {
    rotate();
    now += 50;
    run(qs, now);
    selections += n;
    if (performance.now() >= nextSample) {
      heapMax = Math.max(heapMax, heapAfterGc(gc));
      nextSample = performance.now() + 500;
    }
  }
  const heapEnd = heapAfterGc(gc);
  const stats = m.stats();
  return {
    mode,
    selections,
    heapStartMB: heapStart / 2 ** 20,
    heapEndMB: heapEnd / 2 ** 20,
    heapMaxMB: Math.max(heapMax, heapEnd) / 2 ** 20,
    wasmMemoryMB: (m.exports?.memory.buffer.byteLength ?? 0) / 2 ** 20,
    affinityEntries: stats.affinityEntries,
    flowEntries: stats.flowEntries,
  };
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
  const options = {
    affinityCapacity: 1 << 20,
    flowCapacity: 1 << 18,
    batchCapacity: BATCH,
    seed: 1,
  };
  const loadMs: Record<string, number> = {};
  const timeLoad = (label: string, f: () => void): void => {
    const t = performance.now();
    f();
    loadMs[label] = performance.now() - t;
  };

  // ---- selections (no affinity) ----
  const qs = buildQueries(QUERIES, 1, false);
  const wasm = loadMatcherSync(options);
  const reference = new ReferenceMatcher(options);
  const map = new MapMatcher();
  timeLoad('wasm', () => wasm.load(plain));
  timeLoad('reference', () => reference.load(plain));
  timeLoad('map', () => map.load(plain));
  const selections = measureAll(
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

  // ---- affinity: 1M live entries, every query a hit ----
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
  const wasmSticky = loadMatcherSync(options);
  wasmSticky.load(sticky);
  wasmBatchRunner(wasmSticky)(prefill, 0);
  entries['WASM'] = wasmSticky.stats().affinityEntries;
  const refSticky = new ReferenceMatcher(options);
  refSticky.load(sticky);
  singleRunner(refSticky)(prefill, 0);
  entries['TS reference'] = refSticky.stats().affinityEntries;
  const mapSticky = new MapMatcher();
  mapSticky.load(sticky);
  mapRunner(mapSticky)(prefill, 0);
  entries['plain JS Map'] = mapSticky.affinityEntries;
  const sp0 = wasmSticky.servicePortId('bench/svc-0:/TCP/IPv4')!;
  const affinity = measureAll(
    {
      'WASM batch': wasmBatchRunner(wasmSticky),
      'WASM single call': singleRunner(wasmSticky),
      // the table lookup alone (service ids were assigned in order: svc-i has id sp0 + i)
      'WASM affinityLookupRaw': (q, now) => {
        const w = q.words;
        let found = 0;
        for (let i = 0; i < q.n; i++) {
          const b = i * QUERY_WORDS;
          if (wasmSticky.affinityLookupRaw(sp0 + w[b + 4]! - clusterIP(0), w[b + 8]!, 0, 0, 0, now) > 0) found++;
        }
        return found;
      },
      'TS reference': singleRunner(refSticky),
      'plain JS Map': mapRunner(mapSticky),
    },
    hits,
    ROUNDS,
    1000,
  );
  // every query was a hit, in every implementation
  for (const [name, m] of [['WASM', wasmSticky], ['TS reference', refSticky]] as const) {
    if (m.stats().affinityEntries !== entries[name]) throw new Error(`${name}: affinity entries changed during the hit phase`);
  }
  if (mapSticky.affinityEntries !== entries['plain JS Map']) throw new Error('Map: affinity entries changed during the hit phase');

  // ---- sustained load: heap growth ----
  const sustained: Sustained[] = [];
  {
    const m = loadMatcherSync({ ...options, affinityCapacity: 1 << 16, flowCapacity: 1 << 16 });
    m.load(sticky);
    sustained.push(sustain('WASM batch', m, wasmBatchRunner(m), gc));
  }
  {
    const m = loadMatcherSync({ ...options, affinityCapacity: 1 << 16, flowCapacity: 1 << 16 });
    m.load(sticky);
    sustained.push(sustain('WASM single call', m, singleRunner(m), gc));
  }

  const cpu = cpus();
  const machine = `${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length} (shared), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const base = selections['plain JS Map']!;
  const abase = affinity['plain JS Map']!;
  const lines = [
    `Machine: ${machine}. Scale: ${SERVICES} Services × ${PER_SERVICE} endpoints = ${SERVICES * PER_SERVICE} endpoints; ${QUERIES} queries per pass, best of ${ROUNDS} interleaved passes. 1-min load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end (other jobs share the machine).`,
    '',
    `Table load (compile + write + index), ${SERVICES} Services: WASM ${loadMs.wasm!.toFixed(0)} ms, TS reference ${loadMs.reference!.toFixed(0)} ms, JS Map ${loadMs.map!.toFixed(0)} ms.`,
    '',
    '| selections (ClusterIP, no affinity) | per CPU-second | vs plain JS Map | wall clock | vs plain JS Map |',
    '|---|---|---|---|---|',
    ...Object.entries(selections).map(([k, v]) => row(k, v, base)),
    '',
    `| selections with an affinity hit (${Object.entries(entries).map(([k, v]) => `${k} ${v}`).join(', ')} live entries) | per CPU-second | vs plain JS Map | wall clock | vs plain JS Map |`,
    '|---|---|---|---|---|',
    ...Object.entries(affinity).map(([k, v]) => row(k, v, abase)),
    '',
    `Sustained load (${SUSTAIN_MS / 1000} s per mode; affinity + flow table at 65,536 entries each, new clients every batch so both tables evict continuously; heap measured after forced GC):`,
    '',
    '| mode | selections | heap start | heap end | heap max | WASM memory | affinity / flow entries |',
    '|---|---|---|---|---|---|---|',
    ...sustained.map(
      (s) =>
        `| ${s.mode} | ${(s.selections / 1e6).toFixed(1)} M | ${s.heapStartMB.toFixed(2)} MB | ${s.heapEndMB.toFixed(2)} MB | ${s.heapMaxMB.toFixed(2)} MB | ${s.wasmMemoryMB.toFixed(1)} MB | ${s.affinityEntries} / ${s.flowEntries} |`,
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
