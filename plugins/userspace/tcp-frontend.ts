/**
 * One TCP frontend: a listening socket the kernel steers the frontend's connections to. Every
 * accepted connection asks the matcher for an endpoint, connects to it (retrying other
 * endpoints of the same path when a connect fails) and relays bytes both ways.
 */
import net from 'node:net';
import type { EndpointRef, Selection } from '../../matcher/src/index.js';
import type { Frontend } from './frontends.js';
import type { RelayContext } from './relay-context.js';

export interface TcpConnection {
  readonly client: net.Socket;
  upstream?: net.Socket;
  /** `${ip}|${port}` of the endpoint connected to. */
  endpointKey?: string;
  readonly servicePortId: string;
  drainTimer?: NodeJS.Timeout;
}

function endpointKey(e: { readonly ip: string; readonly port: number }): string {
  return `${e.ip}|${e.port}`;
}

/** Strip the IPv4-mapped prefix a dual-stack socket reports. */
export function plainAddress(a: string | undefined): string {
  if (a === undefined) return '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** The endpoints to try: the matcher's pick first, then the path's others from a rotating start. */
export function retryCandidates(sel: Selection, maxAttempts: number, offset: number): EndpointRef[] {
  if (sel.endpoint === undefined) return [];
  const first = sel.endpoint;
  const sp = sel.servicePort;
  const list =
    sp === undefined
      ? []
      : sel.path === 'internal'
        ? sp.internalEndpoints
        : sel.path === 'short-circuit'
          ? sp.shortCircuitEndpoints
          : sp.externalEndpoints;
  const others = list.filter((e) => e.ip !== first.ip || e.port !== first.port);
  const out: EndpointRef[] = [first];
  for (let i = 0; i < others.length && out.length < maxAttempts; i++) {
    const e = others[(offset + i) % others.length]!;
    out.push({
      ip: e.ip,
      port: e.port,
      family: first.family,
      ...(e.targetName !== undefined ? { targetName: e.targetName } : {}),
    });
  }
  return out;
}

function connectOnce(ep: EndpointRef, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: ep.ip, port: ep.port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${ep.ip}:${ep.port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    });
  });
}

export class TcpFrontend {
  private readonly server: net.Server;
  private readonly connections = new Set<TcpConnection>();
  private listening = false;
  private attemptsOffset = 0;

  constructor(
    readonly frontend: Frontend,
    private readonly ctx: RelayContext,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.accept(s));
    this.server.on('error', (e) =>
      ctx.logger.warn({ frontend: frontend.key, err: e.message }, 'listener error'),
    );
  }

  /** Listen on an OS-chosen port of `host`; resolves with the port. */
  listen(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen({ host, port: 0, ipv6Only: host.includes(':'), exclusive: true }, () => {
        this.server.off('error', onError);
        this.listening = true;
        const a = this.server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : 0);
      });
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stop accepting; live connections continue (drain). */
  stopListening(): void {
    if (this.listening) {
      this.listening = false;
      this.server.close();
    }
  }

  /** Close the listener and every connection now. */
  destroy(): void {
    this.stopListening();
    for (const c of this.connections) this.finish(c);
  }

  /**
   * After a new snapshot: connections whose endpoint is no longer eligible for their Service
   * port continue until closed, or are closed after `drainMs` when it is > 0.
   */
  drain(eligible: (servicePortId: string, endpointKey: string) => boolean, drainMs: number): number {
    let draining = 0;
    for (const c of this.connections) {
      if (c.endpointKey === undefined || eligible(c.servicePortId, c.endpointKey)) continue;
      draining++;
      if (drainMs > 0 && c.drainTimer === undefined) {
        c.drainTimer = setTimeout(() => this.finish(c), drainMs);
        c.drainTimer.unref();
      }
    }
    return draining;
  }

  private finish(c: TcpConnection): void {
    if (c.drainTimer !== undefined) clearTimeout(c.drainTimer);
    c.upstream?.destroy();
    c.client.destroy();
    this.connections.delete(c);
  }

  private accept(client: net.Socket): void {
    const ctx = this.ctx;
    const f = this.frontend;
    client.on('error', () => undefined);
    const remote = plainAddress(client.remoteAddress);
    const remotePort = client.remotePort ?? 0;
    const destination =
      f.address === '*' ? (ctx.nodeAddress(f.family) ?? plainAddress(client.localAddress)) : f.address;
    const flow = {
      protocol: 'TCP' as const,
      client: remote,
      clientPort: remotePort,
      destination,
      port: f.port,
    };
    const sel = ctx.matcher().select({
      destination,
      protocol: 'TCP',
      port: f.port,
      client: remote,
      clientPort: remotePort,
      nowMs: ctx.now(),
      fromNode: ctx.isNodeAddress(remote),
      trackFlow: true,
    });
    if (sel.verdict !== 'forward' || sel.endpoint === undefined) {
      ctx.count('TCP', sel.verdict);
      ctx.matcher().flowRemove(flow);
      if (sel.verdict === 'drop') client.destroy();
      else client.resetAndDestroy();
      return;
    }
    const conn: TcpConnection = { client, servicePortId: sel.servicePort?.id ?? f.servicePortId };
    this.connections.add(conn);
    client.once('close', () => {
      this.connections.delete(conn);
      if (conn.drainTimer !== undefined) clearTimeout(conn.drainTimer);
      conn.upstream?.destroy();
      ctx.matcher().flowRemove(flow);
    });
    const candidates = retryCandidates(sel, ctx.connectTimeoutsMs.length, this.attemptsOffset++);
    void this.connectWithRetry(conn, candidates);
  }

  private async connectWithRetry(conn: TcpConnection, candidates: readonly EndpointRef[]): Promise<void> {
    const ctx = this.ctx;
    for (let i = 0; i < candidates.length; i++) {
      const ep = candidates[i]!;
      if (conn.client.destroyed) return;
      try {
        const up = await connectOnce(ep, ctx.connectTimeoutsMs[i] ?? ctx.connectTimeoutsMs.at(-1) ?? 2000);
        if (conn.client.destroyed) {
          up.destroy();
          return;
        }
        if (i > 0) ctx.count('TCP', 'retried');
        this.splice(conn, up, ep);
        return;
      } catch (e) {
        ctx.logger.debug(
          { frontend: this.frontend.key, endpoint: `${ep.ip}:${ep.port}`, err: (e as Error).message },
          'endpoint connect failed',
        );
      }
    }
    ctx.count('TCP', 'unreachable');
    conn.client.resetAndDestroy();
  }

  private splice(conn: TcpConnection, up: net.Socket, ep: EndpointRef): void {
    const { client } = conn;
    conn.upstream = up;
    conn.endpointKey = endpointKey(ep);
    this.ctx.count('TCP', 'forward');
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    up.once('close', () => {
      if (!client.destroyed && client.writableEnded === false) client.end();
    });
    client.once('close', () => up.destroy());
    up.setNoDelay(true);
    client.setNoDelay(true);
    client.pipe(up);
    up.pipe(client);
    client.resume();
  }
}

export { endpointKey };
