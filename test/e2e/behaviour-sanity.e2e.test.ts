// The behaviour table must be able to fail: against a node with no proxy rules at all, every
// case fails except the few whose point is that the node does NOT proxy (each of those has a
// positive twin that fails). This guards the test bed's power to tell REJECT, DROP and "not
// programmed" apart (upstream router, node listeners on every NodePort, ICMP rate limits off).
//
// IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sctpProbeUnavailableReason } from '../support/agent-sctp.js';
import { describeE2E, kernelUnavailableReason } from '../support/e2e-gate.js';
import { acquireKernelLock, type KernelLock } from '../support/kernel-lock.js';
import { createTopology, type Topology } from '../support/netns-topology.js';
import { BEHAVIOUR_CASES, BEHAVIOUR_TOPOLOGY } from './behaviour-table.js';
import { runCase } from './behaviour-runner.js';

/** Cases that pass without any rule by design: "this address is not a NodePort address". */
const PASS_WITHOUT_RULES = new Set([
  'nodeport-not-on-other-address',
  'nodeport-udp-not-on-other-address',
  'ipv6-nodeport-not-on-other-address',
]);

describeE2E('behaviour table against an unprogrammed node', kernelUnavailableReason(['ip', 'nft']), () => {
  let lock: KernelLock | undefined;
  let topo: Topology | undefined;

  beforeAll(async () => {
    lock = await acquireKernelLock();
    topo = await createTopology(BEHAVIOUR_TOPOLOGY);
  }, 600_000);

  afterAll(async () => {
    try {
      await topo?.destroy();
    } finally {
      lock?.release();
    }
  });

  it('fails every case that needs the proxy, and only those', async () => {
    const t = topo;
    if (!t) throw new Error('no topology');
    const cases = BEHAVIOUR_CASES.filter(
      (c) => c.protocol !== 'SCTP' || sctpProbeUnavailableReason() === undefined,
    );
    const passed: string[] = [];
    // A few at a time: this machine is small and the drop cases wait out their timeouts.
    for (let i = 0; i < cases.length; i += 8) {
      const verdicts = await Promise.all(
        cases.slice(i, i + 8).map(async (c) => [c.name, await runCase(t, c)] as const),
      );
      for (const [name, v] of verdicts) if (v.ok) passed.push(name);
    }
    expect(passed.sort()).toEqual([...PASS_WITHOUT_RULES].sort());
  }, 120_000);
});
