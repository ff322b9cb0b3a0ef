/**
 * The backend registry: built-in backends and `--plugin` modules register here; the
 * `--proxy-mode` value picks one. Plugins receive it through the SDK's BackendRegistry
 * interface, so a vendor never imports anything from core.
 */
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BackendRegistration, BackendRegistry, SwitchyardPlugin } from '../plugins/sdk/index.js';

/** `--proxy-mode` names no registered backend. */
export class UnknownBackendError extends Error {
  override readonly name = 'UnknownBackendError';

  constructor(
    readonly mode: string,
    readonly known: readonly string[],
  ) {
    super(
      `unknown --proxy-mode ${JSON.stringify(mode)}; known: ${known.length > 0 ? known.join(', ') : '(none)'}`,
    );
  }
}

/** A `--plugin` module could not be loaded or has no register function. */
export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';

  constructor(
    readonly module: string,
    reason: string,
  ) {
    super(`--plugin ${module}: ${reason.replace(/\s*\n[\s\S]*$/, '')}`);
  }
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

export class BackendRegistryImpl implements BackendRegistry {
  private readonly registrations = new Map<string, BackendRegistration>();

  register(registration: BackendRegistration): void {
    const name = registration?.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new Error(
        `backend name ${JSON.stringify(name)} is invalid (lower-case letters, digits, ".", "_", "-")`,
      );
    }
    if (typeof registration.create !== 'function')
      throw new Error(`backend "${name}" has no create() function`);
    if (this.registrations.has(name)) throw new Error(`backend "${name}" is already registered`);
    this.registrations.set(name, registration);
  }

  get(name: string): BackendRegistration | undefined {
    return this.registrations.get(name);
  }

  /** Registered names, sorted. */
  names(): string[] {
    return [...this.registrations.keys()].sort();
  }

  /** The registration for `mode`, or UnknownBackendError listing the known names. */
  require(mode: string): BackendRegistration {
    const registration = this.registrations.get(mode);
    if (registration === undefined) throw new UnknownBackendError(mode, this.names());
    return registration;
  }
}

/**
 * How a `--plugin` value becomes an import() specifier: a path (starts with `.`, `/` or is
 * absolute) is resolved against `cwd` and imported by file URL; anything else is a package
 * name, resolved from `cwd`'s node_modules when possible (falling back to this module's).
 */
export function pluginSpecifier(module: string, cwd: string): string {
  if (
    isAbsolute(module) ||
    module.startsWith('./') ||
    module.startsWith('../') ||
    module === '.' ||
    module === '..'
  ) {
    return pathToFileURL(resolve(cwd, module)).href;
  }
  try {
    // import.meta.resolve cannot resolve from another folder; a require rooted at cwd can.
    // (It follows "require" export conditions; an ESM-only package falls back to a bare import.)
    return pathToFileURL(createRequire(resolve(cwd, 'noop.js')).resolve(module)).href;
  } catch {
    return module;
  }
}

function registerFunction(mod: unknown): SwitchyardPlugin['register'] | undefined {
  const m = mod as { register?: unknown; default?: unknown } | undefined;
  if (typeof m?.register === 'function') return m.register as SwitchyardPlugin['register'];
  const d = m?.default as { register?: unknown } | ((...a: unknown[]) => unknown) | undefined;
  if (d !== undefined && d !== null && typeof (d as { register?: unknown }).register === 'function') {
    const obj = d as SwitchyardPlugin;
    return (registry) => obj.register(registry);
  }
  return undefined;
}

/**
 * Imports each `--plugin` module in order and calls its `register(registry)` (a named export,
 * or a default export's `register` method). Returns the backend names each plugin added.
 * Throws PluginLoadError (one line, naming the module) when a module cannot be imported, has
 * no register function, or its register throws.
 */
export async function loadPlugins(
  registry: BackendRegistry,
  modules: readonly string[],
  cwd: string = process.cwd(),
): Promise<Map<string, string[]>> {
  const added = new Map<string, string[]>();
  for (const module of modules) {
    let mod: unknown;
    try {
      mod = await import(pluginSpecifier(module, cwd));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const reason =
        e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND'
          ? `cannot find module (looked for ${JSON.stringify(module)} from ${cwd})`
          : `cannot load: ${e.message}`;
      throw new PluginLoadError(module, reason);
    }
    const register = registerFunction(mod);
    if (register === undefined) {
      throw new PluginLoadError(
        module,
        'has no register(registry) export (named, or a default export with register)',
      );
    }
    const before = new Set(registry.names());
    try {
      await register(registry);
    } catch (err) {
      throw new PluginLoadError(module, `register() failed: ${(err as Error).message}`);
    }
    added.set(
      module,
      registry.names().filter((n) => !before.has(n)),
    );
  }
  return added;
}
