/**
 * The parent side of test/support/agent.mjs: spawns one agent inside a network namespace and
 * talks to it with JSON lines (see the header of agent.mjs for the protocol).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

/** 'sctp' probes go through Topology.probe (raw INIT + pod-side observation, agent-sctp.ts). */
export type ProbeProtocol = 'tcp' | 'udp' | 'sctp';

/** What an echo server answers: who it is and which client address it saw. */
export interface EchoReply {
  readonly name: string;
  readonly proto: ProbeProtocol;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly serverIp?: string;
  readonly serverPort: number;
  readonly seq: number;
}

export type ProbeOutcome = 'reply' | 'refused' | 'timeout' | 'drop' | 'closed' | 'error';

export interface ProbeResult {
  readonly result: ProbeOutcome;
  readonly reply?: EchoReply;
  /** The client socket's own address (before any NAT). */
  readonly local?: { readonly ip: string; readonly port: number };
  /** errno code for refused / drop / error. */
  readonly code?: string;
  readonly message?: string;
  /** Long-lived connection handle ('open'). */
  readonly conn?: number;
  readonly ms?: number;
}

export interface ProbeOptions {
  /** How long to wait for a connection or reply before answering 'timeout' (default 1000 ms). */
  readonly timeoutMs?: number;
  readonly localAddress?: string;
  /** Fixed source port (UDP conntrack tests). */
  readonly localPort?: number;
}

export interface AgentOptions {
  /** Network namespace to run in (undefined: the current one). */
  readonly netns?: string;
  /** Name the echo servers answer with. */
  readonly name: string;
  readonly tcpPorts?: readonly number[];
  readonly udpPorts?: readonly number[];
  /** Called with each stderr line (diagnostics). */
  readonly onStderr?: (line: string) => void;
}

/** Where agent.mjs lives, from the source tree or from dist/ after `npm run build:ts`. */
export function agentScriptPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'agent.mjs'), path.resolve(here, '../../../test/support/agent.mjs')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`agent.mjs not found (looked in ${candidates.join(', ')})`);
  return found;
}

type Pending = (r: ProbeResult) => void;

/** One running agent process. */
export class Agent {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exited = false;
  private readonly stderrTail: string[] = [];

  private constructor(
    readonly name: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {}

  /** The agent's pid (`ip netns exec` execs node in place, so this is node's pid). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  static start(options: AgentOptions): Promise<Agent> {
    // Slow machines (the IPVS suite runs under QEMU software emulation) may raise this.
    const readyMs = Number(process.env.SWITCHYARD_AGENT_READY_MS ?? '') || 10_000;
    const argv = [agentScriptPath(), '--name', options.name];
    if (options.tcpPorts?.length) argv.push('--tcp', options.tcpPorts.join(','));
    if (options.udpPorts?.length) argv.push('--udp', options.udpPorts.join(','));
    const [cmd, args] = options.netns
      ? ['ip', ['netns', 'exec', options.netns, process.execPath, ...argv]]
      : [process.execPath, argv];
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new Agent(options.name, child);
    return new Promise((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        if (!ready) {
          child.kill('SIGKILL');
          reject(
            new Error(
              `agent ${options.name}: not ready after ${readyMs / 1000} s; stderr: ${agent.stderrTail.join('\n')}`,
            ),
          );
        }
      }, readyMs);
      readline.createInterface({ input: child.stderr }).on('line', (line) => {
        agent.stderrTail.push(line);
        if (agent.stderrTail.length > 20) agent.stderrTail.shift();
        options.onStderr?.(line);
      });
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        if (msg.event === 'ready') {
          ready = true;
          clearTimeout(timer);
          resolve(agent);
          return;
        }
        if (msg.event === 'fatal') {
          clearTimeout(timer);
          reject(new Error(`agent ${options.name}: ${String(msg.message)}`));
          return;
        }
        const id = typeof msg.id === 'number' ? msg.id : undefined;
        const waiter = id === undefined ? undefined : agent.pending.get(id);
        if (waiter && id !== undefined) {
          agent.pending.delete(id);
          waiter(msg as unknown as ProbeResult);
        }
      });
      child.stdin.on('error', () => undefined);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`agent ${options.name}: ${e.message}`));
      });
      child.on('exit', (code, signal) => {
        agent.exited = true;
        clearTimeout(timer);
        const res: ProbeResult = { result: 'error', message: `agent exited (${code ?? signal})` };
        for (const w of agent.pending.values()) w(res);
        agent.pending.clear();
        if (!ready) {
          reject(
            new Error(`agent ${options.name} exited (${code ?? signal}): ${agent.stderrTail.join('\n')}`),
          );
        }
      });
    });
  }

  private send(cmd: Record<string, unknown>): Promise<ProbeResult> {
    if (this.exited) return Promise.resolve({ result: 'error', message: 'agent exited' });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }

  /** Connect, send one line, read the echo reply, close. */
  tcp(host: string, port: number, options: ProbeOptions = {}): Promise<ProbeResult> {
    return this.send({ op: 'tcp', host, port, ...options });
  }

  /** One datagram out, one back (connected socket: ICMP unreachable shows as 'refused'). */
  udp(host: string, port: number, options: ProbeOptions = {}): Promise<ProbeResult> {
    return this.send({ op: 'udp', host, port, ...options });
  }

  probe(
    protocol: ProbeProtocol,
    host: string,
    port: number,
    options: ProbeOptions = {},
  ): Promise<ProbeResult> {
    return protocol === 'tcp' ? this.tcp(host, port, options) : this.udp(host, port, options);
  }

  /** Open a long-lived TCP connection (answer carries `conn` when it worked). */
  open(host: string, port: number, options: ProbeOptions = {}): Promise<ProbeResult> {
    return this.send({ op: 'open', host, port, ...options });
  }

  /** One request/reply through a connection from `open`. */
  ping(conn: number, timeoutMs = 1000): Promise<ProbeResult> {
    return this.send({ op: 'ping', conn, timeoutMs });
  }

  closeConnection(conn: number): Promise<ProbeResult> {
    return this.send({ op: 'close', conn });
  }

  /** Stop the agent (closing stdin makes it exit; SIGKILL after a grace period). */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 1000);
    await gone;
    clearTimeout(timer);
  }

  /** Synchronous kill for exit handlers. */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
