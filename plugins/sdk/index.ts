/**
 * switchyard's public SDK for backend authors. A vendor backend imports only from here.
 *
 * A plugin is an ES module loaded with `--plugin MODULE`; it exports `register(registry)`
 * (or a default export with that method) and calls `registry.register({...})` for each
 * backend it ships. `--proxy-mode=<name>` then picks it.
 */
import type { Logger } from 'pino';
import type { Executor } from '../../backends/exec/executor.js';
import type { ProxyBackend } from '../../core/model/snapshot.js';
import type { ProxyConfig } from '../../core/model/proxy-config.js';

export type * from '../../core/model/snapshot.js';
export type { ProxyConfig } from '../../core/model/proxy-config.js';
export type { Executor, ExecOptions, ExecResult } from '../../backends/exec/executor.js';
export type { Logger } from 'pino';

/** What the core hands a backend factory. */
export interface BackendContext {
  readonly config: ProxyConfig;
  /** A child logger already bound with { backend }. */
  readonly logger: Logger;
  /** Run external programs through this (never a shell), so tests can substitute it. */
  readonly executor: Executor;
  /**
   * Backend-specific metrics: set a gauge or add to a counter by name; names are prefixed
   * `switchyard_backend_` and labelled { backend }.
   */
  readonly metrics: BackendMetrics;
}

export interface BackendMetrics {
  gauge(name: string, help: string, value: number, labels?: Readonly<Record<string, string>>): void;
  counter(name: string, help: string, increment?: number, labels?: Readonly<Record<string, string>>): void;
}

export interface BackendRegistration {
  /** The --proxy-mode value. */
  readonly name: string;
  /** One line for --help and errors. */
  readonly description: string;
  create(context: BackendContext): ProxyBackend;
}

export interface BackendRegistry {
  register(registration: BackendRegistration): void;
  get(name: string): BackendRegistration | undefined;
  names(): string[];
}

/** The shape of a plugin module. */
export interface SwitchyardPlugin {
  register(registry: BackendRegistry): void | Promise<void>;
}
