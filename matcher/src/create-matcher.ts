import type { Logger } from 'pino';
import { loadMatcher, loadMatcherSync } from './loader.js';
import type { Matcher, MatcherOptions } from './matcher.js';
import { ReferenceMatcher } from './reference-matcher.js';

export interface CreateMatcherOptions extends MatcherOptions {
  /** Try the WebAssembly matcher first (default true); false always gives the reference. */
  readonly preferWasm?: boolean;
  readonly logger?: Logger;
  /** Where the module is (default: matcher/build/matcher.wasm). */
  readonly wasmPath?: string;
}

function fallback(options: CreateMatcherOptions, err: unknown): Matcher {
  const reason = err instanceof Error ? err.message : String(err);
  options.logger?.warn(
    { matcher: 'reference', reason },
    'WebAssembly matcher unavailable, using the TypeScript reference matcher',
  );
  return new ReferenceMatcher(options);
}

function chosen(options: CreateMatcherOptions, m: Matcher): Matcher {
  options.logger?.info({ matcher: m.implementation }, 'matcher ready');
  return m;
}

/**
 * The WebAssembly matcher, or the reference matcher when WebAssembly cannot load (the reason is
 * logged at warn level) or when preferWasm is false.
 */
export async function createMatcher(options: CreateMatcherOptions = {}): Promise<Matcher> {
  if (options.preferWasm === false) return chosen(options, new ReferenceMatcher(options));
  try {
    return chosen(options, await loadMatcher(options));
  } catch (err) {
    return fallback(options, err);
  }
}

/** The synchronous variant of createMatcher. */
export function createMatcherSync(options: CreateMatcherOptions = {}): Matcher {
  if (options.preferWasm === false) return chosen(options, new ReferenceMatcher(options));
  try {
    return chosen(options, loadMatcherSync(options));
  } catch (err) {
    return fallback(options, err);
  }
}
