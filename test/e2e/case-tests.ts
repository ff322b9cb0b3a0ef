/**
 * Registers one vitest test per behaviour-table case for a backend (used by the direct and the
 * daemon suites; kept apart from behaviour-runner.ts, which the IPVS guest runs without vitest).
 */
import { expect, it } from 'vitest';
import type { Topology } from '../support/netns-topology.js';
import { caseGate, describeVerdict, runCase } from './behaviour-runner.js';
import type { BehaviourCase } from './behaviour-table.js';

export function defineCaseTests(
  backend: string,
  cases: readonly BehaviourCase[],
  topology: () => Topology,
): void {
  for (const c of cases) {
    const gate = caseGate(backend, c);
    const check = async (): Promise<void> => {
      const verdict = await runCase(topology(), c);
      expect(verdict.ok, describeVerdict(c, verdict)).toBe(true);
    };
    if (gate.differs !== undefined) {
      // A documented difference: the case must still fail the kube-proxy expectation, so the
      // exception is dropped the day the backend meets it.
      it.fails(`${c.name} (differs: ${gate.differs})`, check);
    } else if (gate.skip !== undefined) {
      it.skip(`${c.name} (skipped: ${gate.skip})`, () => undefined);
    } else if (gate.fail !== undefined) {
      const why = gate.fail;
      it(c.name, () => {
        throw new Error(`${c.name}: ${why}`);
      });
    } else {
      it.concurrent(`${c.name}: ${c.from} -> ${c.to}:${c.port}/${c.protocol}`, check);
    }
  }
}
