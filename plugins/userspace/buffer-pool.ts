/**
 * Read buffers of the TCP relay. Every relayed direction reads into a buffer of its own (Node's
 * `onread` option, so no allocation per read): a small one while the connection exchanges
 * messages, and a large one, lent from this pool, while it streams — fewer and larger reads and
 * writes are what makes a userspace relay cheaper per byte. The large buffers are bounded: when
 * all are lent out, a streaming connection keeps its small buffer.
 */
export interface BufferPoolOptions {
  /** Bytes of a small buffer (default 8 KiB: what every open connection holds per direction). */
  readonly smallSize?: number;
  /** Bytes of a large buffer (default 1 MiB). */
  readonly largeSize?: number;
  /** Large buffers lent out at most at once (default 64: 64 MiB). */
  readonly maxLarge?: number;
  /** Free buffers kept for reuse, per size (default 256 small, 8 large). */
  readonly keepSmall?: number;
  readonly keepLarge?: number;
}

export class BufferPool {
  readonly smallSize: number;
  readonly largeSize: number;
  private readonly maxLarge: number;
  private readonly keepSmall: number;
  private readonly keepLarge: number;
  private readonly freeSmall: Buffer[] = [];
  private readonly freeLarge: Buffer[] = [];
  private largeOut = 0;

  constructor(options: BufferPoolOptions = {}) {
    this.smallSize = options.smallSize ?? 8 * 1024;
    this.largeSize = options.largeSize ?? 1024 * 1024;
    this.maxLarge = options.maxLarge ?? 64;
    this.keepSmall = options.keepSmall ?? 256;
    this.keepLarge = options.keepLarge ?? 8;
  }

  takeSmall(): Buffer {
    return this.freeSmall.pop() ?? Buffer.allocUnsafeSlow(this.smallSize);
  }

  /** A large buffer, or undefined when `maxLarge` are lent out already. */
  takeLarge(): Buffer | undefined {
    if (this.largeOut >= this.maxLarge) return undefined;
    this.largeOut++;
    return this.freeLarge.pop() ?? Buffer.allocUnsafeSlow(this.largeSize);
  }

  /** Return a small buffer; nothing may read into or write from it any more. */
  giveSmall(b: Buffer): void {
    if (this.freeSmall.length < this.keepSmall) this.freeSmall.push(b);
  }

  /** Return a large buffer; nothing may read into or write from it any more. */
  giveLarge(b: Buffer): void {
    this.largeOut--;
    if (this.freeLarge.length < this.keepLarge) this.freeLarge.push(b);
  }

  /** Large buffers lent out now (tests, diagnostics). */
  get largeInUse(): number {
    return this.largeOut;
  }
}
