// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendRegistryImpl, loadPlugins } from '../../core/backend-registry.js';
import { parseArgs, resolveConfig } from '../../core/config/index.js';
import { silentLogger } from '../../core/log.js';
import type { EndpointPlan, ServicePortPlan, Snapshot, SnapshotDelta } from '../../core/model/snapshot.js';
import { FakeExecutor } from '../../backends/exec/executor.js';
import type { BackendContext, BackendMetrics } from '../../plugins/sdk/index.js';
import {
  EXAMPLE_BACKEND_NAME,
  ExampleLogBackend,
  register,
  type ExampleSyncRecord,
} from '../../plugins/example/index.js';

function endpoint(ip: string, nodeName: string, ready = true): EndpointPlan {
  return {
    ip,
    port: 8080,
    ready,
    serving: ready,
    terminating: false,
    isLocal: nodeName === 'node-a',
    nodeName,
    targetName: `pod-${ip}`,
  };
}

function servicePort(
  name: string,
  clusterIP: string,
  eps: EndpointPlan[],
  nodePort?: number,
): ServicePortPlan {
  const ready = eps.filter((e) => e.ready);
  return {
    id: `shop/${name}:http/TCP/IPv4`,
    serviceKey: `shop/${name}`,
    namespace: 'shop',
    name,
    portName: 'http',
    protocol: 'TCP',
    family: 'IPv4',
    clusterIP,
    port: 80,
    ...(nodePort === undefined ? {} : { nodePort }),
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerSourceRanges: [],
    internalPolicyLocal: false,
    externalPolicyLocal: false,
    clusterEndpoints: ready,
    localEndpoints: ready.filter((e) => e.isLocal),
    internalEndpoints: ready,
    externalEndpoints: ready,
    shortCircuitEndpoints: [],
    reachableEndpoints: ready,
    allEndpoints: eps,
    internal: ready.length > 0 ? 'forward' : 'reject',
    external: ready.length > 0 ? 'forward' : 'reject',
  };
}

function snapshot(generation: number, ports: ServicePortPlan[]): Snapshot {
  return {
    generation,
    nodeName: 'node-a',
    nodeLabels: {},
    nodeIPs: { IPv4: ['192.168.77.2'], IPv6: [] },
    families: ['IPv4'],
    clusterCIDRs: { IPv4: ['10.244.0.0/16'], IPv6: [] },
    masqueradeAll: false,
    nodePortAddresses: {
      IPv4: { kind: 'cidrs', cidrs: ['192.168.77.2/32'] },
      IPv6: { kind: 'cidrs', cidrs: [] },
    },
    servicePorts: new Map(ports.map((p) => [p.id, p])),
    healthChecks: [],
  };
}

interface RecordedMetric {
  kind: 'gauge' | 'counter';
  name: string;
  value: number;
}

function context(
  backendOptions: Record<string, string>,
  logged: unknown[] = [],
  metrics: RecordedMetric[] = [],
): BackendContext {
  const cmd = parseArgs(Object.entries(backendOptions).flatMap(([k, v]) => ['--backend-opt', `${k}=${v}`]));
  if (cmd.kind !== 'run') throw new Error('run');
  const logger = silentLogger();
  logger.info = ((obj: unknown, msg?: string) => void logged.push({ obj, msg })) as typeof logger.info;
  const m: BackendMetrics = {
    gauge: (name, _help, value) => void metrics.push({ kind: 'gauge', name, value }),
    counter: (name, _help, increment = 1) => void metrics.push({ kind: 'counter', name, value: increment }),
  };
  return {
    config: resolveConfig(cmd.flags, undefined, 'node-a').config,
    logger,
    executor: new FakeExecutor(),
    metrics: m,
  };
}

function readRecords(file: string): ExampleSyncRecord[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ExampleSyncRecord);
}

const dir = mkdtempSync(join(tmpdir(), 'switchyard-example-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('example-log backend', () => {
  const frontend = servicePort('frontend', '10.96.0.20', [endpoint('10.244.1.10', 'node-a')], 30080);
  const orders = servicePort('orders-api', '10.96.0.30', [
    endpoint('10.244.1.20', 'node-a'),
    endpoint('10.244.1.21', 'node-a'),
    endpoint('10.244.2.20', 'node-b', false),
  ]);

  it('probe() reports supported and where it writes', async () => {
    const file = join(dir, 'probe.jsonl');
    expect(await new ExampleLogBackend(context({ 'example.file': file })).probe()).toEqual({
      supported: true,
      details: { output: file },
    });
    expect(await new ExampleLogBackend(context({})).probe()).toEqual({
      supported: true,
      details: { output: 'log' },
    });
  });

  it('records each sync as one JSON line: sync number, full, changed/removed, service ports with internalEndpoints', async () => {
    const file = join(dir, 'nested', 'syncs.jsonl');
    const metrics: RecordedMetric[] = [];
    const backend = new ExampleLogBackend(
      context({ 'example.file': file }, [], metrics),
      () => new Date('2026-01-02T03:04:05Z'),
    );
    const full: SnapshotDelta = {
      full: true,
      changed: new Set([orders.id, frontend.id]),
      removed: new Set(),
    };
    expect(await backend.sync(snapshot(1, [frontend, orders]), full)).toEqual({
      full: true,
      stats: { servicePorts: 2, endpoints: 3 },
    });

    const ordersScaled = servicePort('orders-api', '10.96.0.30', [endpoint('10.244.1.20', 'node-a')]);
    const partial: SnapshotDelta = {
      full: false,
      changed: new Set([ordersScaled.id]),
      removed: new Set([frontend.id]),
    };
    expect(await backend.sync(snapshot(2, [ordersScaled]), partial)).toEqual({
      full: false,
      stats: { servicePorts: 1, endpoints: 1 },
    });

    const records = readRecords(file);
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      sync: 1,
      generation: 1,
      node: 'node-a',
      full: true,
      changed: ['shop/frontend:http/TCP/IPv4', 'shop/orders-api:http/TCP/IPv4'],
      removed: [],
      time: '2026-01-02T03:04:05.000Z',
    });
    expect(records[0]!.servicePorts.map((s) => s.id)).toEqual([
      'shop/frontend:http/TCP/IPv4',
      'shop/orders-api:http/TCP/IPv4',
    ]);
    expect(records[0]!.servicePorts[0]).toMatchObject({
      clusterIP: '10.96.0.20',
      port: 80,
      nodePort: 30080,
      internal: 'forward',
    });
    expect(records[0]!.servicePorts[1]!.internalEndpoints.map((e) => e.ip)).toEqual([
      '10.244.1.20',
      '10.244.1.21',
    ]);
    expect(records[0]!.servicePorts[1]!.internalEndpoints[0]).toEqual({
      ip: '10.244.1.20',
      port: 8080,
      ready: true,
      serving: true,
      terminating: false,
      isLocal: true,
      nodeName: 'node-a',
      targetName: 'pod-10.244.1.20',
    });
    expect(records[1]).toMatchObject({
      sync: 2,
      generation: 2,
      full: false,
      changed: [ordersScaled.id],
      removed: [frontend.id],
    });
    expect(records[1]!.servicePorts).toHaveLength(1);
    expect(metrics.filter((m) => m.name === 'example_syncs_total')).toHaveLength(2);
    expect(metrics.filter((m) => m.kind === 'gauge').map((m) => m.value)).toEqual([2, 1]);

    await backend.cleanup();
    expect(existsSync(file)).toBe(false);
    await backend.cleanup(); // idempotent
  });

  it('without example.file it logs a summary instead', async () => {
    const logged: unknown[] = [];
    const backend = new ExampleLogBackend(context({}, logged));
    await backend.sync(snapshot(1, [frontend]), {
      full: true,
      changed: new Set([frontend.id]),
      removed: new Set(),
    });
    expect(logged).toEqual([
      { obj: { sync: 1, full: true, changed: 1, removed: 0 }, msg: 'example-log: snapshot received' },
    ]);
    await backend.cleanup();
  });
});

describe('the example plugin through the registry', () => {
  it('register() adds example-log', () => {
    const registry = new BackendRegistryImpl();
    register(registry);
    expect(registry.names()).toEqual([EXAMPLE_BACKEND_NAME]);
    const file = join(dir, 'via-registry.jsonl');
    const backend = registry.get(EXAMPLE_BACKEND_NAME)!.create(context({ 'example.file': file }));
    expect(backend.name).toBe('example-log');
  });

  it('loadPlugins imports the .ts module by relative path and registers it', async () => {
    const registry = new BackendRegistryImpl();
    registry.register({ name: 'nftables', description: 'built in', create: () => undefined as never });
    const added = await loadPlugins(
      registry,
      ['./plugins/example/index.ts'],
      join(import.meta.dirname, '..', '..'),
    );
    expect([...added]).toEqual([['./plugins/example/index.ts', ['example-log']]]);
    expect(registry.names()).toEqual(['example-log', 'nftables']);
    expect(registry.require('example-log').description).toMatch(/^Example vendor plugin/);
  });

  it('loading the same plugin twice is a duplicate-name error naming the module', async () => {
    const registry = new BackendRegistryImpl();
    const cwd = join(import.meta.dirname, '..', '..');
    await expect(
      loadPlugins(registry, ['./plugins/example/index.ts', './plugins/example/index.ts'], cwd),
    ).rejects.toThrow(
      '--plugin ./plugins/example/index.ts: register() failed: backend "example-log" is already registered',
    );
  });
});
