/**
 * IPVS vs nftables, measured inside the same QEMU guest (this host's kernel has no IPVS):
 * full sync and one-endpoint incremental sync at 1k and 10k Services × 10 endpoints.
 * Part of `npm run bench` (test/bench/run.ts); also runnable alone:
 *
 *   npx tsc -p test/vm/tsconfig.json && node dist/test/bench/ipvs.bench.js [services...]
 *
 * It compiles the guest program (test/vm/tsconfig.json), boots the VM once
 * (test/vm/run-in-vm.sh, root) and runs dist/test/vm/ipvs-bench-guest.js there. The guest is
 * software-emulated (TCG, several times slower than the host): compare the two backends with
 * each other, not with host figures.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from '../vm/ipvs-bench-guest.js';

function repoRoot(): string {
  // src: test/bench/ipvs.bench.ts; built: dist/test/bench/ipvs.bench.js
  const here = resolve(fileURLToPath(import.meta.url), '..');
  return existsSync(join(here, '../../package.json')) ? resolve(here, '../..') : resolve(here, '../../..');
}

export interface IpvsBenchReport {
  readonly name: string;
  readonly markdown: string;
  readonly rows: readonly BenchRow[];
  readonly kernel?: string;
}

function fmt(ms: number): string {
  return ms < 0 ? 'failed' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms} ms`;
}

/** `render / kernel` ms of a sync from its stats (ipvs: renderMs/applyMs, nftables: renderMs/nftMs). */
function split(stats: Readonly<Record<string, number>> | undefined): string {
  if (!stats) return '-';
  const kernel = stats.applyMs ?? stats.nftMs;
  return `${Math.round(stats.renderMs ?? 0)} / ${kernel === undefined ? '?' : Math.round(kernel)} ms`;
}

/** Markdown table of the rows, with the IPVS/nftables ratio per size. Pure. */
export function benchMarkdown(rows: readonly BenchRow[], kernel: string | undefined): string {
  const lines = [
    `IPVS vs nftables in the same QEMU TCG guest (kernel ${kernel ?? '?'}), N ClusterIP Services × 10 endpoints, time around backend.sync():`,
    '',
    '| Services | backend | full sync | one-endpoint sync | of which render / kernel | cleanup | node RSS |',
    '|---:|---|---:|---:|---:|---:|---:|',
  ];
  const sizes = [...new Set(rows.map((r) => r.services))];
  for (const n of sizes) {
    for (const r of rows.filter((x) => x.services === n)) {
      lines.push(
        `| ${n} | ${r.backend} | ${fmt(r.fullSyncMs)} | ${fmt(r.oneEndpointSyncMs)} | ${split(r.oneEndpointStats)} | ${fmt(r.cleanupMs)} | ${r.rssMB < 0 ? '-' : `${r.rssMB} MB`} |`,
      );
    }
    const ipvs = rows.find((x) => x.services === n && x.backend === 'ipvs');
    const nft = rows.find((x) => x.services === n && x.backend === 'nftables');
    if (ipvs && nft && ipvs.fullSyncMs > 0 && nft.fullSyncMs > 0) {
      lines.push(
        `| ${n} | **ipvs / nftables** | **${(ipvs.fullSyncMs / nft.fullSyncMs).toFixed(2)}×** | **${(ipvs.oneEndpointSyncMs / Math.max(1, nft.oneEndpointSyncMs)).toFixed(2)}×** | | | |`,
      );
    }
  }
  for (const r of rows.filter((x) => x.error)) lines.push('', `${r.backend} at ${r.services}: ${r.error}`);
  return lines.join('\n');
}

/** Sizes from SWITCHYARD_BENCH_IPVS (e.g. `1000,10000`; `0` skips), default 1k and 10k. */
function defaultSizes(): number[] {
  const env = process.env.SWITCHYARD_BENCH_IPVS;
  if (env === undefined || env.trim() === '') return [1000, 10_000];
  return env
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
}

export async function run(sizes: readonly number[] = defaultSizes()): Promise<IpvsBenchReport> {
  if (sizes.length === 0) return { name: 'ipvs', markdown: 'skipped: SWITCHYARD_BENCH_IPVS=0', rows: [] };
  const root = repoRoot();
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { name: 'ipvs', markdown: 'skipped: the VM harness needs root', rows: [] };
  }
  const build = spawnSync('npx', ['tsc', '-p', 'test/vm/tsconfig.json'], { cwd: root, encoding: 'utf8' });
  const guest = join(root, 'dist/test/vm/ipvs-bench-guest.js');
  if (!existsSync(guest)) throw new Error(`compiling the guest failed: ${build.stdout}${build.stderr}`);
  const out = mkdtempSync(join(tmpdir(), 'switchyard-ipvs-bench-'));
  try {
    const vm = spawnSync(
      'bash',
      [join(root, 'test/vm/run-in-vm.sh'), 'node', guest, out, ...sizes.map(String)],
      {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'inherit', 'inherit'],
        env: {
          ...process.env,
          IPVS_VM_RW_DIRS: out,
          IPVS_VM_MEM: process.env.IPVS_VM_MEM ?? '2048',
          IPVS_VM_TIMEOUT: process.env.IPVS_VM_TIMEOUT ?? '2400',
        },
      },
    );
    const file = join(out, 'ipvs-bench.json');
    if (!existsSync(file)) throw new Error(`the VM run produced no results (exit ${vm.status})`);
    const data = JSON.parse(readFileSync(file, 'utf8')) as { kernel: string; rows: BenchRow[] };
    return {
      name: 'ipvs',
      markdown: benchMarkdown(data.rows, data.kernel),
      rows: data.rows,
      kernel: data.kernel,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  const report = await run(sizes.length > 0 ? sizes : undefined);
  process.stdout.write(report.markdown + '\n');
}
