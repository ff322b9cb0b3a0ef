/**
 * Stable small integer ids for things that outlive one snapshot (service ports, endpoints), so
 * affinity and flow entries can refer to them across table reloads.
 *
 * A load runs `begin()`, `acquire()` for everything in the new snapshot, then `end()`. Ids not
 * acquired in a load are released, but only become reusable at the load after next: by then the
 * matcher has purged every entry that referred to them.
 */
export class IdRegistry<V> {
  private readonly byKey = new Map<string, number>();
  private readonly values: (V | undefined)[] = [undefined];
  private readonly keys: (string | undefined)[] = [undefined];
  private readonly free: number[] = [];
  private pending: number[] = [];
  /** The load in which each id was last acquired or touched. */
  private readonly stamp: number[] = [0];
  private generation = 0;

  begin(): void {
    for (const id of this.pending) this.free.push(id);
    this.pending = [];
    this.generation++;
  }

  /** The id of `key` (new or existing), now holding `value`. */
  acquire(key: string, value: V): number {
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = this.free.pop() ?? this.values.length;
      this.byKey.set(key, id);
      this.keys[id] = key;
    }
    this.values[id] = value;
    this.stamp[id] = this.generation;
    return id;
  }

  /** Keep an id acquired in the previous load (same key, same value) without looking it up. */
  touch(id: number): void {
    this.stamp[id] = this.generation;
  }

  end(): void {
    for (const [key, id] of this.byKey) {
      if (this.stamp[id] === this.generation) continue;
      this.byKey.delete(key);
      this.values[id] = undefined;
      this.keys[id] = undefined;
      this.pending.push(id);
    }
  }

  get(id: number): V | undefined {
    return this.values[id];
  }

  idOf(key: string): number | undefined {
    return this.byKey.get(key);
  }

  get size(): number {
    return this.byKey.size;
  }
}
