// Lifecycle scenarios (test/e2e/scenarios.ts) with each backend driven directly: the real
// Planner, incremental syncs with computeDelta, a "restart" that is a fresh backend instance
// whose first full sync replaces the rules left in the kernel, and backend.cleanup().
// The same scenarios run through the real daemon in daemon.e2e.test.ts.
//
// IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { computeDelta, Planner, plannerConfigFrom } from '../../core/planner/planner.js';
import type { ProxyBackend, Snapshot } from '../../core/model/snapshot.js';
import type { ProxyConfig } from '../../core/model/proxy-config.js';
import { describeE2E, kernelUnavailableReason } from '../support/e2e-gate.js';
import { makeState } from '../support/fixtures.js';
import { acquireKernelLock, type KernelLock } from '../support/kernel-lock.js';
import { createTopology, type Topology } from '../support/netns-topology.js';
import { createBackend, e2eBackends, proxyConfigFromFlags } from './backend-loader.js';
import { BEHAVIOUR_TOPOLOGY, flagsFor } from './behaviour-table.js';
import {
  defineLifecycleScenarios,
  FOREIGN_NFT,
  kernelProxyState,
  type ClusterDriver,
  type ClusterObjects,
} from './scenarios.js';

// As behaviour.e2e.test.ts: userspace runs in daemon.e2e.test.ts, ipvs in the VM.
const BACKENDS = e2eBackends('nftables,iptables,iptables@legacy', { directOnly: true });

/** Drives a backend the way the daemon's pipeline does, minus the API. */
class BackendDriver implements ClusterDriver {
  private backend: ProxyBackend | undefined;
  private readonly planner = new Planner();
  private last: Snapshot | undefined;
  private lastObjects: ClusterObjects | undefined;
  /** Every instance made, so afterAll can close them. */
  readonly instances: ProxyBackend[] = [];

  constructor(
    private readonly name: string,
    private readonly config: ProxyConfig,
    private readonly topo: Topology,
  ) {}

  private async fresh(): Promise<ProxyBackend> {
    const b = await createBackend(this.name, this.config, this.topo.executor);
    this.instances.push(b);
    const support = await b.probe();
    if (!support.supported) throw new Error(`${this.name} unsupported: ${support.reason}`);
    return b;
  }

  async set(objects: ClusterObjects): Promise<void> {
    this.backend ??= await this.fresh();
    const { snapshot } = this.planner.plan(
      makeState({ services: [...objects.services], slices: [...objects.slices], node: objects.node }),
      plannerConfigFrom(this.config),
    );
    await this.backend.sync(snapshot, computeDelta(this.last, snapshot, false));
    this.last = snapshot;
    this.lastObjects = objects;
  }

  async restart(whileStopped?: () => Promise<void>, next?: ClusterObjects): Promise<void> {
    await this.backend?.close?.();
    this.backend = undefined;
    try {
      await whileStopped?.();
    } finally {
      // Restarted even when a check made while it was down failed.
      this.backend = await this.fresh();
      this.last = undefined; // a new process knows nothing: its first sync is full
      const objects = next ?? this.lastObjects;
      if (objects) await this.set(objects);
    }
  }

  async cleanup(): Promise<void> {
    // As `--cleanup` does: a fresh instance that never synced removes everything.
    const b = await createBackend(this.name, this.config, this.topo.executor);
    await b.cleanup();
  }
}

for (const { label, mode: backendName, flags: backendFlags } of BACKENDS) {
  describeE2E(`lifecycle: ${label}`, kernelUnavailableReason(['ip', 'nft', 'conntrack']), () => {
    let lock: KernelLock | undefined;
    let topo: Topology | undefined;
    let driver: BackendDriver | undefined;
    let baseline = '';

    beforeAll(async () => {
      lock = await acquireKernelLock();
      topo = await createTopology(BEHAVIOUR_TOPOLOGY);
      await topo.exec('node', ['nft', '-f', '-'], { stdin: FOREIGN_NFT });
      baseline = await kernelProxyState(topo.executor);
      driver = new BackendDriver(
        backendName,
        proxyConfigFromFlags([...flagsFor('default'), ...backendFlags]),
        topo,
      );
    }, 600_000);

    afterAll(async () => {
      try {
        for (const b of driver?.instances ?? []) await b.close?.();
      } finally {
        try {
          await topo?.destroy();
        } finally {
          lock?.release();
        }
      }
    }, 60_000);

    defineLifecycleScenarios(
      () => {
        if (!topo || !driver) throw new Error('not set up');
        return { topo, driver };
      },
      () => baseline,
      { it, expect, backend: backendName },
    );
  });
}
