// The real daemon (bin/switchyard.js) in the node namespace, fed by the list/watch API server
// fixture: the behaviour table through the daemon, then the lifecycle scenarios (endpoint churn,
// UDP conntrack, restart survival, --cleanup).
//
// IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25.
//
// Needs `npm run build:ts` (bin/switchyard.js runs dist/). Backends: SWITCHYARD_E2E_BACKENDS.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServerFixture, type ApiResource } from '../support/api-server.js';
import {
  daemonUnavailableReason,
  runCleanup,
  startDaemon,
  startTcpForwarder,
  type DaemonProcess,
  type TcpForwarder,
} from '../support/daemon.js';
import { describeE2E, kernelUnavailableReason } from '../support/e2e-gate.js';
import { acquireKernelLock, type KernelLock } from '../support/kernel-lock.js';
import { createTopology, type Topology } from '../support/netns-topology.js';
import { BASE_FLAGS, BEHAVIOUR_TOPOLOGY, behaviourCluster, casesByConfig } from './behaviour-table.js';
import { e2eBackends } from './backend-loader.js';
import { defineCaseTests } from './case-tests.js';
import {
  defineLifecycleScenarios,
  FOREIGN_NFT,
  kernelProxyState,
  type ClusterDriver,
  type ClusterObjects,
} from './scenarios.js';

// Every backend that runs on this kernel (ipvs runs in the VM: test/backends/ipvs/).
const BACKENDS = e2eBackends('nftables,iptables,userspace');

const DAEMON_FLAGS = [...BASE_FLAGS, '--min-sync-period=100ms', '--v=2'];

function unavailable(): string | undefined {
  return kernelUnavailableReason(['ip', 'nft', 'conntrack']) ?? daemonUnavailableReason();
}

interface Keyed {
  readonly resource: ApiResource;
  readonly key: string;
  readonly object: { metadata?: { name?: string; namespace?: string } };
}

/** Feeds the daemon through the API fixture; restarts and cleans up the real process. */
class DaemonDriver implements ClusterDriver {
  private current = new Map<string, string>();

  constructor(
    private readonly api: ApiServerFixture,
    private readonly topo: Topology,
    private readonly mode: string,
    private readonly start: () => Promise<DaemonProcess>,
    private readonly daemon: () => DaemonProcess,
    private readonly replace: (d: DaemonProcess) => void,
  ) {}

  /** Bring the API in line with `objects` (namespaced objects only; the Node stays); returns what changed. */
  private applyToApi(objects: ClusterObjects): (() => void)[] {
    const desired: Keyed[] = [
      ...objects.services.map((o) => ({
        resource: 'services' as const,
        key: `services/${o.metadata?.namespace}/${o.metadata?.name}`,
        object: o,
      })),
      ...objects.slices.map((o) => ({
        resource: 'endpointslices' as const,
        key: `endpointslices/${o.metadata?.namespace}/${o.metadata?.name}`,
        object: o,
      })),
    ];
    const changes: (() => void)[] = [];
    const next = new Map<string, string>();
    for (const d of desired) {
      const json = JSON.stringify(d.object);
      next.set(d.key, json);
      if (this.current.get(d.key) !== json) changes.push(() => void this.api.apply(d.resource, d.object));
    }
    for (const key of this.current.keys()) {
      if (next.has(key)) continue;
      const [resource, namespace, name] = key.split('/') as [ApiResource, string, string];
      changes.push(() => void this.api.delete(resource, { metadata: { namespace, name } }));
    }
    this.current = next;
    return changes;
  }

  async set(objects: ClusterObjects): Promise<void> {
    const changes = this.applyToApi(objects);
    if (changes.length === 0) return;
    await this.daemon().applyAndWait(() => {
      for (const c of changes) c();
    });
  }

  async restart(whileStopped?: () => Promise<void>, next?: ClusterObjects): Promise<void> {
    await this.daemon().stop('SIGTERM');
    try {
      await whileStopped?.();
    } finally {
      // A restart starts the proxy again even when a check made while it was down failed, so
      // the scenarios after it run against a live daemon.
      if (next) for (const c of this.applyToApi(next)) c();
      this.replace(await this.start());
    }
  }

  async cleanup(): Promise<void> {
    await this.daemon().stop('SIGTERM');
    const r = await runCleanup(this.topo, this.mode, DAEMON_FLAGS);
    expect(r.code, `switchyard --cleanup failed:\n${r.output}`).toBe(0);
  }
}

for (const { label, mode, flags: backendFlags } of BACKENDS) {
  describeE2E(`daemon: ${label}`, unavailable(), () => {
    let lock: KernelLock | undefined;
    let topo: Topology | undefined;
    let api: ApiServerFixture | undefined;
    let forwarder: TcpForwarder | undefined;
    let daemon: DaemonProcess | undefined;
    let dir: string | undefined;
    let baseline = '';
    const t = (): Topology => {
      if (!topo) throw new Error('no topology');
      return topo;
    };
    const d = (): DaemonProcess => {
      if (!daemon) throw new Error('no daemon');
      return daemon;
    };
    const launch = async (): Promise<DaemonProcess> => {
      if (!api || !forwarder || !dir) throw new Error('not set up');
      const p = startDaemon({
        topology: t(),
        mode,
        kubeconfig: await api.kubeconfig(join(dir, 'kubeconfig')),
        master: `http://${forwarder.host}:${forwarder.port}`,
        extraArgs: [...DAEMON_FLAGS, ...backendFlags],
      });
      await p.waitSynced();
      return p;
    };

    beforeAll(async () => {
      lock = await acquireKernelLock();
      topo = await createTopology(BEHAVIOUR_TOPOLOGY);
      await topo.exec('node', ['nft', '-f', '-'], { stdin: FOREIGN_NFT });
      baseline = await kernelProxyState(topo.executor);
      dir = await mkdtemp(join(tmpdir(), 'switchyard-daemon-e2e-'));
      api = await ApiServerFixture.start();
      const url = new URL(api.url);
      forwarder = await startTcpForwarder(topo.management.rootIp, {
        host: url.hostname,
        port: Number(url.port),
      });
      const cluster = behaviourCluster();
      api.apply('nodes', cluster.node);
      for (const s of cluster.services) api.apply('services', s);
      for (const s of cluster.slices) api.apply('endpointslices', s);
      daemon = await launch();
    }, 600_000);

    afterAll(async () => {
      try {
        await daemon?.stop('SIGTERM');
      } finally {
        try {
          await forwarder?.close();
          await api?.close();
          if (dir) await rm(dir, { recursive: true, force: true });
        } finally {
          try {
            await topo?.destroy();
          } finally {
            lock?.release();
          }
        }
      }
    }, 60_000);

    it('serves healthz and metrics from the node after its first sync', async () => {
      const h = await d().healthz();
      expect(h.status, h.body).toBe(200);
      const m = await d().metrics();
      expect(m.max('kubeproxy_sync_proxy_rules_last_timestamp_seconds')).toBeGreaterThan(
        Date.now() / 1000 - 120,
      );
      expect(m.sum('switchyard_sync_failures_total')).toBe(0);
    });

    describe('behaviour table through the daemon', () => {
      defineCaseTests(mode, casesByConfig().get('default') ?? [], t);
    });

    describe('lifecycle through the daemon', () => {
      let driver: DaemonDriver | undefined;
      beforeAll(() => {
        if (!api) throw new Error('no api');
        driver = new DaemonDriver(api, t(), mode, launch, d, (p) => {
          daemon = p;
        });
      });
      defineLifecycleScenarios(
        () => {
          if (!driver) throw new Error('no driver');
          return { topo: t(), driver };
        },
        () => baseline,
        { it, expect, backend: mode },
      );
      it('logged no error in the whole run', () => {
        // (the cleanup scenario stopped the daemon: its logs, not its metrics)
        expect(
          d().logs.filter((l) => /"level":(50|60)/.test(l)),
          d().tail(),
        ).toEqual([]);
      });
    });
  });
}
