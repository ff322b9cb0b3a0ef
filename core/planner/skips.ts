/** What the planner left out, and why. */
export interface PlanSkip {
  /** The kind of object that holds the malformed value. */
  readonly kind: 'Service' | 'EndpointSlice' | 'Node';
  /** `${namespace}/${name}` (Services, EndpointSlices) or the node name. */
  readonly key: string;
  /** JSON path of the value inside the object, e.g. `spec.ports[1].protocol`. */
  readonly field: string;
  /** Why, and what was skipped as a consequence (a value, an endpoint, a port, the Service). */
  readonly reason: string;
}

/** A stable identity for a skip (kind, key, field and reason). */
export function skipSignature(s: PlanSkip): string {
  return `${s.kind}\u0000${s.key}\u0000${s.field}\u0000${s.reason}`;
}

/** Collects skips, dropping exact duplicates (the same slice problem seen for every port). */
export class SkipCollector {
  /** Created on the first skip: most Services have none. */
  private bySignature: Map<string, PlanSkip> | undefined;

  add(kind: PlanSkip['kind'], key: string, field: string, reason: string): void {
    const skip: PlanSkip = { kind, key, field, reason };
    const sig = skipSignature(skip);
    this.bySignature ??= new Map();
    if (!this.bySignature.has(sig)) this.bySignature.set(sig, skip);
  }

  /** The skips in the order first seen (a shared empty list when there are none). */
  list(): readonly PlanSkip[] {
    return this.bySignature ? [...this.bySignature.values()] : NO_SKIPS;
  }
}

const NO_SKIPS: readonly PlanSkip[] = Object.freeze([]);
