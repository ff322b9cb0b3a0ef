// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25.
//
// The relay runs on real sockets on loopback (no root): listeners bind 127.0.0.1, the tests
// connect to them directly (as the nft redirect would), endpoints are echo servers on
// 127.0.0.x. The nft text goes to a FakeExecutor.
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../../backends/exec/executor.js';
import { silentLogger } from '../../../core/log.js';
import type { ProxyConfig } from '../../../core/model/proxy-config.js';
import type { ServicePortPlan, Snapshot } from '../../../core/model/snapshot.js';
import { ReferenceMatcher, createMatcher } from '../../../matcher/src/index.js';
import type { BackendContext, BackendMetrics } from '../../../plugins/sdk/index.js';
import { UserspaceBackend, frontendKey, userspaceRegistration } from '../../../plugins/userspace/index.js';
import { endpoint, fullDelta, servicePort, snapshotOf, withPorts } from '../../support/snapshot-gen.js';
import { proxyConfigFromFlags } from '../../e2e/backend-loader.js';

const config: ProxyConfig = proxyConfigFromFlags(['--proxy-mode=userspace', '--cluster-cidr=10.244.0.0/16']);

interface Counted {
  name: string;
  labels?: Readonly<Record<string, string>>;
  value: number;
}

function context(executor: FakeExecutor, counted: Counted[] = []): BackendContext {
  const metrics: BackendMetrics = {
    gauge: (name, _h, value, labels) => void counted.push({ name, value, ...(labels ? { labels } : {}) }),
    counter: (name, _h, value = 1, labels) =>
      void counted.push({ name, value, ...(labels ? { labels } : {}) }),
  };
  return { config, logger: silentLogger(), executor, metrics };
}

/** TCP echo servers that answer every line with their name. */
class Servers {
  readonly tcp: net.Server[] = [];
  readonly udp: dgram.Socket[] = [];

  async tcpServer(host: string, name: string): Promise<number> {
    const s = net.createServer((c) => {
      c.on('error', () => undefined);
      c.on('data', (d) => c.write(`${name}:${d.toString()}`));
    });
    this.tcp.push(s);
    await new Promise<void>((r) => s.listen(0, host, r));
    return (s.address() as net.AddressInfo).port;
  }

  async udpServer(host: string, name: string): Promise<number> {
    const s = dgram.createSocket('udp4');
    s.on('message', (m, r) => s.send(`${name}:${m.toString()}`, r.port, r.address));
    this.udp.push(s);
    await new Promise<void>((r) => s.bind(0, host, r));
    return s.address().port;
  }

  /** A port on which nothing listens (bound, then closed). */
  async closedPort(host: string): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, host, r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  async close(): Promise<void> {
    for (const s of this.tcp) s.close();
    for (const s of this.udp) s.close();
  }
}

type TcpOutcome = { kind: 'reply'; text: string } | { kind: 'error'; code: string } | { kind: 'closed' };

function tcpRequest(port: number, text = 'hi', timeoutMs = 3000): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    let done = false;
    const finish = (o: TcpOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      c.destroy();
      resolve(o);
    };
    const t = setTimeout(() => finish({ kind: 'error', code: 'TIMEOUT' }), timeoutMs);
    c.on('connect', () => c.write(text));
    c.on('data', (d) => finish({ kind: 'reply', text: d.toString() }));
    c.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'error', code: e.code ?? e.message }));
    c.on('close', () => finish({ kind: 'closed' }));
  });
}

function udpRequest(
  port: number,
  text: string,
  socket?: dgram.Socket,
  timeoutMs = 1500,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = socket ?? dgram.createSocket('udp4');
    const t = setTimeout(() => {
      s.off('message', onMsg);
      if (!socket) s.close();
      resolve(undefined);
    }, timeoutMs);
    const onMsg = (m: Buffer): void => {
      clearTimeout(t);
      s.off('message', onMsg);
      if (!socket) s.close();
      resolve(m.toString());
    };
    s.on('message', onMsg);
    s.send(text, port, '127.0.0.1');
  });
}

function who(o: TcpOutcome): string {
  return o.kind === 'reply' ? o.text.split(':')[0]! : `${o.kind}${o.kind === 'error' ? `(${o.code})` : ''}`;
}

describe('userspace backend (real sockets on loopback)', () => {
  let servers: Servers;
  let executor: FakeExecutor;
  let backend: UserspaceBackend;
  let counted: Counted[];

  beforeEach(() => {
    servers = new Servers();
    executor = new FakeExecutor();
    counted = [];
    backend = new UserspaceBackend(context(executor, counted), {
      matcher: new ReferenceMatcher({ seed: 42 }),
      listenHosts: { IPv4: '127.0.0.1' },
      connectTimeoutsMs: [300, 300, 300],
      metricsFlushMs: 0,
    });
  });

  afterEach(async () => {
    await backend.close();
    await servers.close();
  });

  async function threeEndpoints(protocol: 'TCP' | 'UDP' = 'TCP'): Promise<ReturnType<typeof endpoint>[]> {
    const eps = [];
    for (const [i, name] of ['pod-a', 'pod-b', 'pod-c'].entries()) {
      const host = `127.0.0.${i + 2}`;
      const port =
        protocol === 'TCP' ? await servers.tcpServer(host, name) : await servers.udpServer(host, name);
      eps.push(endpoint(host, port, { targetName: name }));
    }
    return eps;
  }

  function listener(sp: ServicePortPlan, address = sp.clusterIP, port = sp.port): number {
    const p = backend
      .listenerPorts()
      .get(frontendKey(sp.family, sp.protocol as 'TCP' | 'UDP', address, port));
    if (p === undefined) throw new Error(`no listener for ${address}:${port}`);
    return p;
  }

  it('registers as --proxy-mode=userspace and creates a backend from the SDK context', () => {
    expect(userspaceRegistration.name).toBe('userspace');
    expect(userspaceRegistration.create(context(new FakeExecutor())).name).toBe('userspace');
  });

  it('probe reports nft through the executor, and unsupported when nft fails', async () => {
    executor.on((c) =>
      c.args[0] === '--version' ? { stdout: 'nftables v1.0.6 (Lester Gooch #5)\n' } : undefined,
    );
    expect(await backend.probe()).toEqual({ supported: true, details: { nft: '1.0.6', sockets: 'node' } });
    const failing = new FakeExecutor().on(() => ({ code: 127, stderr: 'nft: not found' }));
    const r = await new UserspaceBackend(context(failing)).probe();
    expect(r.supported).toBe(false);
    expect(r.reason).toContain('nft: not found');
  });

  it('relays TCP to every endpoint, picked by the matcher, and renders the frontend map', async () => {
    const sp = servicePort({ name: 'web', clusterEndpoints: await threeEndpoints() });
    const snap = snapshotOf([sp]);
    const result = await backend.sync(snap, fullDelta(snap));
    expect(result.stats?.listeners).toBe(1);
    const port = listener(sp);
    const nft = executor.callsTo('nft').at(-1)!;
    expect(nft.args).toEqual(['-f', '-']);
    expect(nft.stdin).toContain(
      `map fe { type ipv4_addr . inet_proto . inet_service : inet_service; elements = { 10.96.0.10 . tcp . 80 : ${port} }; }`,
    );
    expect(nft.stdin).toContain('set cluster_ips { type ipv4_addr; elements = { 10.96.0.10 }; }');
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const o = await tcpRequest(port, `req${i}`);
      expect(o.kind, JSON.stringify(o)).toBe('reply');
      if (o.kind === 'reply') expect(o.text).toMatch(new RegExp(`^pod-[abc]:req${i}$`));
      seen.set(who(o), (seen.get(who(o)) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['pod-a', 'pod-b', 'pod-c']);
    expect(counted.some((c) => c.name === 'userspace_flows_total' && c.labels?.outcome === 'forward')).toBe(
      true,
    );
  });

  it('retries another endpoint when the connect to the first one fails', async () => {
    const live = await servers.tcpServer('127.0.0.2', 'pod-live');
    const dead1 = await servers.closedPort('127.0.0.3');
    const dead2 = await servers.closedPort('127.0.0.4');
    const sp = servicePort({
      name: 'flaky',
      clusterEndpoints: [
        endpoint('127.0.0.3', dead1),
        endpoint('127.0.0.2', live),
        endpoint('127.0.0.4', dead2),
      ],
    });
    const snap = snapshotOf([sp]);
    await backend.sync(snap, fullDelta(snap));
    const port = listener(sp);
    for (let i = 0; i < 12; i++) expect(who(await tcpRequest(port))).toBe('pod-live');
    expect(counted.some((c) => c.name === 'userspace_flows_total' && c.labels?.outcome === 'retried')).toBe(
      true,
    );
  });

  it('resets the client when every endpoint refuses', async () => {
    const sp = servicePort({
      name: 'dead',
      clusterEndpoints: [endpoint('127.0.0.3', await servers.closedPort('127.0.0.3'))],
    });
    const snap = snapshotOf([sp]);
    await backend.sync(snap, fullDelta(snap));
    const o = await tcpRequest(listener(sp));
    expect(o).toEqual({ kind: 'error', code: 'ECONNRESET' });
  });

  it('honours ClientIP session affinity', async () => {
    const sp = servicePort({
      name: 'sticky',
      clusterEndpoints: await threeEndpoints(),
      sessionAffinity: { timeoutSeconds: 60 },
    });
    const snap = snapshotOf([sp]);
    await backend.sync(snap, fullDelta(snap));
    const port = listener(sp);
    const names = new Set<string>();
    for (let i = 0; i < 12; i++) names.add(who(await tcpRequest(port)));
    expect(names.size).toBe(1);
    expect([...names][0]).toMatch(/^pod-[abc]$/);
    // The affinity entry is the matcher's: client 127.0.0.1 is stuck to that endpoint.
    expect(backend.matcher?.affinityLookup(sp.id, '127.0.0.1', performance.now())?.targetName).toBe(
      [...names][0],
    );
  });

  it('does not listen for Service ports without endpoints: the kernel rejects them (and drops Local ones)', async () => {
    const eps = await threeEndpoints();
    const empty = servicePort({ name: 'empty', clusterIP: '10.96.0.11' });
    const localNone = servicePort({
      name: 'local-none',
      clusterIP: '10.96.0.12',
      nodePort: 30080,
      externalPolicyLocal: true,
      clusterEndpoints: eps,
    });
    const itpNone = servicePort({
      name: 'itp-none',
      clusterIP: '10.96.0.13',
      internalPolicyLocal: true,
      clusterEndpoints: eps,
    });
    const lb = servicePort({
      name: 'lb',
      clusterIP: '10.96.0.14',
      loadBalancerIPs: ['203.0.113.200'],
      loadBalancerSourceRanges: ['203.0.113.0/25'],
      clusterEndpoints: eps,
    });
    const snap = snapshotOf([empty, localNone, itpNone, lb]);
    await backend.sync(snap, fullDelta(snap));
    const text = executor.callsTo('nft').at(-1)!.stdin!;
    expect(text).toContain(
      'set reject_fe { type ipv4_addr . inet_proto . inet_service; elements = { 10.96.0.11 . tcp . 80 }; }',
    );
    // NodePort on every address with a Local policy and no local endpoint: pods short-circuit,
    // so it has a listener, and the kernel drops everyone else.
    expect(text).toContain('set drop_np { type inet_proto . inet_service; elements = { tcp . 30080 }; }');
    expect(text).toContain(
      `map fe_np { type inet_proto . inet_service : inet_service; elements = { tcp . 30080 : ${listener(localNone, '*', 30080)} }; }`,
    );
    expect(text).toContain(
      'set drop_all { type ipv4_addr . inet_proto . inet_service; elements = { 10.96.0.13 . tcp . 80 }; }',
    );
    expect(text).toContain(
      'set lb_allowed { type ipv4_addr . inet_proto . inet_service . ipv4_addr; flags interval; elements = { 203.0.113.200 . tcp . 80 . 203.0.113.0/25 }; }',
    );
    expect(text).toContain(
      'set cluster_cidrs { type ipv4_addr; flags interval; elements = { 10.244.0.0/16 }; }',
    );
    expect(backend.listenerPorts().has(frontendKey('IPv4', 'TCP', '10.96.0.11', 80))).toBe(false);
    expect(backend.listenerPorts().has(frontendKey('IPv4', 'TCP', '10.96.0.13', 80))).toBe(false);
    expect(backend.listenerPorts().size).toBe(4); // local-none ClusterIP + NodePort, lb ClusterIP + LB IP
  });

  it('a pod short-circuits a Local NodePort without local endpoints; the node does too', async () => {
    const eps = await threeEndpoints();
    const sp = servicePort({
      name: 'local-none',
      nodePort: 30080,
      externalPolicyLocal: true,
      clusterEndpoints: eps,
    });
    const snap = snapshotOf([sp]);
    await backend.sync(snap, fullDelta(snap));
    // The client is 127.0.0.1: the node itself, so it reaches the cluster-wide endpoints.
    expect(who(await tcpRequest(listener(sp, '*', 30080)))).toMatch(/^pod-[abc]$/);
  });

  it('opens and closes listeners as frontends come and go; live connections drain', async () => {
    const eps = await threeEndpoints();
    const a = servicePort({ name: 'a', clusterIP: '10.96.0.21', clusterEndpoints: eps });
    const b = servicePort({
      name: 'b',
      clusterIP: '10.96.0.22',
      clusterEndpoints: eps,
      externalIPs: ['192.168.77.50'],
    });
    const s1 = snapshotOf([a]);
    await backend.sync(s1, fullDelta(s1));
    const portA = listener(a);
    const s2 = withPorts(s1, [b]);
    await backend.sync(s2, fullDelta(s2));
    expect(listener(a)).toBe(portA); // unchanged frontends keep their listener
    const portB = listener(b);
    const portBext = listener(b, '192.168.77.50');
    expect(new Set([portA, portB, portBext]).size).toBe(3);

    // A connection through b stays up while b goes away.
    const live = net.connect({ host: '127.0.0.1', port: portB });
    await new Promise<void>((r) => live.once('connect', () => r()));
    const first = new Promise<string>((r) => live.once('data', (d) => r(d.toString())));
    live.write('one');
    expect(await first).toMatch(/^pod-[abc]:one$/);

    const s3 = withPorts(s2, [], [b.id]);
    await backend.sync(s3, fullDelta(s3));
    expect([...backend.listenerPorts().keys()]).toEqual([frontendKey('IPv4', 'TCP', '10.96.0.21', 80)]);
    expect(executor.callsTo('nft').at(-1)!.stdin).not.toContain('10.96.0.22');
    expect(await tcpRequest(portB)).toEqual({ kind: 'error', code: 'ECONNREFUSED' });
    const second = new Promise<string>((r) => live.once('data', (d) => r(d.toString())));
    live.write('two');
    expect(await second).toMatch(/^pod-[abc]:two$/);
    live.destroy();
  });

  it('closes drained connections after the grace period when one is set', async () => {
    await backend.close();
    backend = new UserspaceBackend(context(executor), {
      matcher: new ReferenceMatcher({ seed: 7 }),
      listenHosts: { IPv4: '127.0.0.1' },
      drainTimeoutMs: 100,
    });
    const eps = await threeEndpoints();
    const sp = servicePort({ name: 'a', clusterEndpoints: eps });
    const s1 = snapshotOf([sp]);
    await backend.sync(s1, fullDelta(s1));
    const c = net.connect({ host: '127.0.0.1', port: listener(sp) });
    const reply = new Promise<string>((r) => c.once('data', (d) => r(d.toString())));
    c.write('x');
    const name = (await reply).split(':')[0];
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.on('error', () => undefined);
    // The endpoint that answered leaves; the Service stays.
    const rest = eps.filter((e) => e.targetName !== name);
    const s2 = withPorts(s1, [servicePort({ name: 'a', clusterEndpoints: rest })]);
    const r = await backend.sync(s2, fullDelta(s2));
    expect(r.stats?.draining).toBe(1);
    await closed;
  });

  it('relays UDP per flow, keeps a flow on its endpoint, and moves it when the endpoint leaves', async () => {
    const eps = await threeEndpoints('UDP');
    const sp = servicePort({ name: 'dns', protocol: 'UDP', port: 53, clusterEndpoints: eps });
    const s1 = snapshotOf([sp]);
    await backend.sync(s1, fullDelta(s1));
    const port = listener(sp);
    expect(executor.callsTo('nft').at(-1)!.stdin).toContain(`10.96.0.10 . udp . 53 : ${port}`);
    // A new UDP listener: flows conntrack saw before it existed must not stay black-holed.
    expect(executor.callsTo('conntrack').map((c) => c.args)).toEqual([
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53'],
    ]);
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    const first = await udpRequest(port, 'q1', client);
    expect(first).toMatch(/^pod-[abc]:q1$/);
    const name = first!.split(':')[0]!;
    for (let i = 0; i < 5; i++) expect((await udpRequest(port, `q${i}`, client))?.split(':')[0]).toBe(name);
    // Separate client sockets are separate flows and spread over the endpoints.
    const names = new Set<string>();
    for (let i = 0; i < 24; i++) names.add((await udpRequest(port, 'x'))?.split(':')[0] ?? 'none');
    expect([...names].sort()).toEqual(['pod-a', 'pod-b', 'pod-c']);
    // The flow's endpoint leaves: the next datagram goes to another one.
    const s2 = withPorts(s1, [
      servicePort({
        name: 'dns',
        protocol: 'UDP',
        port: 53,
        clusterEndpoints: eps.filter((e) => e.targetName !== name),
      }),
    ]);
    const r = await backend.sync(s2, fullDelta(s2));
    expect(r.stats?.purgedFlows).toBeGreaterThanOrEqual(1);
    const moved = await udpRequest(port, 'again', client);
    expect(moved).toMatch(/^pod-[abc]:again$/);
    expect(moved!.split(':')[0]).not.toBe(name);
    // Same listener, no new conntrack deletion; removing the Service deletes its flows again.
    expect(executor.callsTo('conntrack')).toHaveLength(1);
    const s3 = withPorts(s2, [], [sp.id]);
    await backend.sync(s3, fullDelta(s3));
    expect(executor.callsTo('conntrack')).toHaveLength(2);
    expect(await udpRequest(port, 'gone', client, 300)).toBeUndefined();
    client.close();
  });

  it('UDP session affinity keeps every flow of a client on one endpoint', async () => {
    const eps = await threeEndpoints('UDP');
    const sp = servicePort({
      name: 'sticky',
      protocol: 'UDP',
      port: 53,
      clusterEndpoints: eps,
      sessionAffinity: { timeoutSeconds: 30 },
    });
    const s1 = snapshotOf([sp]);
    await backend.sync(s1, fullDelta(s1));
    const names = new Set<string>();
    for (let i = 0; i < 10; i++) names.add((await udpRequest(listener(sp), 'x'))?.split(':')[0] ?? 'none');
    expect(names.size).toBe(1);
    expect([...names][0]).toMatch(/^pod-[abc]$/);
  });

  it('makes its own matcher (WebAssembly when it loads) at the first sync', async () => {
    await backend.close();
    const expected = (await createMatcher({ seed: 3 })).implementation;
    backend = new UserspaceBackend(context(executor), { listenHosts: { IPv4: '127.0.0.1' } });
    expect(backend.matcher).toBeUndefined();
    const sp = servicePort({ name: 'web', clusterEndpoints: await threeEndpoints() });
    const snap: Snapshot = snapshotOf([sp]);
    await backend.sync(snap, fullDelta(snap));
    expect(backend.matcher?.implementation).toBe(expected);
    expect(who(await tcpRequest(listener(sp)))).toMatch(/^pod-[abc]$/);
  });

  it('cleanup removes both tables; close stops every listener', async () => {
    const sp = servicePort({ name: 'web', clusterEndpoints: await threeEndpoints() });
    const snap = snapshotOf([sp]);
    await backend.sync(snap, fullDelta(snap));
    const port = listener(sp);
    await backend.cleanup();
    expect(executor.callsTo('nft').at(-1)!.stdin).toBe(
      'add table ip switchyard-userspace\ndelete table ip switchyard-userspace\nadd table ip6 switchyard-userspace\ndelete table ip6 switchyard-userspace\n',
    );
    await backend.close();
    expect(backend.listenerPorts().size).toBe(0);
    expect(await tcpRequest(port)).toEqual({ kind: 'error', code: 'ECONNREFUSED' });
  });
});
