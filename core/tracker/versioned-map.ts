/**
 * Immutable map versions that share structure, and can say which keys differ between two of
 * them. The tracker publishes its ClusterState maps this way and the planner its
 * `Snapshot.servicePorts`, so that handing out a new version after a change costs about the
 * size of the change, not the size of the map, while every version handed out earlier stays
 * exactly as it was.
 *
 * A version is a `base` Map plus a small `overlay` Map of the keys set or deleted since that
 * base was built; neither is written again once a version holds it. The builder keeps
 * writing its own overlay until a version is published; the next write after that copies the
 * overlay first (copy on write). When the overlay outgrows 2√size (at least 32 keys) the
 * builder folds it into a new base: an O(size) copy every ≈ 2√size changes, i.e. O(√size)
 * amortized per change, and a lookup is at most two Map lookups.
 *
 * Iteration order is deterministic but not insertion order: the base's order with changed
 * values in place, then the keys added since the base was built. A compaction keeps the order
 * of the version it folds. Consumers that need an order sort (the planner and backends do).
 */

const DELETED: unique symbol = Symbol('deleted');
type Slot<V> = V | typeof DELETED;

/** The change log shared by every version of one builder. */
class ChangeLog<K> {
  /** Keys in the order they were changed (a key appears once per change). */
  keys: K[] = [];
  /** The absolute position of keys[0]; older entries were dropped. */
  offset = 0;

  get end(): number {
    return this.offset + this.keys.length;
  }
}

const EMPTY_OVERLAY: ReadonlyMap<unknown, never> = new Map<unknown, never>();

/**
 * Iterates base (with the overlay's values in place, its deletions left out), then the
 * overlay's additions. Hand-written rather than a generator: consumers (backends, metrics)
 * walk whole snapshots, and a generator costs several times a Map's own iterator.
 */
class MergedIterator<K, V, T> implements MapIterator<T> {
  private readonly baseIt: MapIterator<[K, V]>;
  private overlayIt: MapIterator<[K, Slot<V>]> | undefined;

  constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly overlay: ReadonlyMap<K, Slot<V>>,
    private readonly pick: (key: K, value: V) => T,
  ) {
    this.baseIt = base.entries();
  }

  next(): IteratorResult<T, undefined> {
    const overlay = this.overlay;
    if (this.overlayIt === undefined) {
      for (let r = this.baseIt.next(); !r.done; r = this.baseIt.next()) {
        const [k, v] = r.value;
        const o = overlay.get(k);
        if (o === undefined) return { done: false, value: this.pick(k, v) };
        if (o !== DELETED) return { done: false, value: this.pick(k, o) };
      }
      this.overlayIt = overlay.entries();
    }
    for (let r = this.overlayIt.next(); !r.done; r = this.overlayIt.next()) {
      const [k, o] = r.value;
      if (o !== DELETED && !this.base.has(k)) return { done: false, value: this.pick(k, o) };
    }
    return { done: true, value: undefined };
  }

  [Symbol.iterator](): MapIterator<T> {
    return this;
  }
}

/** One immutable version of a builder's map. Values must not be `undefined`. */
export class VersionedMap<K, V> implements ReadonlyMap<K, V> {
  /** @internal */
  constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly overlay: ReadonlyMap<K, Slot<V>>,
    readonly size: number,
    private readonly log: ChangeLog<K>,
    /** The log position this version was published at. */
    private readonly position: number,
  ) {}

  get(key: K): V | undefined {
    if (this.overlay.size === 0) return this.base.get(key);
    const o = this.overlay.get(key);
    if (o === undefined) return this.base.get(key);
    return o === DELETED ? undefined : o;
  }

  has(key: K): boolean {
    if (this.overlay.size === 0) return this.base.has(key);
    const o = this.overlay.get(key);
    if (o === undefined) return this.base.has(key);
    return o !== DELETED;
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }

  entries(): MapIterator<[K, V]> {
    return this.overlay.size === 0 ? this.base.entries() : this.mergedEntries();
  }

  keys(): MapIterator<K> {
    return this.overlay.size === 0 ? this.base.keys() : this.mergedKeys();
  }

  values(): MapIterator<V> {
    return this.overlay.size === 0 ? this.base.values() : this.mergedValues();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  private mergedEntries(): MapIterator<[K, V]> {
    return new MergedIterator(this.base, this.overlay, (k, v) => [k, v] as [K, V]);
  }

  private mergedKeys(): MapIterator<K> {
    return new MergedIterator(this.base, this.overlay, (k) => k);
  }

  private mergedValues(): MapIterator<V> {
    return new MergedIterator(this.base, this.overlay, (_, v) => v);
  }

  get [Symbol.toStringTag](): string {
    return 'VersionedMap';
  }

  /**
   * The keys whose value may differ between `other` and this version (a superset: a key set
   * back to its old value is listed too; every key that differs is), or undefined when that
   * cannot be told: `other` is not a version of the same builder, or the changes between them
   * are no longer logged. Works in both directions (older or newer `other`).
   */
  changedKeysSince(other: ReadonlyMap<K, V>): ReadonlySet<K> | undefined {
    if (other === this) return new Set();
    if (!(other instanceof VersionedMap) || other.log !== this.log) return undefined;
    const log = this.log;
    const lo = Math.min(this.position, (other as VersionedMap<K, V>).position);
    const hi = Math.max(this.position, (other as VersionedMap<K, V>).position);
    if (lo < log.offset) return undefined;
    const out = new Set<K>();
    for (let i = lo - log.offset; i < hi - log.offset; i++) out.add(log.keys[i] as K);
    return out;
  }
}

/**
 * The changed keys between two maps when both are versions of one VersionedMapBuilder (see
 * VersionedMap.changedKeysSince); undefined otherwise.
 */
export function changedKeysBetween<K, V>(
  before: ReadonlyMap<K, V>,
  after: ReadonlyMap<K, V>,
): ReadonlySet<K> | undefined {
  return after instanceof VersionedMap ? (after as VersionedMap<K, V>).changedKeysSince(before) : undefined;
}

/**
 * The mutable side: a map that publishes immutable VersionedMap versions. Not for concurrent
 * use (nothing here is).
 */
export class VersionedMapBuilder<K, V> {
  private base: Map<K, V>;
  private overlay: Map<K, Slot<V>> = new Map();
  /** The overlay is referenced by a published version: copy before writing. */
  private overlayShared = false;
  private count: number;
  private readonly log = new ChangeLog<K>();
  private published: VersionedMap<K, V> | undefined;

  /** Starts from these entries (taken over: the caller must not touch the Map afterwards). */
  constructor(initial?: Map<K, V>) {
    this.base = initial ?? new Map();
    this.count = this.base.size;
  }

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    const o = this.overlay.get(key);
    if (o === undefined) return this.base.get(key);
    return o === DELETED ? undefined : o;
  }

  has(key: K): boolean {
    const o = this.overlay.get(key);
    if (o === undefined) return this.base.has(key);
    return o !== DELETED;
  }

  /** Every key, in the version iteration order (a copy: the map may be changed meanwhile). */
  keys(): K[] {
    const out: K[] = [];
    for (const [k] of this.current().entries()) out.push(k);
    return out;
  }

  set(key: K, value: V): void {
    if (value === undefined) throw new TypeError('VersionedMapBuilder: undefined values are not allowed');
    const old = this.get(key);
    if (old === value) return;
    this.writableOverlay().set(key, value);
    if (old === undefined) this.count++;
    this.changed(key);
  }

  delete(key: K): boolean {
    if (!this.has(key)) return false;
    const overlay = this.writableOverlay();
    if (this.base.has(key)) overlay.set(key, DELETED);
    else overlay.delete(key);
    this.count--;
    this.changed(key);
    return true;
  }

  /** The current contents as an immutable version; the same object until the next change. */
  current(): VersionedMap<K, V> {
    if (this.published) return this.published;
    if (this.overlay.size > 0 && this.overlay.size > compactionThreshold(this.count)) this.compact();
    this.overlayShared = this.overlay.size > 0;
    this.published = new VersionedMap(
      this.base,
      this.overlay.size > 0 ? this.overlay : (EMPTY_OVERLAY as ReadonlyMap<K, Slot<V>>),
      this.count,
      this.log,
      this.log.end,
    );
    return this.published;
  }

  private writableOverlay(): Map<K, Slot<V>> {
    if (this.overlayShared) {
      this.overlay = new Map(this.overlay);
      this.overlayShared = false;
    }
    return this.overlay;
  }

  private changed(key: K): void {
    this.published = undefined;
    const log = this.log;
    log.keys.push(key);
    // Keep the log bounded: versions older than what is kept answer "cannot tell".
    const cap = Math.max(4096, 2 * this.count);
    if (log.keys.length > 2 * cap) {
      const drop = log.keys.length - cap;
      log.keys = log.keys.slice(drop);
      log.offset += drop;
    }
  }

  /** Folds the overlay into a new base (versions already published keep the old ones). */
  private compact(): void {
    let next: Map<K, V>;
    if (this.base.size === 0) {
      // Nothing to merge with (the first fill): the overlay holds no tombstones.
      next = this.overlay as Map<K, V>;
    } else {
      next = new Map();
      const overlay = this.overlay;
      for (const [k, v] of this.base) {
        const o = overlay.get(k);
        if (o === undefined) next.set(k, v);
        else if (o !== DELETED) next.set(k, o);
      }
      for (const [k, o] of overlay) if (o !== DELETED && !this.base.has(k)) next.set(k, o);
    }
    this.base = next;
    this.overlay = new Map();
    this.overlayShared = false;
  }
}

/** Overlay size above which a new base is built: ≈ 2√size, at least 32. */
function compactionThreshold(size: number): number {
  return Math.max(32, 2 * Math.ceil(Math.sqrt(size)));
}
