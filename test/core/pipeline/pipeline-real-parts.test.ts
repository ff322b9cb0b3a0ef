/**
 * The pipeline with the real Tracker, Planner and computeDelta (core/tracker, core/planner)
 * behind its ports; only the source and the backend are fakes.
 */
import { asyncScheduler } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { Pipeline } from '../../../core/pipeline/pipeline.js';
import type { PlannerPort, TrackerPort } from '../../../core/pipeline/ports.js';
import { Metrics } from '../../../core/metrics/metrics.js';
import { HealthState } from '../../../core/server/health-state.js';
import { Tracker } from '../../../core/tracker/tracker.js';
import { Planner } from '../../../core/planner/planner.js';
import { FakeBackend, FakeSource, slice, svc, testConfig } from './fakes.js';

const pipelines: Pipeline[] = [];
afterEach(async () => {
  for (const p of pipelines.splice(0)) await p.stop();
});

describe('Pipeline with the real tracker and planner', () => {
  it('plans, syncs full then partial, and counts a malformed Service once', async () => {
    const config = testConfig();
    const source = new FakeSource();
    const backend = new FakeBackend();
    const tracker: TrackerPort = new Tracker(config);
    const planner: PlannerPort = new Planner(silentLogger());
    const metrics = new Metrics(config, { defaultMetrics: false });
    const health = new HealthState(config, { now: () => Date.now() });
    const pipeline = new Pipeline(
      config,
      silentLogger(),
      source,
      tracker,
      planner,
      backend,
      metrics,
      health,
      asyncScheduler,
    );
    pipelines.push(pipeline);
    pipeline.start();
    const web = svc('web', '1', {
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      ipFamilies: ['IPv4'],
    });
    const api = svc('api', '1', {
      clusterIP: '10.96.0.11',
      clusterIPs: ['10.96.0.11'],
      ipFamilies: ['IPv4'],
    });
    const broken = svc('broken', '1', { clusterIP: 'not-an-ip', clusterIPs: ['not-an-ip'] });
    source.emit({ type: 'replace', resource: 'services', objects: [web, api, broken] });
    source.emit({ type: 'replace', resource: 'nodes', objects: [] });
    source.emit({
      type: 'replace',
      resource: 'endpointslices',
      objects: [slice('web', 'web-1', '1', ['10.244.0.1']), slice('api', 'api-1', '1', ['10.244.0.2'])],
    });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    const first = backend.calls[0]!;
    expect(first.delta.full).toBe(true);
    const ids = [...first.snapshot.servicePorts.keys()];
    expect(ids.some((id) => id.startsWith('default/web:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('default/api:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('default/broken:'))).toBe(false);

    source.emit({
      type: 'upsert',
      resource: 'endpointslices',
      object: slice('web', 'web-1', '2', ['10.244.0.1', '10.244.0.3']),
    });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(2));
    const second = backend.calls[1]!;
    expect(second.delta.full).toBe(false);
    expect([...second.delta.changed].every((id) => id.startsWith('default/web:'))).toBe(true);
    expect(second.delta.changed.size).toBeGreaterThan(0);

    const text = await metrics.exposition();
    const skipped = text
      .split('\n')
      .filter((l) => l.startsWith('switchyard_skipped_objects_total{kind="Service"'));
    expect(skipped.length).toBeGreaterThan(0);
    expect(skipped.every((l) => l.endsWith(' 1'))).toBe(true);
    expect(health.isHealthy()).toBe(true);
  });
});
