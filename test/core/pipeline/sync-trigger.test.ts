import { EMPTY, filter, map, mergeMap, Observable, throwError, timer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it, vi } from 'vitest';
import {
  boundedSyncs,
  defaultRetryMaxMs,
  retryDelayMs,
  syncTrigger,
  type SyncEvent,
  type SyncRequest,
} from '../../../core/pipeline/sync-trigger.js';

/** Marble letters for a sync start: reason and full/partial. */
const START = {
  i: 'initial/full',
  c: 'change/partial',
  C: 'change/full',
  p: 'periodic/full',
  r: 'retry/full',
} as const;

function startKey(e: SyncEvent): string {
  return `${e.request.reason}/${e.request.full ? 'full' : 'partial'}`;
}

interface Plan {
  /** How long each sync takes (frames); the last value repeats. */
  durations?: number[];
  /** 'ok' or 'fail' for each call in order; missing means 'ok'. */
  outcomes?: ('ok' | 'fail')[];
}

function newScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** A sync function taking virtual time, recording calls and overlap. */
function fakeSync(ts: TestScheduler, plan: Plan) {
  const calls: { request: SyncRequest; at: number }[] = [];
  let running = 0;
  let maxConcurrent = 0;
  const fn = (request: SyncRequest): Observable<never> => {
    const index = calls.length;
    calls.push({ request, at: ts.now() });
    const durations = plan.durations ?? [1];
    const d = durations[Math.min(index, durations.length - 1)]!;
    const fail = plan.outcomes?.[index] === 'fail';
    running += 1;
    maxConcurrent = Math.max(maxConcurrent, running);
    return timer(d, ts).pipe(
      mergeMap(() => {
        running -= 1;
        return fail ? throwError(() => new Error(`sync ${index + 1} failed`)) : EMPTY;
      }),
    );
  };
  return { fn, calls, maxConcurrent: () => maxConcurrent };
}

function starts(events$: Observable<SyncEvent>): Observable<string> {
  return events$.pipe(
    filter((e) => e.type === 'start'),
    map(startKey),
  );
}

describe('retryDelayMs', () => {
  it('doubles from the base and caps', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, 1000, 10_000))).toEqual([
      1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
    expect(retryDelayMs(200, 1000, 30_000)).toBe(30_000);
  });
  it('caps at min(syncPeriod, 30 s) by default', () => {
    expect(defaultRetryMaxMs(10_000)).toBe(10_000);
    expect(defaultRetryMaxMs(3_600_000)).toBe(30_000);
    expect(defaultRetryMaxMs(0)).toBe(30_000);
  });
});

describe('syncTrigger', () => {
  it('runs nothing before ready; changes before ready fold into one full initial sync at ready', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable, flush }) => {
      const changes = hot('-a-a-a------|');
      const ready = hot('  ----------r');
      const sync = fakeSync(ts, {});
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 5, syncPeriodMs: 0, scheduler: ts }),
      );
      expectObservable(starts(out), '^ 40ms !').toBe('----------i', START);
      flush();
      expect(sync.calls.map((c) => c.at)).toEqual([10]);
    });
  });

  it('without any change before ready, still syncs once at ready (empty initial state)', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const changes = hot<string>('-------');
      const ready = hot('---r');
      const sync = fakeSync(ts, {});
      const out = boundedSyncs(changes, {
        ready$: ready,
        sync: sync.fn,
        minSyncPeriodMs: 5,
        syncPeriodMs: 0,
        scheduler: ts,
      });
      expectObservable(starts(out), '^ 20ms !').toBe('---i', START);
    });
  });

  it('ignores ready$ emitting false and opens on the first true', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const changes = hot('a------');
      const ready = hot('-f--t', { f: false, t: true });
      const sync = fakeSync(ts, {});
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 5, syncPeriodMs: 0, scheduler: ts }),
      );
      expectObservable(starts(out), '^ 20ms !').toBe('----i', START);
    });
  });

  it('a burst delivered in one tick costs one sync', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable, flush }) => {
      const ready = hot('r');
      const changes = hot('-- 20ms (aaaaaaaa)');
      const sync = fakeSync(ts, {});
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 0, scheduler: ts }),
      );
      expectObservable(starts(out), '^ 60ms !').toBe('i 21ms c', START);
      flush();
      expect(sync.calls).toHaveLength(2);
    });
  });

  it('a change starts a sync at once when none started within minSyncPeriod (leading edge)', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const ready = hot('r');
      // initial sync at 0; changes at 30 and 60, both more than 10 after the previous start
      const changes = hot('30ms a 29ms a');
      const sync = fakeSync(ts, {});
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 0, scheduler: ts }),
      );
      expectObservable(starts(out), '^ 100ms !').toBe('i 29ms c 29ms c', START);
    });
  });

  it('changes spread over a period: leading sync plus exactly one trailing sync', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable, flush }) => {
      const ready = hot('r');
      // changes at 20, 22, 24, 26 (min period 10): sync at 20 (leading), one at 30 (trailing)
      const changes = hot('20ms a-a-a-a');
      const sync = fakeSync(ts, {});
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 0, scheduler: ts }),
      );
      expectObservable(starts(out), '^ 80ms !').toBe('i 19ms c 9ms c', START);
      flush();
      expect(sync.calls.map((c) => c.at)).toEqual([0, 20, 30]);
    });
  });

  it('steady churn gets one sync per minSyncPeriod, never starves (not a debounce)', () => {
    const ts = newScheduler();
    ts.run(({ hot, flush }) => {
      const ready = hot('r');
      // a change every 3 frames, from 1 to 100
      const changes = hot(`-${'a--'.repeat(34)}`);
      const sync = fakeSync(ts, {});
      const events: SyncEvent[] = [];
      const sub = changes
        .pipe(
          syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 0, scheduler: ts }),
        )
        .subscribe((e) => events.push(e));
      ts.schedule(() => sub.unsubscribe(), 150);
      flush();
      const startTimes = events.filter((e) => e.type === 'start').map((e) => e.at);
      // initial at 0, then every 10 frames while the churn lasts (last change at 100)
      expect(startTimes).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    });
  });

  it('minSyncPeriod is measured from the previous sync START', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const ready = hot('r');
      // sync takes 4; a change at 6 waits until 10 (0 + 10), a change at 15 waits until 20
      const changes = hot('------a--------a');
      const sync = fakeSync(ts, { durations: [4] });
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 0, scheduler: ts }),
      );
      expectObservable(starts(out), '^ 60ms !').toBe('i 9ms c 9ms c', START);
    });
  });

  it('never overlaps: changes during a slow sync collapse into one follow-up after it ends', () => {
    const ts = newScheduler();
    ts.run(({ hot, flush }) => {
      const ready = hot('r');
      // initial sync takes 25 frames; changes at 5, 8, 12, 20 -> one follow-up at 25
      const changes = hot('-----a--a---a-------a');
      const sync = fakeSync(ts, { durations: [25, 3] });
      const events: string[] = [];
      const sub = changes
        .pipe(
          syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 0, scheduler: ts }),
        )
        .subscribe((e) => events.push(`${e.type}@${e.at}`));
      ts.schedule(() => sub.unsubscribe(), 80);
      flush();
      expect(events).toEqual(['start@0', 'success@25', 'start@25', 'success@28']);
      expect(sync.calls.map((c) => c.at)).toEqual([0, 25]);
      expect(sync.maxConcurrent()).toBe(1);
    });
  });

  it('a follow-up after a short sync still waits for minSyncPeriod', () => {
    const ts = newScheduler();
    ts.run(({ hot, flush }) => {
      const ready = hot('r');
      const changes = hot('-a'); // during the initial sync (duration 3)
      const sync = fakeSync(ts, { durations: [3] });
      const sub = changes
        .pipe(
          syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 0, scheduler: ts }),
        )
        .subscribe();
      ts.schedule(() => sub.unsubscribe(), 50);
      flush();
      expect(sync.calls.map((c) => c.at)).toEqual([0, 10]);
    });
  });

  it('retries a failed sync with capped exponential backoff; retries are full', () => {
    const ts = newScheduler();
    ts.run(({ hot, flush }) => {
      const ready = hot('r');
      const changes = hot<string>('');
      const sync = fakeSync(ts, { durations: [1], outcomes: ['fail', 'fail', 'fail', 'fail', 'ok'] });
      const events: SyncEvent[] = [];
      const sub = changes
        .pipe(
          syncTrigger({
            ready$: ready,
            sync: sync.fn,
            minSyncPeriodMs: 10,
            syncPeriodMs: 0,
            retryBaseMs: 100,
            retryMaxMs: 300,
            scheduler: ts,
          }),
        )
        .subscribe((e) => events.push(e));
      ts.schedule(() => sub.unsubscribe(), 2000);
      flush();
      // fail at 1 -> +100; fail at 102 -> +200; fail at 303 -> +300 (cap); fail at 604 -> +300; ok
      expect(sync.calls.map((c) => c.at)).toEqual([0, 101, 302, 603, 904]);
      expect(sync.calls.map((c) => `${c.request.reason}/${c.request.full}/${c.request.attempt}`)).toEqual([
        'initial/true/0',
        'retry/true/1',
        'retry/true/2',
        'retry/true/3',
        'retry/true/4',
      ]);
      const failures = events.filter((e) => e.type === 'failure');
      expect(failures.map((e) => (e.type === 'failure' ? e.retryInMs : -1))).toEqual([100, 200, 300, 300]);
      expect(events.at(-1)?.type).toBe('success');
    });
  });

  it('a failure forces the next sync full and holds changes until the retry; success resets', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const ready = hot('r');
      // initial ok; change at 20 fails (ends 21, retry due 121); changes at 30, 60 wait for the
      // retry; change at 200 after the successful retry is partial again
      const changes = hot('20ms a 9ms a 29ms a 139ms a');
      const sync = fakeSync(ts, { durations: [1], outcomes: ['ok', 'fail', 'ok', 'ok'] });
      const out = changes.pipe(
        syncTrigger({
          ready$: ready,
          sync: sync.fn,
          minSyncPeriodMs: 10,
          syncPeriodMs: 0,
          retryBaseMs: 100,
          scheduler: ts,
        }),
      );
      expectObservable(starts(out), '^ 300ms !').toBe('i 19ms c 100ms r 78ms c', START);
    });
  });

  it('a failure with retry base below minSyncPeriod still respects minSyncPeriod', () => {
    const ts = newScheduler();
    ts.run(({ hot, flush }) => {
      const ready = hot('r');
      const sync = fakeSync(ts, { durations: [1], outcomes: ['fail', 'ok'] });
      const sub = hot<string>('')
        .pipe(
          syncTrigger({
            ready$: ready,
            sync: sync.fn,
            minSyncPeriodMs: 10,
            syncPeriodMs: 0,
            retryBaseMs: 2,
            scheduler: ts,
          }),
        )
        .subscribe();
      ts.schedule(() => sub.unsubscribe(), 100);
      flush();
      expect(sync.calls.map((c) => c.at)).toEqual([0, 10]);
    });
  });

  it('a synchronous throw from the sync function counts as a failure', () => {
    const ts = newScheduler();
    ts.run(({ hot, flush }) => {
      const ready = hot('r');
      const calls: number[] = [];
      const sub = hot<string>('')
        .pipe(
          syncTrigger({
            ready$: ready,
            sync: () => {
              calls.push(ts.now());
              if (calls.length === 1) throw new Error('sync threw');
              return EMPTY;
            },
            minSyncPeriodMs: 1,
            syncPeriodMs: 0,
            retryBaseMs: 50,
            scheduler: ts,
          }),
        )
        .subscribe();
      ts.schedule(() => sub.unsubscribe(), 200);
      flush();
      expect(calls).toEqual([0, 50]);
    });
  });

  it('runs a periodic full resync every syncPeriod after the last full sync', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const ready = hot('r');
      const changes = hot<string>('');
      const sync = fakeSync(ts, {});
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 100, scheduler: ts }),
      );
      expectObservable(starts(out), '^ 250ms !').toBe('i 99ms p 99ms p', START);
    });
  });

  it('partial syncs do not postpone the periodic full resync', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const ready = hot('r');
      const changes = hot('50ms a 29ms a 29ms a'); // 50, 80, 110
      const sync = fakeSync(ts, {});
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 100, scheduler: ts }),
      );
      // periodic at 100 (from the initial at 0), then 200 (from the periodic at 100)
      expectObservable(starts(out), '^ 250ms !').toBe('i 49ms c 29ms c 19ms p 9ms c 89ms p', START);
    });
  });

  it('a change due at the same time as the periodic resync is served by one full sync', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const ready = hot('r');
      const changes = hot('95ms a'); // waits for... nothing: last start 0, min 10 -> at 95
      const sync = fakeSync(ts, { durations: [10] });
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 10, syncPeriodMs: 100, scheduler: ts }),
      );
      // the change at 95 starts a partial sync running until 105; the periodic falls due at 100
      // while it runs and follows at 105 as one full sync
      expectObservable(starts(out), '^ 150ms !').toBe('i 94ms c 9ms p', START);
    });
  });

  it('stops timers and drops the running sync on unsubscribe', () => {
    const ts = newScheduler();
    ts.run(({ hot, flush }) => {
      const ready = hot('r');
      const changes = hot('--a--a--a--a');
      const sync = fakeSync(ts, { durations: [3] });
      const sub = changes
        .pipe(
          syncTrigger({ ready$: ready, sync: sync.fn, minSyncPeriodMs: 2, syncPeriodMs: 20, scheduler: ts }),
        )
        .subscribe();
      ts.schedule(() => sub.unsubscribe(), 4);
      flush();
      expect(sync.calls.map((c) => c.at)).toEqual([0, 3]);
    });
  });

  it('propagates an error of the change stream', () => {
    const ts = newScheduler();
    ts.run(({ hot, expectObservable }) => {
      const ready = hot<string>('');
      const changes = hot('--#', undefined, new Error('source broke'));
      const out = changes.pipe(
        syncTrigger({ ready$: ready, sync: () => EMPTY, minSyncPeriodMs: 2, syncPeriodMs: 0, scheduler: ts }),
      );
      expectObservable(out).toBe('--#', undefined, new Error('source broke'));
    });
  });

  it('works with Promise-returning syncs on a real scheduler', async () => {
    const { asyncScheduler, Subject, BehaviorSubject } = await import('rxjs');
    const changes = new Subject<void>();
    const ready = new BehaviorSubject(false);
    const seen: SyncRequest[] = [];
    const events: SyncEvent[] = [];
    const sub = changes
      .pipe(
        syncTrigger({
          ready$: ready,
          sync: async (req) => {
            seen.push(req);
            await new Promise((r) => setTimeout(r, 5));
          },
          minSyncPeriodMs: 5,
          syncPeriodMs: 0,
          scheduler: asyncScheduler,
        }),
      )
      .subscribe((e) => events.push(e));
    changes.next();
    changes.next();
    ready.next(true);
    await vi.waitFor(() => expect(events).toHaveLength(2));
    changes.next();
    await vi.waitFor(() => expect(events).toHaveLength(4));
    await new Promise((r) => setTimeout(r, 20));
    sub.unsubscribe();
    expect(seen.map((r) => r.reason)).toEqual(['initial', 'change']);
    expect(events.map((e) => e.type)).toEqual(['start', 'success', 'start', 'success']);
  });
});
