/**
 * The iptables backend through the FakeExecutor (no kernel).
 * Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
 * external client 192.168.77.1, LB source range 203.0.113.0/25.
 */
import { describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../../backends/exec/executor.js';
import { iptablesRegistration, IptablesBackend } from '../../../backends/iptables/index.js';
import { BUCKET_MIN_OPTION, bucketMinOption } from '../../../backends/iptables/iptables-backend.js';
import { cleanupLines, DEFAULT_BUCKET_MIN, DEFERRED_DELETE_MIN } from '../../../backends/iptables/render.js';
import { endpointChainName } from '../../../backends/iptables/names.js';
import { JUMPS, jumpInsertLine, jumpPresent } from '../../../backends/iptables/jumps.js';
import { chooseVariant, summarizeSave } from '../../../backends/iptables/variant.js';
import { silentLogger } from '../../../core/log.js';
import {
  ep,
  fullDelta,
  manyPorts,
  partialDelta,
  plan,
  recordingMetrics,
  snapshot,
  testConfig,
} from './fixtures.js';

function make(
  variant: 'auto' | 'legacy' | 'nft' = 'legacy',
  exec = new FakeExecutor(),
): {
  backend: IptablesBackend;
  exec: FakeExecutor;
  recorded: ReturnType<typeof recordingMetrics>['recorded'];
} {
  const { metrics, recorded } = recordingMetrics();
  const backend = iptablesRegistration.create({
    config: testConfig(variant),
    logger: silentLogger(),
    executor: exec,
    metrics,
  }) as IptablesBackend;
  return { backend, exec, recorded };
}

const a = plan({ name: 'a', clusterIP: '10.96.1.1', endpoints: [ep('10.244.1.1'), ep('10.244.1.2')] });
const b = plan({ name: 'b', clusterIP: '10.96.1.2', endpoints: [ep('10.244.1.3')] });

describe('IptablesBackend', () => {
  it('registers as "iptables"', () => {
    expect(iptablesRegistration.name).toBe('iptables');
    expect(make().backend.name).toBe('iptables');
  });

  it('full sync: lists both tables, restores with -w --noflush, inserting the missing jumps in the same restore', async () => {
    const { backend, exec } = make('legacy');
    const s = snapshot([a, b]);
    const r = await backend.sync(s, fullDelta(s));
    expect(r.full).toBe(true);
    expect(exec.callsTo('iptables-legacy-save').map((c) => c.args)).toEqual([
      ['-t', 'nat'],
      ['-t', 'filter'],
    ]);
    const restores = exec.callsTo('iptables-legacy-restore');
    expect(restores).toHaveLength(1);
    expect(restores[0]!.args).toEqual(['-w', '5', '--noflush']);
    const text = restores[0]!.stdin!;
    const inserts = text.split('\n').filter((l) => l.startsWith('-I '));
    expect(inserts).toHaveLength(JUMPS.length);
    expect(inserts).toContain(
      '-I PREROUTING 1 -m comment --comment "switchyard service portals" -j SY-SERVICES',
    );
    expect(inserts).toContain(
      '-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "switchyard service portals" -j SY-SERVICES',
    );
    // inserted at position 1 one after the other: the last FORWARD insert is JUMPS' first FORWARD jump
    const forward = inserts.filter((l) => l.startsWith('-I FORWARD '));
    expect(forward.at(-1)).toContain('-j SY-FIREWALL');
    // the inserts come after our chains are declared, in the right table
    const nat = text.slice(0, text.indexOf('*filter'));
    expect(nat.indexOf('-I PREROUTING')).toBeGreaterThan(nat.indexOf(':SY-SERVICES'));
    expect(nat).not.toContain('-I INPUT');
    expect(exec.calls.filter((c) => c.args.includes('-C') || c.args.includes('-I'))).toEqual([]);
    expect(r.stats!.natRules).toBeGreaterThan(0);
    expect(r.stats!.fullSyncMs).toBeGreaterThanOrEqual(0);
    expect(exec.calls.every((c) => !c.command.startsWith('ip6tables'))).toBe(true);
  });

  it('does not insert jumps the listing already shows (as iptables-save prints them)', async () => {
    const { backend, exec } = make('nft');
    exec.on((c) => {
      if (c.command !== 'iptables-nft-save') return undefined;
      const table = c.args[1];
      const lines = JUMPS.filter((j) => j.table === table).map((j) =>
        jumpInsertLine(j).replace(/^-I (\S+) 1 /, '-A $1 '),
      );
      return { stdout: `*${table}\n${lines.join('\n')}\nCOMMIT\n` };
    });
    const s = snapshot([a]);
    await backend.sync(s, fullDelta(s));
    expect(exec.callsTo('iptables-nft-restore')[0]!.stdin).not.toMatch(/^-I /m);
  });

  it('partial sync: no kernel listing, no jump checks, only the changed Service port written', async () => {
    const { backend, exec } = make('legacy');
    const s1 = snapshot([a, b]);
    await backend.sync(s1, fullDelta(s1));
    exec.calls.length = 0;
    const b2 = plan({ name: 'b', clusterIP: '10.96.1.2', endpoints: [ep('10.244.1.3'), ep('10.244.1.4')] });
    const s2 = snapshot([a, b2]);
    const r = await backend.sync(s2, partialDelta([b.id]));
    expect(r.full).toBe(false);
    expect(r.stats!.partialSyncMs).toBeGreaterThanOrEqual(0);
    expect(r.stats!.servicePortsWritten).toBe(1);
    expect(exec.calls.map((c) => c.command)).toEqual(['iptables-legacy-restore']);
    expect(exec.calls[0]!.stdin).toContain('10.244.1.4:8080');
    expect(exec.calls[0]!.stdin).not.toContain('10.244.1.1:8080');
  });

  it('renders the same input on a repeated full sync (endpoint chain names come from the cache)', async () => {
    const { backend, exec } = make('legacy');
    const s = snapshot([a, b]);
    await backend.sync(s, fullDelta(s));
    await backend.sync(s, fullDelta(s));
    const [first, second] = exec.callsTo('iptables-legacy-restore').map((c) => c.stdin!);
    expect(second).toBe(first);
    expect(first).toContain(endpointChainName(a.id, '10.244.1.2', 8080));
  });

  it('a failed partial restore falls back to a full one (listing the kernel, all chains written)', async () => {
    const { backend, exec } = make('legacy');
    const s1 = snapshot([a, b]);
    await backend.sync(s1, fullDelta(s1));
    exec.calls.length = 0;
    exec.failNext('iptables-legacy-restore', 'iptables-restore: line 7 failed');
    const b2 = plan({ name: 'b', clusterIP: '10.96.1.2', endpoints: [ep('10.244.1.5')] });
    const s2 = snapshot([a, b2]);
    const r = await backend.sync(s2, partialDelta([b.id]));
    expect(r.full).toBe(true);
    expect(r.stats!.fallbacks).toBe(1);
    const restores = exec.callsTo('iptables-legacy-restore');
    expect(restores).toHaveLength(2);
    expect(restores[1]!.stdin).toContain('10.244.1.1:8080');
    expect(restores[1]!.stdin).toContain('10.244.1.5:8080');
    expect(exec.callsTo('iptables-legacy-save')).toHaveLength(2);
  });

  it('a later full sync lists only the built-in chains of the jumps, and puts back a jump removed behind our back', async () => {
    const exec = new FakeExecutor();
    exec.on((c) => {
      if (c.command !== 'iptables-legacy' || !c.args.includes('-S')) return undefined;
      const chain = c.args.at(-1)!;
      const table = c.args[c.args.indexOf('-t') + 1];
      // every jump is in place except the one in nat PREROUTING
      const lines = JUMPS.filter(
        (j) => j.chain === chain && j.table === table && !(table === 'nat' && chain === 'PREROUTING'),
      )
        .map((j) => jumpInsertLine(j).replace(`-I ${chain} 1 `, `-A ${chain} `))
        .join('\n');
      return { stdout: `-P ${chain} ACCEPT\n${lines}\n` };
    });
    const { backend } = make('legacy', exec);
    const s1 = snapshot([a, b]);
    await backend.sync(s1, fullDelta(s1));
    exec.calls.length = 0;
    await backend.sync(s1, fullDelta(s1));
    expect(exec.callsTo('iptables-legacy-save')).toHaveLength(0);
    const listed = exec.callsTo('iptables-legacy').map((c) => c.args.slice(-3).join(' '));
    expect(new Set(listed).size).toBe(listed.length);
    expect(listed.length).toBeGreaterThan(0);
    for (const j of JUMPS) expect(listed).toContain(`${j.table} -S ${j.chain}`);
    const text = exec.callsTo('iptables-legacy-restore')[0]!.stdin!;
    const inserts = text.split('\n').filter((l) => l.startsWith('-I '));
    expect(inserts).toHaveLength(JUMPS.filter((j) => j.table === 'nat' && j.chain === 'PREROUTING').length);
    expect(inserts[0]).toMatch(/^-I PREROUTING 1 .*-j SY-SERVICES$/);
  });

  it('an endpoint change writes neither the dispatch chains nor the filter table; adding a Service writes the dispatch', async () => {
    const { backend, exec } = make('legacy');
    const s1 = snapshot([a, b]);
    await backend.sync(s1, fullDelta(s1));
    exec.calls.length = 0;
    const b2 = plan({ name: 'b', clusterIP: '10.96.1.2', endpoints: [ep('10.244.1.7')] });
    const s2 = snapshot([a, b2]);
    const r = await backend.sync(s2, partialDelta([b.id]));
    expect(r.full).toBe(false);
    expect(r.stats!.dispatchChainsWritten).toBe(0);
    const text = exec.callsTo('iptables-legacy-restore')[0]!.stdin!;
    expect(text).toContain('10.244.1.7:8080');
    expect(text).not.toMatch(/^:SY-SERVICES |^-A SY-SERVICES |^:SY-NODEPORTS /m);
    expect(text).not.toContain('*filter');

    exec.calls.length = 0;
    const c = plan({ name: 'c', clusterIP: '10.96.1.3', nodePort: 30003, endpoints: [ep('10.244.1.8')] });
    const s3 = snapshot([a, b2, c]);
    const r3 = await backend.sync(s3, partialDelta([c.id]));
    expect(r3.full).toBe(false);
    const text3 = exec.callsTo('iptables-legacy-restore')[0]!.stdin!;
    expect(text3).toMatch(/^:SY-SERVICES - \[0:0\]$/m);
    expect(text3).toMatch(/^-A SY-SERVICES -d 10\.96\.1\.1\/32 .*-j SY-[a-z]{16}-SVC$/m); // the whole chain
    expect(text3).toMatch(/^-A SY-NODEPORTS .*--dport 30003 /m);
    expect(text3).toMatch(/^\*filter$/m);
    expect(text3).not.toContain(':SY-FORWARD ');
    expect(text3).not.toContain(':SY-POSTROUTING ');

    // Nothing changed: no restore at all.
    exec.calls.length = 0;
    const r4 = await backend.sync(s3, partialDelta([]));
    expect(r4.full).toBe(false);
    expect(exec.calls).toEqual([]);
  });

  it('after a failed partial restore the fallback full sync writes everything, and the next partial sync only the change', async () => {
    const { backend, exec } = make('nft');
    const s1 = snapshot([a, b]);
    await backend.sync(s1, fullDelta(s1));
    const c = plan({ name: 'c', clusterIP: '10.96.1.3', endpoints: [ep('10.244.1.8')] });
    const s2 = snapshot([a, b, c]);
    exec.calls.length = 0;
    exec.failNext('iptables-nft-restore', 'iptables-restore: line 9 failed');
    const r = await backend.sync(s2, partialDelta([c.id]));
    expect(r.full).toBe(true);
    expect(r.stats!.fallbacks).toBe(1);
    const [failed, fallback] = exec.callsTo('iptables-nft-restore').map((x) => x.stdin!);
    expect(failed).toContain(':SY-SERVICES - [0:0]');
    for (const chain of ['SY-SERVICES', 'SY-NODEPORTS', 'SY-MARK-MASQ', 'SY-POSTROUTING', 'SY-FORWARD'])
      expect(fallback).toContain(`:${chain} - [0:0]`);
    expect(fallback).toContain('10.244.1.1:8080');

    exec.calls.length = 0;
    const a2 = plan({ name: 'a', clusterIP: '10.96.1.1', endpoints: [ep('10.244.1.1'), ep('10.244.1.9')] });
    const s3 = snapshot([a2, b, c]);
    const r3 = await backend.sync(s3, partialDelta([a.id]));
    expect(r3.full).toBe(false);
    expect(exec.calls.map((x) => x.command)).toEqual(['iptables-nft-restore']);
    const text = exec.calls[0]!.stdin!;
    expect(text).toContain('10.244.1.9:8080');
    expect(text).not.toContain('-A SY-SERVICES ');
    expect(text).not.toContain('10.244.1.8');
  });

  it('a failed restore does not update what is remembered as applied: after partial and fallback both fail, the next sync writes every dispatch chain', async () => {
    const { backend, exec } = make('legacy');
    const s1 = snapshot([a, b]);
    await backend.sync(s1, fullDelta(s1));
    const c = plan({ name: 'c', clusterIP: '10.96.1.3', endpoints: [ep('10.244.1.8')] });
    const s2 = snapshot([a, b, c]);
    exec.failNext('iptables-legacy-restore', 'partial failed');
    exec.failNext('iptables-legacy-restore', 'full failed');
    await expect(backend.sync(s2, partialDelta([c.id]))).rejects.toThrow(/full failed/);
    exec.calls.length = 0;
    // The core retries with the same partial delta: it must become full and rewrite the dispatch
    // (which the failed attempts had rendered but never applied).
    const r = await backend.sync(s2, partialDelta([c.id]));
    expect(r.full).toBe(true);
    const text = exec.callsTo('iptables-legacy-restore')[0]!.stdin!;
    expect(text).toMatch(/^-A SY-SERVICES -d 10\.96\.1\.3\/32 /m);
    expect(text).toMatch(/^:SY-FORWARD - \[0:0\]$/m);
  });

  it('reads the dispatch bucket threshold from --backend-opt iptables.dispatch-bucket-min', () => {
    const log = silentLogger();
    expect(bucketMinOption({}, log)).toBe(DEFAULT_BUCKET_MIN);
    expect(bucketMinOption({ [BUCKET_MIN_OPTION]: '0' }, log)).toBe(0);
    expect(bucketMinOption({ [BUCKET_MIN_OPTION]: '250' }, log)).toBe(250);
    expect(bucketMinOption({ [BUCKET_MIN_OPTION]: 'never' }, log)).toBe(Number.POSITIVE_INFINITY);
    for (const bad of ['', '-1', '1.5', 'lots'])
      expect(bucketMinOption({ [BUCKET_MIN_OPTION]: bad }, log)).toBe(DEFAULT_BUCKET_MIN);
  });

  it('with the threshold at 0, the nat dispatch goes through bucket chains', async () => {
    const exec = new FakeExecutor();
    const backend = iptablesRegistration.create({
      config: { ...testConfig('legacy'), backendOptions: { [BUCKET_MIN_OPTION]: '0' } },
      logger: silentLogger(),
      executor: exec,
      metrics: recordingMetrics().metrics,
    }) as IptablesBackend;
    const s = snapshot([a, b]);
    await backend.sync(s, fullDelta(s));
    const text = exec.callsTo('iptables-legacy-restore')[0]!.stdin!;
    expect(text).toMatch(/^-A SY-SERVICES -d 0\.0\.0\.1\/0\.0\.0\.63 -j SY-SERVICES-01$/m);
    expect(text).toMatch(/^-A SY-SERVICES-01 -d 10\.96\.1\.1\/32 /m);
  });

  it('a failed full restore throws and the next sync is full even when the delta is partial', async () => {
    const { backend, exec } = make('legacy');
    exec.failNext('iptables-legacy-restore');
    const s1 = snapshot([a, b]);
    await expect(backend.sync(s1, fullDelta(s1))).rejects.toThrow(/injected failure/);
    exec.calls.length = 0;
    const r = await backend.sync(s1, partialDelta([a.id]));
    expect(r.full).toBe(true);
    expect(exec.callsTo('iptables-legacy-restore')[0]!.stdin).toContain('10.244.1.3:8080');
  });

  it('syncs IPv6 with ip6tables-restore when the snapshot has both families', async () => {
    const { backend, exec } = make('nft');
    const v6 = plan({
      name: 'a',
      family: 'IPv6',
      clusterIP: 'fd00:10:96::1',
      endpoints: [ep('fd00:10:244:1::1')],
    });
    const s = snapshot([a, v6], { families: ['IPv4', 'IPv6'] });
    await backend.sync(s, fullDelta(s));
    expect(exec.callsTo('ip6tables-nft-restore')[0]!.stdin).toContain('[fd00:10:244:1::1]:8080');
    expect(exec.callsTo('iptables-nft-restore')[0]!.stdin).not.toContain('fd00');
  });

  it('dual-stack: a change in one family runs no restore for the other', async () => {
    const { backend, exec } = make('legacy');
    const v6 = plan({
      name: 'a',
      family: 'IPv6',
      clusterIP: 'fd00:10:96::1',
      endpoints: [ep('fd00:10:244:1::1')],
    });
    const s1 = snapshot([a, b, v6], { families: ['IPv4', 'IPv6'] });
    await backend.sync(s1, fullDelta(s1));
    exec.calls.length = 0;
    const b2 = plan({ name: 'b', clusterIP: '10.96.1.2', endpoints: [ep('10.244.1.6')] });
    const s2 = snapshot([a, b2, v6], { families: ['IPv4', 'IPv6'] });
    const r = await backend.sync(s2, partialDelta([b.id]));
    expect(r.full).toBe(false);
    expect(exec.calls.map((c) => c.command)).toEqual(['iptables-legacy-restore']);
    exec.calls.length = 0;
    const v62 = plan({
      name: 'a',
      family: 'IPv6',
      clusterIP: 'fd00:10:96::1',
      endpoints: [ep('fd00:10:244:1::2')],
    });
    const s3 = snapshot([a, b2, v62], { families: ['IPv4', 'IPv6'] });
    await backend.sync(s3, partialDelta([v6.id]));
    expect(exec.calls.map((c) => c.command)).toEqual(['ip6tables-legacy-restore']);
    expect(exec.calls[0]!.stdin).toContain('[fd00:10:244:1::2]:8080');
  });

  it('reports rule counts per table and the variant as metrics', async () => {
    const { backend, recorded } = make('legacy');
    const s = snapshot([a, b]);
    const r = await backend.sync(s, fullDelta(s));
    const nat = recorded.filter(
      (m) => m.name === 'kubeproxy_sync_proxy_rules_iptables_total' && m.labels?.table === 'nat',
    );
    expect(nat.at(-1)!.value).toBe(r.stats!.natRules);
    expect(recorded.find((m) => m.name === 'iptables_variant_info')).toMatchObject({
      value: 1,
      labels: { variant: 'legacy' },
    });
  });

  it('runs the post-sync hook with the previous and next snapshot, and survives its failure', async () => {
    const seen: [number | undefined, number][] = [];
    const exec = new FakeExecutor();
    const { metrics } = recordingMetrics();
    const backend = new IptablesBackend(
      { config: testConfig('legacy'), logger: silentLogger(), executor: exec, metrics },
      {
        afterSync: async (prev, next) => {
          seen.push([prev?.generation, next.generation]);
          if (next.generation === 2) throw new Error('conntrack missing');
        },
      },
    );
    const s1 = snapshot([a], { generation: 1 });
    const s2 = snapshot([a, b], { generation: 2 });
    await backend.sync(s1, fullDelta(s1));
    await backend.sync(s2, partialDelta([b.id]));
    expect(seen).toEqual([
      [undefined, 1],
      [1, 2],
    ]);
  });

  it('cleanup: one restore per variant and family deleting our jumps and SY- chains only', async () => {
    const exec = new FakeExecutor();
    exec.on((c) => {
      if (c.command.endsWith('-save') && c.args.includes('nat')) {
        return {
          stdout:
            '*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:SY-SERVICES - [0:0]\n:SY-SEP-AAAA - [0:0]\n' +
            '-A PREROUTING -m comment --comment "switchyard service portals" -j SY-SERVICES\n' +
            '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n',
        };
      }
      if (c.command.endsWith('-save'))
        return { stdout: '*filter\n:INPUT ACCEPT [0:0]\n:SY-FORWARD - [0:0]\n-A INPUT -j DROP\nCOMMIT\n' };
      return undefined;
    });
    const { backend } = make('legacy', exec);
    await backend.cleanup();
    for (const tool of [
      'iptables-legacy-restore',
      'iptables-nft-restore',
      'ip6tables-legacy-restore',
      'ip6tables-nft-restore',
    ]) {
      const restores = exec.callsTo(tool).filter((c) => c.stdin);
      expect(restores).toHaveLength(1);
      const text = restores[0]!.stdin!;
      expect(text).toContain('-X SY-SERVICES');
      expect(text).toContain('-X SY-SEP-AAAA');
      expect(text).toContain('-X SY-FORWARD');
      expect(text.split('\n').filter((l) => l.startsWith('-D '))).toEqual([
        '-D PREROUTING -m comment --comment "switchyard service portals" -j SY-SERVICES',
      ]);
      expect(text).not.toContain('KUBE-');
      expect(text).not.toContain('-A INPUT');
    }
  });

  it('cleanup deletes port by port in descending hash order, after the jumps and the flush of the rest', () => {
    const a = 'SY-bbbbbbbbbbbbbbbb';
    const b = 'SY-cccccccccccccccc';
    const lines = cleanupLines(
      [`${a}-SVC`, 'SY-SERVICES', `${b}-SVC`, `${a}-qwertyui`, `${b}-asdfghjk`, 'SY-SEP-OLDNAMING0000'],
      ['-D PREROUTING -j SY-SERVICES'],
    );
    expect(lines).toEqual([
      '-D PREROUTING -j SY-SERVICES',
      ':SY-SERVICES - [0:0]',
      ':SY-SEP-OLDNAMING0000 - [0:0]',
      `:${b}-SVC - [0:0]`,
      `:${b}-asdfghjk - [0:0]`,
      `-X ${b}-SVC`,
      `-X ${b}-asdfghjk`,
      `:${a}-SVC - [0:0]`,
      `:${a}-qwertyui - [0:0]`,
      `-X ${a}-SVC`,
      `-X ${a}-qwertyui`,
      '-X SY-SERVICES',
      '-X SY-SEP-OLDNAMING0000',
    ]);
  });

  it('cleanup of a kernel holding 150k of our chains (10k Services × 10 endpoints and more) goes through', async () => {
    const names = Array.from(
      { length: 150_000 },
      (_, i) => `SY-${String.fromCharCode(97 + (i % 26)).repeat(8)}${i.toString(36).padStart(8, 'a')}-SVC`,
    );
    const exec = new FakeExecutor();
    exec.on((c) =>
      c.command.endsWith('-save') && c.args.includes('nat')
        ? {
            stdout: `*nat\n:PREROUTING ACCEPT [0:0]\n${names.map((n) => `:${n} - [0:0]`).join('\n')}\nCOMMIT\n`,
          }
        : undefined,
    );
    const { backend } = make('legacy', exec);
    await backend.cleanup();
    const text = exec.callsTo('iptables-legacy-restore').find((c) => c.stdin)!.stdin!;
    expect(text.split('\n').filter((l) => l.startsWith('-X '))).toHaveLength(names.length);
  });

  it('many chains to delete go in a restore of their own after the main one, group by group', async () => {
    const { backend, exec } = make('legacy');
    const many = manyPorts(120, 9);
    const s1 = snapshot([a, ...many]);
    await backend.sync(s1, fullDelta(s1));
    exec.calls.length = 0;
    const s2 = snapshot([a]);
    const r = await backend.sync(
      s2,
      partialDelta(
        [],
        many.map((p) => p.id),
      ),
    );
    expect(r.full).toBe(false);
    const restores = exec.callsTo('iptables-legacy-restore').map((c) => c.stdin!);
    expect(restores).toHaveLength(2);
    const [main, deletion] = restores as [string, string];
    // the main restore rewrites the dispatch and deletes nothing
    expect(main.split('\n').filter((l) => l.startsWith('-X '))).toEqual([]);
    expect(main).toContain(':SY-SERVICES - [0:0]');
    // the second deletes every chain of the 120 Service ports, one port's group after another
    const deleted = deletion
      .split('\n')
      .filter((l) => l.startsWith('-X '))
      .map((l) => l.slice(3));
    expect(deleted.length).toBeGreaterThanOrEqual(DEFERRED_DELETE_MIN);
    expect(deleted).toHaveLength(120 * 10);
    const groups = deleted.map((c) => c.slice(3, 19));
    const order = [...new Set(groups)];
    expect(order).toEqual([...order].sort().reverse());
    expect(deletion.split('\n').filter((l) => l.startsWith(':')).length).toBe(deleted.length);
    // a small removal stays in one restore
    exec.calls.length = 0;
    const s3 = snapshot([]);
    await backend.sync(s3, partialDelta([], [a.id]));
    expect(exec.callsTo('iptables-legacy-restore')).toHaveLength(1);
  });

  it('by default clears the UDP conntrack entries of an endpoint that went away, after the restore', async () => {
    const { backend, exec } = make('legacy');
    const dns1 = plan({
      name: 'dns',
      protocol: 'UDP',
      clusterIP: '10.96.0.53',
      port: 53,
      endpoints: [ep('10.244.1.5', 53), ep('10.244.1.6', 53)],
    });
    const dns2 = plan({
      name: 'dns',
      protocol: 'UDP',
      clusterIP: '10.96.0.53',
      port: 53,
      endpoints: [ep('10.244.1.5', 53)],
    });
    const s1 = snapshot([dns1], { generation: 1 });
    await backend.sync(s1, fullDelta(s1));
    exec.calls.length = 0;
    const s2 = snapshot([dns2], { generation: 2 });
    await backend.sync(s2, partialDelta([dns2.id]));
    expect(exec.calls.map((c) => c.command)).toEqual(['iptables-legacy-restore', 'conntrack']);
    const args = exec.callsTo('conntrack')[0]!.args;
    expect(args).toEqual(
      expect.arrayContaining(['-D', '-p', 'udp', '--orig-dst', '10.96.0.53', '--reply-src', '10.244.1.6']),
    );
  });

  it('cleanup skips a variant whose binaries are missing', async () => {
    const exec = new FakeExecutor();
    exec.on((c) => (c.command.includes('legacy') ? { code: 127, stderr: 'not found' } : undefined));
    const { backend } = make('nft', exec);
    await backend.cleanup();
    expect(exec.calls.filter((c) => c.command.includes('legacy') && !c.args.includes('--version'))).toEqual(
      [],
    );
  });

  it('probe: reports found binaries and the variant; unsupported when none runs', async () => {
    const ok = make('nft');
    const p = await ok.backend.probe();
    expect(p.supported).toBe(true);
    expect(p.details).toMatchObject({ iptables: 'nft' });
    const exec = new FakeExecutor();
    exec.on((c) => (c.args.includes('--version') ? { code: 127 } : undefined));
    const bad = make('auto', exec);
    const p2 = await bad.backend.probe();
    expect(p2.supported).toBe(false);
    expect(p2.reason).toMatch(/neither/);
  });

  it('auto-detects the variant from both *-save outputs', async () => {
    const exec = new FakeExecutor();
    exec.on((c) =>
      c.command === 'iptables-legacy-save'
        ? { stdout: '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n' }
        : c.command === 'iptables-nft-save'
          ? { stdout: '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n' }
          : undefined,
    );
    const { backend, recorded } = make('auto', exec);
    expect(await backend.variant()).toBe('legacy');
    expect(recorded.find((m) => m.name === 'iptables_variant_info')!.labels).toEqual({ variant: 'legacy' });
  });
});

describe('variant choice', () => {
  const empty = summarizeSave('');
  it('prefers the variant holding our chains, then the kubelet hint, then more rules, tie → nft', () => {
    const own = summarizeSave('*nat\n:SY-SERVICES - [0:0]\nCOMMIT\n');
    const hint = summarizeSave('*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n');
    const rules = summarizeSave('*filter\n-A INPUT -j ACCEPT\n');
    expect(chooseVariant(own, rules).variant).toBe('legacy');
    expect(chooseVariant(rules, own).variant).toBe('nft');
    expect(chooseVariant(hint, rules).variant).toBe('legacy');
    expect(chooseVariant(rules, empty).variant).toBe('legacy');
    expect(chooseVariant(empty, rules).variant).toBe('nft');
    expect(chooseVariant(empty, empty).variant).toBe('nft');
  });
});

describe('jump rules', () => {
  it('recognizes a jump in save output whatever the match order, not a look-alike', () => {
    const j = JUMPS.find((x) => x.chain === 'INPUT' && x.spec.includes('SY-EXTERNAL-SERVICES'))!;
    expect(
      jumpPresent(
        '-A INPUT -m comment --comment "switchyard externally-visible service portals" -m conntrack --ctstate NEW -j SY-EXTERNAL-SERVICES',
        j,
      ),
    ).toBe(true);
    expect(
      jumpPresent(
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "switchyard externally-visible service portals" -j SY-EXTERNAL-SERVICES',
        j,
      ),
    ).toBe(false);
    expect(jumpPresent('-A INPUT -j SY-EXTERNAL-SERVICES', j)).toBe(false);
  });
});
