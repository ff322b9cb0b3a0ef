// The pure parts of the benchmark harness (no timing is asserted here: benchmarks are never
// tests). Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { computeDelta } from '../../core/planner/delta.js';
import { Planner } from '../../core/planner/planner.js';
import { Tracker } from '../../core/tracker/tracker.js';
import { latencySnapshot, medianRatioInterval, percentile, stats } from './latency.bench.js';
import { nodeObject, serviceObject, sliceObject } from './pipeline.bench.js';
import { selectBenchFiles, targetsMarkdown } from './run.js';

describe('bench runner', () => {
  const names = [
    'iptables.bench.js',
    'ipvs.bench.js',
    'latency.bench.js',
    'run.js',
    'matcher-map-baseline.js',
  ];

  it('selects bench files by filter and exclusion', () => {
    expect(selectBenchFiles(names, '.bench.js', [])).toEqual([
      'iptables.bench.js',
      'ipvs.bench.js',
      'latency.bench.js',
    ]);
    expect(selectBenchFiles(names, '.bench.js', ['ip'])).toEqual(['iptables.bench.js', 'ipvs.bench.js']);
    expect(selectBenchFiles(names, '.bench.js', ['-ipvs'])).toEqual([
      'iptables.bench.js',
      'latency.bench.js',
    ]);
    expect(selectBenchFiles(names, '.bench.js', ['ip', '-ipvs'])).toEqual(['iptables.bench.js']);
  });

  it('renders a targets table with verdicts', () => {
    const md = targetsMarkdown([
      { bench: 'pipeline', name: 'full', target: '≤ 2 s', measured: '2.9 s', met: false },
      { bench: 'latency', name: 'p50', target: 'within 10 %', measured: '+1 %', met: true },
      { bench: 'x', name: 'y', target: 'z', measured: 'w' },
    ]);
    expect(md.split('\n')).toHaveLength(5);
    expect(md).toContain('| pipeline | full | ≤ 2 s | 2.9 s | **NOT met** |');
    expect(md).toContain('| latency | p50 | within 10 % | +1 % | met |');
    expect(md).toContain('| x | y | z | w | — |');
    expect(targetsMarkdown([])).toMatch(/no benchmark/);
  });
});

describe('latency statistics', () => {
  it('percentile by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarizes samples and counts answering pods', () => {
    const s = stats({ ms: [3, 1, 2, 4], errors: 1, errorKinds: { ECONNREFUSED: 1 }, names: { a: 2, b: 2 } });
    expect(s).toMatchObject({ n: 4, errors: 1, p50: 2, p99: 4, mean: 2.5, endpoints: 2 });
  });

  it('bootstrap interval of the median ratio brackets the true ratio', () => {
    const a = Array.from({ length: 1000 }, (_, i) => 100 + (i % 50));
    const b = a.map((x) => x * 1.2);
    const [lo, hi] = medianRatioInterval(a, b, 200);
    expect(lo).toBeLessThanOrEqual(1.2 + 1e-9);
    expect(hi).toBeGreaterThanOrEqual(1.2 - 1e-9);
    expect(hi - lo).toBeLessThan(0.05);
    // deterministic
    expect(medianRatioInterval(a, b, 200)).toEqual([lo, hi]);
  });

  it('the measured Service sits in the middle, on the ten real pods', () => {
    const { snapshot, vip } = latencySnapshot(1000);
    expect(snapshot.servicePorts.size).toBe(1000);
    const measured = [...snapshot.servicePorts.values()].filter((p) => p.clusterIP === vip);
    expect(measured).toHaveLength(1);
    expect(measured[0]!.clusterEndpoints.map((e) => e.ip)).toEqual(
      Array.from({ length: 10 }, (_, i) => `10.244.1.${10 + i}`),
    );
    expect([...snapshot.servicePorts.keys()].indexOf(measured[0]!.id)).toBe(500);
    expect(latencySnapshot(1).snapshot.servicePorts.size).toBe(1);
  });
});

describe('pipeline bench objects', () => {
  it('plan to N Service ports × 10 endpoints, and a one-endpoint slice update is a one-port delta', () => {
    const tracker = new Tracker('node-0');
    const planner = new Planner(silentLogger());
    const cfg = {
      nodeName: 'node-0',
      clusterCIDRs: ['10.244.0.0/16'],
      masqueradeAll: false,
      nodePortAddresses: [],
    };
    tracker.apply({ type: 'replace', resource: 'nodes', objects: [nodeObject()] });
    tracker.apply({ type: 'replace', resource: 'services', objects: [0, 1, 2, 3].map(serviceObject) });
    tracker.apply({
      type: 'replace',
      resource: 'endpointslices',
      objects: [0, 1, 2, 3].map((i) => sliceObject(i)),
    });
    const first = planner.plan(tracker.state(), cfg);
    expect(first.skips).toEqual([]);
    const ports = [...first.snapshot.servicePorts.values()];
    expect(ports).toHaveLength(4);
    for (const p of ports) expect(p.clusterEndpoints).toHaveLength(10);
    expect(ports.filter((p) => p.nodePort !== undefined).map((p) => p.name)).toEqual(['svc-0']);
    expect(ports[1]!.clusterEndpoints.filter((e) => e.isLocal)).toHaveLength(1);

    tracker.apply({ type: 'upsert', resource: 'endpointslices', object: sliceObject(2, 1, '10.245.0.9') });
    const next = planner.plan(tracker.state(), cfg).snapshot;
    const delta = computeDelta(first.snapshot, next, false);
    expect(delta.full).toBe(false);
    expect([...delta.changed]).toEqual(['ns-2/svc-2:http/TCP/IPv4']);
    expect(next.servicePorts.get('ns-2/svc-2:http/TCP/IPv4')!.clusterEndpoints.map((e) => e.ip)).toContain(
      '10.245.0.9',
    );
  });
});
