/**
 * switchyard's metrics: kube-proxy's names, types, help texts, labels and buckets
 * (pkg/proxy/metrics/metrics.go, with the `ip_family` label of current releases), plus a few
 * `switchyard_*` extras, in a prom-client Registry owned by this instance (never the global one).
 *
 * Deliberate differences from kube-proxy:
 * - `kubeproxy_sync_full_proxy_rules_duration_seconds` and `..._partial_...` are registered for
 *   every mode (upstream: iptables only), because every switchyard backend does partial syncs.
 * - Mode-specific upstream metrics are registered as upstream does: iptables → the iptables_*
 *   family; ipvs → iptables restore failures; nftables → nftables sync / cleanup failures.
 *   `syncFailed()` counts every failed sync in `switchyard_sync_failures_total` and also in the
 *   mode's upstream failure counter (nftables: `..._nftables_sync_failures_total`, iptables and
 *   ipvs: `..._iptables_restore_failures_total`), so backends must not count those again.
 */
import { inject, injectable } from 'tsyringe';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { Logger } from 'pino';
import { TOKENS } from '../tokens.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import type { IPFamily, Snapshot } from '../model/snapshot.js';
import type { BackendMetrics } from '../../plugins/sdk/index.js';

/** prometheus.ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

/** prometheus.LinearBuckets(start, width, count). */
export function linearBuckets(start: number, width: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + width * i);
}

/** kube-proxy's sync duration buckets: 1 ms doubling, 15 buckets. */
export const SYNC_DURATION_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 15);

/**
 * kube-proxy's network programming buckets. Like component-base's MergeBuckets, the list starts
 * with a 0 bucket.
 */
export const NETWORK_PROGRAMMING_BUCKETS: readonly number[] = [
  0,
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
];

/** The prefix of metrics set through the SDK's BackendMetrics. */
export const BACKEND_METRIC_PREFIX = 'switchyard_backend_';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface MetricsOptions {
  /** Register prom-client's process / Node.js default metrics (default true). */
  readonly defaultMetrics?: boolean;
  /** Where to log rejected backend metric calls (once per name). */
  readonly logger?: Logger;
}

type LabelValues = Record<string, string>;

@injectable()
export class Metrics {
  readonly registry: Registry;

  private readonly syncDuration: Histogram<'ip_family'>;
  private readonly syncFullDuration: Histogram<'ip_family'>;
  private readonly syncPartialDuration: Histogram<'ip_family'>;
  private readonly lastTimestamp: Gauge<'ip_family'>;
  private readonly lastQueuedTimestamp: Gauge<'ip_family'>;
  private readonly networkProgramming: Histogram<'ip_family'>;
  private readonly endpointChangesPending: Gauge;
  private readonly endpointChangesTotal: Counter;
  private readonly serviceChangesPending: Gauge;
  private readonly serviceChangesTotal: Counter;
  private readonly noLocalEndpoints: Gauge<'ip_family' | 'traffic_policy'>;
  private readonly healthzTotal: Counter<'code'>;
  private readonly livezTotal: Counter<'code'>;
  private readonly iptablesRestoreFailures?: Counter<'ip_family'>;
  private readonly iptablesPartialRestoreFailures?: Counter<'ip_family'>;
  private readonly iptablesRulesTotal?: Gauge<'ip_family' | 'table'>;
  private readonly iptablesRulesLast?: Gauge<'ip_family' | 'table'>;
  private readonly nftablesSyncFailures?: Counter<'ip_family'>;
  private readonly nftablesCleanupFailures?: Counter<'ip_family'>;
  private readonly syncFailures: Counter<'ip_family'>;
  private readonly skippedObjects: Counter<'kind' | 'reason'>;
  private readonly backendInfoGauge: Gauge<'backend' | 'variant'>;

  private readonly mode: string;
  private readonly logger?: Logger;
  /** Backend metric names already rejected (logged once each). */
  private readonly rejected = new Set<string>();
  /** Label names of each backend metric, fixed by its first use. */
  private readonly backendLabelNames = new Map<string, readonly string[]>();

  constructor(@inject(TOKENS.Config) config: Pick<ProxyConfig, 'mode'>, options: MetricsOptions = {}) {
    this.mode = config.mode;
    this.logger = options.logger;
    const registers = [(this.registry = new Registry())];

    const histogram = <L extends string>(
      name: string,
      help: string,
      buckets: readonly number[],
      labelNames: L[],
    ): Histogram<L> => new Histogram<L>({ name, help, buckets: [...buckets], labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> =>
      new Gauge<L>({ name, help, labelNames, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: L[]): Counter<L> =>
      new Counter<L>({ name, help, labelNames, registers });

    this.syncDuration = histogram(
      'kubeproxy_sync_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds',
      SYNC_DURATION_BUCKETS,
      ['ip_family'],
    );
    this.syncFullDuration = histogram(
      'kubeproxy_sync_full_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for full resyncs',
      SYNC_DURATION_BUCKETS,
      ['ip_family'],
    );
    this.syncPartialDuration = histogram(
      'kubeproxy_sync_partial_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for partial resyncs',
      SYNC_DURATION_BUCKETS,
      ['ip_family'],
    );
    this.lastTimestamp = gauge(
      'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
      'The last time proxy rules were successfully synced',
      ['ip_family'],
    );
    this.lastQueuedTimestamp = gauge(
      'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
      'The last time a sync of proxy rules was queued',
      ['ip_family'],
    );
    this.networkProgramming = histogram(
      'kubeproxy_network_programming_duration_seconds',
      'In Cluster Network Programming Latency in seconds',
      NETWORK_PROGRAMMING_BUCKETS,
      ['ip_family'],
    );
    this.endpointChangesPending = gauge(
      'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
      'Pending proxy rules Endpoint changes',
      [],
    );
    this.endpointChangesTotal = counter(
      'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      'Cumulative proxy rules Endpoint changes',
      [],
    );
    this.serviceChangesPending = gauge(
      'kubeproxy_sync_proxy_rules_service_changes_pending',
      'Pending proxy rules Service changes',
      [],
    );
    this.serviceChangesTotal = counter(
      'kubeproxy_sync_proxy_rules_service_changes_total',
      'Cumulative proxy rules Service changes',
      [],
    );
    this.noLocalEndpoints = gauge(
      'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      'Number of services with a Local traffic policy and no endpoints',
      ['ip_family', 'traffic_policy'],
    );
    this.healthzTotal = counter('kubeproxy_proxy_healthz_total', 'Cumulative proxy healthz HTTP status', [
      'code',
    ]);
    this.livezTotal = counter('kubeproxy_proxy_livez_total', 'Cumulative proxy livez HTTP status', ['code']);

    if (this.mode === 'iptables' || this.mode === 'ipvs') {
      this.iptablesRestoreFailures = counter(
        'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
        'Cumulative proxy iptables restore failures',
        ['ip_family'],
      );
    }
    if (this.mode === 'iptables') {
      this.iptablesPartialRestoreFailures = counter(
        'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
        'Cumulative proxy iptables partial restore failures',
        ['ip_family'],
      );
      this.iptablesRulesTotal = gauge(
        'kubeproxy_sync_proxy_rules_iptables_total',
        'Total number of iptables rules owned by kube-proxy',
        ['ip_family', 'table'],
      );
      this.iptablesRulesLast = gauge(
        'kubeproxy_sync_proxy_rules_iptables_last',
        'Number of iptables rules written by kube-proxy in last sync',
        ['ip_family', 'table'],
      );
    }
    if (this.mode === 'nftables') {
      this.nftablesSyncFailures = counter(
        'kubeproxy_sync_proxy_rules_nftables_sync_failures_total',
        'Cumulative proxy nftables sync failures',
        ['ip_family'],
      );
      this.nftablesCleanupFailures = counter(
        'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total',
        'Cumulative proxy nftables cleanup failures',
        ['ip_family'],
      );
    }

    this.syncFailures = counter(
      'switchyard_sync_failures_total',
      'Cumulative failed syncs of the proxy backend',
      ['ip_family'],
    );
    this.skippedObjects = counter(
      'switchyard_skipped_objects_total',
      'Malformed or unsupported Kubernetes objects (or parts of them) skipped by the planner',
      ['kind', 'reason'],
    );
    this.backendInfoGauge = gauge(
      'switchyard_backend_info',
      'The data-plane backend in use (value is always 1)',
      ['backend', 'variant'],
    );

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The Prometheus text exposition of every metric. */
  async exposition(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type header for `exposition()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** One sync finished successfully: durations, last timestamp, per family. */
  syncSucceeded(params: {
    readonly seconds: number;
    readonly full: boolean;
    readonly families: readonly IPFamily[];
    readonly atMs: number;
  }): void {
    for (const family of params.families) {
      const labels = { ip_family: family };
      this.syncDuration.observe(labels, params.seconds);
      (params.full ? this.syncFullDuration : this.syncPartialDuration).observe(labels, params.seconds);
      this.lastTimestamp.set(labels, params.atMs / 1000);
    }
  }

  /** One sync failed (the generic counter, and the mode's upstream failure counter). */
  syncFailed(families: readonly IPFamily[]): void {
    for (const family of families) {
      const labels = { ip_family: family };
      this.syncFailures.inc(labels);
      this.nftablesSyncFailures?.inc(labels);
      this.iptablesRestoreFailures?.inc(labels);
    }
  }

  /** A change that needs a sync was seen at `atMs`. */
  syncQueued(atMs: number, families: readonly IPFamily[]): void {
    for (const family of families) this.lastQueuedTimestamp.set({ ip_family: family }, atMs / 1000);
  }

  /** Changed objects seen by the tracker: totals and pending. */
  changesSeen(services: number, endpointSlices: number): void {
    if (services > 0) {
      this.serviceChangesTotal.inc(services);
      this.serviceChangesPending.inc(services);
    }
    if (endpointSlices > 0) {
      this.endpointChangesTotal.inc(endpointSlices);
      this.endpointChangesPending.inc(endpointSlices);
    }
  }

  /** A sync took every pending change (pending gauges back to 0). */
  changesTaken(): void {
    this.serviceChangesPending.set(0);
    this.endpointChangesPending.set(0);
  }

  /** Seconds from an endpoints change (its trigger time) to the rules being programmed. */
  networkProgrammed(seconds: number, family: IPFamily): void {
    this.networkProgramming.observe({ ip_family: family }, Math.max(0, seconds));
  }

  /**
   * Service ports with a Local traffic policy and no local endpoint, per family and policy
   * (kube-proxy's `traffic_policy` values "internal" and "external").
   */
  recordSnapshot(snapshot: Snapshot): void {
    const counts = new Map<IPFamily, { internal: number; external: number }>();
    for (const family of snapshot.families) counts.set(family, { internal: 0, external: 0 });
    for (const sp of snapshot.servicePorts.values()) {
      const c = counts.get(sp.family) ?? { internal: 0, external: 0 };
      counts.set(sp.family, c);
      if (sp.localEndpoints.length > 0) continue;
      if (sp.internalPolicyLocal) c.internal += 1;
      if (sp.externalPolicyLocal) c.external += 1;
    }
    for (const [family, c] of counts) {
      this.noLocalEndpoints.set({ ip_family: family, traffic_policy: 'internal' }, c.internal);
      this.noLocalEndpoints.set({ ip_family: family, traffic_policy: 'external' }, c.external);
    }
  }

  /** A malformed object (or part of one) was skipped; call once per distinct problem. */
  skipped(kind: string, reason: string): void {
    this.skippedObjects.inc({ kind, reason });
  }

  /** `switchyard_backend_info{backend, variant} 1` (only the current pair is kept). */
  backendInfo(backend: string, variant = ''): void {
    this.backendInfoGauge.reset();
    this.backendInfoGauge.set({ backend, variant }, 1);
  }

  healthzServed(code: number): void {
    this.healthzTotal.inc({ code: String(code) });
  }

  livezServed(code: number): void {
    this.livezTotal.inc({ code: String(code) });
  }

  /** For the iptables backend: rules owned in `table`, and rules written in the last sync. */
  iptablesRules(family: IPFamily, table: string, total: number, lastSync?: number): void {
    this.iptablesRulesTotal?.set({ ip_family: family, table }, total);
    if (lastSync !== undefined) this.iptablesRulesLast?.set({ ip_family: family, table }, lastSync);
  }

  /** For the iptables backend: a partial restore failed and it fell back to a full one. */
  iptablesPartialRestoreFailed(family: IPFamily): void {
    this.iptablesPartialRestoreFailures?.inc({ ip_family: family });
  }

  /** For the nftables backend: removing stale objects failed. */
  nftablesCleanupFailed(family: IPFamily): void {
    this.nftablesCleanupFailures?.inc({ ip_family: family });
  }

  /**
   * The SDK's BackendMetrics for one backend: names get the `switchyard_backend_` prefix and a
   * `backend` label. Bad input is data: an invalid name, a name already used with another type,
   * or labels that differ from the metric's first use are dropped and logged once.
   */
  backendMetrics(backend: string): BackendMetrics {
    return {
      gauge: (name, help, value, labels) => {
        if (!Number.isFinite(value)) {
          this.reject(`${name}:value`, `backend gauge ${name}: value must be a finite number, got ${value}`);
          return;
        }
        const found = this.backendMetric(backend, 'gauge', name, help, labels);
        if (found) (found.metric as Gauge<string>).set(found.labels, value);
      },
      counter: (name, help, increment = 1, labels) => {
        if (!Number.isFinite(increment) || increment < 0) {
          this.reject(
            `${name}:increment`,
            `backend counter ${name}: increment must be a finite number >= 0, got ${increment}`,
          );
          return;
        }
        const found = this.backendMetric(backend, 'counter', name, help, labels);
        if (found) (found.metric as Counter<string>).inc(found.labels, increment);
      },
    };
  }

  private backendMetric(
    backend: string,
    type: 'gauge' | 'counter',
    name: string,
    help: string,
    labels: Readonly<Record<string, string>> | undefined,
  ): { metric: Metric<string>; labels: LabelValues } | undefined {
    const fullName = BACKEND_METRIC_PREFIX + name;
    if (!METRIC_NAME.test(fullName)) {
      this.reject(
        name,
        `backend metric name ${JSON.stringify(name)} is not a valid Prometheus name; dropped`,
      );
      return undefined;
    }
    const extra = labels ?? {};
    const extraNames = Object.keys(extra).sort();
    const bad = extraNames.find((l) => !LABEL_NAME.test(l) || l === 'backend' || l.startsWith('__'));
    if (bad !== undefined) {
      this.reject(
        `${name}:label:${bad}`,
        `backend metric ${fullName}: label ${JSON.stringify(bad)} is invalid or reserved; dropped`,
      );
      return undefined;
    }
    const labelNames = ['backend', ...extraNames];
    let metric = this.registry.getSingleMetric(fullName);
    if (metric === undefined) {
      const opts = { name: fullName, help: help || fullName, labelNames, registers: [this.registry] };
      metric = type === 'gauge' ? new Gauge(opts) : new Counter(opts);
      this.backendLabelNames.set(fullName, labelNames);
    } else {
      const isRightType = type === 'gauge' ? metric instanceof Gauge : metric instanceof Counter;
      const known = this.backendLabelNames.get(fullName);
      if (!isRightType || known === undefined) {
        this.reject(`${name}:type`, `backend metric ${fullName} already exists with another type; dropped`);
        return undefined;
      }
      if (known.join(',') !== labelNames.join(',')) {
        this.reject(
          `${name}:labels:${labelNames.join(',')}`,
          `backend metric ${fullName}: labels {${labelNames.join(',')}} differ from its first use {${known.join(',')}}; dropped`,
        );
        return undefined;
      }
    }
    const ordered: LabelValues = { backend };
    for (const l of extraNames) ordered[l] = extra[l]!;
    return { metric, labels: ordered };
  }

  private reject(key: string, message: string): void {
    if (this.rejected.has(key)) return;
    this.rejected.add(key);
    this.logger?.warn({ metric: key }, message);
  }
}
