import {
  SpawnExecutor,
  type ExecOptions,
  type ExecResult,
  type Executor,
} from '../../backends/exec/executor.js';

/**
 * An Executor that runs every program inside a network namespace (`ip netns exec NS cmd ...`),
 * so a backend driven through it programs that namespace's kernel state (nft tables,
 * iptables, ipvs, conntrack) instead of the host's.
 */
export class NetnsExecutor implements Executor {
  constructor(
    readonly netns: string,
    private readonly inner: Executor = new SpawnExecutor(),
  ) {}

  run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return this.inner.run('ip', ['netns', 'exec', this.netns, command, ...args], options);
  }
}
