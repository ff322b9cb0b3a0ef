/**
 * `npm run bench`: runs every test/bench/*.bench module's exported `run()` in turn (one at a
 * time: the machine is small), prints each one's markdown and writes the lot to
 * .bench/summary.json and .bench/<name>.md.
 *
 *   node dist/test/bench/run.js                # all of them
 *   node dist/test/bench/run.js matcher nft    # those whose file name contains a filter
 *
 * A bench module exports `run(): Promise<{ name: string; markdown: string; ... }>`.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface BenchReport {
  readonly name: string;
  readonly markdown: string;
  readonly [key: string]: unknown;
}

interface BenchModule {
  run(): Promise<BenchReport>;
}

export function machineInfo(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
}

async function main(): Promise<number> {
  const here = dirname(fileURLToPath(import.meta.url));
  const ext = import.meta.url.endsWith('.ts') ? '.bench.ts' : '.bench.js';
  const filters = process.argv.slice(2);
  const files = readdirSync(here)
    .filter((f) => f.endsWith(ext))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort();
  const outDir = join(process.cwd(), '.bench');
  mkdirSync(outDir, { recursive: true });
  const summary: Record<string, unknown> = {
    machine: machineInfo(),
    date: new Date().toISOString(),
    results: {},
  };
  const results = summary.results as Record<string, unknown>;
  let failed = 0;
  console.log(`# benchmarks (${machineInfo()})\n`);
  for (const f of files) {
    const started = Date.now();
    console.log(`## ${f}\n`);
    try {
      const mod = (await import(pathToFileURL(join(here, f)).href)) as Partial<BenchModule>;
      if (typeof mod.run !== 'function') {
        console.log(`(no exported run(); skipped)\n`);
        continue;
      }
      const report = await mod.run();
      console.log(`${report.markdown}\n`);
      writeFileSync(join(outDir, `${report.name}.md`), `${report.markdown}\n`);
      results[report.name] = { ...report, seconds: (Date.now() - started) / 1000 };
    } catch (err) {
      failed++;
      console.log(`FAILED: ${(err as Error).stack ?? String(err)}\n`);
      results[f] = { error: String(err) };
    }
  }
  writeFileSync(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`summary written to ${join(outDir, 'summary.json')}`);
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
