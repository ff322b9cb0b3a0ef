/**
 * The iptables backend: renders kube-proxy's iptables layout under switchyard's own SY- chains
 * (render.ts) and applies it with `iptables-restore -w 5 --noflush` / `ip6tables-restore`
 * through the Executor. The only edits to built-in chains are the jump rules (jumps.ts), added
 * once and re-checked on full syncs. What was applied is kept in memory, so a partial sync never
 * lists the kernel's tables.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Executor } from '../../backends/exec/executor.js';
import type {
  BackendSupport,
  IPFamily,
  ProxyBackend,
  Snapshot,
  SnapshotDelta,
  SyncResult,
} from '../../core/model/snapshot.js';
import { clearConntrack, staleUdpFlows } from '../../plugins/conntrack/index.js';
import type { BackendContext } from '../../plugins/sdk/index.js';
import { JUMPS, missingJumpLines, presentJumpDeleteLines } from './jumps.js';
import { isOwnChain } from './names.js';
import {
  cleanupLines,
  DEFAULT_BUCKET_MIN,
  deletesDeferred,
  deletionText,
  parseSaveChains,
  renderFamily,
  restoreText,
  withoutDeletes,
  type AppliedFamily,
  type ExistingChains,
  type FamilyRender,
  type RenderOptions,
} from './render.js';
import { detectVariant, toolsFor, type IptablesVariant, type VariantTools } from './variant.js';

/** Runs after every successful sync with the previous and the new snapshot (UDP conntrack cleanup). */
export type AfterSyncHook = (previous: Snapshot | undefined, next: Snapshot) => Promise<void>;

export interface IptablesBackendDeps {
  /** Post-sync hook; default: the shared UDP conntrack cleanup (plugins/conntrack). */
  readonly afterSync?: AfterSyncHook;
}

const WAIT = ['-w', '5'];

/** `--backend-opt` key: from how many Service ports of a family on the nat dispatch is bucketed. */
export const BUCKET_MIN_OPTION = 'iptables.dispatch-bucket-min';

/**
 * `--backend-opt iptables.dispatch-bucket-min=N` (a non-negative integer, or `never`); anything
 * else is logged and the default (DEFAULT_BUCKET_MIN) used.
 */
export function bucketMinOption(options: Readonly<Record<string, string>>, logger: Logger): number {
  const raw = options[BUCKET_MIN_OPTION];
  if (raw === undefined) return DEFAULT_BUCKET_MIN;
  if (raw.trim() === 'never') return Number.POSITIVE_INFINITY;
  const n = Number(raw);
  if (raw.trim() !== '' && Number.isInteger(n) && n >= 0) return n;
  logger.warn(
    { option: BUCKET_MIN_OPTION, value: raw },
    `ignoring invalid ${BUCKET_MIN_OPTION}; using ${DEFAULT_BUCKET_MIN}`,
  );
  return DEFAULT_BUCKET_MIN;
}

/** The built-in chains holding our jumps, once each. */
const JUMP_CHAINS: readonly { table: 'nat' | 'filter'; chain: string }[] = [
  ...new Map(JUMPS.map((j) => [`${j.table} ${j.chain}`, { table: j.table, chain: j.chain }])).values(),
];

const FULL_DELTA: SnapshotDelta = { full: true, changed: new Set(), removed: new Set() };

export class IptablesBackend implements ProxyBackend {
  readonly name = 'iptables';
  private readonly executor: Executor;
  private readonly logger: Logger;
  private readonly options: RenderOptions;
  private variantChoice?: { variant: IptablesVariant; reason: string };
  /** What was last applied, per family; absent → the next sync of that family is full. */
  private readonly applied = new Map<IPFamily, AppliedFamily>();
  private lastSnapshot?: Snapshot;
  private readonly afterSync: AfterSyncHook;
  /** endpoint chain names by `${servicePortId}|${ip}|${port}`, per family; rebuilt on every full sync. */
  private readonly nameCache = new Map<IPFamily, Map<string, string>>();

  constructor(
    private readonly ctx: BackendContext,
    deps: IptablesBackendDeps = {},
  ) {
    this.executor = ctx.executor;
    this.logger = ctx.logger;
    this.afterSync =
      deps.afterSync ??
      (async (previous, next): Promise<void> => {
        const deletions = staleUdpFlows(previous, next);
        if (deletions.length === 0) return;
        const failed = await clearConntrack(this.executor, deletions, this.logger);
        this.ctx.metrics.counter(
          'conntrack_cleanup_failures_total',
          'conntrack -D calls that failed',
          failed,
        );
      });
    this.options = {
      masqueradeBit: ctx.config.masqueradeBit,
      localhostNodePorts: ctx.config.iptables.localhostNodePorts,
      dispatchBucketMin: bucketMinOption(ctx.config.backendOptions, this.logger),
    };
  }

  /** The variant in use (detected on first use unless configured). */
  async variant(): Promise<IptablesVariant> {
    if (!this.variantChoice) {
      const configured = this.ctx.config.iptables.variant;
      this.variantChoice =
        configured === 'auto'
          ? await detectVariant(this.executor)
          : { variant: configured, reason: 'set by configuration' };
      this.logger.info(
        { variant: this.variantChoice.variant, reason: this.variantChoice.reason },
        `using iptables-${this.variantChoice.variant}`,
      );
      this.ctx.metrics.gauge(
        'iptables_variant_info',
        'The iptables variant switchyard programs (legacy or nft); always 1',
        1,
        { variant: this.variantChoice.variant },
      );
    }
    return this.variantChoice.variant;
  }

  async probe(): Promise<BackendSupport> {
    const found: Record<string, string> = {};
    for (const v of ['legacy', 'nft'] as const) {
      for (const family of ['IPv4', 'IPv6'] as const) {
        const tool = toolsFor(v, family).restore;
        try {
          const r = await this.executor.run(tool, ['--version'], { allowFailure: true, timeoutMs: 10_000 });
          found[tool] = r.code === 0 ? (r.stdout.trim().split('\n')[0] ?? 'present') : 'unusable';
        } catch {
          found[tool] = 'missing';
        }
      }
    }
    const usable = (v: IptablesVariant): boolean => {
      const s = found[toolsFor(v, 'IPv4').restore];
      return s !== undefined && s !== 'missing' && s !== 'unusable';
    };
    if (!usable('legacy') && !usable('nft')) {
      return {
        supported: false,
        reason: 'neither iptables-legacy-restore nor iptables-nft-restore can run',
        details: found,
      };
    }
    const configured = this.ctx.config.iptables.variant;
    if (configured !== 'auto' && !usable(configured)) {
      return { supported: false, reason: `iptables-${configured}-restore cannot run`, details: found };
    }
    const variant = await this.variant();
    return {
      supported: usable(variant),
      reason: usable(variant) ? undefined : `iptables-${variant}-restore cannot run`,
      details: { ...found, iptables: variant },
    };
  }

  async sync(snapshot: Snapshot, delta: SnapshotDelta): Promise<SyncResult> {
    const start = performance.now();
    const variant = await this.variant();
    let full = delta.full;
    let renderMs = 0;
    let restoreMs = 0;
    let natRules = 0;
    let filterRules = 0;
    let servicePortsWritten = 0;
    let dispatchChainsWritten = 0;
    let chainsDeleted = 0;
    let fallbacks = 0;

    for (const family of snapshot.families) {
      const r = await this.syncFamily(snapshot, family, delta, toolsFor(variant, family));
      full = full || r.render.full;
      renderMs += r.renderMs;
      restoreMs += r.restoreMs;
      natRules += r.render.applied.natRules;
      filterRules += r.render.applied.filterRules;
      servicePortsWritten += r.render.stats.servicePortsWritten;
      dispatchChainsWritten += r.render.stats.dispatchChainsWritten;
      chainsDeleted += r.render.stats.chainsDeleted;
      if (r.fellBack) fallbacks++;
    }
    // A family this node no longer programs: remove its rules.
    for (const family of [...this.applied.keys()]) {
      if (!snapshot.families.includes(family)) {
        await this.cleanupFamily(toolsFor(variant, family));
        this.applied.delete(family);
      }
    }

    this.ctx.metrics.gauge(
      'kubeproxy_sync_proxy_rules_iptables_total',
      'Number of iptables rules owned by switchyard',
      natRules,
      { table: 'nat' },
    );
    this.ctx.metrics.gauge(
      'kubeproxy_sync_proxy_rules_iptables_total',
      'Number of iptables rules owned by switchyard',
      filterRules,
      { table: 'filter' },
    );

    const previous = this.lastSnapshot;
    this.lastSnapshot = snapshot;
    try {
      await this.afterSync(previous, snapshot);
    } catch (e) {
      this.logger.warn({ err: e }, 'post-sync conntrack cleanup failed');
    }

    const elapsedMs = performance.now() - start;
    const stats: Record<string, number> = {
      servicePorts: snapshot.servicePorts.size,
      natRules,
      filterRules,
      servicePortsWritten,
      dispatchChainsWritten,
      chainsDeleted,
      renderMs,
      restoreMs,
      ownMs: elapsedMs - restoreMs,
      fallbacks,
      [full ? 'fullSyncMs' : 'partialSyncMs']: elapsedMs,
    };
    this.logger.info({ full, variant, ...stats, elapsedMs }, full ? 'full sync done' : 'partial sync done');
    return { full, stats };
  }

  private async syncFamily(
    snapshot: Snapshot,
    family: IPFamily,
    delta: SnapshotDelta,
    tools: VariantTools,
  ): Promise<{ render: FamilyRender; renderMs: number; restoreMs: number; fellBack: boolean }> {
    const log = this.logger.child({ ipFamily: family });
    const last = this.applied.get(family);
    let renderMs = 0;
    let restoreMs = 0;
    let fellBack = false;
    if (!delta.full && last) {
      let t = performance.now();
      let names = this.nameCache.get(family);
      if (!names) this.nameCache.set(family, (names = new Map()));
      const r = renderFamily(snapshot, family, delta, last, { ...this.options, names });
      renderMs += performance.now() - t;
      t = performance.now();
      try {
        // Empty when nothing rendered differently from what was applied: no restore at all.
        const deferred = deletesDeferred(r);
        const text = restoreText(deferred ? withoutDeletes(r) : r);
        if (text !== '') await this.restore(tools, text);
        this.applied.set(family, r.applied);
        if (deferred) await this.deleteDeferred(tools, family, r, log);
        restoreMs += performance.now() - t;
        return { render: r, renderMs, restoreMs, fellBack };
      } catch (e) {
        restoreMs += performance.now() - t;
        fellBack = true;
        this.applied.delete(family);
        log.warn({ err: e }, 'partial iptables-restore failed; falling back to a full sync');
      }
    }
    let t = performance.now();
    // The first full sync (and the one after a failure) lists both tables: our chains left by an
    // earlier run get deleted. Later full syncs know what they applied, so they list only the
    // built-in chains our jumps live in: `iptables-nft-save -t nat` takes 13 s at 10k Services
    // (450k rules), `-S PREROUTING` 6 ms.
    const { existing, saves } =
      (last && !fellBack && (await this.listJumpChains(tools))) || (await this.listKernel(tools));
    // The jump rules are checked in that listing (one `-C` per jump would load a large legacy
    // table 13 times) and inserted in the same restore as our chains.
    const jumps = missingJumpLines(saves);
    restoreMs += performance.now() - t;
    t = performance.now();
    // A fresh cache that reuses the old one's entries: stale names are dropped on full syncs.
    const old = this.nameCache.get(family);
    const fresh = new Map<string, string>();
    const names = {
      get: (k: string): string | undefined => {
        const hit = fresh.get(k) ?? old?.get(k);
        if (hit !== undefined) fresh.set(k, hit);
        return hit;
      },
      set: (k: string, v: string): void => void fresh.set(k, v),
    };
    const r = renderFamily(snapshot, family, FULL_DELTA, last, { ...this.options, names }, existing);
    renderMs += performance.now() - t;
    t = performance.now();
    const deferred = deletesDeferred(r);
    try {
      await this.restore(tools, restoreText(deferred ? withoutDeletes(r) : r, jumps));
    } catch (e) {
      this.applied.delete(family);
      restoreMs += performance.now() - t;
      throw e;
    }
    this.applied.set(family, r.applied);
    if (deferred) await this.deleteDeferred(tools, family, r, log);
    restoreMs += performance.now() - t;
    this.nameCache.set(family, fresh);
    if (jumps.nat.length + jumps.filter.length > 0)
      log.info(
        { inserted: jumps.nat.length + jumps.filter.length },
        'inserted jump rules into built-in chains',
      );
    return { render: r, renderMs, restoreMs, fellBack };
  }

  private async restore(tools: VariantTools, text: string): Promise<void> {
    await this.executor.run(tools.restore, [...WAIT, '--noflush'], { stdin: text, timeoutMs: 600_000 });
  }

  /** Our chains in the kernel and each table's save output (full syncs and cleanup only). */
  /**
   * Deletes the chains a render left unreferenced, in a restore of their own (see
   * deletesDeferred). When that fails the chains stay, unused; the family's applied state is
   * dropped so that the next sync is full and lists the kernel, which deletes them.
   */
  private async deleteDeferred(
    tools: VariantTools,
    family: IPFamily,
    r: FamilyRender,
    log: Logger,
  ): Promise<void> {
    try {
      await this.restore(tools, deletionText(r));
    } catch (e) {
      this.applied.delete(family);
      log.warn(
        { err: e, chains: r.parts.natDeletes.length + r.parts.filterDeletes.length },
        'deleting unused chains failed; the next sync is full',
      );
    }
  }

  /**
   * The rules of the built-in chains our jumps live in (`-S CHAIN` per chain), as save text per
   * table; undefined when a listing fails (the caller then lists everything).
   */
  private async listJumpChains(
    tools: VariantTools,
  ): Promise<{ existing?: ExistingChains; saves: { nat: string; filter: string } } | undefined> {
    const saves = { nat: '', filter: '' };
    for (const { table, chain } of JUMP_CHAINS) {
      const r = await this.executor.run(tools.iptables, ['-w', '5', '-t', table, '-S', chain], {
        allowFailure: true,
        timeoutMs: 60_000,
      });
      if (r.code !== 0) return undefined;
      saves[table] += r.stdout;
    }
    return { saves };
  }

  private async listKernel(
    tools: VariantTools,
  ): Promise<{ existing: ExistingChains; saves: { nat: string; filter: string } }> {
    const existing: { nat: Set<string>; filter: Set<string> } = { nat: new Set(), filter: new Set() };
    const saves = { nat: '', filter: '' };
    for (const table of ['nat', 'filter'] as const) {
      const r = await this.executor.run(tools.save, ['-t', table], {
        allowFailure: true,
        timeoutMs: 300_000,
      });
      if (r.code !== 0) continue;
      saves[table] = r.stdout;
      for (const c of parseSaveChains(r.stdout).get(table) ?? []) if (isOwnChain(c)) existing[table].add(c);
    }
    return { existing, saves };
  }

  /**
   * Remove our jumps and every SY- chain of one variant and family in one restore (jumps deleted
   * first, then our chains flushed and deleted); touches nothing else.
   */
  private async cleanupFamily(tools: VariantTools): Promise<void> {
    const { existing, saves } = await this.listKernel(tools);
    const deletes = presentJumpDeleteLines(saves);
    const lines: string[] = [];
    for (const table of ['nat', 'filter'] as const) {
      const chains = [...existing[table]];
      if (chains.length === 0 && deletes[table].length === 0) continue;
      lines.push(`*${table}`);
      for (const l of cleanupLines(chains, deletes[table])) lines.push(l);
      lines.push('COMMIT');
    }
    if (lines.length === 0) return;
    lines.push('');
    await this.restore(tools, lines.join('\n'));
  }

  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    for (const variant of ['legacy', 'nft'] as const) {
      for (const family of ['IPv4', 'IPv6'] as const) {
        const tools = toolsFor(variant, family);
        try {
          const present = await this.executor.run(tools.restore, ['--version'], { allowFailure: true });
          if (present.code !== 0) continue;
        } catch {
          continue; // binary missing
        }
        try {
          await this.cleanupFamily(tools);
        } catch (e) {
          errors.push(e);
          this.logger.warn({ err: e, variant, ipFamily: family }, 'iptables cleanup failed');
        }
      }
    }
    this.applied.clear();
    this.lastSnapshot = undefined;
    if (errors.length > 0) throw errors[0];
  }
}
