/**
 * SCTP probes without kernel SCTP sockets. Many kernels (this one: CONFIG_IP_SCTP unset) cannot
 * open SCTP sockets, yet netfilter tracks and NATs SCTP. So the client sends one SCTP INIT with
 * a raw socket (agent-sctp.py), and every pod watches its input path with an nft set that
 * records (source address, source port) of SCTP packets. Which pod recorded the INIT is the
 * endpoint the Service chose; the recorded source says whether it was masqueraded. A probe that
 * no pod saw within the wait is a 'timeout'. There is no REJECT/refused for SCTP here (nothing
 * reads ICMP errors from a raw socket).
 *
 * Probes of one topology are serialized (the observation is per pod, not per probe).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Executor } from '../../backends/exec/executor.js';
import type { ProbeResult } from './agent-client.js';

const OBSERVER = [
  'table inet sctpobs {',
  '  set seen4 { type ipv4_addr . inet_service; flags dynamic; size 4096; }',
  '  set seen6 { type ipv6_addr . inet_service; flags dynamic; size 4096; }',
  '  chain input {',
  '    type filter hook input priority 0; policy accept;',
  '    meta nfproto ipv4 meta l4proto sctp add @seen4 { ip saddr . sctp sport }',
  '    meta nfproto ipv6 meta l4proto sctp add @seen6 { ip6 saddr . sctp sport }',
  '  }',
  '}',
  '',
].join('\n');

/** Where agent-sctp.py lives (source tree, or from dist/). */
export function sctpScriptPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, 'agent-sctp.py'),
    path.resolve(here, '../../../test/support/agent-sctp.py'),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`agent-sctp.py not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** Why SCTP probes cannot run here, or undefined. */
export function sctpProbeUnavailableReason(): string | undefined {
  try {
    execFileSync('python3', ['-c', 'import socket'], { stdio: 'ignore' });
  } catch {
    return 'python3 is needed to send SCTP INITs with a raw socket';
  }
  try {
    sctpScriptPath();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

interface SeenElement {
  readonly elem?: { concat?: [string, number] } | [string, number];
}

function parseSeen(json: string): { ip: string; port: number }[] {
  const out: { ip: string; port: number }[] = [];
  try {
    const doc = JSON.parse(json) as { nftables?: { set?: { elem?: SeenElement[] | unknown[] } }[] };
    for (const o of doc.nftables ?? []) {
      for (const e of (o.set?.elem ?? []) as unknown[]) {
        // elements: {"concat": [ip, port]} or {"elem": {"val": {"concat": [...]}}}
        const c =
          (e as { concat?: unknown[] }).concat ??
          (e as { elem?: { val?: { concat?: unknown[] } } }).elem?.val?.concat;
        if (Array.isArray(c) && typeof c[0] === 'string') out.push({ ip: c[0], port: Number(c[1]) });
      }
    }
  } catch {
    // no set yet
  }
  return out;
}

export interface SctpPod {
  readonly name: string;
  readonly executor: Executor;
}

export class SctpProber {
  private chain: Promise<unknown> = Promise.resolve();
  private installed = false;

  constructor(private readonly pods: readonly SctpPod[]) {}

  private async install(): Promise<void> {
    if (this.installed) return;
    for (const p of this.pods) {
      await p.executor.run('nft', ['delete', 'table', 'inet', 'sctpobs'], { allowFailure: true });
      await p.executor.run('nft', ['-f', '-'], { stdin: OBSERVER });
    }
    this.installed = true;
  }

  /** Empty every pod's observation sets (one `nft -f` per pod). */
  private async flush(): Promise<void> {
    const script = 'flush set inet sctpobs seen4\nflush set inet sctpobs seen6\n';
    await Promise.all(
      this.pods.map((p) => p.executor.run('nft', ['-f', '-'], { stdin: script, allowFailure: true })),
    );
  }

  /** What each pod saw since the last flush (one `nft -j list table` per pod). */
  private async seen(): Promise<{ pod: string; ip: string; port: number }[]> {
    const lists = await Promise.all(
      this.pods.map(async (p) => {
        const r = await p.executor.run('nft', ['-j', 'list', 'table', 'inet', 'sctpobs'], {
          allowFailure: true,
        });
        return parseSeen(r.stdout).map((e) => ({ pod: p.name, ...e }));
      }),
    );
    return lists.flat();
  }

  /** Send one INIT from `from` (its executor) to host:port and see which pod got it. */
  probe(
    from: Executor,
    host: string,
    port: number,
    options: { localAddress?: string; waitMs?: number } = {},
  ): Promise<ProbeResult> {
    const run = async (): Promise<ProbeResult> => {
      await this.install();
      await this.flush(); // forget earlier probes (and strays)
      const started = Date.now();
      const args = [
        sctpScriptPath(),
        host,
        String(port),
        ...(options.localAddress ? [options.localAddress] : []),
      ];
      const sent = await from.run('python3', args, { allowFailure: true, timeoutMs: 10_000 });
      if (sent.code !== 0) return { result: 'error', message: sent.stderr.trim() };
      const { src, sport } = JSON.parse(sent.stdout) as { src: string; sport: number };
      const deadline = Date.now() + (options.waitMs ?? 500);
      for (;;) {
        const seen = await this.seen();
        if (seen.length > 0) {
          const s = seen[0] as { pod: string; ip: string; port: number };
          return {
            result: 'reply',
            reply: {
              name: s.pod,
              proto: 'sctp',
              clientIp: s.ip,
              clientPort: s.port,
              serverPort: port,
              seq: 0,
            },
            local: { ip: src, port: sport },
            ms: Date.now() - started,
          };
        }
        if (Date.now() > deadline) return { result: 'timeout', ms: Date.now() - started };
        await new Promise((r) => setTimeout(r, 30));
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
