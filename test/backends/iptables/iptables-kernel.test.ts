/**
 * The iptables backend against the real kernel, in a throwaway network namespace (never the
 * host's root namespace), for both the legacy and the nft variant.
 * Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
 * external client 192.168.77.1, LB source range 203.0.113.0/25.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SpawnExecutor } from '../../../backends/exec/executor.js';
import { IptablesBackend } from '../../../backends/iptables/index.js';
import { JUMPS } from '../../../backends/iptables/jumps.js';
import { endpointChainName, serviceChainName, servicePortHash } from '../../../backends/iptables/names.js';
import { silentLogger } from '../../../core/log.js';
import { describeE2E, kernelUnavailableReason } from '../../support/e2e-gate.js';
import { NetnsExecutor } from '../../support/netns-executor.js';
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

const reason = kernelUnavailableReason([
  'ip',
  'iptables-legacy-restore',
  'iptables-nft-restore',
  'ip6tables-legacy-restore',
  'ip6tables-nft-restore',
]);

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

for (const variant of ['legacy', 'nft'] as const) {
  describeE2E(`iptables backend on the kernel (iptables-${variant})`, reason, () => {
    const ns = `swy-ipt-${process.pid}-${randomBytes(3).toString('hex')}`;
    const inNs = (cmd: string, ...args: string[]): string => sh('ip', ['netns', 'exec', ns, cmd, ...args]);
    const save = (family: 4 | 6 = 4): string =>
      inNs(family === 4 ? `iptables-${variant}-save` : `ip6tables-${variant}-save`);
    const makeBackend = (): IptablesBackend =>
      new IptablesBackend({
        config: testConfig(variant),
        logger: silentLogger(),
        executor: new NetnsExecutor(ns, new SpawnExecutor()),
        metrics: recordingMetrics().metrics,
      });

    beforeAll(() => {
      sh('ip', ['netns', 'add', ns]);
      // Foreign state switchyard must leave alone.
      inNs(
        `iptables-${variant}`,
        '-w',
        '5',
        '-t',
        'nat',
        '-A',
        'PREROUTING',
        '-s',
        '198.51.100.7/32',
        '-j',
        'ACCEPT',
      );
      inNs(`iptables-${variant}`, '-w', '5', '-t', 'filter', '-N', 'FOREIGN');
      inNs(
        `iptables-${variant}`,
        '-w',
        '5',
        '-t',
        'filter',
        '-A',
        'FOREIGN',
        '-s',
        '198.51.100.8/32',
        '-j',
        'DROP',
      );
      inNs(`iptables-${variant}`, '-w', '5', '-t', 'filter', '-A', 'INPUT', '-j', 'FOREIGN');
      // A leftover of an "earlier run" that the first full sync must delete.
      inNs(`iptables-${variant}`, '-w', '5', '-t', 'nat', '-N', 'SY-SEP-LEFTOVER00000000');
    });
    afterAll(() => {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    });

    const web = plan({
      name: 'web',
      clusterIP: '10.96.0.10',
      endpoints: [ep('10.244.1.2'), ep('10.244.1.3'), ep('10.244.2.4', 8080, false)],
    });
    const dns = plan({
      name: 'dns',
      protocol: 'UDP',
      clusterIP: '10.96.0.53',
      port: 53,
      affinitySeconds: 600,
      endpoints: [ep('10.244.1.5', 53)],
    });
    const sctp = plan({
      name: 'sig',
      protocol: 'SCTP',
      clusterIP: '10.96.0.60',
      port: 3868,
      endpoints: [ep('10.244.1.6', 3868)],
    });
    const shop = plan({
      name: 'shop',
      clusterIP: '10.96.0.30',
      port: 443,
      nodePort: 30443,
      externalIPs: ['192.168.77.50'],
      loadBalancerIPs: ['192.168.77.60'],
      loadBalancerSourceRanges: ['203.0.113.0/25'],
      externalPolicyLocal: true,
      endpoints: [ep('10.244.1.7', 8443), ep('10.244.2.8', 8443, false)],
    });
    const empty = plan({ name: 'empty', clusterIP: '10.96.0.99', nodePort: 30099 });
    const itp = plan({
      name: 'itp',
      clusterIP: '10.96.0.98',
      internalPolicyLocal: true,
      endpoints: [ep('10.244.2.9', 8080, false)],
    });
    const web6 = plan({
      name: 'web',
      family: 'IPv6',
      clusterIP: 'fd00:10:96::10',
      affinitySeconds: 60,
      endpoints: [ep('fd00:10:244:1::2'), ep('fd00:10:244:1::3')],
    });
    const s1 = snapshot([web, dns, sctp, shop, empty, itp, web6], {
      families: ['IPv4', 'IPv6'],
      generation: 1,
    });

    it('full sync programs our chains and jumps, deletes our leftovers, keeps foreign rules', async () => {
      const backend = makeBackend();
      const r = await backend.sync(s1, fullDelta(s1));
      expect(r.full).toBe(true);
      const out = save();
      expect(out).toContain(':SY-SERVICES - [0:0]');
      expect(out).toContain(`:${serviceChainName('SVC', servicePortHash(web.id))} `);
      expect(out).toContain(`:${serviceChainName('FW', servicePortHash(shop.id))} `);
      expect(out).toContain(`:${serviceChainName('SVX', servicePortHash(shop.id))} `);
      expect(out).toContain(
        `-A ${endpointChainName(web.id, '10.244.2.4', 8080)} -p tcp -m tcp -j DNAT --to-destination 10.244.2.4:8080`,
      );
      expect(out).toMatch(/-A SY-SERVICES -d 10\.96\.0\.99\/32 -p tcp -m tcp --dport 80 .*-j REJECT/);
      expect(out).toMatch(/-A SY-SERVICES -d 10\.96\.0\.98\/32 .*-j DROP/);
      expect(out).toMatch(/-A SY-EXTERNAL-SERVICES .*--dst-type LOCAL .*--dport 30099 .*-j REJECT/);
      expect(out).toMatch(/-A SY-FIREWALL -d 192\.168\.77\.60\/32 -p tcp -m tcp --dport 443 .*-j DROP/);
      expect(out).toMatch(/-m recent --rcheck --seconds 600 --reap --name SY-[a-z]{16}-[a-z]{8} /);
      expect(out).toContain('-A PREROUTING -m comment --comment "switchyard service portals" -j SY-SERVICES');
      expect(out).toContain(
        '-A POSTROUTING -m comment --comment "switchyard postrouting rules" -j SY-POSTROUTING',
      );
      expect(out).toContain('-A PREROUTING -s 198.51.100.7/32 -j ACCEPT');
      expect(out).not.toContain('SY-SEP-LEFTOVER00000000');
      const out6 = save(6);
      expect(out6).toContain('--to-destination [fd00:10:244:1::2]:8080');
      expect(out6).not.toContain('10.96.0.10');
      expect(r.stats!.natRules).toBeGreaterThan(20);
    });

    it('a later full sync of the same backend (the periodic resync) restores a jump deleted behind our back, once', async () => {
      const backend = makeBackend();
      await backend.sync(s1, fullDelta(s1));
      const jump = '-A PREROUTING -m comment --comment "switchyard service portals" -j SY-SERVICES';
      inNs(
        `iptables-${variant}`,
        '-w',
        '5',
        '-t',
        'nat',
        '-D',
        'PREROUTING',
        '-m',
        'comment',
        '--comment',
        'switchyard service portals',
        '-j',
        'SY-SERVICES',
      );
      expect(save()).not.toContain(jump);
      await backend.sync(s1, fullDelta(s1));
      await backend.sync(s1, fullDelta(s1));
      const out = save();
      expect(out.split('\n').filter((l) => l === jump)).toHaveLength(1);
      // every jump exactly once: 13 lines in built-in chains jumping to ours, no duplicates
      const jumps = out
        .split('\n')
        .filter((l) => /^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j SY-/.test(l));
      expect(jumps).toHaveLength(JUMPS.length);
    });

    it('removing 120 Services at once deletes their 1 200 chains in a restore of their own', async () => {
      const backend = makeBackend();
      const many = manyPorts(120, 9);
      const big = snapshot([web, ...many], { generation: 1 });
      await backend.sync(big, fullDelta(big));
      const count = (): number =>
        save()
          .split('\n')
          .filter((l) => /^:SY-[a-z]{16}-/.test(l)).length;
      expect(count()).toBeGreaterThan(1200);
      const small = snapshot([web], { generation: 2 });
      const r = await backend.sync(
        small,
        partialDelta(
          [],
          many.map((p) => p.id),
        ),
      );
      expect(r.full).toBe(false);
      expect(r.stats!.chainsDeleted).toBeGreaterThanOrEqual(1200);
      // only web's chains are left, and a fresh full sync of the same snapshot finds nothing to change
      const left = save()
        .split('\n')
        .filter((l) => /^:SY-[a-z]{16}-/.test(l));
      expect(left.length).toBeGreaterThan(0);
      for (const l of left) expect(l.startsWith(`:SY-${servicePortHash(web.id)}-`), l).toBe(true);
      const before = save();
      await makeBackend().sync(small, fullDelta(small));
      expect(
        save()
          .split('\n')
          .filter((l) => l.includes('SY-'))
          .sort(),
      ).toEqual(
        before
          .split('\n')
          .filter((l) => l.includes('SY-'))
          .sort(),
      );
      await backend.cleanup();
    });

    it('partial sync rewrites only the changed Service, deletes its stale SEP and a removed Service', async () => {
      const backend = makeBackend();
      await backend.sync(s1, fullDelta(s1)); // a restart: full sync over our own rules
      const before = save();
      // every jump exactly once, after two full syncs (two backends, as across a restart)
      const builtIn = /^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j SY-/;
      const filterSave = inNs(`iptables-${variant}-save`, '-t', 'filter');
      const natSave = inNs(`iptables-${variant}-save`, '-t', 'nat');
      const jumpLines = [...natSave.split('\n'), ...filterSave.split('\n')].filter((l) => builtIn.test(l));
      expect(jumpLines).toHaveLength(JUMPS.length);
      expect(new Set(jumpLines).size).toBe(JUMPS.length);
      expect(before).toContain(
        '-A PREROUTING -m comment --comment "switchyard service portals" -j SY-SERVICES',
      );
      const web2 = plan({
        name: 'web',
        clusterIP: '10.96.0.10',
        endpoints: [ep('10.244.1.2'), ep('10.244.1.3'), ep('10.244.2.14', 8080, false)],
      });
      const s2 = snapshot([web2, dns, sctp, shop, itp, web6], { families: ['IPv4', 'IPv6'], generation: 2 });
      const r = await backend.sync(s2, partialDelta([web2.id], [empty.id]));
      expect(r.full).toBe(false);
      const out = save();
      expect(out).toContain('--to-destination 10.244.2.14:8080');
      expect(out).not.toContain(endpointChainName(web.id, '10.244.2.4', 8080));
      expect(out).not.toContain('10.96.0.99');
      expect(out).toContain(`:${serviceChainName('SVC', servicePortHash(dns.id))} `);
      expect(out).toContain('--to-destination 10.244.1.5:53');
      expect(save(6)).toContain('--to-destination [fd00:10:244:1::3]:8080');
    });

    it('a partial sync whose restore fails (chain removed behind our back) falls back to a full one', async () => {
      const backend = makeBackend();
      await backend.sync(s1, fullDelta(s1));
      // Someone deletes an unchanged Service's chains behind our back. An endpoint change alone
      // does not rewrite SY-SERVICES (it would not notice; the periodic full sync repairs it), but
      // adding a Service does: its rewritten SY-SERVICES jumps to a chain that no longer
      // exists, so iptables-restore fails and the backend falls back to a full sync.
      const svcChain = serviceChainName('SVC', servicePortHash(sctp.id));
      const sep = endpointChainName(sctp.id, '10.244.1.6', 3868);
      for (const c of ['SY-SERVICES', svcChain, sep])
        inNs(`iptables-${variant}`, '-w', '5', '-t', 'nat', '-F', c);
      for (const c of [svcChain, sep]) inNs(`iptables-${variant}`, '-w', '5', '-t', 'nat', '-X', c);
      const web2 = plan({ name: 'web', clusterIP: '10.96.0.10', endpoints: [ep('10.244.1.2')] });
      const added = plan({ name: 'added', clusterIP: '10.96.0.77', endpoints: [ep('10.244.1.77')] });
      const s2 = snapshot([web2, dns, sctp, shop, empty, itp, web6, added], {
        families: ['IPv4', 'IPv6'],
        generation: 2,
      });
      const r = await backend.sync(s2, partialDelta([web2.id, added.id]));
      expect(r.stats!.fallbacks).toBeGreaterThanOrEqual(1);
      expect(r.full).toBe(true);
      const out = save();
      expect(out).toContain(`:${sep} `);
      expect(out).toContain('--to-destination 10.244.1.6:3868');
      expect(out).toContain('--to-destination 10.244.1.77:8080');

      // The next partial sync starts from what the fallback applied.
      const web3 = plan({ name: 'web', clusterIP: '10.96.0.10', endpoints: [ep('10.244.1.3')] });
      const s3 = snapshot([web3, dns, sctp, shop, empty, itp, web6, added], {
        families: ['IPv4', 'IPv6'],
        generation: 3,
      });
      const r3 = await backend.sync(s3, partialDelta([web3.id]));
      expect(r3.full).toBe(false);
      expect(r3.stats!.fallbacks).toBe(0);
      const out3 = save();
      expect(out3).toContain('--to-destination 10.244.1.3:8080');
      expect(out3).not.toContain(endpointChainName(web.id, '10.244.1.2', 8080));
      expect(out3).toContain(`-j ${serviceChainName('SVC', servicePortHash(added.id))}`);
    });

    for (const bucketMin of ['default', '0'] as const) {
      it(`after a series of partial syncs our rules equal a fresh full sync's (dispatch buckets: ${bucketMin})`, async () => {
        const config =
          bucketMin === 'default'
            ? testConfig(variant)
            : { ...testConfig(variant), backendOptions: { 'iptables.dispatch-bucket-min': bucketMin } };
        const mk = (): IptablesBackend =>
          new IptablesBackend({
            config,
            logger: silentLogger(),
            executor: new NetnsExecutor(ns, new SpawnExecutor()),
            metrics: recordingMetrics().metrics,
          });
        // Only our own rules, counters dropped, order-insensitive.
        const ours = (): string[] =>
          [save(), save(6)]
            .flatMap((t) => t.split('\n'))
            .filter((l) => l.startsWith(':SY-') || l.startsWith('-A SY-'))
            .map((l) => (l.startsWith(':') ? l.slice(0, l.indexOf(' ')) : l))
            .sort();
        const backend = mk();
        await backend.sync(s1, fullDelta(s1));
        const opts = { families: ['IPv4', 'IPv6'] as const };
        const web2 = plan({
          name: 'web',
          clusterIP: '10.96.0.10',
          endpoints: [ep('10.244.1.2'), ep('10.244.2.44', 8080, false)],
        });
        const extra = Array.from({ length: 6 }, (_, i) =>
          plan({
            name: `x${i}`,
            clusterIP: `10.96.5.${i + 1}`,
            nodePort: i % 2 === 0 ? 31000 + i : undefined,
            endpoints: [ep(`10.244.5.${i + 1}`)],
          }),
        );
        const steps: { ports: ReturnType<typeof plan>[]; changed: string[]; removed: string[] }[] = [
          { ports: [web2, dns, sctp, shop, empty, itp, web6], changed: [web2.id], removed: [] },
          {
            ports: [web2, dns, sctp, shop, empty, itp, web6, ...extra],
            changed: extra.map((x) => x.id),
            removed: [],
          },
          {
            ports: [web2, dns, shop, itp, web6, ...extra.slice(2)],
            changed: [],
            removed: [sctp.id, empty.id, extra[0]!.id, extra[1]!.id],
          },
          {
            ports: [web2, dns, shop, itp, web6, extra[2]!],
            changed: [],
            removed: extra.slice(3).map((x) => x.id),
          },
        ];
        let gen = 1;
        let last = s1;
        for (const st of steps) {
          last = snapshot(st.ports, { ...opts, families: ['IPv4', 'IPv6'], generation: ++gen });
          const r = await backend.sync(last, partialDelta(st.changed, st.removed));
          expect(r.full).toBe(false);
          expect(r.stats!.fallbacks).toBe(0);
        }
        const afterPartials = ours();
        if (bucketMin === '0')
          expect(afterPartials.some((l) => /^-A SY-SERVICES -d \S+ -j SY-SERVICES-\d\d$/.test(l))).toBe(true);
        // A restarted backend's full sync of the same snapshot: deletes nothing, changes nothing.
        const fresh = mk();
        await fresh.sync(last, fullDelta(last));
        expect(ours()).toEqual(afterPartials);
        // and cleanup removes the bucket chains with the rest
        await fresh.cleanup();
        expect(ours()).toEqual([]);
      });
    }

    it('cleanup removes every chain and jump of ours and leaves the foreign rules', async () => {
      const backend = makeBackend();
      await backend.sync(s1, fullDelta(s1));
      await backend.cleanup();
      for (const fam of [4, 6] as const) {
        const out = save(fam);
        expect(out).not.toContain('SY-');
      }
      const out = save();
      expect(out).toContain('-A PREROUTING -s 198.51.100.7/32 -j ACCEPT');
      expect(out).toContain(':FOREIGN - [0:0]');
      expect(out).toContain('-A FOREIGN -s 198.51.100.8/32 -j DROP');
      expect(out).toContain('-A INPUT -j FOREIGN');
    });
  });
}
