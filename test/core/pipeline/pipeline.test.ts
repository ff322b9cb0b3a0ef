import { asyncScheduler } from 'rxjs';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Pipeline, LAST_CHANGE_TRIGGER_TIME, type SyncReport } from '../../../core/pipeline/pipeline.js';
import { Metrics } from '../../../core/metrics/metrics.js';
import { HealthState } from '../../../core/server/health-state.js';
import type { ProxyConfig } from '../../../core/model/proxy-config.js';
import {
  deferred,
  FakeBackend,
  FakePlanner,
  FakeSource,
  FakeTracker,
  slice,
  svc,
  testConfig,
} from './fakes.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

const running: Pipeline[] = [];

function setup(overrides: Partial<ProxyConfig> = {}) {
  const config = testConfig(overrides);
  const source = new FakeSource();
  const tracker = new FakeTracker('node-a');
  const planner = new FakePlanner();
  const backend = new FakeBackend();
  const metrics = new Metrics(config, { defaultMetrics: false });
  const health = new HealthState(config, { now: () => Date.now() });
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) },
  );
  const pipeline = new Pipeline(
    config,
    logger,
    source,
    tracker,
    planner,
    backend,
    metrics,
    health,
    asyncScheduler,
    {
      retryBaseMs: 20,
    },
  );
  const reports: SyncReport[] = [];
  pipeline.syncs$.subscribe((r) => reports.push(r));
  running.push(pipeline);
  const initial = (
    services = [svc('a', '1'), svc('b', '1')],
    slices = [slice('a', 'a-1', '1', ['10.244.0.1'])],
  ): void => {
    source.emit({ type: 'replace', resource: 'services', objects: services });
    source.emit({ type: 'replace', resource: 'endpointslices', objects: slices });
  };
  return { config, source, tracker, planner, backend, metrics, health, lines, pipeline, reports, initial };
}

async function value(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
  series = name,
): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return undefined;
  const data = await metric.get();
  const found = data.values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === series &&
      Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return found?.value;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

describe('Pipeline', () => {
  it('programs nothing until Services and EndpointSlices finished their initial list, then one full sync', async () => {
    const { source, backend, pipeline, initial } = setup();
    pipeline.start();
    source.emit({ type: 'upsert', resource: 'services', object: svc('early', '1') });
    source.emit({ type: 'replace', resource: 'services', objects: [svc('a', '1'), svc('b', '1')] });
    await sleep(30);
    expect(backend.calls).toHaveLength(0);
    expect(pipeline.isReady()).toBe(false);
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    const first = backend.calls[0]!;
    expect(first.delta.full).toBe(true);
    expect([...first.snapshot.servicePorts.keys()].sort()).toEqual([
      'default/a:/TCP/IPv4',
      'default/b:/TCP/IPv4',
    ]);
    expect(pipeline.isReady()).toBe(true);
    expect(pipeline.lastApplied()).toBe(first.snapshot);
    await sleep(30);
    expect(backend.calls).toHaveLength(1);
  });

  it('a change is synced as a partial delta against the last applied snapshot', async () => {
    const { source, backend, pipeline, initial } = setup();
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    source.emit({
      type: 'upsert',
      resource: 'endpointslices',
      object: slice('a', 'a-1', '2', ['10.244.0.1', '10.244.0.2']),
    });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    const second = backend.calls[1]!;
    expect(second.delta.full).toBe(false);
    expect([...second.delta.changed]).toEqual(['default/a:/TCP/IPv4']);
    expect(second.delta.removed.size).toBe(0);
    expect(second.snapshot.servicePorts.get('default/a:/TCP/IPv4')?.reachableEndpoints).toHaveLength(2);

    source.emit({ type: 'delete', resource: 'services', object: svc('b', '1') });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(3));
    expect([...backend.calls[2]!.delta.removed]).toEqual(['default/b:/TCP/IPv4']);
    expect(backend.calls[2]!.delta.changed.size).toBe(0);
  });

  it('an event that changes nothing does not sync and is not counted', async () => {
    const { source, backend, metrics, pipeline, initial } = setup();
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    const before = await value(metrics, 'kubeproxy_sync_proxy_rules_service_changes_total');
    source.emit({ type: 'upsert', resource: 'services', object: svc('a', '1') });
    source.emit({ type: 'degraded', resource: 'services', reason: 'watch closed' });
    await sleep(40);
    expect(backend.calls).toHaveLength(1);
    expect(await value(metrics, 'kubeproxy_sync_proxy_rules_service_changes_total')).toBe(before);
  });

  it('a failed sync is retried as a full sync against the last success, counted, and reported', async () => {
    const { source, backend, metrics, pipeline, reports, initial, health } = setup();
    backend.script[1] = { fail: new Error('nft: syntax error') };
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    const firstApplied = pipeline.lastApplied();
    const updatedAfterFirst = health.health().lastUpdated;
    source.emit({ type: 'upsert', resource: 'services', object: svc('c', '1') });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(3));
    expect(backend.calls[1]!.delta.full).toBe(false);
    expect(backend.calls[2]!.delta.full).toBe(true);
    expect(backend.calls[2]!.snapshot.servicePorts.has('default/c:/TCP/IPv4')).toBe(true);
    await vi.waitFor(() => expect(reports).toHaveLength(3));
    expect(reports.map((r) => [r.ok, r.request.reason])).toEqual([
      [true, 'initial'],
      [false, 'change'],
      [true, 'retry'],
    ]);
    expect(reports[1]!.error).toBeInstanceOf(Error);
    expect(pipeline.lastApplied()).toBe(backend.calls[2]!.snapshot);
    expect(pipeline.lastApplied()).not.toBe(firstApplied);
    expect(await value(metrics, 'switchyard_sync_failures_total', { ip_family: 'IPv4' })).toBe(1);
    expect(
      await value(metrics, 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total', { ip_family: 'IPv4' }),
    ).toBe(1);
    expect(health.health().lastUpdated).toBeGreaterThanOrEqual(updatedAfterFirst!);
  });

  it('a planner failure is a failed sync too, and is retried', async () => {
    const { backend, planner, pipeline, reports, initial } = setup();
    planner.throwOnPlan = new Error('planner bug');
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(reports.length).toBeGreaterThanOrEqual(1));
    expect(reports[0]!.ok).toBe(false);
    expect(reports[0]!.snapshot).toBeUndefined();
    expect(backend.calls).toHaveLength(0);
    planner.throwOnPlan = undefined;
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    expect(backend.calls[0]!.delta.full).toBe(true);
  });

  it('never overlaps syncs: changes during a slow sync collapse into one follow-up', async () => {
    const { source, backend, pipeline, initial } = setup();
    const gate = deferred();
    backend.script[0] = { wait: gate.promise };
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    for (let i = 2; i < 7; i++)
      source.emit({ type: 'upsert', resource: 'services', object: svc('a', String(i)) });
    await sleep(30);
    expect(backend.calls).toHaveLength(1);
    gate.resolve();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    await sleep(30);
    expect(backend.calls).toHaveLength(2);
    expect(backend.maxRunning).toBe(1);
  });

  it('stop() waits for the sync in flight, then stops the source', async () => {
    const { source, backend, pipeline, initial } = setup();
    const gate = deferred();
    backend.script[0] = { wait: gate.promise };
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    let stopped = false;
    const stopping = pipeline.stop().then(() => (stopped = true));
    await sleep(20);
    expect(stopped).toBe(false);
    expect(source.stopped).toBe(0);
    gate.resolve();
    await stopping;
    expect(source.stopped).toBe(1);
    source.emit({ type: 'upsert', resource: 'services', object: svc('z', '1') });
    await sleep(20);
    expect(backend.calls).toHaveLength(1);
  });

  it('keeps a change that arrived during a sync queued (healthz) until a later sync programs it', async () => {
    const { source, backend, pipeline, initial, health } = setup();
    const gate = deferred();
    backend.script[1] = { wait: gate.promise };
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    expect(pipeline.queuedSince()).toBeUndefined();
    expect(health.oldestPending()).toBeUndefined();

    source.emit({ type: 'upsert', resource: 'services', object: svc('a', '2') });
    const firstQueued = pipeline.queuedSince();
    expect(firstQueued).toBeDefined();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    await sleep(5);
    source.emit({ type: 'upsert', resource: 'services', object: svc('a', '3') });
    expect(pipeline.queuedSince()).toBe(firstQueued);
    const gate2 = deferred();
    backend.script[2] = { wait: gate2.promise };
    gate.resolve();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(3));
    // the second change is still pending, with its own (later) time
    const secondQueued = pipeline.queuedSince();
    expect(secondQueued).toBeGreaterThan(firstQueued!);
    expect(health.oldestPending()).toBe(secondQueued);
    gate2.resolve();
    await vi.waitFor(() => expect(pipeline.queuedSince()).toBeUndefined());
    expect(health.oldestPending()).toBeUndefined();
  });

  it('writes one summary log line per successful sync', async () => {
    const { source, backend, pipeline, initial, lines } = setup();
    pipeline.start();
    initial(
      [svc('a', '1'), svc('b', '1')],
      [slice('a', 'a-1', '1', ['10.244.0.1', '10.244.0.2', '10.244.0.3'])],
    );
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    source.emit({ type: 'upsert', resource: 'services', object: svc('c', '1') });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    await vi.waitFor(() => expect(lines.filter((l) => l.msg === 'synced')).toHaveLength(2));
    const [first, second] = lines.filter((l) => l.msg === 'synced');
    expect(first).toMatchObject({
      servicePorts: 2,
      endpoints: 3,
      full: true,
      reason: 'initial',
      backend: 'fake',
    });
    expect(typeof first!.elapsedMs).toBe('number');
    expect(second).toMatchObject({ servicePorts: 3, endpoints: 3, full: false, changed: 1, removed: 0 });
  });

  it('counts and logs a skipped object once, not once per sync', async () => {
    const { source, backend, metrics, pipeline, initial, lines } = setup();
    const bad = svc('bad', '1', { clusterIP: '' });
    pipeline.start();
    initial([svc('a', '1'), bad]);
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    source.emit({ type: 'upsert', resource: 'services', object: svc('a', '2') });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    expect(
      await value(metrics, 'switchyard_skipped_objects_total', { kind: 'Service', reason: 'missing' }),
    ).toBe(1);
    expect(lines.filter((l) => l.msg === 'skipped malformed object')).toHaveLength(1);
    // fixed, then broken again: counted again
    source.emit({ type: 'upsert', resource: 'services', object: svc('bad', '2') });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(3));
    source.emit({ type: 'upsert', resource: 'services', object: svc('bad', '3', { clusterIP: '' }) });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(4));
    expect(
      await value(metrics, 'switchyard_skipped_objects_total', { kind: 'Service', reason: 'missing' }),
    ).toBe(2);
  });

  it('updates kube-proxy metrics: changes, durations by sync kind, timestamps, pending', async () => {
    const { source, backend, metrics, pipeline, initial } = setup();
    pipeline.start();
    const t0 = Date.now();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    source.emit({ type: 'upsert', resource: 'services', object: svc('a', '2') });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    await sleep(5);
    expect(await value(metrics, 'kubeproxy_sync_proxy_rules_service_changes_total')).toBe(3);
    expect(await value(metrics, 'kubeproxy_sync_proxy_rules_endpoint_changes_total')).toBe(1);
    expect(await value(metrics, 'kubeproxy_sync_proxy_rules_service_changes_pending')).toBe(0);
    const count = (name: string): Promise<number | undefined> =>
      value(metrics, name, { ip_family: 'IPv4' }, `${name}_count`);
    expect(await count('kubeproxy_sync_proxy_rules_duration_seconds')).toBe(2);
    expect(await count('kubeproxy_sync_full_proxy_rules_duration_seconds')).toBe(1);
    expect(await count('kubeproxy_sync_partial_proxy_rules_duration_seconds')).toBe(1);
    const last = await value(metrics, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', {
      ip_family: 'IPv4',
    });
    const queued = await value(metrics, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', {
      ip_family: 'IPv4',
    });
    expect(last! * 1000).toBeGreaterThanOrEqual(t0);
    expect(queued! * 1000).toBeGreaterThanOrEqual(t0);
    expect(last!).toBeGreaterThanOrEqual(queued!);
  });

  it('observes network programming latency from the slice trigger time, ignoring times before start', async () => {
    const { source, backend, metrics, pipeline, initial } = setup();
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    await sleep(40);
    const name = 'kubeproxy_network_programming_duration_seconds';
    const trigger = new Date(Date.now() - 30).toISOString();
    source.emit({
      type: 'upsert',
      resource: 'endpointslices',
      object: slice('a', 'a-1', '2', ['10.244.0.9'], { [LAST_CHANGE_TRIGGER_TIME]: trigger }),
    });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    await vi.waitFor(async () =>
      expect(await value(metrics, name, { ip_family: 'IPv4' }, `${name}_count`)).toBe(1),
    );
    expect(await value(metrics, name, { ip_family: 'IPv4' }, `${name}_sum`)).toBeGreaterThanOrEqual(0.03);
    source.emit({
      type: 'upsert',
      resource: 'endpointslices',
      object: slice('a', 'a-1', '3', ['10.244.0.8'], { [LAST_CHANGE_TRIGGER_TIME]: '2020-01-01T00:00:00Z' }),
    });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(3));
    await sleep(5);
    expect(await value(metrics, name, { ip_family: 'IPv4' }, `${name}_count`)).toBe(1);
  });

  it('feeds node eligibility to health: tainted or deleted node is not eligible', async () => {
    const { source, pipeline, health } = setup();
    pipeline.start();
    expect(health.nodeEligible()).toBe(true);
    source.emit({
      type: 'upsert',
      resource: 'nodes',
      object: {
        metadata: { name: 'node-a', resourceVersion: '1' },
        spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] },
      } as never,
    });
    expect(health.nodeEligible()).toBe(false);
    source.emit({
      type: 'upsert',
      resource: 'nodes',
      object: { metadata: { name: 'node-a', resourceVersion: '2' }, spec: {} },
    });
    expect(health.nodeEligible()).toBe(true);
    source.emit({ type: 'delete', resource: 'nodes', object: { metadata: { name: 'node-a' } } });
    expect(health.nodeEligible()).toBe(false);
  });

  it('calls onSynced listeners with the applied snapshot; a throwing listener does not fail the sync', async () => {
    const { backend, pipeline, initial, reports } = setup();
    const seen: number[] = [];
    pipeline.onSynced(() => {
      throw new Error('listener bug');
    });
    pipeline.onSynced((r) => void seen.push(r.snapshot!.healthChecks.length));
    pipeline.start();
    initial([
      svc('lb', '1', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 30000 }),
    ]);
    await vi.waitFor(() => expect(seen).toEqual([1]));
    expect(backend.calls).toHaveLength(1);
    expect(reports[0]!.ok).toBe(true);
  });

  it('runs a periodic full resync every syncPeriod', async () => {
    const { backend, pipeline, initial } = setup({ syncPeriodMs: 60 });
    pipeline.start();
    initial();
    await vi.waitFor(() => expect(backend.calls.length).toBeGreaterThanOrEqual(3), { timeout: 2000 });
    expect(backend.calls.every((c) => c.delta.full)).toBe(true);
  });
});
