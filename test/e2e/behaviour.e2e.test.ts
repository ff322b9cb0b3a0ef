// The behaviour table (test/e2e/behaviour-table.ts) against every data-plane backend, on the
// real kernel: network namespaces, the real Planner, backend.sync through an executor inside
// the node namespace, real TCP/UDP traffic from pods, the node and an external client.
//
// IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25 (see behaviour-table.ts for the rest).
//
// Backends: env SWITCHYARD_E2E_BACKENDS (comma-separated --proxy-mode names), default nftables.
import { afterAll, beforeAll, describe } from 'vitest';
import { computeDelta, Planner, plannerConfigFrom } from '../../core/planner/planner.js';
import type { ProxyBackend, Snapshot } from '../../core/model/snapshot.js';
import { describeE2E, kernelUnavailableReason } from '../support/e2e-gate.js';
import { acquireKernelLock, type KernelLock } from '../support/kernel-lock.js';
import { createTopology, type Topology } from '../support/netns-topology.js';
import { createBackend, e2eBackends, proxyConfigFromFlags } from './backend-loader.js';
import { BEHAVIOUR_TOPOLOGY, behaviourClusterState, casesByConfig, flagsFor } from './behaviour-table.js';
import { defineCaseTests } from './case-tests.js';

// Extra kube-proxy/switchyard flags for every configuration, whitespace-separated, e.g.
// SWITCHYARD_E2E_EXTRA_FLAGS='--backend-opt iptables.dispatch-bucket-min=0'.
const EXTRA_FLAGS = (process.env.SWITCHYARD_E2E_EXTRA_FLAGS ?? '').split(/\s+/).filter(Boolean);

// Every backend the test process can drive here, iptables in both variants; userspace runs in
// daemon.e2e.test.ts (its sockets must live in the node namespace); ipvs in the VM
// (test/backends/ipvs/ipvs-vm.e2e.test.ts).
const BACKENDS = e2eBackends('nftables,iptables,iptables@legacy+buckets', { directOnly: true });

// The test bed itself needs ip and nft (upstream router, SCTP observers) and conntrack.
const BED_TOOLS = ['ip', 'nft', 'conntrack'];
const TOOLS: Readonly<Record<string, readonly string[]>> = {
  nftables: BED_TOOLS,
  iptables: [...BED_TOOLS, 'iptables-restore', 'ip6tables-restore'],
  ipvs: [...BED_TOOLS, 'ipvsadm', 'ipset', 'iptables-restore'],
  userspace: BED_TOOLS,
};

for (const { label, mode: backendName, flags: backendFlags } of BACKENDS) {
  describeE2E(`behaviour table: ${label}`, kernelUnavailableReason(TOOLS[backendName] ?? BED_TOOLS), () => {
    let lock: KernelLock | undefined;
    let topo: Topology | undefined;
    const backends: ProxyBackend[] = [];
    let last: Snapshot | undefined;
    const topology = (): Topology => {
      if (!topo) throw new Error('no topology');
      return topo;
    };

    beforeAll(async () => {
      lock = await acquireKernelLock();
      topo = await createTopology(BEHAVIOUR_TOPOLOGY);
    }, 600_000);

    afterAll(async () => {
      try {
        // The newest backend removes everything (it may have replaced the others' rules).
        await backends.at(-1)?.cleanup();
        for (const b of backends) await b.close?.();
      } finally {
        try {
          await topo?.destroy();
        } finally {
          lock?.release();
        }
      }
    }, 60_000);

    for (const [configName, cases] of casesByConfig()) {
      describe(`config ${configName}`, () => {
        beforeAll(async () => {
          const config = proxyConfigFromFlags([...flagsFor(configName), ...backendFlags, ...EXTRA_FLAGS]);
          // A new backend instance per configuration, as a restarted daemon with new flags:
          // its first (full) sync must replace whatever the previous one left.
          const backend = await createBackend(backendName, config, topology().executor);
          backends.push(backend);
          const support = await backend.probe();
          if (!support.supported)
            throw new Error(`${backendName} unsupported in the node namespace: ${support.reason}`);
          const { snapshot } = new Planner().plan(behaviourClusterState(), plannerConfigFrom(config));
          await backend.sync(snapshot, computeDelta(last, snapshot, true));
          last = snapshot;
        }, 60_000);

        defineCaseTests(backendName, cases, topology);
      });
    }
  });
}
