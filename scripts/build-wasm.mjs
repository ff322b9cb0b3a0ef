// Compiles the AssemblyScript matcher (matcher/assembly) to matcher/build/matcher.wasm.
// Writes to a private temporary folder first and renames, so parallel builds (test files that
// build when the module is missing) never expose a half-written module.
// `--if-stale`: do nothing when the module is newer than every source file.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'matcher/assembly');
const entry = join(srcDir, 'index.ts');
const outDir = join(root, 'matcher/build');
const out = join(outDir, 'matcher.wasm');
if (!existsSync(entry)) {
  console.error('build-wasm: no matcher/assembly/index.ts yet; nothing to compile');
  process.exit(0);
}
if (process.argv.includes('--if-stale') && existsSync(out)) {
  const built = statSync(out).mtimeMs;
  const newest = Math.max(
    statSync(import.meta.filename ?? fileURLToPath(import.meta.url)).mtimeMs,
    ...readdirSync(srcDir).map((f) => statSync(join(srcDir, f)).mtimeMs),
  );
  if (built >= newest) process.exit(0);
}
const tmp = join(outDir, `.tmp-${process.pid}`);
mkdirSync(tmp, { recursive: true });
const asc = join(root, 'node_modules/.bin/asc');
const r = spawnSync(
  asc,
  [
    entry,
    '--outFile',
    join(tmp, 'matcher.wasm'),
    '--textFile',
    join(tmp, 'matcher.wat'),
    '--optimizeLevel',
    '3',
    '--shrinkLevel',
    '0',
    '--runtime',
    'stub',
    '--noAssert',
    '--initialMemory',
    '16',
  ],
  { stdio: 'inherit' },
);
if (r.status === 0) {
  renameSync(join(tmp, 'matcher.wat'), join(outDir, 'matcher.wat'));
  renameSync(join(tmp, 'matcher.wasm'), out);
}
rmSync(tmp, { recursive: true, force: true });
process.exit(r.status ?? 1);
