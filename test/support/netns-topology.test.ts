// Self-test of the network-namespace test bed. IP plan: pods 10.244.0.0/16 (this node
// 10.244.1.0/24, other node 10.244.2.0/24), ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sctpProbeUnavailableReason } from './agent-sctp.js';
import { describeE2E, kernelUnavailableReason } from './e2e-gate.js';
import {
  createTopology,
  listTopologyNamespaces,
  sweepStaleTopologies,
  TOPOLOGY_PLAN as P,
  type Topology,
} from './netns-topology.js';

describeE2E('netns topology', kernelUnavailableReason(['ip', 'nft']), () => {
  let topo: Topology | undefined;
  const t = (): Topology => {
    if (!topo) throw new Error('topology not created');
    return topo;
  };

  beforeAll(async () => {
    topo = await createTopology({
      pods: [
        { name: 'pod-a', tcpPorts: [8080], udpPorts: [5353] },
        { name: 'pod-b', tcpPorts: [8080], udpPorts: [5353] },
        { name: 'pod-c', node: 'remote', tcpPorts: [8080], udpPorts: [5353] },
      ],
      nodeServers: { tcpPorts: [7000] },
    });
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it('gives pods their planned addresses', () => {
    expect(t().pods.map((p) => [p.name, p.ipv4, p.ipv6, p.nodeName])).toEqual([
      ['pod-a', '10.244.1.10', 'fd00:10:244:1::10', 'node-a'],
      ['pod-b', '10.244.1.11', 'fd00:10:244:1::11', 'node-a'],
      ['pod-c', '10.244.2.10', 'fd00:10:244:2::10', 'node-b'],
    ]);
  });

  it('reaches local and remote pods over TCP from the node, with the node as source', async () => {
    const a = await t().probe('node', 'tcp', '10.244.1.10', 8080);
    expect(a.result).toBe('reply');
    expect(a.reply?.name).toBe('pod-a');
    // The node's own address on the pod veth is the source towards a local pod.
    expect(a.reply?.clientIp).toBe(P.localPodGatewayIPv4);
    expect(a.reply?.clientIp).toBe(a.local?.ip);
    expect(a.reply?.clientPort).toBe(a.local?.port);
    const c = await t().probe('node', 'tcp', '10.244.2.10', 8080);
    expect(c.reply?.name).toBe('pod-c');
    expect(c.reply?.clientIp).toBe(P.nodeLinkIPv4);
  });

  it('reaches pods from the external client with its own address preserved (routed, no NAT)', async () => {
    for (const [ip, name] of [
      ['10.244.1.11', 'pod-b'],
      ['10.244.2.10', 'pod-c'],
    ] as const) {
      const r = await t().probe('external', 'tcp', ip, 8080);
      expect(r.result).toBe('reply');
      expect(r.reply?.name).toBe(name);
      expect(r.reply?.clientIp).toBe(P.clientIPv4);
    }
    const bound = await t().probe('external', 'tcp', '10.244.1.10', 8080, {
      localAddress: P.clientAllowedIPv4,
    });
    expect(bound.reply?.clientIp).toBe(P.clientAllowedIPv4);
  });

  it('routes pod to pod across nodes, IPv4 and IPv6, UDP with a fixed source port', async () => {
    const r = await t().probe('pod-a', 'tcp', '10.244.2.10', 8080);
    expect(r.reply).toMatchObject({ name: 'pod-c', clientIp: '10.244.1.10' });
    const r6 = await t().probe('pod-c', 'tcp', 'fd00:10:244:1::11', 8080);
    expect(r6.reply).toMatchObject({ name: 'pod-b', clientIp: 'fd00:10:244:2::10' });
    const u = await t().probe('external', 'udp', '10.244.1.10', 5353, { localPort: 40123 });
    expect(u.reply).toMatchObject({ name: 'pod-a', proto: 'udp', clientIp: P.clientIPv4, clientPort: 40123 });
    const u6 = await t().probe('external', 'udp', 'fd00:10:244:2::10', 5353);
    expect(u6.reply).toMatchObject({ name: 'pod-c', clientIp: P.clientIPv6 });
  });

  it.skipIf(sctpProbeUnavailableReason() !== undefined)(
    'sees SCTP INITs at the pod they were sent to, with their source',
    async () => {
      const r = await t().probe('pod-a', 'sctp', '10.244.2.10', 7777);
      expect(r.result).toBe('reply');
      expect(r.reply).toMatchObject({ name: 'pod-c', clientIp: '10.244.1.10', proto: 'sctp' });
      const r6 = await t().probe('external', 'sctp', 'fd00:10:244:1::11', 7777);
      expect(r6.reply).toMatchObject({ name: 'pod-b', clientIp: P.clientIPv6 });
      // Nobody is at 10.96.9.9: the upstream router refuses it, no pod sees it.
      expect((await t().probe('pod-a', 'sctp', '10.96.9.9', 7777, { timeoutMs: 300 })).result).toBe(
        'timeout',
      );
    },
  );

  it('reports refused at once for a closed port and timeout for a black hole', async () => {
    const tcp = await t().probe('external', 'tcp', '10.244.1.10', 9999);
    expect(tcp.result).toBe('refused');
    const udp = await t().probe('external', 'udp', '10.244.1.10', 9999);
    expect(udp.result).toBe('refused');
    // The other node's subnet has no 10.244.2.99: ARP fails, nothing answers.
    const started = Date.now();
    const hole = await t().probe('pod-a', 'udp', '10.244.2.99', 5353, { timeoutMs: 400 });
    expect(['timeout', 'refused']).toContain(hole.result);
    expect(Date.now() - started).toBeLessThan(5000);
    // A black hole without ARP: a pod-side drop rule.
    await t().exec('pod-b', ['nft', '-f', '-'], {
      stdin:
        'table inet t {\n chain input {\n type filter hook input priority 0;\n tcp dport 8080 drop\n }\n}\n',
    });
    const dropped = await t().probe('external', 'tcp', '10.244.1.11', 8080, { timeoutMs: 300 });
    expect(dropped.result).toBe('timeout');
    await t().exec('pod-b', ['nft', 'delete', 'table', 'inet', 't']);
  });

  it('keeps a long-lived TCP connection and pings through it', async () => {
    const open = await t().agent('external').open('10.244.2.10', 8080);
    expect(open.result).toBe('reply');
    const conn = open.conn ?? -1;
    for (let i = 1; i <= 3; i++) {
      const p = await t().agent('external').ping(conn);
      expect(p.reply).toMatchObject({ name: 'pod-c', seq: i });
    }
    await t().agent('external').closeConnection(conn);
    expect((await t().agent('external').ping(conn)).result).toBe('closed');
  });

  it('serves echo in the node namespace and reaches the management address from the root namespace', async () => {
    const r = await t().probe('external', 'tcp', P.nodeIPv4, 7000);
    expect(r.reply).toMatchObject({ name: 'node', clientIp: P.clientIPv4 });
    // A server in the root namespace (where the API fixture listens) answers the node namespace.
    const server = net.createServer((s) => s.end('root says hi\n'));
    await new Promise<void>((resolve) => server.listen(0, t().management.rootIp, resolve));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const r2 = await t().probe('node', 'tcp', t().management.rootIp, port);
      expect(r2.result).toBe('reply');
      expect(r2.local?.ip).toBe(t().management.nodeIp);
    } finally {
      server.close();
    }
  });

  it('runs programs in the node namespace through its executor', async () => {
    const out = await t().executor.run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'ext0']);
    expect(out.stdout).toContain(`${P.nodeIPv4}/24`);
  });

  it('destroy removes every namespace, interface and process it made', async () => {
    const extra = await createTopology({ pods: [{ name: 'x', tcpPorts: [8080] }], ipv6: false });
    const before = listTopologyNamespaces();
    expect(before).toEqual(expect.arrayContaining([extra.nodeNs, extra.clientNs, extra.pod('x').netns]));
    const pid = extra.agent('x').pid ?? -1;
    const veth = extra.management.rootVeth;
    expect(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })).toContain(veth);
    await extra.destroy();
    const after = listTopologyNamespaces();
    for (const ns of [extra.nodeNs, extra.clientNs, extra.pod('x').netns]) expect(after).not.toContain(ns);
    expect(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })).not.toContain(veth);
    expect(() => process.kill(pid, 0)).toThrow();
    // The topology still in use survives a sweep (its creator is alive).
    expect(sweepStaleTopologies()).not.toContain(t().nodeNs);
    expect(listTopologyNamespaces()).toContain(t().nodeNs);
  });

  // A topology made by another process (the compiled module, as a crashed test file would
  // have made it): SIGTERM runs its cleanup; SIGKILL leaves it for the next sweep.
  const compiled = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '../../dist/test/support/netns-topology.js',
  );
  const childTopology = async (): Promise<{
    pid: number;
    ns: string[];
    kill: (s: NodeJS.Signals) => Promise<void>;
  }> => {
    const script = `import(${JSON.stringify(compiled)}).then(async (m) => {
      const t = await m.createTopology({ pods: [{ name: 'x', tcpPorts: [8080] }], ipv6: false });
      console.log(JSON.stringify([t.nodeNs, t.clientNs, t.pod('x').netns]));
      setInterval(() => undefined, 1000);
    });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const line = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
    });
    return {
      pid: child.pid ?? -1,
      ns: JSON.parse(line) as string[],
      kill: async (sig) => {
        child.kill(sig);
        await exited;
      },
    };
  };

  it.skipIf(!existsSync(compiled))(
    'cleans up on SIGTERM of the process that made it (needs npm run build:ts)',
    async () => {
      const c = await childTopology();
      expect(listTopologyNamespaces()).toEqual(expect.arrayContaining(c.ns));
      await c.kill('SIGTERM');
      for (const ns of c.ns) expect(listTopologyNamespaces()).not.toContain(ns);
    },
  );

  it.skipIf(!existsSync(compiled))('sweeps what a SIGKILLed process left behind', async () => {
    const c = await childTopology();
    await c.kill('SIGKILL');
    // Its agents die with their stdin; the namespaces stay until a sweep.
    expect(listTopologyNamespaces()).toEqual(expect.arrayContaining(c.ns));
    sweepStaleTopologies(); // (a concurrent test process may sweep them first: either way they go)
    for (const ns of c.ns) expect(listTopologyNamespaces()).not.toContain(ns);
    expect(listTopologyNamespaces()).toContain(t().nodeNs);
  });
});
