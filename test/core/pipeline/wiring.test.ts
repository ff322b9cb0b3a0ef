import { asyncScheduler } from 'rxjs';
import { container } from 'tsyringe';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TOKENS } from '../../../core/tokens.js';
import { silentLogger } from '../../../core/log.js';
import { Pipeline } from '../../../core/pipeline/pipeline.js';
import { Metrics } from '../../../core/metrics/metrics.js';
import { HealthState } from '../../../core/server/health-state.js';
import { HealthServer } from '../../../core/server/health-server.js';
import { MetricsServer } from '../../../core/server/metrics-server.js';
import { ServiceHealthServer } from '../../../core/server/service-health-server.js';
import { FakeBackend, FakePlanner, FakeSource, FakeTracker, slice, svc, testConfig } from './fakes.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

describe('tsyringe wiring', () => {
  it('resolves the pipeline, metrics, health state and servers from their tokens, and they work together', async () => {
    const c = container.createChildContainer();
    const source = new FakeSource();
    const backend = new FakeBackend();
    c.register(TOKENS.Config, { useValue: testConfig() });
    c.register(TOKENS.Logger, { useValue: silentLogger() });
    c.register(TOKENS.Source, { useValue: source });
    c.register(TOKENS.Tracker, { useValue: new FakeTracker() });
    c.register(TOKENS.Planner, { useValue: new FakePlanner() });
    c.register(TOKENS.Backend, { useValue: backend });
    c.register(TOKENS.Scheduler, { useValue: asyncScheduler });
    c.register(TOKENS.Clock, { useValue: { now: () => Date.now() } });
    c.registerSingleton(TOKENS.Metrics, Metrics);
    c.registerSingleton(TOKENS.HealthState, HealthState);

    const pipeline = c.resolve(Pipeline);
    const healthServer = c.resolve(HealthServer);
    const metricsServer = c.resolve(MetricsServer);
    const serviceHealth = c.resolve(ServiceHealthServer);
    pipeline.onSynced((r) => serviceHealth.sync(r.snapshot!.healthChecks));
    await healthServer.start();
    await metricsServer.start();
    stops.push(
      () => pipeline.stop(),
      () => healthServer.stop(),
      () => metricsServer.stop(),
      () => serviceHealth.stop(),
    );
    pipeline.start();
    source.emit({
      type: 'replace',
      resource: 'services',
      objects: [
        svc('lb', '1', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 0 }),
        svc('plain', '1'),
      ],
    });
    source.emit({
      type: 'replace',
      resource: 'endpointslices',
      objects: [slice('lb', 'lb-1', '1', ['10.244.0.5'])],
    });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    expect(c.resolve<Metrics>(TOKENS.Metrics)).toBeInstanceOf(Metrics);

    const hz = await fetch(`http://127.0.0.1:${healthServer.boundAddress()!.port}/healthz`);
    expect(hz.status).toBe(200);
    await vi.waitFor(async () => {
      const text = await (
        await fetch(`http://127.0.0.1:${metricsServer.boundAddress()!.port}/metrics`)
      ).text();
      expect(text).toContain('kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"} 1');
      expect(text).toContain('process_cpu_user_seconds_total');
    });
    expect(
      await (await fetch(`http://127.0.0.1:${metricsServer.boundAddress()!.port}/proxyMode`)).text(),
    ).toBe('nftables');
  });
});
