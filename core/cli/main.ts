/**
 * The `switchyard` command: the daemon (default), `plan`, `trace`, `--cleanup`, `--help`,
 * `--version`. Exit codes: 0 ok, 1 runtime failure (backend cannot run, sync of --cleanup
 * failed...), 2 bad command line or configuration (one line on stderr).
 */
import 'reflect-metadata';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { SpawnExecutor } from '../../backends/exec/executor.js';
import { loadPlugins, PluginLoadError, UnknownBackendError } from '../backend-registry.js';
import { ConfigError, loadConfig, parseArgs, type ParsedCommand } from '../config/index.js';
import { builtinRegistry, createBackend, createDaemonContainer } from '../container.js';
import { BackendUnsupportedError, Daemon } from '../daemon.js';
import { createLogger, type Logger } from '../log.js';
import { Metrics } from '../metrics/metrics.js';
import type { SourceEvent } from '../model/events.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import { Planner, plannerConfigFrom } from '../planner/planner.js';
import { loadObjectsFromPath } from '../source/file-source.js';
import { createSource } from '../source/source.js';
import { Tracker } from '../tracker/tracker.js';
import { formatPlan } from './plan-output.js';
import { runTrace } from './trace.js';

/** A failure whose message is the whole story (printed as one line, no stack). */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

function logWarnings(logger: Logger, warnings: readonly string[]): void {
  for (const w of warnings) logger.warn(w);
}

/** Every initial list of a source, as tracker events (for one-shot commands). */
async function collectFromApi(config: ProxyConfig, logger: Logger): Promise<SourceEvent[]> {
  const source = createSource(config, logger);
  try {
    return await firstValueFrom(
      source.events$().pipe(
        filter((e) => e.type === 'replace'),
        take(3),
        toArray(),
        timeout({
          first: 60_000,
          with: () => Promise.reject(new ExitError('timed out listing from the API server', 1)),
        }),
      ),
    );
  } finally {
    await source.stop();
  }
}

/** The events `plan` and `trace` feed the tracker: from --from files, else the API. */
export async function loadClusterEvents(config: ProxyConfig, logger: Logger): Promise<SourceEvent[]> {
  if (config.from === undefined) return collectFromApi(config, logger);
  const loaded = await loadObjectsFromPath(config.from, logger).catch((e: unknown) => {
    throw new ExitError(`--from ${config.from}: ${e instanceof Error ? e.message : String(e)}`, 2);
  });
  for (const err of loaded.errors) {
    logger.error(
      { file: err.file, line: err.line, column: err.column },
      `cannot load ${err.file}: ${err.message}`,
    );
  }
  return [
    { type: 'replace', resource: 'services', objects: loaded.services },
    { type: 'replace', resource: 'endpointslices', objects: loaded.endpointslices },
    { type: 'replace', resource: 'nodes', objects: loaded.nodes },
  ];
}

async function runPlan(config: ProxyConfig, output: 'yaml' | 'json', logger: Logger): Promise<number> {
  const tracker = new Tracker(config);
  for (const event of await loadClusterEvents(config, logger)) tracker.apply(event);
  const { snapshot, skips } = new Planner(logger).plan(tracker.state(), plannerConfigFrom(config));
  process.stdout.write(formatPlan(snapshot, skips, output));
  return 0;
}

/** `--cleanup`: every backend that can run here removes what it ever programmed. */
async function runCleanup(
  config: ProxyConfig,
  logger: Logger,
  names: readonly string[],
  registry: ReturnType<typeof builtinRegistry>,
): Promise<number> {
  const executor = new SpawnExecutor();
  const metrics = new Metrics(config);
  let failed = 0;
  for (const name of names) {
    const registration = registry.get(name);
    if (!registration) continue;
    const backend = createBackend(registration, config, logger, executor, metrics);
    const support = await backend.probe();
    if (!support.supported) {
      logger.info({ backend: name }, `cleanup: skipping ${name}: ${support.reason ?? 'unsupported'}`);
      continue;
    }
    try {
      await backend.cleanup();
      logger.info({ backend: name }, `cleanup: removed everything ${name} programmed`);
    } catch (e) {
      failed++;
      logger.error({ backend: name, err: e }, `cleanup: ${name} failed`);
    }
  }
  return failed > 0 ? 1 : 0;
}

async function runDaemon(config: ProxyConfig, logger: Logger): Promise<number> {
  const registry = builtinRegistry();
  await loadPlugins(registry, config.plugins);
  if (config.cleanup) return runCleanup(config, logger, registry.names(), registry);
  const daemon = new Daemon(createDaemonContainer({ config, logger, registry }));
  await daemon.start();
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping');
      daemon.stop().then(
        () => resolve(0),
        (e: unknown) => {
          logger.error({ err: e }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function execute(command: ParsedCommand): Promise<number> {
  if (command.kind === 'help' || command.kind === 'version') {
    process.stdout.write(command.text.endsWith('\n') ? command.text : `${command.text}\n`);
    return 0;
  }
  const { config, warnings } = await loadConfig(command.flags);
  const logger = createLogger(config.verbosity);
  logWarnings(logger, [...command.warnings, ...warnings]);
  switch (command.kind) {
    case 'run':
      return runDaemon(config, logger);
    case 'plan':
      return runPlan(config, command.output, logger);
    case 'trace':
      return runTrace(config, command, logger, loadClusterEvents);
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    return await execute(parseArgs(argv, process.env));
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UnknownBackendError || e instanceof PluginLoadError) {
      process.stderr.write(`switchyard: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ExitError || e instanceof BackendUnsupportedError) {
      process.stderr.write(`switchyard: ${e.message}\n`);
      return e instanceof ExitError ? e.code : 1;
    }
    process.stderr.write(`switchyard: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
