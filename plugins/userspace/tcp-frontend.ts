/**
 * One TCP frontend: a listening socket the kernel steers the frontend's connections to. Every
 * accepted connection asks the matcher for an endpoint, connects to it (retrying other
 * endpoints of the same path when a connect fails) and relays bytes both ways.
 *
 * The relay is written for the cost per connection and per byte (see
 * test/bench/userspace.bench.ts): no `stream.pipe` (a dozen listeners per direction), no
 * promise per connect, and each direction reads into a buffer of its own (`onread`) that is
 * written on as is and swapped for a large one while the connection streams (buffer-pool.ts).
 * A direction whose write did not complete at once stops reading until it did, so a buffer is
 * never read into while a write still holds it, and a slow receiver slows the sender (TCP
 * backpressure end to end). Half-close is relayed (a FIN becomes `end()` on the other socket,
 * the other direction goes on); an error or reset on one side resets the other.
 */
import net from 'node:net';
import type { EndpointRef, Selection } from '../../matcher/src/index.js';
import type { BufferPool } from './buffer-pool.js';
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
  if (maxAttempts <= 1) return [first];
  const sp = sel.servicePort;
  const list =
    sp === undefined
      ? []
      : sel.path === 'internal'
        ? sp.internalEndpoints
        : sel.path === 'short-circuit'
          ? sp.shortCircuitEndpoints
          : sp.externalEndpoints;
  const out: EndpointRef[] = [first];
  const n = list.length;
  for (let i = 0; i < n && out.length < maxAttempts; i++) {
    const e = list[(offset + i) % n]!;
    if (e.ip === first.ip && e.port === first.port) continue;
    out.push({
      ip: e.ip,
      port: e.port,
      family: first.family,
      ...(e.targetName !== undefined ? { targetName: e.targetName } : {}),
    });
  }
  return out;
}

/**
 * One direction of a relay, from `src` to `dst`. With `onRead` (Node's `onread` option) the
 * source reads into `buf`, written on as is; with `onData` (a socket that takes no `onread`
 * option: an accepted one) Node allocates each chunk. Either way, a write that did not
 * complete at once (the destination's kernel buffer is full) stops the source until the
 * destination has written everything: that is the backpressure, and it guarantees that a read
 * buffer is never read into while a write still holds it. (`write()`'s own return value is not
 * used: it is false for any chunk above the 16 KiB high-water mark even when the kernel took
 * it all, and pausing on it would stop and restart reading after every chunk.)
 */
export class Pump {
  /** The buffer the next read goes into (handed to Node by `next`); taken at the first call. */
  private buf: Buffer | undefined;
  private small: Buffer | undefined;
  private large: Buffer | undefined;
  private blocked = false;
  src: net.Socket | undefined;
  dst: net.Socket | undefined;

  constructor(private readonly pool: BufferPool) {}

  /** `onread.buffer`: called by Node before the first read and after every read. */
  readonly next = (): Buffer => (this.buf ??= this.small = this.pool.takeSmall());

  /** `onread.callback`: relay `n` bytes of `buf`; false stops reading (until `written`). */
  readonly onRead = (n: number, buf: Buffer): boolean => {
    const dst = this.dst;
    if (dst === undefined || dst.destroyed || dst.writableEnded) return false;
    dst.write(n === buf.length ? buf : buf.subarray(0, n), this.written);
    const pending = dst.writableLength > 0;
    if (buf === this.small) {
      // A full small buffer: this connection streams; read in large pieces while it does.
      if (n === buf.length) {
        const large = this.pool.takeLarge();
        if (large !== undefined) this.buf = this.large = large;
      }
    } else if (n < this.pool.smallSize && !pending && this.large !== undefined) {
      this.pool.giveLarge(this.large);
      this.large = undefined;
      this.buf = this.small;
    }
    if (pending) this.blocked = true;
    return !pending;
  };

  /** 'data' listener of a source without `onread`. */
  readonly onData = (d: Buffer): void => {
    const dst = this.dst;
    if (dst === undefined || dst.destroyed || dst.writableEnded) return;
    dst.write(d, this.written);
    if (dst.writableLength > 0 && !this.blocked) {
      this.blocked = true;
      this.src?.pause();
    }
  };

  /** Write callback: once the destination has flushed everything, read again. */
  private readonly written = (): void => {
    if (this.blocked && this.dst !== undefined && this.dst.writableLength === 0) {
      this.blocked = false;
      this.src?.resume();
    }
  };

  /** After both sockets closed: nothing reads into or writes from the buffers any more. */
  release(): void {
    if (this.small !== undefined) this.pool.giveSmall(this.small);
    if (this.large !== undefined) this.pool.giveLarge(this.large);
    this.buf = this.small = this.large = undefined;
  }
}

const noop = (): void => undefined;

/**
 * The accepted socket's handle moved into a new Socket that reads through `pump` (`onread`),
 * which `net.Server` cannot ask for; the old wrapper is left without a handle and destroyed.
 * Undefined (and the socket untouched) where this Node's sockets do not look as expected.
 * Uses Node internals (`_handle` and the `handle` constructor option, both what `net.Server`
 * itself does for every connection); test/plugins/userspace checks that it still happens.
 */
export function withOnread(client: net.Socket, pump: Pump): net.Socket | undefined {
  const internal = client as unknown as { _handle?: { useUserBuffer?: unknown; readStart?: unknown } | null };
  const handle = internal._handle;
  if (
    handle === undefined ||
    handle === null ||
    typeof handle.useUserBuffer !== 'function' ||
    typeof handle.readStart !== 'function' ||
    client.destroyed ||
    client.readableLength > 0
  )
    return undefined;
  internal._handle = null;
  const options = {
    handle,
    allowHalfOpen: true,
    pauseOnCreate: true,
    onread: { buffer: pump.next, callback: pump.onRead },
  };
  const adopted = new net.Socket(options as net.SocketConstructorOpts);
  client.destroy();
  return adopted;
}

/** One accepted connection and, once connected, its upstream socket. */
class TcpRelay implements TcpConnection {
  upstream?: net.Socket;
  endpointKey?: string;
  drainTimer?: NodeJS.Timeout;
  private attempt = 0;
  private closed = 0;
  private candidates: readonly EndpointRef[] | undefined;

  constructor(
    private readonly owner: TcpFrontend,
    readonly client: net.Socket,
    /** client → endpoint. */
    private readonly up: Pump,
    /** The client socket reads through `up` (`onread`), not 'data' events. */
    private readonly clientOnread: boolean,
    /** endpoint → client. */
    private readonly down: Pump,
    readonly servicePortId: string,
    /** The matcher's answer; the other endpoints to try are worked out when a connect fails. */
    private sel: Selection | undefined,
    private readonly retryOffset: number,
  ) {
    up.src = client;
    down.dst = client;
  }

  /** Connect to the next candidate; after the last one fails, reset the client. */
  connectNext(): void {
    const ctx = this.owner.ctx;
    const i = this.attempt++;
    let ep = i === 0 ? this.sel?.endpoint : undefined;
    if (i > 0 && this.sel !== undefined) {
      this.candidates ??= retryCandidates(this.sel, ctx.connectTimeoutsMs.length, this.retryOffset);
      ep = this.candidates[i];
    }
    if (ep === undefined) {
      ctx.count('TCP', 'unreachable');
      this.client.resetAndDestroy();
      return;
    }
    if (this.client.destroyed) return;
    const down = this.down;
    const up = net.connect({
      host: ep.ip,
      port: ep.port,
      allowHalfOpen: true,
      noDelay: true,
      onread: { buffer: down.next, callback: down.onRead },
    });
    const timeoutMs = ctx.connectTimeoutsMs[i] ?? ctx.connectTimeoutsMs.at(-1) ?? 2000;
    const timer = setTimeout(() => {
      up.destroy();
      this.failed(ep, `connect timed out after ${timeoutMs} ms`);
    }, timeoutMs);
    const onConnectError = (e: Error): void => {
      clearTimeout(timer);
      this.failed(ep, e.message);
    };
    up.once('error', onConnectError);
    up.once('connect', () => {
      clearTimeout(timer);
      up.off('error', onConnectError);
      if (this.client.destroyed) {
        up.destroy();
        return;
      }
      if (i > 0) ctx.count('TCP', 'retried');
      this.splice(up, ep);
    });
  }

  private failed(ep: EndpointRef, err: string): void {
    this.owner.ctx.logger.debug(
      { frontend: this.owner.frontend.key, endpoint: `${ep.ip}:${ep.port}`, err },
      'endpoint connect failed',
    );
    this.connectNext();
  }

  private splice(up: net.Socket, ep: EndpointRef): void {
    const client = this.client;
    this.upstream = up;
    this.endpointKey = endpointKey(ep);
    this.sel = this.candidates = undefined; // no more attempts: keep nothing of the snapshot
    this.owner.ctx.count('TCP', 'forward');
    this.down.src = up;
    this.up.dst = up;
    if (!this.clientOnread) client.on('data', this.up.onData);
    client.on('end', () => up.end());
    up.on('end', () => client.end());
    up.on('error', () => client.resetAndDestroy());
    up.on('close', () => {
      if (!client.destroyed && !client.writableEnded) client.end();
      this.onSocketClosed();
    });
    client.resume();
  }

  /** Client 'error': reset the endpoint's side too. */
  readonly onClientError = (): void => {
    this.upstream?.resetAndDestroy();
  };

  /** Client 'close'. */
  readonly onClientClose = (): void => {
    this.owner.forget(this);
    const up = this.upstream;
    // Closed before the relay finished (drain timeout, an error): the endpoint side goes too.
    if (up !== undefined && !up.destroyed && !up.readableEnded) up.destroy();
    if (up === undefined) this.closed++; // no upstream socket will close
    this.onSocketClosed();
  };

  private onSocketClosed(): void {
    if (++this.closed === 2) {
      this.up.release();
      this.down.release();
    }
  }

  /** Close both sides now. */
  finish(): void {
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    this.upstream?.destroy();
    this.client.destroy();
  }
}

export class TcpFrontend {
  private readonly server: net.Server;
  private readonly connections = new Set<TcpRelay>();
  private listening = false;
  private attemptsOffset = 0;

  constructor(
    readonly frontend: Frontend,
    readonly ctx: RelayContext,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) =>
      this.accept(s),
    );
    this.server.on('error', (e) =>
      ctx.logger.warn({ frontend: frontend.key, err: e.message }, 'listener error'),
    );
  }

  /** Listen on an OS-chosen port of `host`; resolves with the port. */
  listen(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen(
        { host, port: 0, ipv6Only: host.includes(':'), exclusive: true, backlog: 4096 },
        () => {
          this.server.off('error', onError);
          this.listening = true;
          const a = this.server.address();
          resolve(typeof a === 'object' && a !== null ? a.port : 0);
        },
      );
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
    for (const c of this.connections) c.finish();
    this.connections.clear();
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
        c.drainTimer = setTimeout(() => c.finish(), drainMs);
        c.drainTimer.unref();
      }
    }
    return draining;
  }

  /** A connection closed. */
  forget(c: TcpRelay): void {
    this.connections.delete(c);
    if (c.drainTimer !== undefined) clearTimeout(c.drainTimer);
  }

  private accept(accepted: net.Socket): void {
    let client = accepted;
    const ctx = this.ctx;
    const f = this.frontend;
    const remote = plainAddress(client.remoteAddress);
    const remotePort = client.remotePort ?? 0;
    const destination =
      f.address === '*' ? (ctx.nodeAddress(f.family) ?? plainAddress(client.localAddress)) : f.address;
    const matcher = ctx.matcher();
    const sel = matcher.select({
      destination,
      protocol: 'TCP',
      port: f.port,
      client: remote,
      clientPort: remotePort,
      nowMs: ctx.now(),
      fromNode: ctx.isNodeAddress(remote),
      trackFlow: true,
    });
    const flow = {
      protocol: 'TCP' as const,
      client: remote,
      clientPort: remotePort,
      destination,
      port: f.port,
    };
    if (sel.verdict !== 'forward' || sel.endpoint === undefined) {
      client.on('error', noop);
      ctx.count('TCP', sel.verdict);
      matcher.flowRemove(flow);
      if (sel.verdict === 'drop') client.destroy();
      else client.resetAndDestroy();
      return;
    }
    const up = new Pump(ctx.buffers);
    const adopted = ctx.onreadAccepted ? withOnread(client, up) : undefined;
    if (adopted !== undefined) client = adopted;
    const conn = new TcpRelay(
      this,
      client,
      up,
      adopted !== undefined,
      new Pump(ctx.buffers),
      sel.servicePort?.id ?? f.servicePortId,
      sel,
      this.attemptsOffset++,
    );
    this.connections.add(conn);
    client.on('error', conn.onClientError);
    client.on('close', () => {
      conn.onClientClose();
      ctx.matcher().flowRemove(flow);
    });
    conn.connectNext();
  }
}

export { endpointKey };
