// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FakeExecutor, SpawnExecutor, type RecordedCall } from '../../../backends/exec/executor.js';
import {
  ipvsRegistration,
  needsConnReuseModeZero,
  renderIptablesCleanup,
  renderIptablesSync,
} from '../../../backends/ipvs/index.js';
import { silentLogger } from '../../../core/log.js';
import type { ProxyConfig } from '../../../core/model/proxy-config.js';
import type { BackendContext } from '../../../plugins/sdk/index.js';
import {
  endpoint,
  fullDelta,
  partialDelta,
  servicePort,
  snapshotOf,
  withPorts,
} from '../../support/snapshot-gen.js';

function config(scheduler = 'rr'): ProxyConfig {
  return {
    masqueradeBit: 14,
    ipvs: {
      scheduler,
      strictARP: false,
      tcpTimeoutMs: 0,
      tcpFinTimeoutMs: 0,
      udpTimeoutMs: 0,
      excludeCIDRs: [],
    },
  } as unknown as ProxyConfig;
}

function ctx(executor: FakeExecutor | SpawnExecutor, scheduler = 'rr'): BackendContext {
  return {
    config: config(scheduler),
    logger: silentLogger(),
    executor,
    metrics: { gauge: () => undefined, counter: () => undefined },
  };
}

const ADDR = [
  '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
  '2: ext0    inet 192.168.77.2/24 brd 192.168.77.255 scope global ext0\\       valid_lft forever preferred_lft forever',
  '2: ext0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever',
].join('\n');

/** A node with IPVS whose kernel holds nothing of ours yet. */
function freshNode(): FakeExecutor {
  return new FakeExecutor().on((c) => {
    if (c.command === 'ip' && c.args.join(' ') === '-o addr show') return { stdout: ADDR };
    if (c.command === 'ip' && c.args[1] === 'link' && c.args[2] === 'show')
      return { code: 1, stderr: 'Device "swy-ipvs0" does not exist.' };
    if (c.command === 'uname') return { stdout: '6.1.0-56-amd64\n' };
    return undefined;
  });
}

const cmd = (c: RecordedCall): string => [c.command, ...c.args].join(' ');

const webWith = (eps: ReturnType<typeof endpoint>[]): ReturnType<typeof servicePort> =>
  servicePort({ name: 'web', clusterIP: '10.96.0.10', nodePort: 30080, clusterEndpoints: eps });
const web = webWith([endpoint('10.244.1.10', 8080), endpoint('10.244.2.10', 8080)]);

describe('ipvs backend through the FakeExecutor', () => {
  it('is registered as "ipvs"', () => {
    expect(ipvsRegistration.name).toBe('ipvs');
    expect(ipvsRegistration.create(ctx(new FakeExecutor())).name).toBe('ipvs');
  });

  it('first sync: sysctls, interface, then ipset → addresses → ipvsadm → iptables, in that order', async () => {
    const x = freshNode();
    const b = ipvsRegistration.create(ctx(x));
    const s = snapshotOf([web], {
      nodePortAddresses: { IPv4: { kind: 'cidrs', cidrs: ['192.168.77.0/24'] }, IPv6: { kind: 'all' } },
    });
    const r = await b.sync(s, fullDelta(s));
    expect(r.full).toBe(true);
    const order = x.calls.map(cmd);
    const sysctl = order.find((c) => c.startsWith('sysctl'));
    expect(sysctl).toBe(
      'sysctl -q -w net.ipv4.vs.conntrack=1 net.ipv4.vs.expire_nodest_conn=1 net.ipv4.vs.expire_quiescent_template=1 net.ipv4.ip_forward=1',
    );
    const idx = (p: string): number => order.findIndex((c) => c.startsWith(p));
    expect(idx('ip link add swy-ipvs0 type dummy')).toBeGreaterThan(-1);
    expect(idx('ipset restore -exist')).toBeLessThan(idx('ip -batch -'));
    expect(idx('ip -batch -')).toBeLessThan(idx('ipvsadm --restore'));
    expect(idx('ipvsadm --restore')).toBeLessThan(idx('iptables-restore'));
    const ipvs = x.callsTo('ipvsadm').find((c) => c.args[0] === '--restore')!.stdin!;
    expect(ipvs).toContain('-A -t 192.168.77.2:30080 -s rr\n');
    expect(ipvs).not.toContain('fe80'); // link-local addresses never get NodePorts
    const ipt = x.callsTo('iptables-restore')[0]!;
    expect(ipt.args).toEqual(['-w', '5', '--noflush']);
    expect(ipt.stdin).toContain(
      '-I PREROUTING 1 -m comment --comment "switchyard ipvs service portals" -j SYV-SERVICES',
    );
    expect(x.callsTo('ip6tables-restore')).toHaveLength(0); // IPv4-only snapshot
  });

  it('a partial sync lists nothing and runs only what changed', async () => {
    const x = freshNode();
    const b = ipvsRegistration.create(ctx(x));
    const s = snapshotOf([web]);
    await b.sync(s, fullDelta(s));
    x.calls.length = 0;
    const web2 = webWith([...web.clusterEndpoints, endpoint('10.244.3.3', 8080)]);
    const s2 = withPorts(s, [web2]);
    const r = await b.sync(s2, partialDelta([web2.id]));
    expect(r.full).toBe(false);
    expect(x.calls.map(cmd)).toEqual(['ipvsadm --restore']);
    expect(x.calls[0]!.stdin).toBe(
      '-a -t 10.96.0.10:80 -r 10.244.3.3:8080 -m -w 1\n-a -t 192.168.77.2:30080 -r 10.244.3.3:8080 -m -w 1\n',
    );
  });

  it('a drained real server is removed once ipvsadm shows no connection for it', async () => {
    const x = freshNode();
    let conns = 3;
    x.on((c) =>
      c.command === 'ipvsadm' && c.args[0] === '-Ln'
        ? {
            stdout: [
              'Prot LocalAddress:Port Scheduler Flags',
              '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
              `TCP  ${c.args[2]} rr`,
              '  -> 10.244.1.10:8080             Masq    1      0          0',
              `  -> 10.244.2.10:8080             Masq    0      0          ${conns}`,
            ].join('\n'),
          }
        : undefined,
    );
    const b = ipvsRegistration.create(ctx(x));
    const s = snapshotOf([web]);
    await b.sync(s, fullDelta(s));
    const web1 = webWith([endpoint('10.244.1.10', 8080)]);
    const s1 = withPorts(s, [web1]);
    x.calls.length = 0;
    const r1 = await b.sync(s1, partialDelta([web1.id]));
    expect(r1.stats?.realServersDrained).toBe(2); // ClusterIP and NodePort virtual servers
    expect(r1.stats?.realServersRemovedAfterDrain).toBe(0);
    expect(x.calls[0]!.stdin).toContain('-e -t 10.96.0.10:80 -r 10.244.2.10:8080 -m -w 0');
    conns = 0;
    x.calls.length = 0;
    const r2 = await b.sync(s1, partialDelta([]));
    expect(r2.stats?.realServersRemovedAfterDrain).toBe(2);
    const removal = x.calls
      .filter((c) => c.args[0] === '--restore')
      .map((c) => c.stdin)
      .join('');
    expect(removal).toContain('-d -t 10.96.0.10:80 -r 10.244.2.10:8080');
    expect(removal).toContain('-d -t 192.168.77.2:30080 -r 10.244.2.10:8080');
    x.calls.length = 0;
    await b.sync(s1, partialDelta([]));
    expect(x.calls.map(cmd)).toEqual([]); // nothing left to drain, nothing to do
  });

  it('ipvsadm --restore errors (it exits 0 and prints them) fail the sync and force the next one to be full', async () => {
    const x = freshNode().on((c) =>
      c.command === 'ipvsadm' && c.args[0] === '--restore'
        ? { stderr: 'Service already exists\n' }
        : undefined,
    );
    const b = ipvsRegistration.create(ctx(x));
    const s = snapshotOf([web]);
    await expect(b.sync(s, fullDelta(s))).rejects.toThrow(/Service already exists/);
    x.calls.length = 0;
    await expect(b.sync(s, partialDelta([]))).rejects.toThrow();
    expect(x.calls.some((c) => cmd(c) === 'ipvsadm -Sn')).toBe(true); // listed the kernel again: full
  });

  it('probe: an unknown scheduler is refused with a clear reason', async () => {
    const support = await ipvsRegistration.create(ctx(new FakeExecutor(), 'nope')).probe();
    expect(support).toMatchObject({ supported: false });
    expect(support.reason).toMatch(/unknown IPVS scheduler "nope"/);
  });

  it('probe: a kernel without IPVS is reported as such (FakeExecutor)', async () => {
    const x = new FakeExecutor().on((c) =>
      c.command === 'cat'
        ? { code: 1, stderr: 'cat: /proc/net/ip_vs: No such file or directory' }
        : c.command === 'modprobe'
          ? { code: 1, stderr: 'modprobe: FATAL: Module ip_vs not found' }
          : undefined,
    );
    const support = await ipvsRegistration.create(ctx(x)).probe();
    expect(support.supported).toBe(false);
    expect(support.reason).toMatch(/^the kernel has no IPVS: \/proc\/net\/ip_vs is missing/);
  });

  it.runIf(!existsSync('/proc/net/ip_vs'))(
    'probe on THIS host (no IPVS in its kernel) says unsupported, why, and changes nothing',
    async () => {
      const support = await ipvsRegistration.create(ctx(new SpawnExecutor())).probe();
      expect(support.supported).toBe(false);
      expect(support.reason).toMatch(/the kernel has no IPVS/);
    },
  );

  it('cleanup removes only our virtual servers, our chains and sets, and the interface', async () => {
    const x = new FakeExecutor().on((c) => {
      const line = cmd(c);
      if (line === 'ipvsadm -Sn')
        return {
          stdout: '-A -t 10.96.0.10:80 -s rr\n-A -t 192.168.77.2:30080 -s rr\n-A -t 192.168.77.2:22 -s rr\n',
        };
      if (line === 'ipset save')
        return {
          stdout:
            'create SYV-NODE-PORT hash:ip,port family inet\nadd SYV-NODE-PORT 192.168.77.2,tcp:30080\ncreate KUBE-X hash:ip family inet\n',
        };
      if (line === 'ip -o addr show')
        return {
          stdout: `${ADDR}\n3: swy-ipvs0    inet 10.96.0.10/32 scope global swy-ipvs0\\       valid_lft forever`,
        };
      if (line === 'iptables-save')
        return {
          stdout:
            '*nat\n:PREROUTING ACCEPT [0:0]\n:SYV-SERVICES - [0:0]\n-A PREROUTING -m comment --comment "switchyard ipvs service portals" -j SYV-SERVICES\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n',
        };
      return undefined;
    });
    await ipvsRegistration.create(ctx(x)).cleanup();
    const ipvs = x.calls.find((c) => cmd(c) === 'ipvsadm --restore')!.stdin;
    expect(ipvs).toBe('-D -t 10.96.0.10:80\n-D -t 192.168.77.2:30080\n');
    const ipt = x.callsTo('iptables-restore')[0]!.stdin;
    expect(ipt).toBe(
      '*nat\n-D PREROUTING -m comment --comment "switchyard ipvs service portals" -j SYV-SERVICES\n:SYV-SERVICES - [0:0]\n-X SYV-SERVICES\nCOMMIT\n',
    );
    expect(x.callsTo('ip6tables-restore')).toHaveLength(0); // nothing of ours there
    expect(x.calls.find((c) => cmd(c) === 'ipset restore -exist')!.stdin).toBe('destroy SYV-NODE-PORT\n');
    expect(x.calls.map(cmd)).toContain('ip link del swy-ipvs0');
  });

  it('jumps already in place are not inserted again; conn_reuse_mode only before 5.9', () => {
    const save =
      '*nat\n-A PREROUTING -m comment --comment "switchyard ipvs service portals" -j SYV-SERVICES\nCOMMIT\n';
    const t = renderIptablesSync('IPv4', { masqueradeBit: 14, masqueradeAll: false, clusterCIDRs: [] }, save);
    expect(t).not.toContain('-I PREROUTING');
    expect(t).toContain('-I OUTPUT 1 -m comment --comment "switchyard ipvs service portals" -j SYV-SERVICES');
    expect(t).toContain('-I INPUT 1 -m comment --comment "switchyard ipvs service filter" -j SYV-FILTER');
    expect(renderIptablesCleanup('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n')).toBe('');
    expect(needsConnReuseModeZero('5.4.0-100-generic')).toBe(true);
    expect(needsConnReuseModeZero('6.1.0-56-amd64')).toBe(false);
  });
});
