// Compiles the AssemblyScript matcher (matcher/assembly) to matcher/build/matcher.wasm.
import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'matcher/assembly/index.ts');
if (!existsSync(entry)) {
  console.error('build-wasm: no matcher/assembly/index.ts yet; nothing to compile');
  process.exit(0);
}
mkdirSync(join(root, 'matcher/build'), { recursive: true });
const asc = join(root, 'node_modules/.bin/asc');
const r = spawnSync(
  asc,
  [entry, '--outFile', join(root, 'matcher/build/matcher.wasm'), '--textFile', join(root, 'matcher/build/matcher.wat'),
   '--optimizeLevel', '3', '--shrinkLevel', '0', '--runtime', 'stub', '--noAssert', '--initialMemory', '16'],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
