/**
 * The nftables backend (`--proxy-mode=nftables`, the default): renders the Snapshot into
 * switchyard's own tables `ip switchyard` / `ip6 switchyard` and applies each sync as one
 * atomic `nft -f -` transaction. See render.ts for the layout.
 */
import { performance } from 'node:perf_hooks';
import type { BackendContext } from '../../plugins/sdk/index.js';
import type {
  BackendSupport,
  ProxyBackend,
  Snapshot,
  SnapshotDelta,
  SyncResult,
} from '../../core/model/snapshot.js';
import {
  clearConntrack,
  listUdpConntrack,
  staleUdpFlows,
  unhandledUdpFlows,
  type ConntrackDeletion,
} from '../../plugins/conntrack/index.js';
import { applyCleanup, applyScript, checkScript, parseNftVersion } from './apply.js';
import { planSync, renderCleanup, type NftablesState } from './render.js';

const PROBE_SCRIPT = `table ip switchyard-probe {
\tmap m { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }
\tchain c { type nat hook prerouting priority dstnat; policy accept; dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @m; }
}
`;

export class NftablesBackend implements ProxyBackend {
  readonly name = 'nftables';
  /** What the kernel holds, as last applied by this process; undefined → next sync is full. */
  private state: NftablesState | undefined;
  /** The last snapshot applied successfully (for the UDP conntrack cleanup). */
  private lastSnapshot: Snapshot | undefined;

  constructor(private readonly ctx: BackendContext) {}

  async probe(): Promise<BackendSupport> {
    let version: string | undefined;
    try {
      const r = await this.ctx.executor.run('nft', ['--version'], { allowFailure: true, timeoutMs: 10_000 });
      version = parseNftVersion(r.stdout + r.stderr);
      if (r.code !== 0 || version === undefined) {
        return { supported: false, reason: `nft --version failed: ${(r.stderr || r.stdout).trim()}` };
      }
    } catch (e) {
      return { supported: false, reason: `nft not found: ${String(e instanceof Error ? e.message : e)}` };
    }
    const check = await checkScript(this.ctx.executor, PROBE_SCRIPT);
    if (!check.ok) {
      return {
        supported: false,
        reason: `kernel refused an nftables check transaction: ${check.error}`,
        details: { nft: version },
      };
    }
    return { supported: true, details: { nft: version } };
  }

  async sync(snapshot: Snapshot, delta: SnapshotDelta): Promise<SyncResult> {
    const t0 = performance.now();
    // a full sync does not need what was applied before: let it go before building the new one
    if (delta.full) this.state = undefined;
    const plan = planSync(snapshot, delta, this.state, { masqueradeBit: this.ctx.config?.masqueradeBit });
    const t1 = performance.now();
    try {
      await applyScript(this.ctx.executor, plan.script);
    } catch (e) {
      // the transaction was refused as a whole: the previous rules are still in place, but
      // our memory of them can no longer be trusted for an incremental sync
      this.state = undefined;
      this.lastSnapshot = undefined;
      throw e;
    }
    const t2 = performance.now();
    this.state = plan.commit();
    const prev = this.lastSnapshot;
    this.lastSnapshot = snapshot;
    let conntrackFailed = 0;
    let conntrackDeletions = 0;
    const deletions: ConntrackDeletion[] = [];
    if (prev !== undefined) {
      for (const item of staleUdpFlows(prev, snapshot)) deletions.push(item);
    } else if ([...snapshot.servicePorts.values()].some((p) => p.protocol === 'UDP')) {
      // first sync of this process: nothing is known about before, so only flows that nothing
      // DNATed are swept (live, DNATed UDP flows survive a restart)
      for (const family of snapshot.families) {
        const listing = await listUdpConntrack(this.ctx.executor, family, this.ctx.logger);
        for (const item of unhandledUdpFlows(snapshot, family, listing)) deletions.push(item);
      }
    }
    conntrackDeletions = deletions.length;
    conntrackFailed = await clearConntrack(this.ctx.executor, deletions, this.ctx.logger);
    const t3 = performance.now();
    const stats = {
      ...plan.stats,
      renderMs: Math.round((t1 - t0) * 10) / 10,
      nftMs: Math.round((t2 - t1) * 10) / 10,
      conntrackMs: Math.round((t3 - t2) * 10) / 10,
      conntrackDeletions,
      conntrackFailed,
      scriptBytes: plan.script.length,
    };
    this.ctx.logger.info(
      { full: plan.full, services: snapshot.servicePorts.size, elapsedMs: Math.round(t3 - t0), ...stats },
      'nftables sync',
    );
    this.ctx.metrics?.gauge(
      'nftables_sync_elements_added',
      'Elements added by the last nftables sync',
      stats.elementsAdded,
    );
    this.ctx.metrics?.gauge(
      'nftables_sync_elements_deleted',
      'Elements deleted by the last nftables sync',
      stats.elementsDeleted,
    );
    if (stats.skipped > 0)
      this.ctx.metrics?.counter(
        'nftables_skipped_total',
        'Malformed pieces skipped while rendering',
        stats.skipped,
      );
    return { full: plan.full, stats };
  }

  async cleanup(): Promise<void> {
    await applyCleanup(this.ctx.executor, renderCleanup());
    this.state = undefined;
    this.lastSnapshot = undefined;
  }
}
