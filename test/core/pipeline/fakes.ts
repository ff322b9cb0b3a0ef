/**
 * Small hand-written fakes of the pipeline's ports (source, tracker, planner) and a
 * recording backend. They follow the contracts in core/pipeline/ports.ts, not the real classes.
 */
import { Subject, type Observable } from 'rxjs';
import type {
  ApplyResult,
  PlannerConfigPort,
  PlannerPort,
  PlanResult,
  PlanSkip,
  SourcePort,
  TrackerPort,
} from '../../../core/pipeline/ports.js';
import type { ClusterState } from '../../../core/model/cluster-state.js';
import type { SourceEvent } from '../../../core/model/events.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../../core/model/kube.js';
import type { ProxyConfig } from '../../../core/model/proxy-config.js';
import type {
  BackendSupport,
  HealthCheckPlan,
  ProxyBackend,
  ServicePortPlan,
  Snapshot,
  SnapshotDelta,
  SyncResult,
} from '../../../core/model/snapshot.js';
import { testProxyConfig } from '../../support/proxy-config.js';

export class FakeSource implements SourcePort {
  readonly subject = new Subject<SourceEvent>();
  stopped = 0;
  events$(): Observable<SourceEvent> {
    return this.subject.asObservable();
  }
  stop(): void {
    this.stopped += 1;
  }
  emit(event: SourceEvent): void {
    this.subject.next(event);
  }
}

type Obj = KubeService | KubeEndpointSlice | KubeNode;

function keyOf(o: Obj): string {
  const m = o.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : `${m.name}`;
}

/** Tracks objects; an upsert with an unchanged resourceVersion is a no-op. */
export class FakeTracker implements TrackerPort {
  private services = new Map<string, KubeService>();
  private slices = new Map<string, KubeEndpointSlice>();
  private node?: KubeNode;
  private cached?: ClusterState;
  private synced = { services: false, endpointslices: false, nodes: false };
  applied: SourceEvent[] = [];

  constructor(private readonly nodeName = 'node-a') {}

  apply(event: SourceEvent): ApplyResult {
    this.applied.push(event);
    const none: ApplyResult = { changed: false, services: 0, endpointSlices: 0, nodeChanged: false };
    if (event.type === 'degraded' || event.type === 'recovered') return none;
    if (event.resource === 'nodes') {
      const objs = event.type === 'replace' ? event.objects : [event.object];
      if (event.type === 'replace') this.synced = { ...this.synced, nodes: true };
      const mine = objs.find((o) => o.metadata?.name === this.nodeName) as KubeNode | undefined;
      if (event.type === 'delete') {
        if (mine === undefined || this.node === undefined) return none;
        this.node = undefined;
      } else {
        if (mine === undefined || mine === this.node) return none;
        this.node = mine;
      }
      return { changed: true, services: 0, endpointSlices: 0, nodeChanged: true };
    }
    const isSvc = event.resource === 'services';
    const current = (isSvc ? this.services : this.slices) as Map<string, Obj>;
    const next = new Map(current);
    let n = 0;
    if (event.type === 'replace') {
      const seen = new Set<string>();
      for (const o of event.objects) {
        const k = keyOf(o);
        seen.add(k);
        const prev = current.get(k);
        if (prev?.metadata?.resourceVersion !== o.metadata?.resourceVersion || prev === undefined) {
          next.set(k, o);
          n += 1;
        }
      }
      for (const k of current.keys())
        if (!seen.has(k)) {
          next.delete(k);
          n += 1;
        }
      this.synced = { ...this.synced, [event.resource]: true };
    } else if (event.type === 'upsert') {
      const k = keyOf(event.object);
      const prev = current.get(k);
      if (prev === undefined || prev.metadata?.resourceVersion !== event.object.metadata?.resourceVersion) {
        next.set(k, event.object);
        n = 1;
      }
    } else {
      const k = keyOf(event.object);
      if (next.delete(k)) n = 1;
    }
    if (n > 0) {
      if (isSvc) this.services = next as Map<string, KubeService>;
      else this.slices = next as Map<string, KubeEndpointSlice>;
    }
    return { changed: n > 0, services: isSvc ? n : 0, endpointSlices: isSvc ? 0 : n, nodeChanged: false };
  }

  state(): ClusterState {
    if (
      this.cached &&
      this.cached.services === this.services &&
      this.cached.endpointSlices === this.slices &&
      this.cached.node === this.node &&
      this.cached.synced === this.synced
    )
      return this.cached;
    const bySvc = new Map<string, KubeEndpointSlice[]>();
    for (const s of this.slices.values()) {
      const svc = `${s.metadata?.namespace}/${s.metadata?.labels?.['kubernetes.io/service-name']}`;
      bySvc.set(svc, [...(bySvc.get(svc) ?? []), s]);
    }
    this.cached = {
      services: this.services,
      endpointSlices: this.slices,
      slicesByService: this.reuseGroups(bySvc),
      node: this.node,
      synced: this.synced,
    };
    return this.cached;
  }

  /** Keep the previous array for a Service whose slices are the same objects (identity for memoization). */
  private reuseGroups(next: Map<string, KubeEndpointSlice[]>): Map<string, readonly KubeEndpointSlice[]> {
    const prev = this.cached?.slicesByService;
    const out = new Map<string, readonly KubeEndpointSlice[]>();
    for (const [k, list] of next) {
      const old = prev?.get(k);
      out.set(k, old && old.length === list.length && old.every((s, i) => s === list[i]) ? old : list);
    }
    return out;
  }
}

export function servicePort(
  id: string,
  serviceKey: string,
  endpoints: number,
  extra: Partial<ServicePortPlan> = {},
): ServicePortPlan {
  const [namespace, name] = serviceKey.split('/') as [string, string];
  const eps = Array.from({ length: endpoints }, (_, i) => ({
    ip: `10.244.0.${i + 1}`,
    port: 8080,
    ready: true,
    serving: true,
    terminating: false,
    isLocal: false,
  }));
  return {
    id,
    serviceKey,
    namespace,
    name,
    portName: '',
    protocol: 'TCP',
    family: 'IPv4',
    clusterIP: '10.96.0.10',
    port: 80,
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerSourceRanges: [],
    internalPolicyLocal: false,
    externalPolicyLocal: false,
    clusterEndpoints: eps,
    localEndpoints: [],
    internalEndpoints: eps,
    externalEndpoints: eps,
    shortCircuitEndpoints: [],
    reachableEndpoints: eps,
    allEndpoints: eps,
    internal: endpoints > 0 ? 'forward' : 'reject',
    external: endpoints > 0 ? 'forward' : 'reject',
    ...extra,
  };
}

/**
 * One IPv4 TCP service port per Service with a clusterIP; a Service without one is skipped.
 * A port plan is reused (same object) while its Service and slices are the same objects.
 */
export class FakePlanner implements PlannerPort {
  private generation = 0;
  private memo = new Map<
    string,
    { svc: KubeService; slices: readonly KubeEndpointSlice[] | undefined; plan: ServicePortPlan }
  >();
  plans = 0;
  throwOnPlan?: Error;

  plan(state: ClusterState, config: PlannerConfigPort): PlanResult {
    this.plans += 1;
    if (this.throwOnPlan) throw this.throwOnPlan;
    const ports = new Map<string, ServicePortPlan>();
    const skips: PlanSkip[] = [];
    const healthChecks: HealthCheckPlan[] = [];
    const memo = new Map<
      string,
      { svc: KubeService; slices: readonly KubeEndpointSlice[] | undefined; plan: ServicePortPlan }
    >();
    for (const [key, svc] of state.services) {
      if (!svc.spec?.clusterIP) {
        skips.push({ kind: 'Service', key, field: 'spec.clusterIP', reason: 'missing' });
        continue;
      }
      const slices = state.slicesByService.get(key);
      const prev = this.memo.get(key);
      let plan: ServicePortPlan;
      if (prev && prev.svc === svc && prev.slices === slices) plan = prev.plan;
      else {
        let n = 0;
        for (const s of slices ?? []) for (const e of s.endpoints ?? []) n += e.addresses?.length ?? 0;
        plan = servicePort(`${key}:/TCP/IPv4`, key, n, { clusterIP: svc.spec.clusterIP });
      }
      memo.set(key, { svc, slices, plan });
      ports.set(plan.id, plan);
      if (svc.spec.healthCheckNodePort)
        healthChecks.push({
          serviceKey: key,
          namespace: plan.namespace,
          name: plan.name,
          port: svc.spec.healthCheckNodePort,
          localEndpoints: 0,
        });
    }
    this.memo = memo;
    const snapshot: Snapshot = {
      generation: ++this.generation,
      nodeName: config.nodeName,
      nodeLabels: {},
      nodeIPs: { IPv4: ['192.168.77.2'], IPv6: [] },
      families: ['IPv4'],
      clusterCIDRs: { IPv4: ['10.244.0.0/16'], IPv6: [] },
      masqueradeAll: false,
      nodePortAddresses: { IPv4: { kind: 'all' }, IPv6: { kind: 'all' } },
      servicePorts: ports,
      healthChecks,
    };
    return { snapshot, skips };
  }
}

export interface BackendCall {
  readonly snapshot: Snapshot;
  readonly delta: SnapshotDelta;
}

/** Records every sync; `script` says how each call ends (default: succeed at once). */
export class FakeBackend implements ProxyBackend {
  readonly name = 'fake';
  readonly calls: BackendCall[] = [];
  running = 0;
  maxRunning = 0;
  /** Per call (by index): an error to throw, or a promise to wait for first. */
  script: ({ fail?: Error; wait?: Promise<void>; full?: boolean } | undefined)[] = [];

  async probe(): Promise<BackendSupport> {
    return { supported: true };
  }

  async sync(snapshot: Snapshot, delta: SnapshotDelta): Promise<SyncResult> {
    const index = this.calls.length;
    this.calls.push({ snapshot, delta });
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const step = this.script[index];
      if (step?.wait) await step.wait;
      if (step?.fail) throw step.fail;
      return { full: step?.full ?? delta.full, stats: { elements: snapshot.servicePorts.size } };
    } finally {
      this.running -= 1;
    }
  }

  async cleanup(): Promise<void> {}
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export function svc(
  name: string,
  rv: string,
  extra: Partial<NonNullable<KubeService['spec']>> = {},
  ns = 'default',
): KubeService {
  return {
    metadata: { namespace: ns, name, resourceVersion: rv },
    spec: { clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }], ...extra },
  };
}

export function slice(
  service: string,
  name: string,
  rv: string,
  addresses: string[],
  annotations?: Record<string, string>,
  ns = 'default',
): KubeEndpointSlice {
  return {
    metadata: {
      namespace: ns,
      name,
      resourceVersion: rv,
      labels: { 'kubernetes.io/service-name': service },
      annotations,
    },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
}

export function testConfig(overrides: Partial<ProxyConfig> = {}): ProxyConfig {
  return testProxyConfig({
    healthzBindAddress: '127.0.0.1:0',
    metricsBindAddress: '127.0.0.1:0',
    minSyncPeriodMs: 5,
    syncPeriodMs: 60_000,
    ...overrides,
  });
}
