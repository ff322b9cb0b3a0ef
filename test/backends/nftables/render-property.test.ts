// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
//
// Property: any snapshot the model can express — valid or malformed-ish (odd ports, bad IPs,
// many endpoints, IPv6, empty lists, odd timeouts) — renders to a script the kernel accepts,
// for a full sync and for the incremental sync that follows. Checked with `nft --check` (and
// a real apply of the full script, so the incremental one is checked against it) in a
// throwaway network namespace.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SpawnExecutor } from '../../../backends/exec/executor.js';
import { planSync } from '../../../backends/nftables/render.js';
import { describeE2E, kernelUnavailableReason } from '../../support/e2e-gate.js';
import { NetnsExecutor } from '../../support/netns-executor.js';
import { fullDelta, partialDelta } from '../../support/snapshot-gen.js';
import { nextArb, snapshotArb } from './snapshot-arb.js';

const host = new SpawnExecutor();
const ns = `sy-nftp-${process.pid}-${randomBytes(3).toString('hex')}`;
const exec = new NetnsExecutor(ns, host);

describeE2E(
  'nftables render property: every snapshot renders to a script nft accepts',
  kernelUnavailableReason(['ip', 'nft']),
  () => {
    beforeAll(async () => {
      await host.run('ip', ['netns', 'add', ns]);
    });
    afterAll(async () => {
      await host.run('ip', ['netns', 'del', ns], { allowFailure: true });
    });

    it('full and incremental scripts pass `nft --check` (and apply) in a throwaway netns', async () => {
      await fc.assert(
        fc.asyncProperty(
          snapshotArb.chain((s) => nextArb(s).map((n) => ({ s, ...n }))),
          async ({ s, next, changed, removed }) => {
            const p1 = planSync(s, fullDelta(s), undefined);
            const check1 = await exec.run('nft', ['--check', '-f', '-'], {
              stdin: p1.script,
              allowFailure: true,
            });
            expect(check1.stderr, p1.script).toBe('');
            expect(check1.code).toBe(0);
            await exec.run('nft', ['-f', '-'], { stdin: p1.script });
            const p2 = planSync(next, partialDelta(changed, removed), p1.commit());
            if (p2.script !== '') {
              const check2 = await exec.run('nft', ['--check', '-f', '-'], {
                stdin: p2.script,
                allowFailure: true,
              });
              expect(check2.stderr, p2.script).toBe('');
              await exec.run('nft', ['-f', '-'], { stdin: p2.script });
            }
          },
        ),
        { numRuns: 40 },
      );
    }, 240_000);
  },
);
