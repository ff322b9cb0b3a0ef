// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
//
// The real conntrack tool in a throwaway netns: an entry is created by hand (`conntrack -I`),
// then deleted by clearConntrack; a deletion that matches nothing is not an error.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SpawnExecutor } from '../../../backends/exec/executor.js';
import { silentLogger } from '../../../core/log.js';
import { clearConntrack, listUdpConntrack, unhandledUdpFlows } from '../../../plugins/conntrack/index.js';
import { endpoint, servicePort, snapshotOf } from '../../support/snapshot-gen.js';
import { describeE2E, kernelUnavailableReason } from '../../support/e2e-gate.js';
import { NetnsExecutor } from '../../support/netns-executor.js';

const host = new SpawnExecutor();
const ns = `sy-ct-${process.pid}-${randomBytes(3).toString('hex')}`;
const exec = new NetnsExecutor(ns, host);

describeE2E('clearConntrack on the real kernel', kernelUnavailableReason(['ip', 'conntrack']), () => {
  beforeAll(async () => {
    await host.run('ip', ['netns', 'add', ns]);
  });
  afterAll(async () => {
    await host.run('ip', ['netns', 'del', ns], { allowFailure: true });
  });

  it('deletes only the matching UDP flows', async () => {
    const insert = (dst: string, port: number, replySrc: string, sport: number): Promise<unknown> =>
      exec.run('conntrack', [
        '-I',
        '-p',
        'udp',
        '-s',
        '10.244.2.2',
        '-d',
        dst,
        '--sport',
        String(sport),
        '--dport',
        String(port),
        '--reply-src',
        replySrc,
        '--reply-dst',
        '10.244.2.2',
        '--reply-port-src',
        '5353',
        '--reply-port-dst',
        String(sport),
        '-t',
        '60',
        '-u',
        'SEEN_REPLY',
      ]);
    await insert('10.96.0.53', 53, '10.244.1.1', 40001);
    await insert('10.96.0.53', 53, '10.244.1.2', 40002);
    await insert('10.96.0.54', 53, '10.244.1.1', 40003);
    const failed = await clearConntrack(
      exec,
      [
        {
          family: 'IPv4',
          protocol: 'UDP',
          origDst: '10.96.0.53',
          origPortDst: 53,
          replySrc: '10.244.1.2',
          replyPortSrc: 5353,
        },
        { family: 'IPv4', protocol: 'UDP', origDst: '10.96.0.99', origPortDst: 53 },
      ],
      silentLogger(),
    );
    expect(failed).toBe(0);
    const left = await exec.run('conntrack', ['-L', '-p', 'udp'], { allowFailure: true });
    const lines = left.stdout
      .trim()
      .split('\n')
      .filter((l) => l.includes('udp'));
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.includes('dst=10.96.0.53') && l.includes('src=10.244.1.2'))).toBe(false);
    expect(lines.some((l) => l.includes('dst=10.96.0.53') && l.includes('src=10.244.1.1'))).toBe(true);
  });

  it('start-up sweep: lists UDP flows, deletes the un-DNATed one to a served Service only', async () => {
    await exec.run('conntrack', ['-F'], { allowFailure: true });
    const insert = (sport: number, replySrc: string, replyPort: number): Promise<unknown> =>
      exec.run('conntrack', [
        '-I',
        '-p',
        'udp',
        '-s',
        '10.244.2.2',
        '-d',
        '10.96.0.53',
        '--sport',
        String(sport),
        '--dport',
        '53',
        '--reply-src',
        replySrc,
        '--reply-dst',
        '10.244.2.2',
        '--reply-port-src',
        String(replyPort),
        '--reply-port-dst',
        String(sport),
        '-t',
        '60',
      ]);
    await insert(41001, '10.96.0.53', 53); // not DNATed: stale
    await insert(41002, '10.244.1.1', 5353); // DNATed: live
    const snapshot = snapshotOf([
      servicePort({
        name: 'dns',
        protocol: 'UDP',
        port: 53,
        clusterIP: '10.96.0.53',
        clusterEndpoints: [endpoint('10.244.1.1', 5353)],
      }),
    ]);
    const deletions = unhandledUdpFlows(
      snapshot,
      'IPv4',
      await listUdpConntrack(exec, 'IPv4', silentLogger()),
    );
    expect(deletions.map((d) => d.origPortSrc)).toEqual([41001]);
    expect(await clearConntrack(exec, deletions, silentLogger())).toBe(0);
    const left = (await exec.run('conntrack', ['-L', '-p', 'udp'])).stdout;
    expect(left).toContain('sport=41002');
    expect(left).not.toContain('sport=41001');
  });
});
