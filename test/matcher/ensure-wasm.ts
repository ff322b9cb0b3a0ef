import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Build matcher/build/matcher.wasm when it is missing or older than its sources. */
export function ensureWasm(): void {
  const script = fileURLToPath(new URL('../../scripts/build-wasm.mjs', import.meta.url));
  execFileSync(process.execPath, [script, '--if-stale'], { stdio: 'inherit' });
}
