import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { createMatcher, createMatcherSync } from '../../matcher/src/create-matcher.js';
import {
  MatcherAbortError,
  MatcherLoadError,
  instantiateMatcherSync,
  loadMatcher,
  loadMatcherModule,
  loadMatcherSync,
} from '../../matcher/src/loader.js';
import { WasmMatcher } from '../../matcher/src/matcher.js';
import { ReferenceMatcher } from '../../matcher/src/reference-matcher.js';
import { ensureWasm } from './ensure-wasm.js';
import { ep, plan, snapshot } from './fixtures.js';

beforeAll(() => ensureWasm());

function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void out.push(s) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const EMPTY_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

describe('matcher loader', () => {
  it('loads the module asynchronously and synchronously', async () => {
    const a = await loadMatcher();
    const b = loadMatcherSync();
    expect(a).toBeInstanceOf(WasmMatcher);
    expect(b.implementation).toBe('wasm');
    const snap = snapshot([
      plan({ name: 'a', clusterIP: '10.96.0.1', port: 80, endpoints: [ep('10.244.0.1')] }),
    ]);
    a.load(snap);
    expect(
      a.select({ destination: '10.96.0.1', protocol: 'TCP', port: 80, client: '10.244.0.2', nowMs: 0 })
        .endpoint?.ip,
    ).toBe('10.244.0.1');
    const ex = await loadMatcherModule();
    expect(typeof ex.select).toBe('function');
  });

  it('turns env.abort into a typed MatcherAbortError with message, file and line', () => {
    const m = loadMatcherSync();
    const base = m.exports.heapBase();
    let err: unknown;
    try {
      m.exports.loadTable(base); // not a table: the magic word is wrong
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MatcherAbortError);
    const abort = err as MatcherAbortError;
    expect(abort.abortMessage).toBe('matcher: corrupt table header');
    expect(abort.file).toBe('matcher/assembly/index.ts');
    expect(abort.line).toBeGreaterThan(0);
    expect(abort.message).toContain('corrupt table header');
  });

  it('reports a module that does not compile or lacks exports as MatcherLoadError', () => {
    expect(() => instantiateMatcherSync(new Uint8Array([1, 2, 3, 4]))).toThrow(MatcherLoadError);
    expect(() => instantiateMatcherSync(EMPTY_MODULE)).toThrow(/lacks exports: memory, heapBase/);
  });

  it('createMatcher falls back to the reference when the file is missing, and logs why', async () => {
    const { logger, lines } = capture();
    const m = await createMatcher({ logger, wasmPath: '/nonexistent/matcher.wasm' });
    expect(m).toBeInstanceOf(ReferenceMatcher);
    const warn = lines().find((l) => l.level === 40);
    expect(warn?.msg).toMatch(/WebAssembly matcher unavailable/);
    expect(String(warn?.reason)).toContain('ENOENT');
    // the fallback works
    m.load(snapshot([plan({ name: 'a', clusterIP: '10.96.0.1', port: 80 })]));
    expect(
      m.select({ destination: '10.96.0.1', protocol: 'TCP', port: 80, client: '10.244.0.2', nowMs: 0 })
        .verdict,
    ).toBe('reject');
  });

  it('createMatcher falls back when the module is corrupt (sync variant too)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'matcher-'));
    const bad = join(dir, 'matcher.wasm');
    writeFileSync(bad, 'not wasm at all');
    const { logger, lines } = capture();
    const m = createMatcherSync({ logger, wasmPath: bad });
    expect(m.implementation).toBe('reference');
    expect(String(lines().find((l) => l.level === 40)?.reason)).toMatch(/cannot instantiate/);
  });

  it('createMatcher prefers WebAssembly, and honours preferWasm: false', async () => {
    const { logger, lines } = capture();
    expect((await createMatcher({ logger })).implementation).toBe('wasm');
    expect((await createMatcher({ logger, preferWasm: false })).implementation).toBe('reference');
    expect(
      lines()
        .filter((l) => l.msg === 'matcher ready')
        .map((l) => l.matcher),
    ).toEqual(['wasm', 'reference']);
  });
});
