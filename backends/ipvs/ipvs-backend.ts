/**
 * The IPVS backend (`--proxy-mode=ipvs`): kube-proxy's IPVS mode. See render.ts for the layout.
 *
 * A sync runs, in this order, so traffic never meets a half-built state:
 *   1. `ipset restore -exist`   set creation (full syncs) and new members
 *   2. `ip -batch -`            new Service IPs on the dummy interface
 *   3. `ipvsadm --restore`      virtual and real servers (adds, edits, weight-0 drains, deletes)
 *   4. `iptables-restore`       our fixed chains + jumps (full syncs only: they hold no Service)
 *   5. `ipset restore -exist`   removed members
 *   6. `ip -batch -`            removed Service IPs
 * then removes drained real servers that have no connection left, and clears stale UDP
 * conntrack entries (plugins/conntrack).
 *
 * Full syncs list the kernel (IPVS, our ipsets, addresses) and diff against it; partial syncs
 * diff against what this process applied last and never list anything.
 */
import { performance } from 'node:perf_hooks';
import type { BackendContext } from '../../plugins/sdk/index.js';
import type {
  BackendSupport,
  IPFamily,
  ProxyBackend,
  Snapshot,
  SnapshotDelta,
  SyncResult,
} from '../../core/model/snapshot.js';
import { clearConntrack, staleUdpFlows } from '../../plugins/conntrack/index.js';
import {
  applyAddresses,
  applyIpset,
  applyIptables,
  applyIpvs,
  iptablesTools,
  readKernelState,
  saveIptables,
} from './apply.js';
import { parseConnections } from './kernel-state.js';
import { IPVS_INTERFACE, SCHEDULERS, isOwnName } from './names.js';
import {
  planSync,
  renderIptablesCleanup,
  renderIptablesSync,
  renderRemoveReals,
  selectNodePortIPs,
  serviceSpec,
  withoutDrained,
  type IpvsState,
} from './render.js';

/** At most this many virtual servers are checked for drained real servers per sync. */
const DRAIN_CHECKS_PER_SYNC = 64;

/** conn_reuse_mode=0 is only needed before kernel 5.9 (kube-proxy: the 1 s delay bug is fixed there). */
export function needsConnReuseModeZero(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release.trim());
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major < 5 || (major === 5 && minor < 9);
}

export class IpvsBackend implements ProxyBackend {
  readonly name = 'ipvs';
  private state: IpvsState | undefined;
  private lastSnapshot: Snapshot | undefined;
  private nodePrepared = false;

  constructor(private readonly ctx: BackendContext) {}

  /** The configured scheduler ('' → rr, as kube-proxy). */
  scheduler(): string {
    const s = this.ctx.config?.ipvs?.scheduler?.trim() ?? '';
    return s === '' ? 'rr' : s;
  }

  async probe(): Promise<BackendSupport> {
    const x = this.ctx.executor;
    const details: Record<string, string> = {};
    const scheduler = this.scheduler();
    if (!(SCHEDULERS as readonly string[]).includes(scheduler)) {
      return {
        supported: false,
        reason: `unknown IPVS scheduler "${scheduler}" (accepted: ${SCHEDULERS.join(', ')})`,
      };
    }
    // Load the module if it is there (as kube-proxy does); a missing modprobe is fine.
    try {
      await x.run('modprobe', ['-q', 'ip_vs'], { allowFailure: true, timeoutMs: 10_000 });
    } catch {
      // no modprobe
    }
    const procIpvs = await this.tryRun('cat', ['/proc/net/ip_vs']);
    if (procIpvs.code !== 0) {
      return {
        supported: false,
        reason: `the kernel has no IPVS: /proc/net/ip_vs is missing (CONFIG_IP_VS unset or module ip_vs cannot be loaded: ${firstLine(procIpvs.stderr) || 'not found'})`,
      };
    }
    const ipvsadm = await this.tryRun('ipvsadm', ['-Ln']);
    if (ipvsadm.code !== 0) {
      return {
        supported: false,
        reason: `ipvsadm cannot talk to the kernel's IPVS: ${firstLine(ipvsadm.stderr) || `exit ${ipvsadm.code}`}`,
      };
    }
    const version = await this.tryRun('ipvsadm', ['--version']);
    details.ipvsadm = /v(\d+\.\d+)/.exec(version.stdout)?.[1] ?? 'present';
    const ipset = await this.tryRun('ipset', ['version']);
    if (ipset.code !== 0)
      return {
        supported: false,
        reason: `ipset cannot run: ${firstLine(ipset.stderr) || 'not found'}`,
        details,
      };
    details.ipset = /v(\d+(\.\d+)*)/.exec(ipset.stdout)?.[1] ?? 'present';
    for (const family of ['IPv4', 'IPv6'] as const) {
      const tool = iptablesTools(family).restore;
      const r = await this.tryRun(tool, ['--version']);
      details[tool] = r.code === 0 ? firstLine(r.stdout) : 'missing';
      if (family === 'IPv4' && r.code !== 0)
        return { supported: false, reason: `${tool} cannot run`, details };
    }
    details.scheduler = scheduler;
    return { supported: true, details };
  }

  private async tryRun(
    cmd: string,
    args: string[],
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      return await this.ctx.executor.run(cmd, args, { allowFailure: true, timeoutMs: 15_000 });
    } catch (e) {
      return { code: 127, stdout: '', stderr: e instanceof Error ? e.message : String(e) };
    }
  }

  /** Sysctls kube-proxy sets for IPVS mode (once per process). */
  private async prepareNode(families: readonly IPFamily[]): Promise<void> {
    if (this.nodePrepared) return;
    const x = this.ctx.executor;
    const settings = [
      'net.ipv4.vs.conntrack=1',
      'net.ipv4.vs.expire_nodest_conn=1',
      'net.ipv4.vs.expire_quiescent_template=1',
      'net.ipv4.ip_forward=1',
    ];
    if (families.includes('IPv6')) settings.push('net.ipv6.conf.all.forwarding=1');
    const release = await this.tryRun('uname', ['-r']);
    if (release.code === 0 && needsConnReuseModeZero(release.stdout))
      settings.push('net.ipv4.vs.conn_reuse_mode=0');
    if (this.ctx.config?.ipvs?.strictARP)
      settings.push('net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2');
    await x.run('sysctl', ['-q', '-w', ...settings]);
    const t = this.ctx.config?.ipvs;
    if (t && (t.tcpTimeoutMs > 0 || t.tcpFinTimeoutMs > 0 || t.udpTimeoutMs > 0)) {
      const sec = (ms: number): string => String(Math.round(ms / 1000));
      await x.run('ipvsadm', ['--set', sec(t.tcpTimeoutMs), sec(t.tcpFinTimeoutMs), sec(t.udpTimeoutMs)]);
    }
    this.nodePrepared = true;
  }

  async sync(snapshot: Snapshot, delta: SnapshotDelta): Promise<SyncResult> {
    const x = this.ctx.executor;
    const t0 = performance.now();
    const scheduler = this.scheduler();
    const last = this.state;
    const full =
      delta.full ||
      last === undefined ||
      last.scheduler !== scheduler ||
      last.families.join() !== snapshot.families.join();
    let kernel;
    let listMs = 0;
    if (full) {
      await this.prepareNode(snapshot.families);
      kernel = await readKernelState(x);
      if (!kernel.interfaceExists) await x.run('ip', ['link', 'add', IPVS_INTERFACE, 'type', 'dummy']);
      listMs = performance.now() - t0;
    }
    const nodePortIPs = kernel ? selectNodePortIPs(snapshot, kernel.localAddresses) : last!.nodePortIPs;
    const t1 = performance.now();
    const plan = planSync(snapshot, delta, full ? undefined : last, kernel, { scheduler, nodePortIPs });
    const t2 = performance.now();
    try {
      await applyIpset(x, plan.ipsetAdd);
      await applyAddresses(x, plan.addressAdd);
      await applyIpvs(x, plan.ipvs);
      if (full) {
        for (const family of snapshot.families) {
          const options = {
            masqueradeBit: this.ctx.config?.masqueradeBit ?? 14,
            masqueradeAll: snapshot.masqueradeAll,
            clusterCIDRs: snapshot.clusterCIDRs[family],
            ...(snapshot.localInterface ? { localInterface: snapshot.localInterface } : {}),
          };
          await applyIptables(x, family, renderIptablesSync(family, options, await saveIptables(x, family)));
        }
      }
      await applyIpset(x, plan.ipsetDel);
      await applyAddresses(x, plan.addressDel);
    } catch (e) {
      // part of it may be applied: forget what we know, the next (full) sync lists the kernel
      this.state = undefined;
      this.lastSnapshot = undefined;
      throw e;
    }
    const t3 = performance.now();
    this.state = plan.commit();
    const drained = await this.removeDrained();
    const prev = this.lastSnapshot;
    this.lastSnapshot = snapshot;
    let conntrackDeletions = 0;
    let conntrackFailed = 0;
    if (prev !== undefined) {
      const deletions = staleUdpFlows(prev, snapshot);
      conntrackDeletions = deletions.length;
      conntrackFailed = await clearConntrack(x, deletions, this.ctx.logger);
    }
    const t4 = performance.now();
    const round = (n: number): number => Math.round(n * 10) / 10;
    const stats: Record<string, number> = {
      ...plan.stats,
      realServersRemovedAfterDrain: drained,
      listMs: round(listMs),
      renderMs: round(t2 - t1),
      applyMs: round(t3 - t2),
      conntrackMs: round(t4 - t3),
      conntrackDeletions,
      conntrackFailed,
      ipvsLines: plan.ipvs === '' ? 0 : plan.ipvs.split('\n').length - 1,
    };
    this.ctx.logger?.info(
      { full: plan.full, services: snapshot.servicePorts.size, elapsedMs: Math.round(t4 - t0), ...stats },
      'ipvs sync',
    );
    this.ctx.metrics?.gauge(
      'ipvs_virtual_servers',
      'IPVS virtual servers switchyard programs',
      plan.stats.virtualServers ?? 0,
    );
    this.ctx.metrics?.gauge(
      'ipvs_real_servers',
      'IPVS real servers switchyard programs (draining ones included)',
      plan.stats.realServers ?? 0,
    );
    if ((plan.stats.skipped ?? 0) > 0)
      this.ctx.metrics?.counter(
        'ipvs_skipped_total',
        'Malformed pieces skipped while rendering',
        plan.stats.skipped,
      );
    return { full: plan.full, stats };
  }

  /**
   * Real servers at weight 0 (endpoints gone from a TCP/SCTP Service) are removed once IPVS
   * shows no active or inactive connection for them. Checked at every sync; a failure here is
   * logged and retried at the next sync, it never fails the sync.
   */
  private async removeDrained(): Promise<number> {
    const state = this.state;
    if (!state || state.draining.size === 0) return 0;
    const x = this.ctx.executor;
    const removed = new Map<string, Set<string>>();
    const lines: string[] = [];
    try {
      for (const [key, reals] of [...state.draining].slice(0, DRAIN_CHECKS_PER_SYNC)) {
        const vs = state.virtualServers.get(key);
        if (!vs) continue;
        const r = await x.run('ipvsadm', ['-Ln', ...serviceSpec(vs).split(' ')], { allowFailure: true });
        if (r.code !== 0) continue;
        const conns = parseConnections(r.stdout).get(key);
        const done = new Set<string>();
        for (const rk of reals) {
          const c = conns?.get(rk);
          if (c === undefined || c.active + c.inactive === 0) done.add(rk);
        }
        if (done.size === 0) continue;
        removed.set(key, done);
        lines.push(
          ...renderRemoveReals(
            vs,
            [...done].filter((rk) => conns?.has(rk)),
          ),
        );
      }
      if (lines.length > 0) await applyIpvs(x, lines.join('\n') + '\n');
    } catch (e) {
      this.ctx.logger?.warn({ err: e }, 'removing drained IPVS real servers failed; will retry');
      return 0;
    }
    this.state = withoutDrained(state, removed);
    return lines.length;
  }

  async cleanup(): Promise<void> {
    const x = this.ctx.executor;
    const errors: unknown[] = [];
    const attempt = async (what: string, f: () => Promise<void>): Promise<void> => {
      try {
        await f();
      } catch (e) {
        errors.push(e);
        this.ctx.logger?.warn({ err: e }, `ipvs cleanup: ${what} failed`);
      }
    };
    let kernel;
    try {
      kernel = await readKernelState(x);
    } catch (e) {
      // no ipvsadm or no IPVS: nothing of IPVS can be ours; still remove rules, sets, interface
      this.ctx.logger?.debug?.({ err: e }, 'ipvs cleanup: cannot list IPVS');
    }
    if (kernel && kernel.virtualServers.size > 0) {
      const script =
        [...kernel.virtualServers.values()].map((vs) => `-D ${serviceSpec(vs)}`).join('\n') + '\n';
      await attempt('deleting virtual servers', () => applyIpvs(x, script));
    }
    for (const family of ['IPv4', 'IPv6'] as const) {
      await attempt(`${family} iptables`, async () => {
        const script = renderIptablesCleanup(await saveIptables(x, family));
        if (script !== '') await applyIptables(x, family, script);
      });
    }
    let sets = kernel ? [...kernel.sets] : [];
    let interfaceExists = kernel?.interfaceExists ?? false;
    if (!kernel) {
      const list = await this.tryRun('ipset', ['list', '-n']);
      sets =
        list.code === 0
          ? list.stdout
              .split('\n')
              .map((l) => l.trim())
              .filter(isOwnName)
          : [];
      interfaceExists = (await this.tryRun('ip', ['-o', 'link', 'show', 'dev', IPVS_INTERFACE])).code === 0;
    }
    if (sets.length > 0) {
      await attempt('destroying ipsets', () =>
        applyIpset(x, sets.map((s) => `destroy ${s}`).join('\n') + '\n'),
      );
    }
    if (interfaceExists)
      await attempt(
        'deleting the interface',
        async () => void (await x.run('ip', ['link', 'del', IPVS_INTERFACE])),
      );
    this.state = undefined;
    this.lastSnapshot = undefined;
    this.nodePrepared = false;
    if (errors.length > 0) throw errors[0];
  }
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
