// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
//
// Real kernel, throwaway network namespace: full + incremental syncs, failure, restart and
// cleanup, checked by reading the table back with `nft -j list table`.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  SpawnExecutor,
  type ExecOptions,
  type ExecResult,
  type Executor,
} from '../../../backends/exec/executor.js';
import { nftablesRegistration } from '../../../backends/nftables/index.js';
import { planSync, renderCleanup } from '../../../backends/nftables/render.js';
import { silentLogger } from '../../../core/log.js';
import type { BackendContext } from '../../../plugins/sdk/index.js';
import { describeE2E, kernelUnavailableReason } from '../../support/e2e-gate.js';
import { NetnsExecutor } from '../../support/netns-executor.js';
import {
  endpoint,
  fullDelta,
  partialDelta,
  servicePort,
  snapshotOf,
  withPorts,
} from '../../support/snapshot-gen.js';
import { listTable } from './nft-json.js';

const host = new SpawnExecutor();
const ns = `sy-nft-${process.pid}-${randomBytes(3).toString('hex')}`;
const exec = new NetnsExecutor(ns, host);

function ctx(executor: Executor = exec): BackendContext {
  return {
    config: { masqueradeBit: 14 } as BackendContext['config'],
    logger: silentLogger(),
    executor,
    metrics: { gauge: () => undefined, counter: () => undefined },
  };
}

/** Corrupts the next script it passes to `nft -f -` (the kernel then refuses the whole transaction). */
class SabotagingExecutor implements Executor {
  armed = false;
  constructor(private readonly inner: Executor) {}
  run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    if (this.armed && command === 'nft' && options?.stdin) {
      this.armed = false;
      return this.inner.run(command, args, {
        ...options,
        stdin: `${options.stdin}add element ip switchyard no-such-set { 1.2.3.4 }\n`,
      });
    }
    return this.inner.run(command, args, options);
  }
}

const ep1 = endpoint('10.244.1.1', 8080);
const ep2 = endpoint('10.244.1.2', 8080);
const ep3 = endpoint('10.244.1.3', 8080);
const web = servicePort({
  name: 'web',
  clusterIP: '10.96.0.10',
  nodePort: 30080,
  clusterEndpoints: [ep1, ep2],
});
const dns = servicePort({
  name: 'dns',
  protocol: 'UDP',
  port: 53,
  clusterIP: '10.96.0.53',
  clusterEndpoints: [],
});
const lb = servicePort({
  name: 'lb',
  clusterIP: '10.96.0.20',
  loadBalancerIPs: ['192.168.77.200'],
  loadBalancerSourceRanges: ['203.0.113.0/25'],
  externalPolicyLocal: true,
  clusterEndpoints: [ep3, endpoint('10.244.0.9', 8080, { isLocal: true })],
});
const sticky = servicePort({
  name: 'sticky',
  protocol: 'SCTP',
  clusterIP: '10.96.0.30',
  sessionAffinity: { timeoutSeconds: 300 },
  clusterEndpoints: [ep1, ep2],
});
const v6 = servicePort({
  name: 'web',
  family: 'IPv6',
  clusterIP: 'fd00:96::10',
  nodePort: 30080,
  clusterEndpoints: [endpoint('fd00:244::1', 8080)],
});

describeE2E(
  'nftables backend on the real kernel (throwaway netns)',
  kernelUnavailableReason(['ip', 'nft']),
  () => {
    beforeAll(async () => {
      await host.run('ip', ['netns', 'add', ns]);
    });
    afterAll(async () => {
      await host.run('ip', ['netns', 'del', ns], { allowFailure: true });
    });

    it('probe: nft present and the kernel accepts a check transaction', async () => {
      const support = await nftablesRegistration.create(ctx()).probe();
      expect(support.supported).toBe(true);
      expect(support.details?.nft).toMatch(/^\d+\.\d+/);
    });

    it('full sync, incremental adds/removes, failure, restart and cleanup', async () => {
      // something that is not ours must survive everything
      await exec.run('nft', ['-f', '-'], {
        stdin: 'table ip other {\n\tchain c { type filter hook input priority 0; policy accept; }\n}\n',
      });

      const backend = nftablesRegistration.create(ctx());
      const s1 = snapshotOf([web, dns, lb, sticky, v6], { families: ['IPv4', 'IPv6'] });
      const r1 = await backend.sync(s1, fullDelta(s1));
      expect(r1.full).toBe(true);

      let t = (await listTable(exec, 'ip'))!;
      expect(t.sets.get('service-ips')).toEqual([
        '10.96.0.10 . tcp . 80 : goto ep-ip-2',
        '10.96.0.20 . tcp . 80 : goto ep-ip-2',
        expect.stringMatching(/^10\.96\.0\.30 \. sctp \. 80 : goto aff-/),
        '192.168.77.200 . tcp . 80 : goto ep-ip-1',
      ]);
      expect(t.sets.get('ip-endpoints')).toContain('10.96.0.10 . tcp . 80 . 1 : 10.244.1.2 . 8080');
      expect(t.sets.get('service-nodeports')).toEqual(['tcp . 30080 : goto ep-npm-2']);
      expect(t.sets.get('no-endpoint-services')).toEqual(['10.96.0.53 . udp . 53 : goto reject-chain']);
      expect(t.sets.get('firewall-allow')).toEqual(['192.168.77.200 . tcp . 80 . 203.0.113.0/25']);
      expect(t.sets.get('short-circuit-ips')).toEqual(['192.168.77.200 . tcp . 80 : goto ep-sc-2']);
      expect(t.sets.get('cluster-ips')).toEqual(['10.96.0.10', '10.96.0.20', '10.96.0.30', '10.96.0.53']);
      expect([...t.chains].filter((c) => c.startsWith('aff-'))).toHaveLength(3);
      const t6 = (await listTable(exec, 'ip6'))!;
      expect(t6.sets.get('ip-endpoints')).toEqual(['fd00:96::10 . tcp . 80 . 0 : fd00:244::1 . 8080']);

      // incremental: web gains an endpoint, dns gets its first one, sticky goes away
      const web2 = servicePort({
        name: 'web',
        clusterIP: '10.96.0.10',
        nodePort: 30080,
        clusterEndpoints: [ep1, ep2, ep3],
      });
      const dns2 = servicePort({
        name: 'dns',
        protocol: 'UDP',
        port: 53,
        clusterIP: '10.96.0.53',
        clusterEndpoints: [ep1],
      });
      const s2 = withPorts(s1, [web2, dns2], [sticky.id]);
      const r2 = await backend.sync(s2, partialDelta([web.id, dns.id], [sticky.id]));
      expect(r2.full).toBe(false);
      t = (await listTable(exec, 'ip'))!;
      expect(t.sets.get('service-ips')).toEqual([
        '10.96.0.10 . tcp . 80 : goto ep-ip-3',
        '10.96.0.20 . tcp . 80 : goto ep-ip-2',
        '10.96.0.53 . udp . 53 : goto ep-ip-1',
        '192.168.77.200 . tcp . 80 : goto ep-ip-1',
      ]);
      expect(t.sets.get('no-endpoint-services')).toEqual([]);
      expect(t.sets.get('service-nodeports')).toEqual(['tcp . 30080 : goto ep-npm-3']);
      expect(t.sets.get('ip-endpoints')).toContain('10.96.0.10 . tcp . 80 . 2 : 10.244.1.3 . 8080');
      expect(t.sets.get('ip-endpoints')!.some((e) => e.startsWith('10.96.0.30'))).toBe(false);
      expect(t.sets.get('cluster-ips')).toEqual(['10.96.0.10', '10.96.0.20', '10.96.0.53']);
      expect([...t.chains].filter((c) => c.startsWith('aff-'))).toEqual([]);
      expect(t.chains.has('ep-npm-3')).toBe(true); // group chains are pre-created by full syncs
      expect([...t.sets.keys()].filter((s) => s.startsWith('aff-'))).toEqual([]);

      // a refused transaction leaves the previous rules fully in place, the next sync is full
      const sabotage = new SabotagingExecutor(exec);
      const flaky = nftablesRegistration.create(ctx(sabotage));
      await flaky.sync(s2, fullDelta(s2));
      const before = JSON.stringify([...(await listTable(exec, 'ip'))!.sets]);
      const s3 = withPorts(s2, [], [web.id]);
      sabotage.armed = true;
      await expect(flaky.sync(s3, partialDelta([], [web.id]))).rejects.toThrow();
      expect(JSON.stringify([...(await listTable(exec, 'ip'))!.sets])).toBe(before);
      const r4 = await flaky.sync(s3, partialDelta([], [web.id]));
      expect(r4.full).toBe(true);
      t = (await listTable(exec, 'ip'))!;
      expect(t.sets.get('service-ips')!.some((e) => e.startsWith('10.96.0.10 '))).toBe(false);

      // restart: a fresh backend replaces an earlier run's rules in one transaction
      const restarted = nftablesRegistration.create(ctx());
      const s5 = snapshotOf([web], { families: ['IPv4'] });
      await restarted.sync(s5, fullDelta(s5));
      t = (await listTable(exec, 'ip'))!;
      expect(t.sets.get('service-ips')).toEqual(['10.96.0.10 . tcp . 80 : goto ep-ip-2']);
      expect(t.sets.get('cluster-ips')).toEqual(['10.96.0.10']);
      expect(await listTable(exec, 'ip6')).toBeUndefined(); // IPv6 no longer programmed

      // cleanup removes ours, twice in a row, and nothing else
      await restarted.cleanup();
      await restarted.cleanup();
      expect(await listTable(exec, 'ip')).toBeUndefined();
      expect(await listTable(exec, 'ip6')).toBeUndefined();
      expect(await listTable(exec, 'ip', 'other')).toBeDefined();
    });

    it('size hints: a full sync sizes hash sets 2× their elements; a sync that would pass a size is full and resizes', async () => {
      const ports = (n: number) =>
        Array.from({ length: n }, (_, i) =>
          servicePort({
            name: `s${i}`,
            clusterIP: `10.96.7.${i + 1}`,
            clusterEndpoints: [endpoint(`10.244.7.${i + 1}`, 8080)],
          }),
        );
      const apply = (script: string) => exec.run('nft', ['-f', '-'], { stdin: script });
      const sizeOf = async (kind: 'set' | 'map', name: string): Promise<string | undefined> =>
        /\bsize (\d+)/.exec((await exec.run('nft', ['list', kind, 'ip', 'switchyard', name])).stdout)?.[1];
      const opts = { masqueradeBit: 14, sizeHintMin: 1 };
      const s1 = snapshotOf(ports(3), { families: ['IPv4'] });
      const p1 = planSync(s1, fullDelta(s1), undefined, opts);
      expect(p1.script).toMatch(/set cluster-ips \{ type ipv4_addr; size 8; \}/);
      expect(p1.script).toMatch(/set cluster-cidrs \{ type ipv4_addr; flags interval; auto-merge;[^}]*\}/);
      expect(p1.script).not.toMatch(/cluster-cidrs[^\n]*size/);
      await apply(p1.script);
      const state1 = p1.commit();
      expect(await sizeOf('set', 'cluster-ips')).toBe('8');
      expect(await sizeOf('map', 'ip-endpoints')).toBe('8');

      // past the size the kernel refuses the whole transaction, and the 3 Services stay
      const extra = Array.from({ length: 20 }, (_, i) => `10.96.8.${i + 1}`).join(', ');
      await expect(apply(`add element ip switchyard cluster-ips { ${extra} }\n`)).rejects.toThrow();
      expect((await listTable(exec, 'ip'))!.sets.get('cluster-ips')).toHaveLength(3);

      // so 20 more Services are not sent incrementally: the renderer makes that sync full, and
      // the full sync declares larger sets
      const s2 = snapshotOf(ports(23), { families: ['IPv4'] });
      const p2 = planSync(
        s2,
        partialDelta(
          ports(23)
            .slice(3)
            .map((p) => p.id),
        ),
        state1,
        opts,
      );
      expect(p2.full).toBe(true);
      await apply(p2.script);
      expect(await sizeOf('set', 'cluster-ips')).toBe('64');
      expect((await listTable(exec, 'ip'))!.sets.get('cluster-ips')).toHaveLength(23);
      // and an incremental sync within the size stays incremental
      const s3 = snapshotOf(ports(24), { families: ['IPv4'] });
      const p3 = planSync(s3, partialDelta([ports(24)[23]!.id]), p2.commit(), opts);
      expect(p3.full).toBe(false);
      await apply(p3.script);
      expect((await listTable(exec, 'ip'))!.sets.get('cluster-ips')).toHaveLength(24);
      await apply(renderCleanup());
    });
  },
);
