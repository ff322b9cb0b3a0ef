// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
//
// The example cluster through the real file loader and planner, as
// `switchyard plan --from deploy/examples/online-store.yaml --hostname-override=node-a` sees it.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs, resolveConfig } from '../../core/config/index.js';
import { silentLogger } from '../../core/log.js';
import type { ClusterState } from '../../core/model/cluster-state.js';
import type { KubeEndpointSlice, KubeService } from '../../core/model/kube.js';
import { Planner, plannerConfigFrom } from '../../core/planner/planner.js';
import { loadObjectsFromPath } from '../../core/source/file-source.js';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'deploy', 'examples', 'online-store.yaml');

async function planExample(): Promise<ReturnType<Planner['plan']>> {
  const cmd = parseArgs([
    'plan',
    '--from',
    EXAMPLE,
    '--hostname-override=node-a',
    '--cluster-cidr=10.244.0.0/16',
  ]);
  if (cmd.kind !== 'plan') throw new Error('plan');
  const { config } = resolveConfig(cmd.flags, undefined, 'unused');
  const loaded = await loadObjectsFromPath(config.from!);
  expect(loaded.errors).toEqual([]);
  const key = (o: { metadata?: { namespace?: string; name?: string } }): string =>
    `${o.metadata?.namespace}/${o.metadata?.name}`;
  const services = new Map<string, KubeService>(loaded.services.map((s) => [key(s), s]));
  const endpointSlices = new Map<string, KubeEndpointSlice>(loaded.endpointslices.map((s) => [key(s), s]));
  const slicesByService = new Map<string, KubeEndpointSlice[]>();
  for (const s of loaded.endpointslices) {
    const k = `${s.metadata?.namespace}/${s.metadata?.labels?.['kubernetes.io/service-name']}`;
    slicesByService.set(k, [...(slicesByService.get(k) ?? []), s]);
  }
  const node = loaded.nodes.find((n) => n.metadata?.name === config.hostname);
  const state: ClusterState = {
    services,
    endpointSlices,
    slicesByService,
    ...(node === undefined ? {} : { node }),
    synced: { services: true, endpointslices: true, nodes: true },
  };
  return new Planner(silentLogger()).plan(state, plannerConfigFrom(config));
}

describe('deploy/examples/online-store.yaml planned for node-a', () => {
  it('plans the three Services without skips', async () => {
    const { snapshot, skips } = await planExample();
    expect(skips).toEqual([]);
    expect(snapshot.nodeName).toBe('node-a');
    expect(snapshot.nodeIPs.IPv4).toEqual(['192.168.77.2']);
    expect(snapshot.zone).toBe('eu-west-1a');
    expect([...snapshot.servicePorts.keys()].sort()).toEqual([
      'shop/frontend:http/TCP/IPv4',
      'shop/orders-api:http/TCP/IPv4',
      'shop/payments:https/TCP/IPv4',
    ]);
  });

  it('frontend: NodePort 30080, named targetPort resolved to 8080, one local endpoint', async () => {
    const fe = (await planExample()).snapshot.servicePorts.get('shop/frontend:http/TCP/IPv4')!;
    expect(fe).toMatchObject({
      clusterIP: '10.96.0.20',
      port: 80,
      nodePort: 30080,
      internal: 'forward',
      external: 'forward',
    });
    expect(fe.internalEndpoints.map((e) => [e.ip, e.port, e.isLocal])).toEqual([['10.244.1.10', 8080, true]]);
  });

  it('orders-api: three endpoints known, only the two ready node-a replicas get traffic', async () => {
    const orders = (await planExample()).snapshot.servicePorts.get('shop/orders-api:http/TCP/IPv4')!;
    expect(orders.allEndpoints.map((e) => e.ip).sort()).toEqual([
      '10.244.1.20',
      '10.244.1.21',
      '10.244.2.20',
    ]);
    expect(orders.internalEndpoints.map((e) => e.ip).sort()).toEqual(['10.244.1.20', '10.244.1.21']);
    expect(orders.reachableEndpoints.every((e) => e.nodeName === 'node-a')).toBe(true);
  });

  it('payments: 443 → 8443 with ClientIP affinity of 1800 s', async () => {
    const pay = (await planExample()).snapshot.servicePorts.get('shop/payments:https/TCP/IPv4')!;
    expect(pay).toMatchObject({
      clusterIP: '10.96.0.40',
      port: 443,
      sessionAffinity: { timeoutSeconds: 1800 },
    });
    expect(pay.internalEndpoints.map((e) => `${e.ip}:${e.port}`).sort()).toEqual([
      '10.244.1.30:8443',
      '10.244.1.31:8443',
    ]);
  });
});
