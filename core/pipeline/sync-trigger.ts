/**
 * The sync trigger: kube-proxy's bounded-frequency runner as an RxJS operator, with time taken
 * from an injected scheduler so every rule is marble-tested.
 *
 * Rules (DESIGN.md "pipeline"; kube-proxy pkg/util/async BoundedFrequencyRunner with one burst):
 *
 * - **Same-tick bursts.** A due sync starts on the scheduler's next tick (a zero-delay action), so
 *   changes delivered together (one I/O callback, one relist) cost one sync, not one each.
 * - **Ready gate.** Nothing runs before `ready$` says the initial lists are complete. Changes that
 *   arrive before are coalesced into the first sync, which is full (reason `initial`) and starts
 *   the moment `ready$` fires.
 * - **Bounded frequency.** A change starts a sync at once when none started within
 *   `minSyncPeriodMs`; otherwise one sync starts `minSyncPeriodMs` after the previous sync
 *   STARTED, carrying every change seen in between (throttle, leading + trailing). This is not a
 *   debounce: steady churn yields one sync per period, never starvation.
 * - **Never overlapping.** While a sync runs, further triggers collapse into exactly one follow-up
 *   that starts after it finishes (and not before `minSyncPeriodMs` after its start).
 * - **Periodic full resync.** A full sync runs `syncPeriodMs` after the last FULL sync started.
 *   Decision: partial syncs do not postpone it. kube-proxy's runner resets its max-interval timer
 *   on every run, but a partial sync repairs nothing it did not touch, so letting churn postpone
 *   the repair forever would defeat its purpose. `syncPeriodMs <= 0` disables it.
 * - **Retry with backoff.** A failed sync is retried after `retryBaseMs` × 2^(failures−1), capped
 *   at `retryMaxMs` (default: min(syncPeriod, 30 s)), measured from the failure; the retry is full,
 *   and so is every sync until one succeeds. While backing off, changes and the periodic timer
 *   wait for the retry (they are coalesced into it) so a broken data plane is not hammered at
 *   `minSyncPeriod` by churn. kube-proxy retries after a flat syncPeriod; doubling from 1 s
 *   recovers faster from a transient failure and still bounds the load of a persistent one.
 */
import { defer, from, Observable, type ObservableInput, type SchedulerLike, type Subscription } from 'rxjs';

export type SyncReason = 'initial' | 'change' | 'periodic' | 'retry';

export interface SyncRequest {
  /** Program everything (initial, periodic, after a failure). */
  readonly full: boolean;
  readonly reason: SyncReason;
  /** 1, 2, 3... in start order. */
  readonly seq: number;
  /** Consecutive failures before this attempt (0 unless it is a retry). */
  readonly attempt: number;
}

export type SyncEvent =
  | { readonly type: 'start'; readonly request: SyncRequest; readonly at: number }
  | {
      readonly type: 'success';
      readonly request: SyncRequest;
      readonly at: number;
      readonly startedAt: number;
    }
  | {
      readonly type: 'failure';
      readonly request: SyncRequest;
      readonly at: number;
      readonly startedAt: number;
      readonly error: unknown;
      /** When the retry is due, relative to `at`. */
      readonly retryInMs: number;
    };

/** Runs one sync. Settles (resolves / completes) on success, rejects / errors on failure. */
export type SyncFn = (request: SyncRequest) => ObservableInput<unknown>;

export interface SyncTriggerOptions {
  /** Emits when the initial lists are complete; the first `true` (or any value) opens the gate. */
  readonly ready$: Observable<unknown>;
  readonly sync: SyncFn;
  readonly minSyncPeriodMs: number;
  /** Full resync period; `<= 0` disables the periodic resync. */
  readonly syncPeriodMs: number;
  /** First retry delay after a failure (default 1000 ms). */
  readonly retryBaseMs?: number;
  /** Retry delay cap (default min(syncPeriodMs, 30 000 ms), or 30 000 ms when syncPeriod is off). */
  readonly retryMaxMs?: number;
  readonly scheduler: SchedulerLike;
}

/** The retry delay after `failures` consecutive failures (failures >= 1). */
export function retryDelayMs(failures: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(Math.max(failures - 1, 0), 30);
  return Math.min(baseMs * 2 ** exp, maxMs);
}

/** Default retry cap for a sync period. */
export function defaultRetryMaxMs(syncPeriodMs: number): number {
  return syncPeriodMs > 0 ? Math.min(syncPeriodMs, 30_000) : 30_000;
}

/**
 * Operator form: `changes$.pipe(syncTrigger(options))`. Each value of the source is one change
 * notification. The result emits a `start` event when a sync starts and a `success` / `failure`
 * event when it settles. Unsubscribing cancels timers and drops the running sync's subscription
 * (a Promise-based sync keeps running; the caller awaits it if it must).
 */
export function syncTrigger(
  options: SyncTriggerOptions,
): (changes$: Observable<unknown>) => Observable<SyncEvent> {
  return (changes$) => boundedSyncs(changes$, options);
}

/** The state machine behind `syncTrigger`. */
export function boundedSyncs(
  changes$: Observable<unknown>,
  options: SyncTriggerOptions,
): Observable<SyncEvent> {
  const { scheduler, sync, minSyncPeriodMs, syncPeriodMs } = options;
  const retryBaseMs = options.retryBaseMs ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? defaultRetryMaxMs(syncPeriodMs);

  return new Observable<SyncEvent>((subscriber) => {
    let ready = false;
    let running = false;
    let closed = false;
    /** A trigger arrived that no started sync has served yet. */
    let pending = false;
    let pendingFull = false;
    let pendingReason: SyncReason = 'change';
    let lastStart: number | undefined;
    let lastFullStart: number | undefined;
    let failures = 0;
    /** Set after a failure: no sync before this time, and every sync is full until a success. */
    let backoffUntil: number | undefined;
    let seq = 0;
    let timer: Subscription | undefined;
    let inner: Subscription | undefined;

    const request = (reason: SyncReason, full: boolean): void => {
      if (!pending) {
        pending = true;
        pendingReason = reason;
      }
      pendingFull = pendingFull || full;
    };

    const cancelTimer = (): void => {
      timer?.unsubscribe();
      timer = undefined;
    };

    const wakeAt = (at: number): void => {
      const delay = Math.max(0, at - scheduler.now());
      timer = scheduler.schedule(() => {
        timer = undefined;
        evaluate(true);
      }, delay);
    };

    /**
     * Decide what happens next. A sync that is due starts only from a timer callback
     * (`fromTimer`); an event that makes one due schedules a zero-delay wake-up instead, so every
     * change delivered in the same tick (a burst) lands in one sync.
     */
    const evaluate = (fromTimer = false): void => {
      cancelTimer();
      if (closed || !ready || running) return;
      const now = scheduler.now();
      const periodicDue =
        syncPeriodMs > 0 && lastFullStart !== undefined && backoffUntil === undefined
          ? lastFullStart + syncPeriodMs
          : undefined;
      if (periodicDue !== undefined && now >= periodicDue) request('periodic', true);
      if (!pending) {
        if (periodicDue !== undefined) wakeAt(periodicDue);
        return;
      }
      const earliest = Math.max(
        lastStart === undefined ? now : lastStart + minSyncPeriodMs,
        backoffUntil ?? now,
      );
      if (now < earliest || !fromTimer) {
        wakeAt(Math.max(now, earliest));
        return;
      }
      start(now);
    };

    const start = (now: number): void => {
      const full = pendingFull || failures > 0;
      const req: SyncRequest = { full, reason: pendingReason, seq: ++seq, attempt: failures };
      pending = false;
      pendingFull = false;
      pendingReason = 'change';
      running = true;
      lastStart = now;
      if (full) lastFullStart = now;
      subscriber.next({ type: 'start', request: req, at: now });
      let settled = false;
      const finish = (error: unknown, failed: boolean): void => {
        if (settled) return;
        settled = true;
        running = false;
        inner = undefined;
        const at = scheduler.now();
        if (!failed) {
          failures = 0;
          backoffUntil = undefined;
          subscriber.next({ type: 'success', request: req, at, startedAt: now });
        } else {
          failures += 1;
          const retryInMs = retryDelayMs(failures, retryBaseMs, retryMaxMs);
          backoffUntil = at + retryInMs;
          request('retry', true);
          pendingReason = 'retry';
          subscriber.next({ type: 'failure', request: req, at, startedAt: now, error, retryInMs });
        }
        evaluate();
      };
      const sub = defer(() => from(sync(req))).subscribe({
        error: (err: unknown) => finish(err, true),
        complete: () => finish(undefined, false),
      });
      if (!settled) inner = sub;
    };

    const readySub = options.ready$.subscribe({
      next: (value) => {
        if (ready || value === false) return;
        ready = true;
        request('initial', true);
        pendingReason = 'initial';
        evaluate();
      },
      error: (err: unknown) => subscriber.error(err),
    });

    const changeSub = changes$.subscribe({
      next: () => {
        request('change', false);
        evaluate();
      },
      error: (err: unknown) => subscriber.error(err),
    });

    return () => {
      closed = true;
      cancelTimer();
      readySub.unsubscribe();
      changeSub.unsubscribe();
      inner?.unsubscribe();
    };
  });
}
