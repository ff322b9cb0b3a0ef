// Test IP plan: pods 10.244.0.0/16 (this node 10.244.1.0/24, the other 10.244.2.0/24),
// ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client 192.168.77.1,
// LB source range 203.0.113.0/25.
//
// A smoke test of the nftables backend with real packets, driven directly with Snapshots
// (no daemon): the shared behaviour table in test/e2e/ covers every case through the daemon;
// this file catches a broken ruleset close to the code that renders it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nftablesRegistration } from '../../../backends/nftables/index.js';
import { silentLogger } from '../../../core/log.js';
import type { ProxyBackend } from '../../../core/model/snapshot.js';
import type { BackendContext } from '../../../plugins/sdk/index.js';
import { describeE2E, kernelUnavailableReason } from '../../support/e2e-gate.js';
import { acquireKernelLock, type KernelLock } from '../../support/kernel-lock.js';
import { createTopology, TOPOLOGY_PLAN as P, type Topology } from '../../support/netns-topology.js';
import {
  endpoint,
  fullDelta,
  partialDelta,
  servicePort,
  snapshotOf,
  withPorts,
} from '../../support/snapshot-gen.js';

describeE2E('nftables backend: real traffic (smoke)', kernelUnavailableReason(['ip', 'nft']), () => {
  let topo: Topology | undefined;
  let lock: KernelLock | undefined;
  let backend: ProxyBackend | undefined;
  const t = (): Topology => topo!;

  const podA = endpoint('10.244.1.10', 8080, { isLocal: true, targetName: 'pod-a' });
  const podB = endpoint('10.244.1.11', 8080, { isLocal: true, targetName: 'pod-b' });
  const podC = endpoint('10.244.2.10', 8080, { isLocal: false, targetName: 'pod-c' });
  const dnsA = endpoint('10.244.1.10', 5353, { isLocal: true });
  const web = servicePort({
    name: 'web',
    clusterIP: '10.96.0.10',
    port: 80,
    nodePort: 30080,
    clusterEndpoints: [podA, podC],
  });
  const empty = servicePort({
    name: 'empty',
    clusterIP: '10.96.0.20',
    port: 80,
    nodePort: 30083,
    clusterEndpoints: [],
  });
  const local = servicePort({
    name: 'local',
    clusterIP: '10.96.0.30',
    port: 80,
    nodePort: 30081,
    externalPolicyLocal: true,
    clusterEndpoints: [podB, podC],
  });
  const remoteOnly = servicePort({
    name: 'remote-only',
    clusterIP: '10.96.0.31',
    port: 80,
    nodePort: 30082,
    externalPolicyLocal: true,
    clusterEndpoints: [podC],
  });
  const self = servicePort({ name: 'self', clusterIP: '10.96.0.40', port: 80, clusterEndpoints: [podA] });
  const dns = servicePort({
    name: 'dns',
    protocol: 'UDP',
    clusterIP: '10.96.0.53',
    port: 53,
    clusterEndpoints: [dnsA],
  });
  const sticky = servicePort({
    name: 'sticky',
    clusterIP: '10.96.0.60',
    port: 80,
    sessionAffinity: { timeoutSeconds: 60 },
    clusterEndpoints: [podA, podB, podC],
  });
  const snapshot = snapshotOf([web, empty, local, remoteOnly, self, dns, sticky], {
    nodePortAddresses: { IPv4: { kind: 'cidrs', cidrs: ['192.168.77.0/24'] }, IPv6: { kind: 'all' } },
  });

  beforeAll(async () => {
    lock = await acquireKernelLock();
    topo = await createTopology({
      pods: [
        { name: 'pod-a', tcpPorts: [8080], udpPorts: [5353] },
        { name: 'pod-b', tcpPorts: [8080] },
        { name: 'pod-c', node: 'remote', tcpPorts: [8080] },
      ],
      ipv6: false,
    });
    const ctx: BackendContext = {
      config: { masqueradeBit: 14 } as BackendContext['config'],
      logger: silentLogger(),
      executor: topo.executor,
      metrics: { gauge: () => undefined, counter: () => undefined },
    };
    backend = nftablesRegistration.create(ctx);
    await backend.sync(snapshot, fullDelta(snapshot));
  }, 120_000);

  afterAll(async () => {
    try {
      await topo?.destroy();
    } finally {
      lock?.release();
    }
  });

  it('ClusterIP from a pod reaches an endpoint with the pod address kept', async () => {
    const r = await t().probe('pod-b', 'tcp', '10.96.0.10', 80);
    expect(r.result).toBe('reply');
    expect(['pod-a', 'pod-c']).toContain(r.reply!.name);
    expect(r.reply!.clientIp).toBe('10.244.1.11');
  });

  it('ClusterIP port the Service does not define, and a Service without endpoints: refused at once', async () => {
    const undefinedPort = await t().probe('pod-b', 'tcp', '10.96.0.10', 81);
    expect(undefinedPort.result).toBe('refused');
    expect(undefinedPort.code).toBe('ECONNREFUSED');
    const noEndpoints = await t().probe('node', 'tcp', '10.96.0.20', 80);
    expect(noEndpoints.result).toBe('refused');
    expect(noEndpoints.code).toBe('ECONNREFUSED');
    const fromPod = await t().probe('pod-b', 'tcp', '10.96.0.20', 80);
    expect(fromPod.code).toBe('ECONNREFUSED');
  });

  it('NodePort with Cluster policy: external client masqueraded', async () => {
    const r = await t().probe('external', 'tcp', P.nodeIPv4, 30080);
    expect(r.result).toBe('reply');
    expect(r.reply!.clientIp).not.toBe(P.clientIPv4);
  });

  it('externalTrafficPolicy Local: only local endpoints, client IP preserved; none local → dropped; pods short-circuit', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await t().probe('external', 'tcp', P.nodeIPv4, 30081);
      expect(r.result).toBe('reply');
      expect(r.reply!.name).toBe('pod-b');
      expect(r.reply!.clientIp).toBe(P.clientIPv4);
    }
    const dropped = await t().probe('external', 'tcp', P.nodeIPv4, 30082, { timeoutMs: 700 });
    expect(['timeout', 'drop']).toContain(dropped.result);
    const shortCircuit = await t().probe('pod-a', 'tcp', P.nodeIPv4, 30082);
    expect(shortCircuit.result).toBe('reply');
    expect(shortCircuit.reply!.name).toBe('pod-c');
  });

  it('NodePort of a Service without endpoints is refused', async () => {
    const r = await t().probe('external', 'tcp', P.nodeIPv4, 30083);
    expect(r.code).toBe('ECONNREFUSED');
  });

  it('hairpin: a pod reaching itself through its Service is masqueraded', async () => {
    const r = await t().probe('pod-a', 'tcp', '10.96.0.40', 80);
    expect(r.result).toBe('reply');
    expect(r.reply!.name).toBe('pod-a');
    expect(r.reply!.clientIp).not.toBe('10.244.1.10');
  });

  it('UDP ClusterIP', async () => {
    const r = await t().probe('pod-b', 'udp', '10.96.0.53', 53);
    expect(r.result).toBe('reply');
    expect(r.reply!.name).toBe('pod-a');
  });

  it('ClientIP affinity keeps a client on one endpoint', async () => {
    const names = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await t().probe('pod-b', 'tcp', '10.96.0.60', 80);
      expect(r.result).toBe('reply');
      names.add(r.reply!.name);
    }
    expect(names.size).toBe(1);
  });

  it('an incremental sync takes effect: endpoints swapped, a Service removed', async () => {
    const web2 = servicePort({
      name: 'web',
      clusterIP: '10.96.0.10',
      port: 80,
      nodePort: 30080,
      clusterEndpoints: [podB],
    });
    const next = withPorts(snapshot, [web2], [empty.id]);
    const r = await backend!.sync(next, partialDelta([web.id], [empty.id]));
    expect(r.full).toBe(false);
    for (let i = 0; i < 3; i++) {
      const p = await t().probe('pod-a', 'tcp', '10.96.0.10', 80);
      expect(p.reply?.name).toBe('pod-b');
    }
    // 10.96.0.20 is no ClusterIP any more: no longer refused by us (the upstream router answers)
    const gone = await t().probe('pod-a', 'tcp', '10.96.0.20', 80, { timeoutMs: 700 });
    expect(gone.code).not.toBe('ECONNREFUSED');
  });
});
