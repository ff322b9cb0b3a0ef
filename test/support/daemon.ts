/**
 * Runs the real switchyard daemon (bin/switchyard.js, built by `npm run build:ts`) inside a
 * topology's node namespace, the way a DaemonSet runs kube-proxy on a node:
 *
 *   ip netns exec <node-ns> node bin/switchyard.js --proxy-mode=... --kubeconfig=...
 *      --hostname-override=node-a --healthz-bind-address=<mgmt>:10256 --metrics-bind-address=<mgmt>:10249
 *
 * healthz and metrics listen on the node's management address, reachable from the test process
 * in the root namespace. The API server fixture listens on 127.0.0.1 in the root namespace; a
 * small TCP forwarder on the management link's root address makes it reachable from the node
 * (`--master` points there). Logs (pino JSON lines) are kept for failure messages.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TOPOLOGY_PLAN, type Topology } from './netns-topology.js';

/** The repository root (works from the source tree and from dist/). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'bin', 'switchyard.js')))
      return dir;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the repository root (package.json + bin/switchyard.js)');
}

/** Why the daemon cannot be started from this tree, or undefined when it can. */
export function daemonUnavailableReason(): string | undefined {
  let root: string;
  try {
    root = repoRoot();
  } catch (e) {
    return (e as Error).message;
  }
  if (!existsSync(path.join(root, 'dist', 'core', 'cli', 'bin.js')))
    return 'dist/core/cli/bin.js missing: run `npm run build:ts` first';
  return undefined;
}

export const HEALTHZ_PORT = 10256;
export const METRICS_PORT = 10249;

export interface DaemonOptions {
  readonly topology: Topology;
  /** --proxy-mode (default nftables). */
  readonly mode?: string;
  /** --kubeconfig (a file readable from the node namespace: any host path is). */
  readonly kubeconfig?: string;
  /** --master (overrides the kubeconfig's server). */
  readonly master?: string;
  /** --from FILE|DIR instead of the API server. */
  readonly from?: string;
  /** Further flags (e.g. --cluster-cidr, --nodeport-addresses, --min-sync-period). */
  readonly extraArgs?: readonly string[];
  /** Called with every log line (diagnostics). */
  readonly onLog?: (line: string) => void;
}

export interface DaemonMetrics {
  /** Every sample as name{labels} -> value. */
  readonly samples: ReadonlyMap<string, number>;
  /** Sum of all samples of a metric (all label sets). */
  sum(name: string): number;
  /** Max over all samples of a metric (all label sets); undefined when absent. */
  max(name: string): number | undefined;
}

/** Parse the Prometheus text format (enough for tests: no escapes inside label values). */
export function parseMetrics(text: string): DaemonMetrics {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m && m[1] && m[2]) samples.set(m[1], Number(m[2]));
  }
  const of = (name: string): number[] =>
    [...samples.entries()].filter(([k]) => k === name || k.startsWith(`${name}{`)).map(([, v]) => v);
  return {
    samples,
    sum: (name) => of(name).reduce((a, b) => a + b, 0),
    max: (name) => {
      const v = of(name);
      return v.length ? Math.max(...v) : undefined;
    },
  };
}

function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class DaemonProcess {
  readonly logs: string[] = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly args: readonly string[],
    readonly healthzUrl: string,
    readonly metricsUrl: string,
    onLog?: (line: string) => void,
  ) {
    const keep = (line: string): void => {
      this.logs.push(line);
      if (this.logs.length > 2000) this.logs.shift();
      onLog?.(line);
    };
    readline.createInterface({ input: child.stdout }).on('line', keep);
    readline.createInterface({ input: child.stderr }).on('line', keep);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
  }

  static start(o: DaemonOptions): DaemonProcess {
    const topo = o.topology;
    const mgmt = topo.management.nodeIp;
    const args = [
      path.join(repoRoot(), 'bin', 'switchyard.js'),
      `--proxy-mode=${o.mode ?? 'nftables'}`,
      `--hostname-override=${TOPOLOGY_PLAN.nodeName}`,
      `--healthz-bind-address=${mgmt}:${HEALTHZ_PORT}`,
      `--metrics-bind-address=${mgmt}:${METRICS_PORT}`,
      ...(o.kubeconfig ? [`--kubeconfig=${o.kubeconfig}`] : []),
      ...(o.master ? [`--master=${o.master}`] : []),
      ...(o.from ? [`--from=${o.from}`] : []),
      ...(o.extraArgs ?? []),
    ];
    const child = spawn('ip', ['netns', 'exec', topo.nodeNs, process.execPath, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: repoRoot(),
    });
    child.stdin.end();
    return new DaemonProcess(
      child,
      args,
      `http://${mgmt}:${HEALTHZ_PORT}/healthz`,
      `http://${mgmt}:${METRICS_PORT}/metrics`,
      o.onLog,
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitInfo;
  }

  /** The last log lines, for assertion messages. */
  tail(n = 30): string {
    return this.logs.slice(-n).join('\n');
  }

  async metrics(): Promise<DaemonMetrics> {
    const r = await httpGet(this.metricsUrl);
    if (r.status !== 200) throw new Error(`metrics: HTTP ${r.status}`);
    return parseMetrics(r.body);
  }

  async healthz(): Promise<{ status: number; body: string }> {
    return httpGet(this.healthzUrl);
  }

  /** Wait until the first sync succeeded (kubeproxy_sync_proxy_rules_last_timestamp_seconds > 0). */
  async waitSynced(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(
          `daemon exited (${JSON.stringify(this.exitInfo)}) before its first sync:\n${this.tail()}`,
        );
      try {
        const m = await this.metrics();
        if ((m.max('kubeproxy_sync_proxy_rules_last_timestamp_seconds') ?? 0) > 0) return;
      } catch (e) {
        lastError = (e as Error).message;
      }
      await sleep(50);
    }
    throw new Error(`daemon not synced after ${timeoutMs} ms (${lastError}):\n${this.tail()}`);
  }

  /**
   * Run `change` (which must make the daemon see at least one real change) and wait until a sync
   * that includes it has finished: the change counters grew, the pending gauges were taken by a
   * sync, and the last-sync timestamp moved past what it was while the change was pending.
   */
  async applyAndWait(change: () => void | Promise<void>, timeoutMs = 15_000): Promise<void> {
    const changes = (m: DaemonMetrics): number =>
      m.sum('kubeproxy_sync_proxy_rules_service_changes_total') +
      m.sum('kubeproxy_sync_proxy_rules_endpoint_changes_total');
    const pending = (m: DaemonMetrics): number =>
      m.sum('kubeproxy_sync_proxy_rules_service_changes_pending') +
      m.sum('kubeproxy_sync_proxy_rules_endpoint_changes_pending');
    const lastSync = (m: DaemonMetrics): number =>
      m.max('kubeproxy_sync_proxy_rules_last_timestamp_seconds') ?? 0;
    const before = await this.metrics();
    const c0 = changes(before);
    let syncBefore = lastSync(before);
    await change();
    const deadline = Date.now() + timeoutMs;
    let seen = false;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`daemon exited (${JSON.stringify(this.exitInfo)}):\n${this.tail()}`);
      const m = await this.metrics();
      if (changes(m) > c0) {
        if (!seen || pending(m) > 0) {
          // Not taken yet (or first sight): only a sync finishing after this moment counts.
          if (pending(m) > 0) syncBefore = lastSync(m);
          seen = true;
        }
        if (pending(m) === 0 && lastSync(m) > syncBefore) return;
      }
      await sleep(20);
    }
    throw new Error(`no sync including the change within ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** Send a signal and wait for the exit (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Wait for the process to exit by itself (e.g. `--cleanup`); returns the exit code. */
  async waitExit(timeoutMs = 60_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    return this.exitInfo?.code ?? null;
  }
}

export function startDaemon(options: DaemonOptions): DaemonProcess {
  return DaemonProcess.start(options);
}

/** `switchyard --cleanup` in the node namespace; resolves with the exit code and the output. */
export async function runCleanup(
  topology: Topology,
  mode = 'nftables',
  extraArgs: readonly string[] = [],
): Promise<{ code: number | null; output: string }> {
  const d = DaemonProcess.start({ topology, mode, extraArgs: ['--cleanup', ...extraArgs] });
  const code = await d.waitExit();
  return { code, output: d.tail(100) };
}

export interface TcpForwarder {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Forward TCP connections from `listenHost:<ephemeral>` to `target` (e.g. the API fixture). */
export async function startTcpForwarder(
  listenHost: string,
  target: { host: string; port: number },
): Promise<TcpForwarder> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(target.port, target.host);
    sockets.add(inbound);
    sockets.add(outbound);
    const drop = (): void => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host: listenHost,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
