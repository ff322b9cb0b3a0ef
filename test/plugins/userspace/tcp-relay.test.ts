// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25.
//
// The TCP relay's byte path on real loopback sockets (no root): the userspace backend listens
// on 127.0.0.1, the tests connect to its listener directly (as the nft redirect would), the
// endpoint is a server on 127.0.0.2. Every case runs with accepted sockets read through the
// relay's own buffers (`onread`, the default) and through Node's 'data' events.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../../backends/exec/executor.js';
import { silentLogger } from '../../../core/log.js';
import { ReferenceMatcher } from '../../../matcher/src/index.js';
import type { BackendContext } from '../../../plugins/sdk/index.js';
import { UserspaceBackend, frontendKey } from '../../../plugins/userspace/index.js';
import { BufferPool } from '../../../plugins/userspace/buffer-pool.js';
import { Pump, withOnread } from '../../../plugins/userspace/tcp-frontend.js';
import { proxyConfigFromFlags } from '../../e2e/backend-loader.js';
import { endpoint, fullDelta, servicePort, snapshotOf } from '../../support/snapshot-gen.js';

const config = proxyConfigFromFlags(['--proxy-mode=userspace', '--cluster-cidr=10.244.0.0/16']);

function context(): BackendContext {
  return {
    config,
    logger: silentLogger(),
    executor: new FakeExecutor(),
    metrics: { gauge: () => undefined, counter: () => undefined },
  };
}

function listen(handler: (c: net.Socket) => void): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer({ allowHalfOpen: true }, handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.2', () =>
      resolve({ server, port: (server.address() as net.AddressInfo).port }),
    ),
  );
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Everything a socket receives until its end, read slowly when `slow` (backpressure). */
function collect(s: net.Socket, slow = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    s.on('data', (d: Buffer) => {
      parts.push(Buffer.from(d));
      if (slow && ++n % 8 === 0) {
        s.pause();
        setTimeout(() => s.resume(), 5);
      }
    });
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

function sendAll(s: net.Socket, data: Buffer, chunk = 100_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let off = 0;
    const pump = (): void => {
      while (off < data.length) {
        const end = Math.min(data.length, off + chunk);
        const more = s.write(data.subarray(off, end));
        off = end;
        if (!more) return void s.once('drain', pump);
      }
      s.end(resolve);
    };
    s.once('error', reject);
    pump();
  });
}

describe.each([
  { onreadAccepted: true, label: 'accepted sockets read into relay buffers' },
  { onreadAccepted: false, label: "accepted sockets read through 'data' events" },
])('userspace TCP relay ($label)', ({ onreadAccepted }) => {
  let backend: UserspaceBackend;
  let servers: net.Server[];

  beforeEach(() => {
    servers = [];
    backend = new UserspaceBackend(context(), {
      matcher: new ReferenceMatcher({ seed: 1 }),
      listenHosts: { IPv4: '127.0.0.1' },
      connectTimeoutsMs: [500],
      metricsFlushMs: 0,
      onreadAccepted,
      // small sizes, so that a few MB swap buffers many times and run out of large ones
      buffers: { smallSize: 4096, largeSize: 65536, maxLarge: 1 },
    });
  });

  afterEach(async () => {
    await backend.close();
    for (const s of servers) s.close();
  });

  async function proxyTo(handler: (c: net.Socket) => void): Promise<number> {
    const { server, port } = await listen(handler);
    servers.push(server);
    const sp = servicePort({ name: 'relay', clusterEndpoints: [endpoint('127.0.0.2', port)] });
    const snap = snapshotOf([sp]);
    await backend.sync(snap, fullDelta(snap));
    const p = backend.listenerPorts().get(frontendKey('IPv4', 'TCP', sp.clusterIP, sp.port));
    if (p === undefined) throw new Error('no listener');
    return p;
  }

  it('relays 8 MB each way intact, through slow readers on both ends', async () => {
    const up = bytes(8 << 20, 7);
    const down = bytes(8 << 20, 11);
    let received: Promise<Buffer> | undefined;
    const port = await proxyTo((c) => {
      received = collect(c, true);
      void sendAll(c, down);
    });
    const c = await connect(port);
    const got = collect(c, true);
    await sendAll(c, up);
    expect(sha(await got)).toBe(sha(down));
    await expect.poll(() => received).toBeDefined();
    expect(sha(await received!)).toBe(sha(up));
    c.destroy();
    // every large buffer went back to the pool once both sockets closed
    await expect.poll(() => backend.relayBuffers.largeInUse).toBe(0);
  });

  it('relays a half-close: the client ends, the endpoint still answers, then ends', async () => {
    const port = await proxyTo((c) => {
      void collect(c).then((req) => c.end(`got ${req.length} bytes`));
    });
    const c = await connect(port);
    const reply = collect(c);
    c.end('a request of 30 bytes, then a FIN'.slice(0, 30));
    expect((await reply).toString()).toBe('got 30 bytes');
  });

  it('relays a half-close: the endpoint ends first, the client still sends', async () => {
    let late: Promise<Buffer> | undefined;
    const port = await proxyTo((c) => {
      late = collect(c);
      c.end('bye');
    });
    const c = await connect(port);
    expect((await collect(c)).toString()).toBe('bye');
    c.end('still here');
    await expect.poll(() => late).toBeDefined();
    expect((await late!).toString()).toBe('still here');
  });

  it('an endpoint reset resets the client', async () => {
    const port = await proxyTo((c) => {
      c.once('data', () => c.resetAndDestroy());
    });
    const c = await connect(port);
    const err = new Promise<NodeJS.ErrnoException>((resolve) => c.once('error', resolve));
    c.write('x');
    expect((await err).code).toBe('ECONNRESET');
  });

  it('a client reset resets the endpoint side', async () => {
    let endpointSide: Promise<string> | undefined;
    const port = await proxyTo((c) => {
      endpointSide = new Promise((resolve) => {
        c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        c.on('end', () => resolve('end'));
        c.on('data', () => c.write('ack'));
      });
    });
    const c = await connect(port);
    await new Promise<void>((resolve) => {
      c.once('data', () => resolve());
      c.write('x');
    });
    c.resetAndDestroy();
    await expect.poll(() => endpointSide).toBeDefined();
    expect(await endpointSide).toBe('ECONNRESET');
  });
});

describe('relay read buffers', () => {
  it('lends a bounded number of large buffers and reuses returned ones', () => {
    const pool = new BufferPool({ smallSize: 8, largeSize: 32, maxLarge: 2, keepLarge: 1 });
    const a = pool.takeLarge()!;
    const b = pool.takeLarge()!;
    expect(a.length).toBe(32);
    expect(pool.takeLarge()).toBeUndefined();
    pool.giveLarge(a);
    expect(pool.takeLarge()).toBe(a);
    pool.giveLarge(a);
    pool.giveLarge(b);
    expect(pool.largeInUse).toBe(0);
    const s = pool.takeSmall();
    expect(s.length).toBe(8);
    pool.giveSmall(s);
    expect(pool.takeSmall()).toBe(s);
  });

  it('moves an accepted socket into one that reads through a pump (this Node allows it)', async () => {
    const pool = new BufferPool({ smallSize: 16, largeSize: 64 });
    const sink: Buffer[] = [];
    const dst = new net.Socket({ writable: true });
    // a destination that records writes without a network: write() on an unconnected socket
    // would fail, so intercept it
    dst.write = ((chunk: Buffer, cb?: () => void): boolean => {
      sink.push(Buffer.from(chunk));
      cb?.();
      return true;
    }) as typeof dst.write;
    const pump = new Pump(pool);
    pump.dst = dst;
    const adopted = new Promise<net.Socket | undefined>((resolve) => {
      const server = net.createServer({ pauseOnConnect: true }, (s) => {
        const a = withOnread(s, pump);
        pump.src = a;
        a?.resume();
        resolve(a);
        server.close();
      });
      server.listen(0, '127.0.0.1', () => {
        const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () =>
          c.end('hello through onread, more than sixteen bytes'),
        );
      });
    });
    const a = await adopted;
    expect(a).toBeInstanceOf(net.Socket);
    await new Promise<void>((resolve) => a!.once('end', () => resolve()));
    expect(Buffer.concat(sink).toString()).toBe('hello through onread, more than sixteen bytes');
    a!.destroy();
    dst.destroy();
  });
});
