/**
 * `--proxy-mode=userspace`: Service traffic is relayed by this process. The kernel's part is
 * one small nftables table per family (render.ts) that steers each frontend to a local
 * listening socket; the matcher (matcher/src) picks the endpoint of every new TCP connection or
 * UDP flow, keeps session affinity and the flow table. Built only on the public SDK.
 */
import { networkInterfaces } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createMatcher, parseIP, type Matcher } from '../../matcher/src/index.js';
import type {
  BackendContext,
  BackendSupport,
  IPFamily,
  ProxyBackend,
  Snapshot,
  SnapshotDelta,
  SyncResult,
} from '../sdk/index.js';
import { BufferPool, type BufferPoolOptions } from './buffer-pool.js';
import { frontendsOf, type Frontend } from './frontends.js';
import type { RelayContext } from './relay-context.js';
import { renderCleanup, renderTable } from './render.js';
import { TcpFrontend } from './tcp-frontend.js';
import { UdpFrontend } from './udp-frontend.js';

export const USERSPACE_BACKEND_NAME = 'userspace';

/** kube-proxy's old userspace proxier dial timeouts: one per endpoint tried. */
export const DEFAULT_CONNECT_TIMEOUTS_MS: readonly number[] = [250, 500, 1000, 2000];

export interface UserspaceOptions {
  /** The matcher to use (default: createMatcher(), WebAssembly or the reference). */
  readonly matcher?: Matcher;
  /** Where listeners bind, per family (default 0.0.0.0 and ::). */
  readonly listenHosts?: Partial<Readonly<Record<IPFamily, string>>>;
  readonly connectTimeoutsMs?: readonly number[];
  /**
   * TCP connections to an endpoint that left the snapshot are closed after this long; 0 (the
   * default, as the kernel backends) lets them run until either side closes.
   * `--backend-opt userspace.drain-timeout-ms=N`.
   */
  readonly drainTimeoutMs?: number;
  /** How often expired UDP flows are closed (default 1000 ms). */
  readonly sweepIntervalMs?: number;
  /**
   * New connections and flows are counted in memory and added to the metrics this long after
   * the first uncounted one (default 1000 ms; 0: at once).
   */
  readonly metricsFlushMs?: number;
  /** Read buffers of the TCP relay (sizes, how many large ones at most). */
  readonly buffers?: BufferPoolOptions;
  /**
   * Accepted client sockets read into the relay's own buffers as upstream sockets do (default
   * true; false: Node's 64 KiB reads and 'data' events for the client → endpoint direction).
   */
  readonly onreadAccepted?: boolean;
  readonly now?: () => number;
}

type AnyFrontend = TcpFrontend | UdpFrontend;

/** The addresses of this process's network namespace (without IPv6 zone ids). */
function localAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.address.split('%')[0] ?? a.address);
  }
  return out;
}

/** argv for `conntrack` deleting the UDP flows whose original destination is this frontend. */
export function conntrackDeleteArgs(f: Frontend): string[] {
  const args = ['-D', '-f', f.family === 'IPv4' ? 'ipv4' : 'ipv6', '-p', 'udp'];
  if (f.address !== '*') args.push('--orig-dst', f.address);
  args.push('--orig-port-dst', String(f.port));
  return args;
}

export class UserspaceBackend implements ProxyBackend {
  readonly name = USERSPACE_BACKEND_NAME;
  private matcherInstance: Matcher | undefined;
  private readonly frontends = new Map<string, { readonly server: AnyFrontend; readonly port: number }>();
  /** Removed TCP frontends whose connections still drain. */
  private readonly retired = new Set<TcpFrontend>();
  private nodeAddresses = new Set<string>(['127.0.0.1', '::1']);
  private primary: Partial<Record<IPFamily, string>> = {};
  private eligible = new Map<string, Set<string>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly relay: RelayContext;
  private readonly drainTimeoutMs: number;
  private programmedFamilies = new Set<IPFamily>();
  /** `${protocol}|${outcome}` → new connections / flows not yet added to the metrics. */
  private readonly uncounted = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: BackendContext,
    private readonly options: UserspaceOptions = {},
  ) {
    this.matcherInstance = options.matcher;
    const opt = Number(ctx.config.backendOptions['userspace.drain-timeout-ms'] ?? NaN);
    this.drainTimeoutMs = options.drainTimeoutMs ?? (Number.isFinite(opt) && opt >= 0 ? opt : 0);
    const now = options.now ?? ((): number => performance.now());
    this.relay = {
      matcher: (): Matcher => {
        if (this.matcherInstance === undefined)
          throw new Error('userspace backend used before its first sync');
        return this.matcherInstance;
      },
      now,
      isNodeAddress: (ip) => this.nodeAddresses.has(ip) || ip.startsWith('127.'),
      nodeAddress: (family) => this.primary[family],
      connectTimeoutsMs: options.connectTimeoutsMs ?? DEFAULT_CONNECT_TIMEOUTS_MS,
      logger: ctx.logger,
      count: (protocol, outcome): void => this.count(protocol, outcome),
      buffers: new BufferPool(options.buffers),
      onreadAccepted: options.onreadAccepted ?? true,
    };
  }

  private count(protocol: 'TCP' | 'UDP', outcome: string): void {
    const key = `${protocol}|${outcome}`;
    this.uncounted.set(key, (this.uncounted.get(key) ?? 0) + 1);
    const delay = this.options.metricsFlushMs ?? 1000;
    if (delay <= 0) this.flushCounts();
    else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flushCounts(), delay);
      this.flushTimer.unref();
    }
  }

  /** Add the connections and flows counted since the last flush to the metrics. */
  private flushCounts(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const [key, n] of this.uncounted) {
      const [protocol = '', outcome = ''] = key.split('|');
      this.ctx.metrics.counter('userspace_flows_total', 'New TCP connections and UDP flows by outcome.', n, {
        protocol,
        outcome,
      });
    }
    this.uncounted.clear();
  }

  async probe(): Promise<BackendSupport> {
    const r = await this.ctx.executor
      .run('nft', ['--version'], { allowFailure: true })
      .catch((e: unknown) => ({
        code: -1,
        stdout: '',
        stderr: e instanceof Error ? e.message : String(e),
      }));
    if (r.code !== 0)
      return { supported: false, reason: `nft is not usable: ${r.stderr.trim() || `exit ${r.code}`}` };
    const version = /v(\d+\.\d+(?:\.\d+)?)/.exec(r.stdout)?.[1] ?? 'unknown';
    return { supported: true, details: { nft: version, sockets: 'node' } };
  }

  /** Listener port by frontend key (tests, diagnostics). */
  listenerPorts(): ReadonlyMap<string, number> {
    return new Map([...this.frontends].map(([k, v]) => [k, v.port]));
  }

  /** The TCP relay's read buffers (tests, diagnostics). */
  get relayBuffers(): BufferPool {
    return this.relay.buffers;
  }

  /** The matcher (after the first sync). */
  get matcher(): Matcher | undefined {
    return this.matcherInstance;
  }

  async sync(snapshot: Snapshot, _delta: SnapshotDelta): Promise<SyncResult> {
    const started = performance.now();
    this.matcherInstance ??= await createMatcher({
      logger: this.ctx.logger,
      flowTimeouts: {
        tcpMs: this.ctx.config.conntrack.tcpEstablishedTimeoutMs || 86_400_000,
        udpMs: this.ctx.config.conntrack.udpTimeoutMs || 30_000,
      },
    });
    const set = frontendsOf(snapshot);
    const wanted = new Map<string, Frontend>();
    for (const f of set.frontends) if (f.listen) wanted.set(f.key, f);

    // 1. Listeners for new frontends (a frontend whose listener fails is left out, not fatal).
    let listenFailures = 0;
    /** UDP frontends whose listener changes: their conntrack entries go elsewhere now. */
    const udpMoved: Frontend[] = [];
    for (const [key, f] of wanted) {
      if (this.frontends.has(key)) continue;
      if (f.protocol === 'UDP') udpMoved.push(f);
      const server = f.protocol === 'TCP' ? new TcpFrontend(f, this.relay) : new UdpFrontend(f, this.relay);
      const host = this.options.listenHosts?.[f.family] ?? (f.family === 'IPv4' ? '0.0.0.0' : '::');
      try {
        const port = await server.listen(host);
        this.frontends.set(key, { server, port });
      } catch (e) {
        listenFailures++;
        this.ctx.logger.error(
          { frontend: key, err: (e as Error).message },
          'cannot open a listener for this frontend',
        );
      }
    }

    // 2. The matcher takes the new table before the kernel sends traffic to new listeners.
    const loaded = this.matcherInstance.load(snapshot);
    // The node's own traffic is told apart by its source: any address of this network
    // namespace (what kube-proxy's `fib saddr type local` matches), and the Node's IPs.
    this.nodeAddresses = new Set([
      ...localAddresses(),
      '127.0.0.1',
      '::1',
      ...snapshot.nodeIPs.IPv4,
      ...snapshot.nodeIPs.IPv6,
    ]);
    this.primary = {
      ...(snapshot.nodeIPs.IPv4[0] !== undefined ? { IPv4: snapshot.nodeIPs.IPv4[0] } : {}),
      ...(snapshot.nodeIPs.IPv6[0] !== undefined ? { IPv6: snapshot.nodeIPs.IPv6[0] } : {}),
    };

    // 3. One atomic nft run for every family.
    const ports = new Map([...this.frontends].map(([k, v]) => [k, v.port]));
    let elements = 0;
    let text = '';
    for (const family of snapshot.families) {
      const r = renderTable({
        family,
        frontends: set.frontends,
        listenerPorts: ports,
        clusterIPs: set.clusterIPs[family],
        clusterCIDRs: snapshot.clusterCIDRs[family].filter(
          (c) => parseIP(c.split('/')[0] ?? '') !== undefined,
        ),
      });
      text += r.text;
      elements += r.elements;
    }
    const stale = [...this.programmedFamilies].filter((f) => !snapshot.families.includes(f));
    if (stale.length > 0) text += renderCleanup(stale);
    if (text !== '') await this.ctx.executor.run('nft', ['-f', '-'], { stdin: text });
    this.programmedFamilies = new Set(snapshot.families);

    // 4. Listeners no longer wanted: UDP closes, TCP stops accepting and drains.
    for (const [key, v] of [...this.frontends]) {
      if (wanted.has(key)) continue;
      this.frontends.delete(key);
      if (v.server instanceof UdpFrontend) udpMoved.push(v.server.frontend);
      if (v.server instanceof TcpFrontend) {
        v.server.stopListening();
        if (v.server.connectionCount > 0) this.retired.add(v.server);
      } else {
        v.server.destroy();
      }
    }

    // 5. UDP conntrack entries made before a listener existed (or for one that is gone) would
    //    keep black-holing their flow until they time out.
    const conntrackFailures = await this.clearUdpConntrack(udpMoved);

    // 6. Connections to endpoints that left.
    this.eligible = new Map();
    for (const sp of snapshot.servicePorts.values()) {
      this.eligible.set(sp.id, new Set(sp.reachableEndpoints.map((e) => `${e.ip}|${e.port}`)));
    }
    const isEligible = (spId: string, ep: string): boolean => this.eligible.get(spId)?.has(ep) ?? false;
    let draining = 0;
    for (const v of this.frontends.values()) {
      if (v.server instanceof TcpFrontend) draining += v.server.drain(isEligible, this.drainTimeoutMs);
      else v.server.sweep();
    }
    for (const r of [...this.retired]) {
      if (r.connectionCount === 0) this.retired.delete(r);
      else draining += r.drain(isEligible, this.drainTimeoutMs);
    }
    this.startSweeper();

    const m = this.ctx.metrics;
    m.gauge('userspace_listeners', 'Listening sockets, one per frontend.', this.frontends.size);
    m.gauge('userspace_draining_connections', 'TCP connections to endpoints that left.', draining);
    this.ctx.logger.info(
      {
        servicePorts: loaded.servicePorts,
        endpoints: loaded.endpoints,
        listeners: this.frontends.size,
        elements,
        matcher: this.matcherInstance.implementation,
        elapsedMs: Math.round(performance.now() - started),
      },
      'userspace sync',
    );
    return {
      full: true,
      stats: {
        listeners: this.frontends.size,
        elements,
        listenFailures,
        udpConntrackCleared: udpMoved.length,
        conntrackFailures,
        unsupportedServicePorts: set.unsupported,
        draining,
        purgedFlows: loaded.purgedFlows,
      },
    };
  }

  /** `conntrack -D` the UDP flows to these frontends, a few at a time; never throws. */
  private async clearUdpConntrack(frontends: readonly Frontend[]): Promise<number> {
    let failed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < frontends.length) {
        const args = conntrackDeleteArgs(frontends[next++]!);
        try {
          const r = await this.ctx.executor.run('conntrack', args, { allowFailure: true, timeoutMs: 30_000 });
          if (r.code !== 0 && !/0 flow entries/i.test(`${r.stdout}\n${r.stderr}`)) {
            failed++;
            this.ctx.logger.warn({ args, code: r.code, stderr: r.stderr.trim() }, 'conntrack -D failed');
          }
        } catch (e) {
          failed++;
          this.ctx.logger.warn({ args, err: String(e) }, 'conntrack -D could not run');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, frontends.length) }, worker));
    return failed;
  }

  private startSweeper(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => {
      const m = this.matcherInstance;
      if (m === undefined) return;
      m.sweep(this.relay.now());
      for (const v of this.frontends.values()) if (v.server instanceof UdpFrontend) v.server.sweep();
      for (const r of [...this.retired]) if (r.connectionCount === 0) this.retired.delete(r);
    }, this.options.sweepIntervalMs ?? 1000);
    this.sweepTimer.unref();
  }

  async cleanup(): Promise<void> {
    await this.ctx.executor.run('nft', ['-f', '-'], { stdin: renderCleanup(['IPv4', 'IPv6']) });
    this.programmedFamilies.clear();
  }

  async close(): Promise<void> {
    this.flushCounts();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const v of this.frontends.values()) v.server.destroy();
    this.frontends.clear();
    for (const r of this.retired) r.destroy();
    this.retired.clear();
    await Promise.resolve();
  }
}
