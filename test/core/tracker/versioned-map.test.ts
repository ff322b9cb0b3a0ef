/** VersionedMap: immutable versions that share structure, checked against plain Maps. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  changedKeysBetween,
  VersionedMap,
  VersionedMapBuilder,
} from '../../../core/tracker/versioned-map.js';

type Op =
  | { readonly kind: 'set'; readonly key: number; readonly value: number }
  | { readonly kind: 'delete'; readonly key: number }
  | { readonly kind: 'publish' };

const opArb = (keys: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .record({ key: fc.integer({ min: 0, max: keys - 1 }), value: fc.integer({ min: 0, max: 3 }) })
        .map((o): Op => ({ kind: 'set', ...o })),
    },
    {
      weight: 3,
      arbitrary: fc.integer({ min: 0, max: keys - 1 }).map((key): Op => ({ kind: 'delete', key })),
    },
    { weight: 2, arbitrary: fc.constant<Op>({ kind: 'publish' }) },
  );

/** Values are objects so that identity matters, as for the tracker's Kubernetes objects. */
interface Box {
  readonly v: number;
}

describe('VersionedMap', () => {
  it('every version equals the Map it was published from, forever; changed keys cover every difference', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.array(opArb(120), { minLength: 1, maxLength: 400, size: 'max' }),
        (keys, rawOps) => {
          const ops = rawOps.map((o) => (o.kind === 'publish' ? o : { ...o, key: o.key % keys }));
          const builder = new VersionedMapBuilder<number, Box>();
          const reference = new Map<number, Box>();
          const boxes = [0, 1, 2, 3].map((v) => ({ v }));
          const versions: { readonly version: VersionedMap<number, Box>; readonly copy: Map<number, Box> }[] =
            [];
          const publish = (): void => {
            const version = builder.current();
            expect(builder.current()).toBe(version); // the same object until the next change
            versions.push({ version, copy: new Map(reference) });
          };
          for (const op of ops) {
            if (op.kind === 'publish') publish();
            else if (op.kind === 'set') {
              builder.set(op.key, boxes[op.value] as Box);
              reference.set(op.key, boxes[op.value] as Box);
            } else expect(builder.delete(op.key)).toBe(reference.delete(op.key));
            expect(builder.size).toBe(reference.size);
          }
          publish();
          for (const { version, copy } of versions) {
            expect(version.size).toBe(copy.size);
            expect(new Map(version)).toEqual(copy);
            expect([...version.keys()]).toEqual([...version.entries()].map(([k]) => k));
            expect([...version.values()]).toEqual([...version.entries()].map(([, v]) => v));
            for (let k = 0; k < keys; k++) {
              expect(version.get(k)).toBe(copy.get(k));
              expect(version.has(k)).toBe(copy.has(k));
            }
          }
          // Between any two versions, every key whose value differs is reported.
          for (let i = 0; i < versions.length; i += 7) {
            for (let j = i; j < versions.length; j += 5) {
              const a = versions[i]!;
              const b = versions[j]!;
              const changed = changedKeysBetween(a.version, b.version);
              expect(changed).toBeDefined();
              expect(changedKeysBetween(b.version, a.version)).toEqual(changed);
              for (let k = 0; k < keys; k++) {
                if (a.copy.get(k) !== b.copy.get(k)) expect(changed!.has(k)).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('cannot tell changes across builders or for plain Maps', () => {
    const a = new VersionedMapBuilder<string, number>();
    const b = new VersionedMapBuilder<string, number>();
    a.set('x', 1);
    b.set('x', 1);
    expect(changedKeysBetween(a.current(), b.current())).toBeUndefined();
    expect(changedKeysBetween(new Map([['x', 1]]), a.current())).toBeUndefined();
    expect(changedKeysBetween(a.current(), new Map([['x', 1]]))).toBeUndefined();
    expect(changedKeysBetween(a.current(), a.current())).toEqual(new Set());
  });

  it('forgets changes older than its log keeps, and then says so', () => {
    const builder = new VersionedMapBuilder<number, number>();
    builder.set(0, 0);
    const old = builder.current();
    for (let i = 0; i < 20_000; i++) builder.set(i % 10, i);
    expect(builder.current().changedKeysSince(old)).toBeUndefined();
    const recent = builder.current();
    builder.set(3, -1);
    expect(builder.current().changedKeysSince(recent)).toEqual(new Set([3]));
    expect(old.get(0)).toBe(0);
    expect(old.size).toBe(1);
  });

  it('shares the unchanged entries: a version after one change does not copy the map', () => {
    const builder = new VersionedMapBuilder<number, number>();
    for (let i = 0; i < 10_000; i++) builder.set(i, i);
    builder.current();
    builder.set(5, -5);
    const v = builder.current() as unknown as { base: Map<number, number>; overlay: Map<number, number> };
    expect(v.overlay.size).toBe(1);
    expect(v.base.size).toBe(10_000);
    builder.set(6, -6);
    const w = builder.current() as unknown as { base: Map<number, number>; overlay: Map<number, number> };
    expect(w.base).toBe(v.base);
    expect(v.overlay.size).toBe(1); // the earlier version's overlay was copied, not written
    expect(w.overlay.size).toBe(2);
  });

  it('refuses undefined values (they would read as absent)', () => {
    const builder = new VersionedMapBuilder<string, number | undefined>();
    expect(() => builder.set('x', undefined)).toThrow(TypeError);
  });
});
