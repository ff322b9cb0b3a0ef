/**
 * One UDP frontend: a datagram socket the kernel steers the frontend's traffic to. A client's
 * (address, port) is a flow: the matcher's flow table (the userspace conntrack) remembers its
 * endpoint with the UDP idle timeout, and a connected upstream socket per flow carries its
 * datagrams and brings the replies back, sent from the frontend socket so the kernel's
 * conntrack turns their source back into the Service address.
 */
import dgram from 'node:dgram';
import type { FlowKey } from '../../matcher/src/index.js';
import type { Frontend } from './frontends.js';
import type { RelayContext } from './relay-context.js';
import { plainAddress } from './tcp-frontend.js';

interface UdpSession {
  readonly flow: FlowKey;
  readonly endpointId: number;
  readonly endpointKey: string;
  readonly servicePortId: string;
  readonly upstream: dgram.Socket;
  connected: boolean;
  readonly queue: Buffer[];
}

/** Datagrams held per flow while its upstream socket connects. */
const MAX_QUEUED = 64;

export class UdpFrontend {
  private readonly socket: dgram.Socket;
  private readonly sessions = new Map<string, UdpSession>();
  private bound = false;

  constructor(
    readonly frontend: Frontend,
    private readonly ctx: RelayContext,
  ) {
    this.socket = dgram.createSocket({
      type: frontend.family === 'IPv4' ? 'udp4' : 'udp6',
      ipv6Only: frontend.family === 'IPv6',
    });
    this.socket.on('error', (e) =>
      ctx.logger.warn({ frontend: frontend.key, err: e.message }, 'UDP socket error'),
    );
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  listen(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.socket.once('error', onError);
      this.socket.bind({ address: host, port: 0, exclusive: true }, () => {
        this.socket.off('error', onError);
        this.bound = true;
        resolve(this.socket.address().port);
      });
    });
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  destroy(): void {
    for (const s of this.sessions.values()) this.closeSession(s);
    if (this.bound) {
      this.bound = false;
      this.socket.close();
    }
  }

  /** Close sessions whose flow entry expired or was purged (endpoint gone); returns how many. */
  sweep(): number {
    let closed = 0;
    const now = this.ctx.now();
    for (const s of [...this.sessions.values()]) {
      if (this.ctx.matcher().flowLookup(s.flow, now, false) !== s.endpointId) {
        this.closeSession(s);
        closed++;
      }
    }
    return closed;
  }

  private closeSession(s: UdpSession): void {
    this.sessions.delete(sessionKey(s.flow.client, s.flow.clientPort));
    try {
      s.upstream.close();
    } catch {
      // already closed
    }
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const ctx = this.ctx;
    const f = this.frontend;
    const client = plainAddress(rinfo.address);
    const destination = f.address === '*' ? (ctx.nodeAddress(f.family) ?? client) : f.address;
    const sel = ctx.matcher().select({
      destination,
      protocol: 'UDP',
      port: f.port,
      client,
      clientPort: rinfo.port,
      nowMs: ctx.now(),
      fromNode: ctx.isNodeAddress(client),
      trackFlow: true,
    });
    const key = sessionKey(client, rinfo.port);
    let session = this.sessions.get(key);
    if (sel.verdict !== 'forward' || sel.endpoint === undefined || sel.endpointId === undefined) {
      // No ICMP from userspace: the kernel rules reject Service ports without endpoints; a
      // datagram that still gets here is dropped.
      if (session !== undefined) this.closeSession(session);
      ctx.count('UDP', sel.verdict);
      return;
    }
    if (session !== undefined && session.endpointId !== sel.endpointId) {
      this.closeSession(session);
      session = undefined;
    }
    if (session === undefined) {
      const ep = sel.endpoint;
      const upstream = dgram.createSocket(ep.family === 'IPv4' ? 'udp4' : 'udp6');
      const s: UdpSession = {
        flow: { protocol: 'UDP', client, clientPort: rinfo.port, destination, port: f.port },
        endpointId: sel.endpointId,
        endpointKey: `${ep.ip}|${ep.port}`,
        servicePortId: sel.servicePort?.id ?? f.servicePortId,
        upstream,
        connected: false,
        queue: [msg],
      };
      session = s;
      this.sessions.set(key, s);
      ctx.count('UDP', 'forward');
      upstream.on('error', () => this.closeSession(s));
      upstream.on('message', (reply) => {
        ctx.matcher().flowTouch(s.flow, ctx.now());
        if (this.bound) this.socket.send(reply, rinfo.port, rinfo.address);
      });
      upstream.connect(ep.port, ep.ip, () => {
        s.connected = true;
        for (const m of s.queue.splice(0)) upstream.send(m);
      });
      return;
    }
    if (session.connected) session.upstream.send(msg);
    else if (session.queue.length < MAX_QUEUED) session.queue.push(msg);
  }
}

function sessionKey(client: string, port: number): string {
  return `${client}|${port}`;
}
