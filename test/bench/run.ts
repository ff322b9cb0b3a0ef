/**
 * `npm run bench`: runs every test/bench/*.bench module's exported `run()`, one at a time (the
 * machine is small), each in a child process of its own so that one benchmark's peak RSS and
 * heap never show in another's. Prints each one's markdown, then a table of every target the
 * benchmarks reported, and writes to .bench/:
 *
 *   machine.json   cores, memory, kernel, OS, Node, nft / iptables versions
 *   summary.json   machine + per benchmark: its report, seconds, load average during it
 *   summary.md     the same as markdown (targets table first)
 *
 * A run with filters updates its benchmarks in an existing summary and keeps the others'
 * (each entry says when it finished), so a long benchmark can be run on its own.
 *   <name>.md      each benchmark's markdown
 *
 *   npm run bench                      # all of them (builds first: scripts/setup.sh)
 *   npm run bench -- nftables latency  # those whose file name contains a filter
 *   npm run bench -- -ipvs             # all but those whose name contains "ipvs"
 *   node dist/test/bench/run.js --list # names only
 *
 * A bench module exports `run(): Promise<BenchReport>`. Benchmarks are never vitest tests:
 * their timings would fail at random on a loaded machine and they need minutes.
 */
import 'reflect-metadata';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** One target of an issue, measured. `met` undefined: not decidable from this run. */
export interface BenchTarget {
  /** What is measured, e.g. "nftables full sync, 10k Services × 10 endpoints". */
  readonly name: string;
  /** The target as the issue states it, e.g. "≤ 2 s". */
  readonly target: string;
  /** The measured value, with unit and what it is (wall / CPU, median / p50...). */
  readonly measured: string;
  readonly met?: boolean;
}

export interface BenchReport {
  readonly name: string;
  readonly markdown: string;
  readonly targets?: readonly BenchTarget[];
  readonly [key: string]: unknown;
}

interface BenchModule {
  run(): Promise<BenchReport>;
}

export interface MachineDetails {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly nft?: string;
  readonly iptablesLegacy?: string;
  readonly iptablesNft?: string;
}

/** One line: CPU × cores, memory, Node, platform. */
export function machineInfo(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
}

function tool(cmd: string, args: readonly string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** Everything about the machine a figure depends on. */
export function machineDetails(): MachineDetails {
  const cpu = cpus();
  let os = process.platform as string;
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // not Linux
  }
  const nft = tool('nft', ['--version']);
  const legacy = tool('iptables-legacy', ['-V']);
  const nftIpt = tool('iptables-nft', ['-V']);
  return {
    cpu: cpu[0]?.model ?? 'unknown CPU',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os,
    node: process.version,
    ...(nft ? { nft } : {}),
    ...(legacy ? { iptablesLegacy: legacy } : {}),
    ...(nftIpt ? { iptablesNft: nftIpt } : {}),
  };
}

export function machineMarkdown(m: MachineDetails): string {
  const tools = [m.nft, m.iptablesLegacy, m.iptablesNft].filter(Boolean).join(', ');
  return `${m.cpu} × ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, kernel ${m.kernel}, Node ${m.node}${tools ? `, ${tools}` : ''}`;
}

/** Samples the 1-minute load average every few seconds while benchmarks run. */
class LoadSampler {
  private samples: number[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(periodMs = 5000) {
    this.sample();
    this.timer = setInterval(() => this.sample(), periodMs);
    this.timer.unref();
  }
  private sample(): void {
    this.samples.push(loadavg()[0] ?? 0);
  }
  /** min / mean / max of the samples since the last call, and restart. */
  take(): { min: number; mean: number; max: number } {
    this.sample();
    const s = this.samples;
    this.samples = [s[s.length - 1] ?? 0];
    const round = (x: number): number => Math.round(x * 100) / 100;
    return {
      min: round(Math.min(...s)),
      mean: round(s.reduce((a, b) => a + b, 0) / s.length),
      max: round(Math.max(...s)),
    };
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * The benchmark files of `names` (a directory listing) selected by the filters: those whose
 * name contains any plain filter (all when there is none), minus those containing a `-name`
 * filter. Pure.
 */
export function selectBenchFiles(
  names: readonly string[],
  ext: string,
  filters: readonly string[],
): string[] {
  const include = filters.filter((f) => !f.startsWith('-'));
  const exclude = filters.filter((f) => f.startsWith('-') && f.length > 1).map((f) => f.slice(1));
  return names
    .filter((f) => f.endsWith(ext))
    .filter((f) => include.length === 0 || include.some((x) => f.includes(x)))
    .filter((f) => !exclude.some((x) => f.includes(x)))
    .sort();
}

export function benchFiles(dir: string, ext: string, filters: readonly string[]): string[] {
  return selectBenchFiles(readdirSync(dir), ext, filters);
}

/** Markdown table of targets, one row each. */
export function targetsMarkdown(rows: readonly (BenchTarget & { bench: string })[]): string {
  if (rows.length === 0) return '(no benchmark reported a target)';
  const verdict = (m: boolean | undefined): string =>
    m === true ? 'met' : m === false ? '**NOT met**' : '—';
  return [
    '| benchmark | what | target | measured | verdict |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.bench} | ${r.name} | ${r.target} | ${r.measured} | ${verdict(r.met)} |`),
  ].join('\n');
}

/** Child mode: run one bench module, write its report as JSON to `out`. */
async function runOne(file: string, out: string): Promise<number> {
  const mod = (await import(pathToFileURL(file).href)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') {
    writeFileSync(out, JSON.stringify({ skipped: 'no exported run()' }));
    return 0;
  }
  const report = await mod.run();
  writeFileSync(out, JSON.stringify({ report, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) }));
  return 0;
}

function runChild(file: string, out: string): Promise<number> {
  return new Promise((resolve) => {
    const self = fileURLToPath(import.meta.url);
    const child = spawn(process.execPath, [...process.execArgv, self, '--one', file, out], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const forward = (s: NodeJS.Signals): void => void child.kill(s);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === '--one') return runOne(argv[1] ?? '', argv[2] ?? '');
  const here = dirname(fileURLToPath(import.meta.url));
  const ext = import.meta.url.endsWith('.ts') ? '.bench.ts' : '.bench.js';
  const list = argv.includes('--list');
  const filters = argv.filter((a) => !a.startsWith('--'));
  const unknown = argv.filter((a) => a.startsWith('--') && a !== '--list');
  if (unknown.length > 0) {
    console.log(`unknown option ${unknown.join(' ')}; usage: run.js [--list] [filter | -exclude]...`);
    return 2;
  }
  const files = benchFiles(here, ext, filters);
  if (list) {
    for (const f of files) console.log(f.slice(0, -ext.length));
    return 0;
  }
  if (files.length === 0) {
    console.log(
      `no benchmark matches ${filters.join(' ')}; available: ${benchFiles(here, ext, []).join(' ')}`,
    );
    return 1;
  }
  const outDir = join(process.cwd(), '.bench');
  mkdirSync(outDir, { recursive: true });
  const machine = machineDetails();
  writeFileSync(join(outDir, 'machine.json'), `${JSON.stringify(machine, null, 2)}\n`);
  const started = new Date();
  const sampler = new LoadSampler();
  const results: Record<string, unknown> = {};
  const targets: (BenchTarget & { bench: string })[] = [];
  let failed = 0;
  console.log(`# benchmarks\n\n${machineMarkdown(machine)}\n\nrunning: ${files.join(', ')}\n`);
  for (const f of files) {
    const t0 = Date.now();
    const load0 = loadavg()[0] ?? 0;
    sampler.take();
    console.log(`## ${f} (load average ${load0.toFixed(2)})\n`);
    const tmp = join(tmpdir(), `switchyard-bench-${process.pid}-${f}.json`);
    rmSync(tmp, { force: true });
    const code = await runChild(join(here, f), tmp);
    const seconds = (Date.now() - t0) / 1000;
    const load = sampler.take();
    let parsed: { report?: BenchReport; skipped?: string; maxRssMB?: number } | undefined;
    try {
      parsed = JSON.parse(readFileSync(tmp, 'utf8')) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    rmSync(tmp, { force: true });
    const base = f.slice(0, -ext.length);
    if (code !== 0 || !parsed) {
      failed++;
      console.log(`FAILED (exit ${code}) after ${seconds.toFixed(0)} s\n`);
      results[base] = { error: `exit ${code}`, seconds, load, finished: new Date().toISOString() };
      continue;
    }
    if (!parsed.report) {
      console.log(`(skipped: ${parsed.skipped ?? 'no report'})\n`);
      results[base] = { skipped: parsed.skipped, seconds, load, finished: new Date().toISOString() };
      continue;
    }
    const report = parsed.report;
    const footer = `_${seconds.toFixed(0)} s; load average (1 min) during the run: min ${load.min}, mean ${load.mean}, max ${load.max}; benchmark process peak RSS ${parsed.maxRssMB ?? '?'} MB._`;
    console.log(`${report.markdown}\n\n${footer}\n`);
    writeFileSync(join(outDir, `${report.name}.md`), `${report.markdown}\n\n${footer}\n`);
    results[report.name] = {
      ...report,
      seconds,
      load,
      maxRssMB: parsed.maxRssMB,
      finished: new Date().toISOString(),
      footer,
    };
    for (const t of report.targets ?? []) targets.push({ ...t, bench: report.name });
  }
  sampler.stop();
  const finished = new Date().toISOString();
  // A filtered run updates its benchmarks in the previous summary and keeps the others.
  let previous: { results?: Record<string, unknown>; targets?: (BenchTarget & { bench: string })[] } = {};
  if (filters.length > 0) {
    try {
      previous = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')) as typeof previous;
    } catch {
      previous = {};
    }
  }
  const merged: Record<string, unknown> = { ...(previous.results ?? {}), ...results };
  const allTargets = [...(previous.targets ?? []).filter((t) => !(t.bench in results)), ...targets];
  const summary = {
    machine,
    started: started.toISOString(),
    finished,
    filters,
    targets: allTargets,
    results: merged,
  };
  writeFileSync(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const sectionOf = (name: string, r: unknown): string => {
    const x = r as { markdown?: string; footer?: string; error?: string; skipped?: string };
    if (x.markdown !== undefined) return `## ${name}\n\n${x.markdown}\n\n${x.footer ?? ''}`;
    return `## ${name}\n\n${x.error ? `FAILED (${x.error})` : `skipped: ${x.skipped ?? '?'}`}`;
  };
  const md = [
    `# switchyard benchmarks, ${started.toISOString()}`,
    '',
    `Machine: ${machineMarkdown(machine)}.`,
    '',
    '## Targets',
    '',
    targetsMarkdown(allTargets),
    '',
    ...Object.keys(merged)
      .sort()
      .flatMap((name) => [sectionOf(name, merged[name]), '']),
  ].join('\n');
  writeFileSync(join(outDir, 'summary.md'), md);
  console.log(`## targets (this run)\n\n${targetsMarkdown(targets)}\n`);
  console.log(
    `${files.length - failed} of ${files.length} benchmarks completed; written to ${join(outDir, 'summary.json')} and summary.md`,
  );
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
