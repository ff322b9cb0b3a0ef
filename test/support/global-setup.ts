/**
 * vitest globalSetup: tests that run the real daemon (`node bin/switchyard.js`) need dist/ to be
 * current. `npm test` builds in its pretest step; this catches `npx vitest run <file>` after an
 * edit by rebuilding TypeScript when any source is newer than the compiled entry point.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const SOURCES = ['core', 'backends', 'plugins', 'matcher/src', 'test/support'];
const ENTRY = join(ROOT, 'dist/core/cli/bin.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  const built = existsSync(ENTRY) ? statSync(ENTRY).mtimeMs : 0;
  const newest = Math.max(...SOURCES.map((d) => newestMtime(join(ROOT, d))));
  if (newest > built) {
    try {
      execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json')], {
        stdio: 'inherit',
      });
    } catch {
      // tsc still emits on type errors; tests that run dist/ report what is broken.
      console.warn('global-setup: tsc reported errors; dist/ may be incomplete');
    }
    // tsc leaves an unchanged output file alone; make the entry point record this build.
    const now = new Date();
    execFileSync('touch', ['-d', now.toISOString(), ENTRY]);
  }
}
