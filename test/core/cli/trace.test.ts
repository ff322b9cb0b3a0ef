// `switchyard trace` golden cases: a fixed cluster (golden/trace/cluster.yaml) seen from node-a,
// one expected output per case under golden/trace/. Trace runs in-process with a fixed matcher
// seed, so the sample pick is deterministic. SWITCHYARD_UPDATE_GOLDEN=1 rewrites the files
// (review the diff!).
//
// IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadClusterEvents } from '../../../core/cli/main.js';
import { runTrace, type TraceOptions } from '../../../core/cli/trace.js';
import { resolveConfig } from '../../../core/config/load-config.js';
import { parseArgs } from '../../../core/config/parse-args.js';
import { silentLogger } from '../../../core/log.js';
import { ReferenceMatcher, createMatcher } from '../../../matcher/src/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN = path.join(HERE, 'golden', 'trace');
const CLUSTER = path.join(GOLDEN, 'cluster.yaml');
const SEED = 7;
const UPDATE = process.env.SWITCHYARD_UPDATE_GOLDEN === '1';

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

async function trace(args: readonly string[], options: TraceOptions = {}): Promise<Run> {
  const cmd = parseArgs(
    ['trace', '--from', CLUSTER, '--hostname-override', 'node-a', '--cluster-cidr', '10.244.0.0/16', ...args],
    {},
  );
  if (cmd.kind !== 'trace') throw new Error(`parsed as ${cmd.kind}`);
  const { config } = resolveConfig(cmd.flags, undefined, 'test-host');
  let out = '';
  let err = '';
  const code = await runTrace(config, cmd, silentLogger(), loadClusterEvents, {
    seed: SEED,
    write: (t) => void (out += t),
    writeError: (t) => void (err += t),
    ...options,
  });
  return { code, out, err };
}

interface GoldenCase {
  readonly name: string;
  readonly covers: string;
  readonly args: readonly string[];
  /** Lines the output must contain (checked besides the golden file, so a bad golden cannot pass). */
  readonly mustSay: readonly string[];
}

const POD = '10.244.1.77';
const NODE = '192.168.77.2';
const EXTERNAL = '192.168.77.1';

const CASES: readonly GoldenCase[] = [
  {
    name: 'clusterip-from-pod',
    covers:
      'ClusterIP match, eligible endpoints, not ready, terminating without fallback, terminating not serving; no masquerade for pods',
    args: ['--source', POD, '--destination', '10.96.0.10:80'],
    mustSay: [
      'Source:      pod',
      'Matched:     ClusterIP 10.96.0.10:80/TCP',
      'Verdict:     DNAT',
      '- 10.244.2.11:8080 web-starting: not ready',
      '- 10.244.1.12:8080 web-draining: terminating (still serving): no fallback',
      '- 10.244.2.13:8080 web-stopping: terminating and not serving',
      'Masquerade:  no',
    ],
  },
  {
    name: 'clusterip-from-node',
    covers: 'source classified as this node; ClusterIP from outside --cluster-cidr is masqueraded',
    args: ['--source', NODE, '--destination', '10.96.0.10:80'],
    mustSay: [
      'Source:      node',
      'Verdict:     DNAT',
      'Masquerade:  yes: traffic to a ClusterIP from outside --cluster-cidr',
    ],
  },
  {
    name: 'clusterip-udp-from-external',
    covers: 'UDP; external source to a ClusterIP is masqueraded',
    args: ['--source', EXTERNAL, '--destination', '10.96.0.10:53', '--protocol', 'udp'],
    mustSay: [
      'Source:      external',
      'Matched:     ClusterIP 10.96.0.10:53/UDP',
      'DNAT to:     10.244.1.10:5353, 10.244.2.10:5353',
      'Masquerade:  yes',
    ],
  },
  {
    name: 'clusterip-undefined-port',
    covers: 'no match on a ClusterIP: REJECT',
    args: ['--source', POD, '--destination', '10.96.0.10:81'],
    mustSay: [
      'Service:     none',
      'Verdict:     REJECT: 10.96.0.10 is the ClusterIP of shop/web, which has no port 81/TCP',
    ],
  },
  {
    name: 'no-endpoints',
    covers: 'a Service without endpoints: REJECT',
    args: ['--source', POD, '--destination', '10.96.0.11:80'],
    mustSay: ['Verdict:     REJECT: shop/empty has no endpoints', 'Endpoints:   0 of 0 eligible'],
  },
  {
    name: 'terminating-fallback',
    covers: 'no ready endpoint: serving+terminating ones are used (fallback)',
    args: ['--source', POD, '--destination', '10.96.0.12:80'],
    mustSay: [
      '+ 10.244.1.20:8080 rolling-old-a: serving but terminating, local: used as a fallback',
      '- 10.244.2.20:8080 rolling-old-b: terminating and not serving',
      'DNAT to:     10.244.1.20:8080',
    ],
  },
  {
    name: 'topology-other-zone',
    covers: 'topology hints: an endpoint for another zone is not eligible',
    args: ['--source', POD, '--destination', '10.96.0.13:80'],
    mustSay: [
      '+ 10.244.1.30:8080 zoned-a',
      "- 10.244.2.30:8080 zoned-b: ready, but topology hints send this node's traffic elsewhere",
      'DNAT to:     10.244.1.30:8080',
    ],
  },
  {
    name: 'nodeport-external-cluster-policy',
    covers: 'NodePort on a node address; external traffic with policy Cluster is masqueraded',
    args: ['--source', EXTERNAL, '--destination', `${NODE}:30080`],
    mustSay: [
      'Matched:     NodePort 30080/TCP on node address 192.168.77.2',
      'Path:        external',
      'Masquerade:  yes: external traffic with externalTrafficPolicy Cluster',
    ],
  },
  {
    name: 'nodeport-other-address',
    covers: 'no match: a NodePort on an address outside --nodeport-addresses',
    args: ['--source', EXTERNAL, '--destination', '192.168.77.9:30080'],
    mustSay: [
      'Verdict:     NOT-PROXIED',
      'Note:        NodePort 30080/TCP of shop/web is not served on 192.168.77.9',
    ],
  },
  {
    name: 'etp-local-nodeport-external',
    covers: 'externalTrafficPolicy Local: only local endpoints, remote ones "not local"; client address kept',
    args: ['--source', EXTERNAL, '--destination', `${NODE}:30081`],
    mustSay: [
      '+ 10.244.1.40:8080 local-a',
      '- 10.244.2.40:8080 local-b: not local (on node node-b) and externalTrafficPolicy is Local',
      'Masquerade:  no: externalTrafficPolicy Local',
    ],
  },
  {
    name: 'etp-local-no-local-endpoint',
    covers: 'externalTrafficPolicy Local without a local endpoint: DROP',
    args: ['--source', EXTERNAL, '--destination', `${NODE}:30082`],
    mustSay: ['Verdict:     DROP: externalTrafficPolicy is Local and no endpoint runs on node node-a'],
  },
  {
    name: 'etp-local-short-circuit-from-pod',
    covers: 'a pod to a Local-policy NodePort short-circuits to every endpoint',
    args: ['--source', POD, '--destination', `${NODE}:30082`],
    mustSay: ['Path:        short-circuit', '+ 10.244.2.50:8080 remote-b', 'Masquerade:  no'],
  },
  {
    name: 'etp-local-lb-from-node',
    covers: "the node's own traffic to a Local-policy LB IP short-circuits and is masqueraded",
    args: ['--source', NODE, '--destination', '198.51.100.14:80'],
    mustSay: [
      'Matched:     LoadBalancer IP 198.51.100.14:80/TCP',
      'Path:        short-circuit',
      'Masquerade:  yes',
    ],
  },
  {
    name: 'lb-source-allowed',
    covers: 'LoadBalancer IP from inside loadBalancerSourceRanges; session affinity',
    args: ['--source', '203.0.113.7', '--destination', '198.51.100.16:443'],
    mustSay: [
      'Matched:     LoadBalancer IP 198.51.100.16:443/TCP',
      'Affinity:    ClientIP, 600 s',
      'Verdict:     DNAT',
    ],
  },
  {
    name: 'lb-source-denied',
    covers: 'LoadBalancer IP from outside loadBalancerSourceRanges: DROP',
    args: ['--source', '203.0.113.200', '--destination', '198.51.100.16:443'],
    mustSay: ['Verdict:     DROP: source 203.0.113.200 is outside loadBalancerSourceRanges (203.0.113.0/25)'],
  },
  {
    name: 'externalip-ignores-source-ranges',
    covers: 'externalIP match; source ranges apply to LB IPs only',
    args: ['--source', '203.0.113.200', '--destination', '192.168.77.50:443'],
    mustSay: ['Matched:     externalIP 192.168.77.50:443/TCP', 'Verdict:     DNAT'],
  },
  {
    name: 'itp-local-from-pod',
    covers: 'internalTrafficPolicy Local: remote endpoints not eligible',
    args: ['--source', POD, '--destination', '10.96.0.17:80'],
    mustSay: [
      '- 10.244.2.70:8080 cache-b: not local (on node node-b) and internalTrafficPolicy is Local',
      'DNAT to:     10.244.1.70:8080',
    ],
  },
  {
    name: 'itp-local-no-local-endpoint',
    covers: 'internalTrafficPolicy Local without a local endpoint: DROP',
    args: ['--source', POD, '--destination', '10.96.0.18:80'],
    mustSay: ['Verdict:     DROP: internalTrafficPolicy is Local and no endpoint runs on node node-a'],
  },
  {
    name: 'hairpin',
    covers: 'a pod reaching itself through its Service is masqueraded (hairpin)',
    args: ['--source', '10.244.1.90', '--destination', '10.96.0.19:80'],
    mustSay: ['Sample pick: 10.244.1.90:8080 (solo-a)', 'Masquerade:  yes: hairpin'],
  },
  {
    name: 'masquerade-all',
    covers: '--masquerade-all masquerades pod traffic too',
    args: ['--source', POD, '--destination', '10.96.0.17:80', '--masquerade-all'],
    mustSay: ['Masquerade:  yes: --masquerade-all'],
  },
  {
    name: 'not-a-service',
    covers: 'no match at all',
    args: ['--source', POD, '--destination', '8.8.8.8:53', '--protocol', 'udp'],
    mustSay: ['Service:     none', 'Verdict:     NOT-PROXIED: no Service port matches 8.8.8.8:53/UDP'],
  },
];

function golden(name: string, ext: string, actual: string): void {
  const file = path.join(GOLDEN, `${name}.${ext}`);
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE)
      throw new Error(`missing golden file ${file} (run with SWITCHYARD_UPDATE_GOLDEN=1 and review it)`);
    writeFileSync(file, actual);
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

describe('switchyard trace (golden)', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.covers}`, async () => {
      const r = await trace(c.args);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      for (const line of c.mustSay) expect(r.out).toContain(line);
      golden(c.name, 'txt', r.out);
    });
  }

  it('--detect-local-mode: NodeCIDR explains by the Node podCIDRs; by interface it says what it stands in for', async () => {
    // 10.244.2.77 is inside --cluster-cidr but not inside node-a's podCIDR 10.244.1.0/24
    const other = await trace(['--source', '10.244.2.77', '--destination', '10.96.0.10:80']);
    expect(other.out).toContain('Masquerade:  no');
    const nodeCIDR = await trace([
      '--source',
      '10.244.2.77',
      '--destination',
      '10.96.0.10:80',
      '--detect-local-mode=NodeCIDR',
    ]);
    expect(nodeCIDR.out).toContain(
      "10.244.2.77 is neither a node address nor inside the Node's podCIDRs 10.244.1.0/24",
    );
    expect(nodeCIDR.out).toContain(
      "Masquerade:  yes: traffic to a ClusterIP from outside the Node's podCIDRs",
    );
    const local = await trace([
      '--source',
      POD,
      '--destination',
      '10.96.0.10:80',
      '--detect-local-mode=NodeCIDR',
    ]);
    expect(local.out).toContain('Masquerade:  no');
    const iface = await trace([
      '--source',
      POD,
      '--destination',
      '10.96.0.10:80',
      '--detect-local-mode=InterfaceNamePrefix',
      '--pod-interface-name-prefix=veth',
    ]);
    expect(iface.out).toContain('standing in for the input interface veth*');
    expect(iface.out).toContain('Masquerade:  no');
  });

  it('-o json prints the same report as JSON', async () => {
    const r = await trace(['--source', EXTERNAL, '--destination', `${NODE}:30081`, '-o', 'json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as {
      verdict: string;
      match: { frontend: string };
      endpoints: { eligible: boolean }[];
    };
    expect(report.verdict).toBe('DNAT');
    expect(report.match.frontend).toBe('NodePort');
    expect(report.endpoints.map((e) => e.eligible)).toEqual([true, false]);
    golden('etp-local-nodeport-external', 'json', r.out);
  });

  it('the WebAssembly and the reference matcher give the same report', async () => {
    const args = ['--source', POD, '--destination', '10.96.0.10:80'];
    const wasm = await trace(args, { matcher: await createMatcher({ seed: SEED }) });
    const ref = await trace(args, { matcher: new ReferenceMatcher({ seed: SEED }) });
    expect(wasm.out).toBe(ref.out);
  });

  it('the sample pick follows the matcher: different seeds reach every eligible endpoint', async () => {
    const picks = new Set<string>();
    for (let seed = 1; seed <= 24; seed++) {
      const r = await trace(['--source', POD, '--destination', '10.96.0.10:80'], { seed });
      picks.add(/Sample pick: (\S+)/.exec(r.out)?.[1] ?? 'none');
    }
    expect([...picks].sort()).toEqual(['10.244.1.10:8080', '10.244.2.10:8080']);
  });

  it('without --source or --destination it says what is missing and exits 2', async () => {
    const r = await trace(['--destination', '10.96.0.10:80']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--source IP and --destination IP:PORT are required');
    expect(r.out).toBe('');
  });
});
