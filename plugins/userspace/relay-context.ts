/** What the TCP and UDP frontends need from the backend that owns them. */
import type { IPFamily, Logger } from '../sdk/index.js';
import type { Matcher } from '../../matcher/src/index.js';
import type { BufferPool } from './buffer-pool.js';

export interface RelayContext {
  /** The matcher of the current snapshot. */
  matcher(): Matcher;
  /** Monotonic milliseconds. */
  now(): number;
  /** The address is this node's own (a node IP or loopback). */
  isNodeAddress(ip: string): boolean;
  /** The node's primary IP of a family (the destination used for NodePorts on every address). */
  nodeAddress(family: IPFamily): string | undefined;
  /** Connect timeout of each attempt; its length is the most endpoints tried per connection. */
  readonly connectTimeoutsMs: readonly number[];
  readonly logger: Logger;
  /**
   * Count a new connection or flow by outcome (forward, reject, drop, no-match, retried,
   * unreachable). Cheap: the backend adds the counts to its metrics about once a second.
   */
  count(protocol: 'TCP' | 'UDP', outcome: string): void;
  /** Read buffers of the TCP relay. */
  readonly buffers: BufferPool;
  /** Accepted TCP sockets read into relay buffers too (see `withOnread` in tcp-frontend.ts). */
  readonly onreadAccepted: boolean;
}
