/**
 * Reading, compiling and instantiating the WebAssembly matcher (matcher/build/matcher.wasm,
 * built by scripts/build-wasm.mjs). No top-level await: `loadMatcherModule()` is async,
 * `instantiateMatcherSync(bytes)` is the synchronous variant for bytes already in hand.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { WasmMatcher, type MatcherOptions } from './matcher.js';

/** The parts of the WebAssembly JS API used here (the project's lib settings do not declare it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmImports = Record<string, Record<string, unknown>>;
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: WasmImports) => WasmInstance;
  instantiate(bytes: Uint8Array, imports: WasmImports): Promise<{ instance: WasmInstance }>;
}

function wasmApi(): WasmApi {
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) throw new MatcherLoadError('this runtime has no WebAssembly');
  return api;
}

/** The module's exports (see matcher/assembly/index.ts). */
export interface MatcherExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  init(
    aff: number,
    affCapacity: number,
    affLimit: number,
    flows: number,
    flowCapacity: number,
    flowLimit: number,
    nodePorts: number,
    seed: number,
  ): void;
  reseed(seed: number): void;
  setFlowTimeouts(tcpMs: number, udpMs: number, sctpMs: number): void;
  affinityGet(sp: number, c0: number, c1: number, c2: number, c3: number, now: number): number;
  affinityCount(): number;
  flowGet(
    fam: number,
    proto: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    cport: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    dport: number,
    now: number,
    touch: number,
  ): number;
  flowSet(
    fam: number,
    proto: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    cport: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    dport: number,
    ep: number,
    sp: number,
    now: number,
  ): number;
  flowDel(
    fam: number,
    proto: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    cport: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    dport: number,
  ): number;
  flowCountNow(): number;
  sweep(now: number): number;
  loadTable(header: number): number;
  lastPurgedAffinity(): number;
  lastPurgedFlows(): number;
  select(
    fam: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    proto: number,
    port: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    cport: number,
    now: number,
    flags: number,
  ): number;
  selectBatch(queries: number, results: number, servicePorts: number, n: number, now: number): void;
  lastServicePort(): number;
  lastDetail(): number;
}

const EXPORT_NAMES: readonly (keyof MatcherExports)[] = [
  'memory',
  'heapBase',
  'init',
  'reseed',
  'setFlowTimeouts',
  'affinityGet',
  'affinityCount',
  'flowGet',
  'flowSet',
  'flowDel',
  'flowCountNow',
  'sweep',
  'loadTable',
  'lastPurgedAffinity',
  'lastPurgedFlows',
  'select',
  'selectBatch',
  'lastServicePort',
  'lastDetail',
];

/** The module called `abort` (an AssemblyScript `throw` or a failed check): its message and where. */
export class MatcherAbortError extends Error {
  override readonly name = 'MatcherAbortError';
  constructor(
    readonly abortMessage: string,
    readonly file: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`matcher aborted: ${abortMessage} (${file}:${line}:${column})`);
  }
}

/** The module could not be read, compiled or instantiated, or lacks an export. */
export class MatcherLoadError extends Error {
  override readonly name = 'MatcherLoadError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Where the module is looked for: next to the sources and next to the built dist/ tree. */
export function defaultWasmPaths(): string[] {
  return [
    fileURLToPath(new URL('../build/matcher.wasm', import.meta.url)),
    fileURLToPath(new URL('../../../matcher/build/matcher.wasm', import.meta.url)),
  ];
}

/** Read an AssemblyScript string (UTF-16LE, byte length in the 4 bytes before it). */
function readString(memory: WasmMemory | undefined, ptr: number): string {
  if (memory === undefined || ptr === 0) return '';
  try {
    const buf = memory.buffer;
    if (ptr < 4 || ptr > buf.byteLength) return `<string at ${ptr}>`;
    const len = new Uint32Array(buf, ptr - 4, 1)[0] ?? 0;
    if (ptr + len > buf.byteLength || len % 2 !== 0) return `<string at ${ptr}>`;
    return Buffer.from(buf, ptr, len).toString('utf16le');
  } catch {
    return `<string at ${ptr}>`;
  }
}

function imports(memoryRef: { memory?: WasmMemory }): WasmImports {
  return {
    env: {
      abort(msg: number, file: number, line: number, column: number): never {
        throw new MatcherAbortError(
          readString(memoryRef.memory, msg),
          readString(memoryRef.memory, file),
          line,
          column,
        );
      },
    },
  };
}

function checkExports(instance: WasmInstance): MatcherExports {
  const ex = instance.exports as Record<string, unknown>;
  const missing = EXPORT_NAMES.filter((n) => ex[n] === undefined);
  if (missing.length > 0) throw new MatcherLoadError(`matcher module lacks exports: ${missing.join(', ')}`);
  return ex as unknown as MatcherExports;
}

/** Instantiate from bytes, synchronously (compiling a module this small is cheap). */
export function instantiateMatcherSync(bytes: Uint8Array): MatcherExports {
  const ref: { memory?: WasmMemory } = {};
  let instance: WasmInstance;
  try {
    const module = new (wasmApi().Module)(bytes);
    instance = new (wasmApi().Instance)(module, imports(ref));
  } catch (err) {
    throw new MatcherLoadError(`cannot instantiate the matcher module: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const ex = checkExports(instance);
  ref.memory = ex.memory;
  return ex;
}

/** Instantiate from bytes. */
export async function instantiateMatcher(bytes: Uint8Array): Promise<MatcherExports> {
  const ref: { memory?: WasmMemory } = {};
  let instance: WasmInstance;
  try {
    const result = await wasmApi().instantiate(bytes, imports(ref));
    instance = result.instance;
  } catch (err) {
    throw new MatcherLoadError(`cannot instantiate the matcher module: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const ex = checkExports(instance);
  ref.memory = ex.memory;
  return ex;
}

async function readFirst(paths: readonly string[]): Promise<Uint8Array> {
  const errors: string[] = [];
  for (const p of paths) {
    try {
      return await readFile(p);
    } catch (err) {
      errors.push(`${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  throw new MatcherLoadError(
    `cannot read the matcher module (run \`npm run build:wasm\`): ${errors.join('; ')}`,
  );
}

function readFirstSync(paths: readonly string[]): Uint8Array {
  const errors: string[] = [];
  for (const p of paths) {
    try {
      return readFileSync(p);
    } catch (err) {
      errors.push(`${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  throw new MatcherLoadError(
    `cannot read the matcher module (run \`npm run build:wasm\`): ${errors.join('; ')}`,
  );
}

/** Read, compile and instantiate the module from `path` (default: matcher/build/matcher.wasm). */
export async function loadMatcherModule(path?: string): Promise<MatcherExports> {
  return instantiateMatcher(await readFirst(path === undefined ? defaultWasmPaths() : [path]));
}

/** The synchronous variant of loadMatcherModule. */
export function loadMatcherModuleSync(path?: string): MatcherExports {
  return instantiateMatcherSync(readFirstSync(path === undefined ? defaultWasmPaths() : [path]));
}

/** Load the module and wrap it: the WebAssembly matcher, ready for `load(snapshot)`. */
export async function loadMatcher(
  options: MatcherOptions & { readonly wasmPath?: string } = {},
): Promise<WasmMatcher> {
  return new WasmMatcher(await loadMatcherModule(options.wasmPath), options);
}

/** The synchronous variant of loadMatcher. */
export function loadMatcherSync(options: MatcherOptions & { readonly wasmPath?: string } = {}): WasmMatcher {
  return new WasmMatcher(loadMatcherModuleSync(options.wasmPath), options);
}
