/**
 * The pipeline: source events → tracker → (sync trigger) → planner → delta → backend.
 *
 * - Every source event goes through `tracker.apply`; an event that changed something marks a
 *   change as queued (healthz, `..._last_queued_timestamp_seconds`, change counters) and feeds
 *   the sync trigger. Nothing syncs until Services and EndpointSlices both finished their initial
 *   list (`ClusterState.synced`).
 * - A sync plans from the tracker's current state, computes the delta against the last snapshot
 *   whose sync SUCCEEDED (full at start, after a failure, on the periodic resync), and calls
 *   `backend.sync`. Success: that snapshot becomes the applied one; health, metrics and the
 *   `onSynced` listeners (e.g. the service health-check servers) are updated; one summary log
 *   line is written. Failure: logged with context, counted, and retried by the trigger with
 *   backoff as a full sync.
 * - The healthz "queued" time is the time of the oldest change not yet programmed: a change that
 *   arrives while a sync runs stays queued after that sync succeeds.
 * - Skipped (malformed) objects are counted and logged once per distinct problem, not once per
 *   plan.
 */
import { BehaviorSubject, Subject, type Observable, type SchedulerLike, type Subscription } from 'rxjs';
import { performance } from 'node:perf_hooks';
import { inject, injectable } from 'tsyringe';
import type { Logger } from 'pino';
import { TOKENS } from '../tokens.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import type { SourceEvent } from '../model/events.js';
import type { KubeEndpointSlice } from '../model/kube.js';
import {
  IP_FAMILIES,
  type IPFamily,
  type ProxyBackend,
  type Snapshot,
  type SnapshotDelta,
  type SyncResult,
} from '../model/snapshot.js';
import type { Metrics } from '../metrics/metrics.js';
import type { HealthState } from '../server/health-state.js';
import { computeDelta } from '../planner/delta.js';
import {
  plannerConfigOf,
  type ComputeDeltaFn,
  type PlannerConfigPort,
  type PlannerPort,
  type PlanResult,
  type PlanSkip,
  type SourcePort,
  type TrackerPort,
} from './ports.js';
import { syncTrigger, type SyncEvent, type SyncRequest } from './sync-trigger.js';

/** The EndpointSlice annotation the EndpointSlice controller sets to the triggering change time. */
export const LAST_CHANGE_TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';

/** The outcome of one sync, for listeners and tests. */
export interface SyncReport {
  readonly request: SyncRequest;
  readonly ok: boolean;
  /** Whether everything was programmed (delta.full, or the backend upgraded it). */
  readonly full: boolean;
  readonly elapsedMs: number;
  /** Undefined when planning itself failed. */
  readonly snapshot?: Snapshot;
  readonly delta?: SnapshotDelta;
  readonly result?: SyncResult;
  readonly error?: unknown;
}

export type SyncListener = (report: SyncReport) => void | Promise<void>;

export interface PipelineOptions {
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Default: core/planner's computeDelta. */
  readonly computeDelta?: ComputeDeltaFn;
}

interface TriggerTime {
  readonly at: number;
  readonly family: IPFamily;
  /** The change counter value when it was recorded. */
  readonly seq: number;
}

@injectable()
export class Pipeline {
  private readonly reports = new Subject<SyncReport>();
  /** Every finished sync, successful or not. */
  readonly syncs$: Observable<SyncReport> = this.reports.asObservable();

  private readonly changes = new Subject<void>();
  private readonly readySubject = new BehaviorSubject<boolean>(false);
  private readonly listeners: SyncListener[] = [];
  private readonly log: Logger;

  private sourceSub?: Subscription;
  private triggerSub?: Subscription;
  private inFlight?: Promise<void>;
  private started = false;
  private startedAt = 0;

  private applied?: Snapshot;
  private families: readonly IPFamily[] | undefined;
  /** Counts changes; a sync remembers the value it started at. */
  private changeSeq = 0;
  private syncing = false;
  /** Oldest change not yet programmed. */
  private queuedAt?: number;
  /** First change after the running sync started (stays queued after it). */
  private queuedDuringSync?: number;
  private triggerTimes: TriggerTime[] = [];
  private seenSkips = new Set<string>();
  private readonly plannerConfig: PlannerConfigPort;
  private readonly computeDelta: ComputeDeltaFn;

  constructor(
    @inject(TOKENS.Config) private readonly config: ProxyConfig,
    @inject(TOKENS.Logger) logger: Logger,
    @inject(TOKENS.Source) private readonly source: SourcePort,
    @inject(TOKENS.Tracker) private readonly tracker: TrackerPort,
    @inject(TOKENS.Planner) private readonly planner: PlannerPort,
    @inject(TOKENS.Backend) private readonly backend: ProxyBackend,
    @inject(TOKENS.Metrics) private readonly metrics: Metrics,
    @inject(TOKENS.HealthState) private readonly health: HealthState,
    @inject(TOKENS.Scheduler) private readonly scheduler: SchedulerLike,
    /** Tests: retry tuning (default 1 s doubling, capped) and the delta function. */
    private readonly options: PipelineOptions = {},
  ) {
    this.log = logger.child({ component: 'pipeline', backend: backend.name });
    this.plannerConfig = plannerConfigOf(config);
    this.computeDelta = options.computeDelta ?? computeDelta;
  }

  /** Subscribe to the source and start syncing once the initial lists are in. */
  start(): void {
    if (this.started) throw new Error('pipeline already started');
    this.started = true;
    this.startedAt = this.scheduler.now();
    this.triggerSub = this.changes
      .pipe(
        syncTrigger({
          ready$: this.readySubject,
          sync: (request) => this.runSync(request),
          minSyncPeriodMs: this.config.minSyncPeriodMs,
          syncPeriodMs: this.config.syncPeriodMs,
          scheduler: this.scheduler,
          retryBaseMs: this.options.retryBaseMs,
          retryMaxMs: this.options.retryMaxMs,
        }),
      )
      .subscribe({
        next: (event) => this.onTriggerEvent(event),
        error: (err: unknown) => this.log.error({ err }, 'sync trigger stopped'),
      });
    this.sourceSub = this.source.events$().subscribe({
      next: (event) => this.onSourceEvent(event),
      error: (err: unknown) => this.log.error({ err }, 'source stream failed; keeping the rules as they are'),
      complete: () => this.log.debug('source stream completed'),
    });
  }

  /** Stop watching and syncing; waits for a sync in flight, then stops the source. */
  async stop(): Promise<void> {
    this.sourceSub?.unsubscribe();
    this.triggerSub?.unsubscribe();
    this.sourceSub = undefined;
    this.triggerSub = undefined;
    await this.inFlight?.catch(() => undefined);
    await this.source.stop();
    this.reports.complete();
  }

  /** Called after every successful sync (awaited; a throw is logged, never fails the sync). */
  onSynced(listener: SyncListener): void {
    this.listeners.push(listener);
  }

  /** The last snapshot whose sync succeeded. */
  lastApplied(): Snapshot | undefined {
    return this.applied;
  }

  /** Whether Services and EndpointSlices finished their initial list. */
  isReady(): boolean {
    return this.readySubject.value;
  }

  /** When the oldest change not yet programmed was seen (epoch ms), or undefined. */
  queuedSince(): number | undefined {
    return this.queuedAt;
  }

  private onSourceEvent(event: SourceEvent): void {
    const slicesBefore =
      event.resource === 'endpointslices' && (event.type === 'upsert' || event.type === 'replace')
        ? this.tracker.state().endpointSlices
        : undefined;
    let result;
    try {
      result = this.tracker.apply(event);
    } catch (err) {
      this.log.error(
        { err, type: event.type, resource: event.resource },
        'tracker rejected an event; ignored',
      );
      return;
    }
    if (event.type === 'degraded')
      this.log.warn({ resource: event.resource, reason: event.reason }, 'source degraded; keeping rules');
    if (event.type === 'recovered') this.log.info({ resource: event.resource }, 'source recovered');

    const state = this.tracker.state();
    if (result.nodeChanged) this.health.syncNode(state.node);
    if (result.changed) {
      const now = this.scheduler.now();
      this.changeSeq += 1;
      if (slicesBefore !== undefined) this.recordTriggerTimes(slicesBefore, state.endpointSlices, event);
      this.queued(now);
      this.metrics.changesSeen(result.services, result.endpointSlices);
      this.changes.next();
    }
    if (!this.readySubject.value && state.synced.services && state.synced.endpointslices) {
      this.log.info(
        { services: state.services.size, endpointSlices: state.endpointSlices.size },
        'initial lists complete',
      );
      this.readySubject.next(true);
    }
  }

  private queued(now: number): void {
    if (this.queuedAt === undefined) this.queuedAt = now;
    if (this.syncing && this.queuedDuringSync === undefined) this.queuedDuringSync = now;
    const families = this.families ?? IP_FAMILIES;
    this.health.queued(families, now);
    this.metrics.syncQueued(now, families);
  }

  /**
   * Remember the last-change-trigger-time of every slice this event changed (kube-proxy's
   * network programming latency), ignoring times from before the pipeline started.
   */
  private recordTriggerTimes(
    before: ReadonlyMap<string, KubeEndpointSlice>,
    after: ReadonlyMap<string, KubeEndpointSlice>,
    event: SourceEvent,
  ): void {
    const record = (slice: KubeEndpointSlice | undefined): void => {
      const raw = slice?.metadata?.annotations?.[LAST_CHANGE_TRIGGER_TIME];
      if (raw === undefined) return;
      const at = Date.parse(raw);
      if (!Number.isFinite(at) || at < this.startedAt) return;
      const family =
        slice?.addressType === 'IPv6' ? 'IPv6' : slice?.addressType === 'IPv4' ? 'IPv4' : undefined;
      if (family === undefined) return;
      this.triggerTimes.push({ at, family, seq: this.changeSeq });
    };
    if (event.type === 'upsert') {
      const meta = (event.object as KubeEndpointSlice).metadata;
      const key = meta?.namespace && meta.name ? `${meta.namespace}/${meta.name}` : undefined;
      if (key !== undefined && after.get(key) !== before.get(key)) record(after.get(key));
      return;
    }
    for (const [key, slice] of after) if (before.get(key) !== slice) record(slice);
  }

  private runSync(request: SyncRequest): Promise<void> {
    const run = this.doSync(request);
    this.inFlight = run;
    const clear = (): void => {
      if (this.inFlight === run) this.inFlight = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  private async doSync(request: SyncRequest): Promise<void> {
    const t0 = performance.now();
    const seqAtStart = this.changeSeq;
    this.syncing = true;
    this.queuedDuringSync = undefined;
    this.metrics.changesTaken();
    let snapshot: Snapshot | undefined;
    let delta: SnapshotDelta | undefined;
    try {
      const plan = this.planner.plan(this.tracker.state(), this.plannerConfig);
      snapshot = plan.snapshot;
      this.families = snapshot.families;
      this.recordSkips(plan);
      delta = this.computeDelta(this.applied, snapshot, request.full || this.applied === undefined);
      const result = await this.backend.sync(snapshot, delta);
      const elapsedMs = performance.now() - t0;
      await this.succeeded(
        { request, ok: true, full: delta.full || result.full, elapsedMs, snapshot, delta, result },
        seqAtStart,
      );
    } catch (error) {
      const elapsedMs = performance.now() - t0;
      this.syncing = false;
      this.metrics.syncFailed(snapshot?.families ?? this.families ?? ['IPv4']);
      this.log.error(
        {
          err: error,
          reason: request.reason,
          attempt: request.attempt,
          full: delta?.full ?? request.full,
          generation: snapshot?.generation,
          elapsedMs: round(elapsedMs),
        },
        snapshot === undefined ? 'planning failed' : 'sync failed',
      );
      this.reports.next({
        request,
        ok: false,
        full: delta?.full ?? request.full,
        elapsedMs,
        snapshot,
        delta,
        error,
      });
      throw error;
    }
  }

  private async succeeded(
    report: SyncReport & { snapshot: Snapshot; delta: SnapshotDelta },
    seqAtStart: number,
  ): Promise<void> {
    const { snapshot, delta } = report;
    const now = this.scheduler.now();
    this.applied = snapshot;
    this.syncing = false;

    // Health: everything up to this sync's start is programmed; later changes stay queued.
    this.health.retainFamilies(snapshot.families);
    this.health.updated(snapshot.families, now);
    this.queuedAt = this.queuedDuringSync;
    this.queuedDuringSync = undefined;
    if (this.queuedAt !== undefined) this.health.queued(snapshot.families, this.queuedAt);

    this.metrics.syncSucceeded({
      seconds: report.elapsedMs / 1000,
      full: report.full,
      families: snapshot.families,
      atMs: now,
    });
    this.metrics.recordSnapshot(snapshot);
    const programmed = this.triggerTimes.filter((t) => t.seq <= seqAtStart);
    this.triggerTimes = this.triggerTimes.filter((t) => t.seq > seqAtStart);
    const wallNow = Date.now();
    for (const t of programmed) this.metrics.networkProgrammed((wallNow - t.at) / 1000, t.family);

    let endpoints = 0;
    for (const sp of snapshot.servicePorts.values()) endpoints += sp.reachableEndpoints.length;
    this.log.info(
      {
        reason: report.request.reason,
        full: report.full,
        generation: snapshot.generation,
        servicePorts: snapshot.servicePorts.size,
        endpoints,
        changed: delta.full ? undefined : delta.changed.size,
        removed: delta.full ? undefined : delta.removed.size,
        elapsedMs: round(report.elapsedMs),
        ...(report.result?.stats ? { stats: report.result.stats } : {}),
      },
      'synced',
    );

    for (const listener of this.listeners) {
      try {
        await listener(report);
      } catch (err) {
        this.log.error({ err }, 'sync listener failed');
      }
    }
    this.reports.next(report);
  }

  /**
   * Count each distinct skip once. With the planner's `newSkips` (already logged by it) count
   * those; otherwise de-duplicate here, log, and forget skips that disappeared (so they count
   * again when they come back).
   */
  private recordSkips(plan: PlanResult): void {
    if (plan.newSkips !== undefined) {
      for (const skip of plan.newSkips) this.metrics.skipped(skip.kind, skip.reason);
      return;
    }
    const skips: readonly PlanSkip[] = plan.skips;
    const current = new Set<string>();
    for (const skip of skips) {
      const id = `${skip.kind}\u0000${skip.key}\u0000${skip.field}\u0000${skip.reason}`;
      current.add(id);
      if (this.seenSkips.has(id)) continue;
      this.metrics.skipped(skip.kind, skip.reason);
      this.log.warn(
        { kind: skip.kind, key: skip.key, field: skip.field, reason: skip.reason },
        'skipped malformed object',
      );
    }
    this.seenSkips = current;
  }

  private onTriggerEvent(event: SyncEvent): void {
    if (event.type === 'start') {
      this.log.debug(
        { reason: event.request.reason, full: event.request.full, seq: event.request.seq },
        'sync starting',
      );
    } else if (event.type === 'failure') {
      this.log.warn(
        { retryInMs: event.retryInMs, attempt: event.request.attempt + 1 },
        'retrying the failed sync with backoff',
      );
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
