/**
 * Runs behaviour-table cases against a topology whose node is programmed by some backend (or
 * the real daemon): sends real traffic from the agents and compares with the expectation.
 */
import type { ProbeResult } from '../support/agent-client.js';
import { sctpProbeUnavailableReason } from '../support/agent-sctp.js';
import { e2eRequired } from '../support/e2e-gate.js';
import type { Topology } from '../support/netns-topology.js';
import { exceptionFor, type BehaviourCase } from './behaviour-table.js';

/**
 * Whether a case runs for a backend: `skip` for a listed backend exception, or for a missing
 * tool (SCTP probes need python3) unless SWITCHYARD_E2E=required, which turns that into `fail`.
 */
export function caseGate(
  backend: string,
  c: BehaviourCase,
): { skip?: string; fail?: string; differs?: string } {
  const exception = exceptionFor(backend, c.name);
  if (exception !== undefined) return { differs: exception };
  const missing = c.protocol === 'SCTP' ? sctpProbeUnavailableReason() : undefined;
  if (missing === undefined) return {};
  return e2eRequired() ? { fail: `cannot run (${missing}) and SWITCHYARD_E2E=required` } : { skip: missing };
}

export interface CaseObservation {
  readonly samples: number;
  /** Outcome counts: reply / refused / timeout / drop / closed / error. */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Which endpoint answered how often. */
  readonly answeredBy: Readonly<Record<string, number>>;
  /** Replies where the server saw a source other than the client's own address, and where not. */
  readonly masqueraded: number;
  readonly notMasqueraded: number;
  /** Slowest refused sample (ms): a REJECT must be immediate. */
  readonly slowestRefusalMs: number;
  /** A few raw samples for the failure message. */
  readonly examples: readonly ProbeResult[];
}

export interface CaseVerdict {
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly observation: CaseObservation;
}

export interface RunCaseOptions {
  /** Timeout for a sample that should be answered or refused (default 3000 ms). */
  readonly answerTimeoutMs?: number;
  /**
   * How long silence means DROP (default: TCP 2500 ms, UDP 1000 ms). For TCP it must exceed
   * the first SYN retransmission (1 s): on veth an ICMPv6 error can arrive while connect() still
   * holds the socket lock, and the kernel drops it (TcpExtLockDroppedIcmps), so a REJECT over
   * IPv6 may be seen only at the retransmission, about 1 s later. Still a refusal, never silence.
   */
  readonly dropTimeoutMs?: number;
  /** A refusal slower than this is not "at once" (default 1500 ms; see dropTimeoutMs). */
  readonly maxRefusalMs?: number;
  /** Samples for "any of these endpoints" cases: at least `min`, then until all were seen or `max`. */
  readonly minSamples?: number;
  readonly maxSamples?: number;
}

function observe(results: readonly ProbeResult[]): CaseObservation {
  const outcomes: Record<string, number> = {};
  const answeredBy: Record<string, number> = {};
  let masqueraded = 0;
  let notMasqueraded = 0;
  let slowestRefusalMs = 0;
  for (const r of results) {
    outcomes[r.result] = (outcomes[r.result] ?? 0) + 1;
    if (r.result === 'reply' && r.reply) {
      answeredBy[r.reply.name] = (answeredBy[r.reply.name] ?? 0) + 1;
      if (r.local && r.reply.clientIp !== r.local.ip) masqueraded++;
      else notMasqueraded++;
    }
    if (r.result === 'refused') slowestRefusalMs = Math.max(slowestRefusalMs, r.ms ?? 0);
  }
  return {
    samples: results.length,
    outcomes,
    answeredBy,
    masqueraded,
    notMasqueraded,
    slowestRefusalMs,
    examples: results.slice(0, 3),
  };
}

/** Send the case's traffic and judge it. Never throws for a behaviour mismatch: see `ok`. */
export async function runCase(
  topo: Topology,
  c: BehaviourCase,
  options: RunCaseOptions = {},
): Promise<CaseVerdict> {
  const proto = c.protocol === 'TCP' ? 'tcp' : c.protocol === 'UDP' ? 'udp' : 'sctp';
  if (proto === 'sctp' && c.expect.endpoints === 'reject')
    throw new Error(`${c.name}: SCTP probes cannot see a REJECT`);
  const answerTimeoutMs = options.answerTimeoutMs ?? 3000;
  const dropTimeoutMs = options.dropTimeoutMs ?? (proto === 'tcp' ? 2500 : 1000);
  const maxRefusalMs = options.maxRefusalMs ?? 1500;
  const source = c.sourceIp ? { localAddress: c.sourceIp } : {};
  const probe = (timeoutMs: number): Promise<ProbeResult> =>
    topo.probe(c.from, proto, c.to, c.port, { timeoutMs, ...source });
  const problems: string[] = [];
  const results: ProbeResult[] = [];
  const e = c.expect;

  if (e.endpoints === 'drop') {
    results.push(...(await Promise.all([probe(dropTimeoutMs), probe(dropTimeoutMs)])));
    const obs = observe(results);
    // 'drop' (EPERM) is a netfilter drop on the sender's own output path.
    const bad = results.filter((r) => r.result !== 'timeout' && r.result !== 'drop');
    if (bad.length) {
      problems.push(
        `expected DROP (silence), got ${bad.map((r) => r.result + (r.code ? `(${r.code})` : '') + (r.reply ? `:${r.reply.name}` : '')).join(', ')}`,
      );
    }
    return { ok: problems.length === 0, problems, observation: obs };
  }

  if (e.endpoints === 'reject') {
    for (let i = 0; i < 3; i++) results.push(await probe(answerTimeoutMs));
    const obs = observe(results);
    // REJECT is ICMP port unreachable or a TCP RST: ECONNREFUSED. Host/network unreachable
    // comes from the upstream router for traffic nobody programmed.
    const bad = results.filter((r) => r.result !== 'refused' || r.code !== 'ECONNREFUSED');
    if (bad.length) {
      problems.push(
        `expected REJECT (ECONNREFUSED at once), got ${bad.map((r) => r.result + (r.code ? `(${r.code})` : '') + (r.reply ? `:${r.reply.name}` : '')).join(', ')}`,
      );
    }
    if (obs.slowestRefusalMs > maxRefusalMs) problems.push(`a refusal took ${obs.slowestRefusalMs} ms`);
    return { ok: problems.length === 0, problems, observation: obs };
  }

  const expected = new Set(e.endpoints);
  const min = e.sameEndpointEveryTime ? 12 : (options.minSamples ?? Math.max(6, expected.size * 4));
  const max = e.sameEndpointEveryTime ? 12 : (options.maxSamples ?? 60);
  const seen = new Set<string>();
  while (results.length < max) {
    const r = await probe(answerTimeoutMs);
    results.push(r);
    if (r.result !== 'reply') break; // one failure is enough to judge
    if (r.reply) seen.add(r.reply.name);
    if (results.length >= min && !e.sameEndpointEveryTime && [...expected].every((n) => seen.has(n))) break;
  }
  const obs = observe(results);
  const notReplies = results.filter((r) => r.result !== 'reply');
  if (notReplies.length) {
    problems.push(
      `expected replies, got ${notReplies.map((r) => `${r.result}${r.code ? `(${r.code})` : ''}`).join(', ')}`,
    );
  }
  const unexpected = Object.keys(obs.answeredBy).filter((n) => !expected.has(n));
  if (unexpected.length) problems.push(`answered by unexpected ${unexpected.join(', ')}`);
  if (e.sameEndpointEveryTime) {
    if (Object.keys(obs.answeredBy).length !== 1)
      problems.push(`affinity broken: answered by ${JSON.stringify(obs.answeredBy)}`);
  } else if (notReplies.length === 0) {
    const missing = [...expected].filter((n) => !seen.has(n));
    if (missing.length) problems.push(`never answered by ${missing.join(', ')} in ${results.length} samples`);
  }
  if (e.masqueraded === true && obs.notMasqueraded > 0)
    problems.push(`${obs.notMasqueraded} replies saw the client's own address (expected masquerade)`);
  if (e.masqueraded === false && obs.masqueraded > 0)
    problems.push(`${obs.masqueraded} replies saw a masqueraded source (expected the client's own)`);
  return { ok: problems.length === 0, problems, observation: obs };
}

/** A one-paragraph description of a verdict for assertion messages. */
export function describeVerdict(c: BehaviourCase, v: CaseVerdict): string {
  const o = v.observation;
  return (
    `${c.name} (${c.from}${c.sourceIp ? `@${c.sourceIp}` : ''} -> ${c.to}:${c.port}/${c.protocol}, covers: ${c.covers}): ` +
    `${v.problems.join('; ')} | outcomes ${JSON.stringify(o.outcomes)} answeredBy ${JSON.stringify(o.answeredBy)} ` +
    `masq ${o.masqueraded}/${o.masqueraded + o.notMasqueraded} | e.g. ${JSON.stringify(o.examples[0] ?? {})}`
  );
}
