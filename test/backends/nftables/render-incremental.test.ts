// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
//
// Property (no kernel needed): after any sequence of incremental syncs, the table an nft-like
// model holds equals what a fresh full sync of the last snapshot would create — and no script
// deletes an element that is not there or re-adds a key with a different value (both of which
// the kernel refuses, failing the whole transaction).
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { planSync, type NftablesState } from '../../../backends/nftables/render.js';
import type { Snapshot } from '../../../core/model/snapshot.js';
import { fullDelta, partialDelta } from '../../support/snapshot-gen.js';
import { nextArb, snapshotArb } from './snapshot-arb.js';

interface TableModel {
  readonly sets: Map<string, Map<string, string | undefined>>;
  readonly chains: Map<string, string[]>;
}

type Model = Map<string, TableModel>;

/** Splits `{ a . b : c, d . e : f }` contents into [key, value] pairs. */
function elements(body: string): [string, string | undefined][] {
  return body.split(', ').map((item) => {
    const i = item.indexOf(' : ');
    return i < 0 ? [item, undefined] : [item.slice(0, i), item.slice(i + 3)];
  });
}

/** Applies a script to the model the way nft would, throwing where nft would refuse it. */
function apply(model: Model, script: string): void {
  const lines = script.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^add table (\S+ \S+)$/.exec(line))) {
      if (!model.has(m[1]!)) model.set(m[1]!, { sets: new Map(), chains: new Map() });
    } else if ((m = /^delete table (\S+ \S+)$/.exec(line))) {
      if (!model.delete(m[1]!)) throw new Error(`delete of missing table ${m[1]}`);
    } else if ((m = /^table (\S+ \S+) \{$/.exec(line))) {
      const t: TableModel = model.get(m[1]!) ?? { sets: new Map(), chains: new Map() };
      model.set(m[1]!, t);
      for (n++; lines[n] !== '}'; n++) {
        const l = lines[n]!;
        let d: RegExpExecArray | null;
        if ((d = /^\t(?:set|map) (\S+) \{/.exec(l))) {
          const set = new Map<string, string | undefined>();
          const inline = /elements = \{ (.*) \};/.exec(l);
          if (inline) for (const [k, v] of elements(inline[1]!)) set.set(k, v);
          t.sets.set(d[1]!, set);
        } else if ((d = /^\tchain (\S+) \{$/.exec(l))) {
          const rules: string[] = [];
          for (n++; lines[n] !== '\t}'; n++) rules.push(lines[n]!.trim());
          t.chains.set(d[1]!, rules);
        } else throw new Error(`unexpected line in table block: ${l}`);
      }
    } else if ((m = /^(add|delete) element (\S+ \S+) (\S+) \{ (.*) \}$/.exec(line))) {
      const set = model.get(m[2]!)?.sets.get(m[3]!);
      if (!set) throw new Error(`no set ${m[3]}`);
      for (const [k, v] of elements(m[4]!)) {
        if (m[1] === 'delete') {
          if (!set.has(k)) throw new Error(`delete of missing element ${m[3]} ${k}`);
          set.delete(k);
        } else {
          if (set.has(k) && set.get(k) !== v) throw new Error(`add of ${m[3]} ${k} with another value`);
          set.set(k, v);
        }
      }
    } else if ((m = /^add set (\S+ \S+) (\S+) \{/.exec(line))) {
      const t = model.get(m[1]!)!;
      if (!t.sets.has(m[2]!)) t.sets.set(m[2]!, new Map());
    } else if ((m = /^delete set (\S+ \S+) (\S+)$/.exec(line))) {
      if (!model.get(m[1]!)!.sets.delete(m[2]!)) throw new Error(`delete of missing set ${m[2]}`);
    } else if ((m = /^add chain (\S+ \S+) (\S+)$/.exec(line))) {
      const t = model.get(m[1]!)!;
      if (!t.chains.has(m[2]!)) t.chains.set(m[2]!, []);
    } else if ((m = /^flush chain (\S+ \S+) (\S+)$/.exec(line))) {
      const c = model.get(m[1]!)!.chains.get(m[2]!);
      if (!c) throw new Error(`flush of missing chain ${m[2]}`);
      c.length = 0;
    } else if ((m = /^delete chain (\S+ \S+) (\S+)$/.exec(line))) {
      if (!model.get(m[1]!)!.chains.delete(m[2]!)) throw new Error(`delete of missing chain ${m[2]}`);
    } else if ((m = /^add rule (\S+ \S+) (\S+) (.*)$/.exec(line))) {
      const c = model.get(m[1]!)!.chains.get(m[2]!);
      if (!c) throw new Error(`rule in missing chain ${m[2]}`);
      c.push(m[3]!);
    } else {
      throw new Error(`unexpected line: ${line}`);
    }
  }
}

/** Comparable view: every set's elements; every chain but the pre-created group chains. */
function view(model: Model): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [table, t] of [...model].sort()) {
    for (const [name, set] of [...t.sets].sort()) out[`${table} set ${name}`] = [...set].sort();
    for (const [name, rules] of [...t.chains].sort()) {
      if (!name.startsWith('ep-')) out[`${table} chain ${name}`] = rules;
    }
  }
  return out;
}

function fullModel(s: Snapshot): Model {
  const model: Model = new Map();
  apply(model, planSync(s, fullDelta(s), undefined).script);
  return model;
}

it('incremental syncs converge to what a full sync of the same snapshot creates', () => {
  const steps = snapshotArb.chain((s0) =>
    nextArb(s0).chain((a) =>
      nextArb(a.next).chain((b) => nextArb(b.next).map((c) => ({ s0, steps: [a, b, c] }))),
    ),
  );
  fc.assert(
    fc.property(steps, ({ s0, steps }) => {
      const model: Model = new Map();
      const p0 = planSync(s0, fullDelta(s0), undefined);
      apply(model, p0.script);
      let state: NftablesState = p0.commit();
      for (const step of steps) {
        const plan = planSync(step.next, partialDelta(step.changed, step.removed), state);
        apply(model, plan.script);
        state = plan.commit();
        expect(view(model)).toEqual(view(fullModel(step.next)));
        // every group chain an element points at exists
        for (const t of model.values()) {
          for (const set of t.sets.values()) {
            for (const v of set.values()) {
              const target = v && /^goto (\S+)$/.exec(v)?.[1];
              if (target) expect(t.chains.has(target), target).toBe(true);
            }
          }
        }
      }
    }),
    { numRuns: 100 },
  );
});

it('with size hints on every set, incremental syncs still converge and never pass a declared size', () => {
  const opts = { sizeHintMin: 1 };
  const steps = snapshotArb.chain((s0) =>
    nextArb(s0).chain((a) =>
      nextArb(a.next).chain((b) => nextArb(b.next).map((c) => ({ s0, steps: [a, b, c] }))),
    ),
  );
  let fulls = 0;
  let incrementals = 0;
  let sizedChecked = 0;
  fc.assert(
    fc.property(steps, ({ s0, steps }) => {
      const model: Model = new Map();
      const p0 = planSync(s0, fullDelta(s0), undefined, opts);
      apply(model, p0.script);
      let state: NftablesState = p0.commit();
      for (const step of steps) {
        const plan = planSync(step.next, partialDelta(step.changed, step.removed), state, opts);
        if (plan.full) fulls++;
        else incrementals++;
        apply(model, plan.script);
        state = plan.commit();
        expect(view(model)).toEqual(view(fullModel(step.next)));
        for (const [family, fs] of state.families) {
          const table = model.get(family === 'IPv4' ? 'ip switchyard' : 'ip6 switchyard');
          for (const [set, size] of fs.sizes) {
            const n = table?.sets.get(set)?.size ?? 0;
            expect(fs.counts.get(set), `${family} ${set}`).toBe(n);
            expect(n).toBeLessThanOrEqual(size);
            sizedChecked++;
          }
        }
      }
    }),
    { numRuns: 100 },
  );
  // both paths were taken
  expect(fulls).toBeGreaterThan(0);
  expect(incrementals).toBeGreaterThan(0);
  expect(sizedChecked).toBeGreaterThan(0);
});
