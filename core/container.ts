/**
 * The only place that wires switchyard together (tsyringe). Every other class receives its
 * collaborators through constructor parameters with an explicit @inject(TOKEN).
 *
 * Each daemon gets a child container of its own, so nothing is shared through module state.
 */
import { asyncScheduler } from 'rxjs';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { SpawnExecutor, type Executor } from '../backends/exec/executor.js';
import { iptablesRegistration } from '../backends/iptables/index.js';
import { ipvsRegistration } from '../backends/ipvs/index.js';
import { nftablesRegistration } from '../backends/nftables/index.js';
import type { BackendRegistration } from '../plugins/sdk/index.js';
import { userspaceRegistration } from '../plugins/userspace/index.js';
import { BackendRegistryImpl } from './backend-registry.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics/metrics.js';
import type { ProxyConfig } from './model/proxy-config.js';
import type { ProxyBackend } from './model/snapshot.js';
import { Pipeline } from './pipeline/pipeline.js';
import { Planner } from './planner/planner.js';
import { HealthServer } from './server/health-server.js';
import { HealthState } from './server/health-state.js';
import { MetricsServer } from './server/metrics-server.js';
import { ServiceHealthServer } from './server/service-health-server.js';
import { createSource } from './source/source.js';
import { Tracker } from './tracker/tracker.js';
import { TOKENS } from './tokens.js';

/** The backends that ship with switchyard, in --help order. */
export const BUILTIN_BACKENDS: readonly BackendRegistration[] = [
  nftablesRegistration,
  iptablesRegistration,
  ipvsRegistration,
  userspaceRegistration,
];

/** A registry holding the built-in backends (plugins add theirs with loadPlugins). */
export function builtinRegistry(extra: readonly BackendRegistration[] = []): BackendRegistryImpl {
  const registry = new BackendRegistryImpl();
  for (const registration of [...BUILTIN_BACKENDS, ...extra]) registry.register(registration);
  return registry;
}

export interface DaemonWiring {
  readonly config: ProxyConfig;
  readonly logger: Logger;
  readonly registry: BackendRegistryImpl;
  /** Default: the real SpawnExecutor. */
  readonly executor?: Executor;
}

/** Creates the backend `config.mode` names, with its context (child logger, metrics). */
export function createBackend(
  registration: BackendRegistration,
  config: ProxyConfig,
  logger: Logger,
  executor: Executor,
  metrics: Metrics,
): ProxyBackend {
  return registration.create({
    config,
    logger: logger.child({ backend: registration.name }),
    executor,
    metrics: metrics.backendMetrics(registration.name),
  });
}

/** A child container with everything the daemon needs registered. */
export function createDaemonContainer(wiring: DaemonWiring): DependencyContainer {
  const { config, logger, registry } = wiring;
  const registration = registry.require(config.mode); // UnknownBackendError names the known ones
  const c = rootContainer.createChildContainer();
  c.registerInstance(TOKENS.Config, config);
  c.registerInstance(TOKENS.Logger, logger);
  c.registerInstance(TOKENS.Executor, wiring.executor ?? new SpawnExecutor());
  c.registerInstance(TOKENS.Scheduler, asyncScheduler);
  c.registerInstance(TOKENS.Clock, { now: () => Date.now() });
  c.registerInstance(TOKENS.BackendRegistry, registry);
  c.registerInstance(TOKENS.Metrics, new Metrics(config, { logger }));
  c.registerSingleton(TOKENS.HealthState, HealthState);
  c.registerSingleton(TOKENS.Tracker, Tracker);
  c.registerSingleton(TOKENS.Planner, Planner);
  c.registerSingleton(TOKENS.Pipeline, Pipeline);
  c.register(TOKENS.Source, { useFactory: instanceCachingFactory(() => createSource(config, logger)) });
  c.register(TOKENS.Backend, {
    useFactory: instanceCachingFactory((d) =>
      createBackend(
        registration,
        config,
        logger,
        d.resolve<Executor>(TOKENS.Executor),
        d.resolve<Metrics>(TOKENS.Metrics),
      ),
    ),
  });
  c.registerSingleton(HealthServer);
  c.registerSingleton(MetricsServer);
  c.registerSingleton(ServiceHealthServer);
  return c;
}
