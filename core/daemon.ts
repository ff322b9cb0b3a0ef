/**
 * The daemon's lifecycle: probe the backend, serve healthz and metrics, run the pipeline,
 * keep the healthCheckNodePort servers in step with each applied snapshot, stop cleanly.
 */
import type { DependencyContainer } from 'tsyringe';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/metrics.js';
import type { ProxyConfig } from './model/proxy-config.js';
import type { ProxyBackend } from './model/snapshot.js';
import type { Pipeline } from './pipeline/pipeline.js';
import { HealthServer } from './server/health-server.js';
import { MetricsServer } from './server/metrics-server.js';
import { ServiceHealthServer } from './server/service-health-server.js';
import { TOKENS } from './tokens.js';

/** The backend cannot run on this machine; the daemon exits with the reason. */
export class BackendUnsupportedError extends Error {
  override readonly name = 'BackendUnsupportedError';
}

export class Daemon {
  private readonly pipeline: Pipeline;
  private readonly backend: ProxyBackend;
  private readonly healthServer: HealthServer;
  private readonly metricsServer: MetricsServer;
  private readonly serviceHealth: ServiceHealthServer;
  private readonly metrics: Metrics;
  private readonly config: ProxyConfig;
  private readonly log: Logger;
  private stopping?: Promise<void>;

  constructor(c: DependencyContainer) {
    this.config = c.resolve<ProxyConfig>(TOKENS.Config);
    this.log = c.resolve<Logger>(TOKENS.Logger);
    this.backend = c.resolve<ProxyBackend>(TOKENS.Backend);
    this.metrics = c.resolve<Metrics>(TOKENS.Metrics);
    this.pipeline = c.resolve<Pipeline>(TOKENS.Pipeline);
    this.healthServer = c.resolve(HealthServer);
    this.metricsServer = c.resolve(MetricsServer);
    this.serviceHealth = c.resolve(ServiceHealthServer);
  }

  /** Probes the backend (throws BackendUnsupportedError), then starts everything. */
  async start(): Promise<void> {
    const support = await this.backend.probe();
    if (!support.supported) {
      throw new BackendUnsupportedError(
        `--proxy-mode=${this.backend.name} cannot run here: ${support.reason ?? 'unsupported'}`,
      );
    }
    this.metrics.backendInfo(this.backend.name, support.details?.variant ?? '');
    this.log.info({ backend: this.backend.name, ...support.details }, 'backend ready');
    this.pipeline.onSynced(async (report) => {
      if (report.snapshot) await this.serviceHealth.sync(report.snapshot.healthChecks);
    });
    await Promise.all([this.healthServer.start(), this.metricsServer.start()]);
    this.pipeline.start();
    this.log.info(
      {
        mode: this.config.mode,
        node: this.config.hostname,
        source: this.config.from ?? this.config.kubeconfig ?? 'in-cluster',
        minSyncPeriodMs: this.config.minSyncPeriodMs,
        syncPeriodMs: this.config.syncPeriodMs,
      },
      'switchyard started',
    );
  }

  /** Stops syncing (waits for a sync in flight), the servers and the backend's own work. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.pipeline.stop();
      await Promise.allSettled([
        this.healthServer.stop(),
        this.metricsServer.stop(),
        this.serviceHealth.stop(),
      ]);
      await this.backend.close?.();
      this.log.info('switchyard stopped; rules stay in place (use --cleanup to remove them)');
    })();
    return this.stopping;
  }
}
