import { VersionedMap } from './versioned-map.js';

/**
 * Structural equality for plain JSON-like data (what Kubernetes objects and snapshot plans
 * are): primitives, arrays, plain objects and Dates. Key order does not matter; a key whose
 * value is `undefined` equals a missing key (JSON has no undefined). Maps and Sets compare
 * by identity (VersionedMaps too), which is all the callers need.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    // NaN is not produced by JSON; treat it as unequal like ===.
    return false;
  }
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  const aArr = Array.isArray(a);
  if (aArr !== Array.isArray(b)) return false;
  if (aArr) {
    const x = a as readonly unknown[];
    const y = b as readonly unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!deepEqual(x[i], y[i])) return false;
    return true;
  }
  if (
    a instanceof Map ||
    b instanceof Map ||
    a instanceof Set ||
    b instanceof Set ||
    a instanceof VersionedMap ||
    b instanceof VersionedMap
  )
    return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let xCount = 0;
  for (const k of Object.keys(x)) {
    if (x[k] === undefined) continue;
    xCount++;
    if (!deepEqual(x[k], y[k])) return false;
  }
  let yCount = 0;
  for (const k of Object.keys(y)) if (y[k] !== undefined) yCount++;
  return xCount === yCount;
}

/**
 * deepEqual on two objects, ignoring the listed top-level keys. Used to compare objects while
 * disregarding bookkeeping fields (resourceVersion, managedFields...).
 */
export function deepEqualExcept(
  a: Readonly<Record<string, unknown>> | undefined,
  b: Readonly<Record<string, unknown>> | undefined,
  ignored: ReadonlySet<string>,
): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  let aCount = 0;
  for (const k of Object.keys(a)) {
    if (ignored.has(k) || a[k] === undefined) continue;
    aCount++;
    if (!deepEqual(a[k], b[k])) return false;
  }
  let bCount = 0;
  for (const k of Object.keys(b)) if (!ignored.has(k) && b[k] !== undefined) bCount++;
  return aCount === bCount;
}
