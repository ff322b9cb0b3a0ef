/**
 * `npm run demo`: the real switchyard daemon on the bundled example cluster
 * (deploy/examples/online-store.yaml), inside a sandbox of network namespaces:
 *
 * - a "node-a" namespace where the daemon runs and programs its rules (nftables by default;
 *   `npm run demo -- --proxy-mode=iptables` for another backend);
 * - one namespace per pod the example cluster places on node-a, with the pod's own IP and an
 *   echo server on its port that answers with the pod's name;
 * - an external client namespace (192.168.77.1) for NodePort traffic.
 *
 * It then sends requests to every Service, from the node, from a pod and from outside, and
 * prints which pod answered each one. On a terminal it repeats every few seconds until
 * Ctrl-C; otherwise it runs one round. Either way it stops the daemon and deletes every
 * namespace, process and rule it made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { loadObjectsFromPath } from '../core/source/file-source.js';
import type { KubeEndpointSlice, KubeService } from '../core/model/kube.js';
import { createTopology, type PodSpec, type Topology } from '../test/support/netns-topology.js';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE = join(ROOT, 'deploy/examples/online-store.yaml');
const NODE = 'node-a';

interface Target {
  readonly label: string;
  readonly from: string;
  readonly host: string;
  readonly port: number;
}

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}

/** The pods of node-a, with their IPs' last octet and their ports, from the example's slices. */
function localPods(slices: readonly KubeEndpointSlice[]): PodSpec[] {
  const pods: PodSpec[] = [];
  for (const slice of slices) {
    const ports = (slice.ports ?? []).map((p) => p.port).filter((p): p is number => typeof p === 'number');
    for (const ep of slice.endpoints ?? []) {
      if (ep.nodeName !== NODE || ep.conditions?.ready === false) continue;
      for (const ip of ep.addresses ?? []) {
        const m = /^10\.244\.1\.(\d+)$/.exec(ip);
        if (!m) continue;
        pods.push({ name: ep.targetRef?.name ?? ip, host: Number(m[1]), tcpPorts: ports });
      }
    }
  }
  return pods;
}

function targets(services: readonly KubeService[], topology: Topology): Target[] {
  const out: Target[] = [];
  const aPod = topology.pods[0]?.name ?? 'node';
  for (const svc of services) {
    const name = svc.metadata?.name ?? '?';
    for (const p of svc.spec?.ports ?? []) {
      if (!svc.spec?.clusterIP || p.port === undefined) continue;
      out.push({
        label: `${name} ClusterIP ${svc.spec.clusterIP}:${p.port}`,
        from: 'node',
        host: svc.spec.clusterIP,
        port: p.port,
      });
      out.push({
        label: `${name} ClusterIP ${svc.spec.clusterIP}:${p.port}`,
        from: aPod,
        host: svc.spec.clusterIP,
        port: p.port,
      });
      if (p.nodePort !== undefined) {
        out.push({
          label: `${name} NodePort 192.168.77.2:${p.nodePort}`,
          from: 'external',
          host: '192.168.77.2',
          port: p.nodePort,
        });
      }
    }
  }
  return out;
}

async function round(topology: Topology, list: readonly Target[], requests: number): Promise<void> {
  const rows: string[][] = [['service', 'from', 'answered by', 'pod saw client as']];
  for (const t of list) {
    const tally = new Map<string, number>();
    const seen = new Set<string>();
    for (let i = 0; i < requests; i++) {
      const r = await topology.probe(t.from, 'tcp', t.host, t.port, { timeoutMs: 1000 });
      const who = r.result === 'reply' && r.reply ? r.reply.name : `(${r.result})`;
      if (r.reply) seen.add(r.reply.clientIp);
      tally.set(who, (tally.get(who) ?? 0) + 1);
    }
    const answered = [...tally.entries()]
      .sort()
      .map(([who, n]) => `${who} ×${n}`)
      .join(', ');
    rows.push([t.label, t.from === 'external' ? 'external client' : t.from, answered, [...seen].join(', ')]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

function waitForSync(daemon: ChildProcess, output: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no sync within ${timeoutMs} ms:\n${output.join('')}`)),
      timeoutMs,
    );
    const check = (chunk: Buffer): void => {
      output.push(chunk.toString());
      if (/"msg":"synced"/.test(chunk.toString())) {
        clearTimeout(timer);
        resolve();
      }
    };
    daemon.stderr?.on('data', check);
    daemon.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the daemon exited (${code}):\n${output.join('')}`));
    });
  });
}

async function main(): Promise<number> {
  const mode = arg('proxy-mode', 'nftables');
  if (process.getuid?.() !== 0) {
    console.error('The demo creates network namespaces and needs root. Here is the plan it would program:');
    const plan = spawn(
      process.execPath,
      [join(ROOT, 'bin/switchyard.js'), 'plan', '--from', EXAMPLE, `--hostname-override=${NODE}`],
      { stdio: 'inherit' },
    );
    await new Promise((r) => plan.once('exit', r));
    return 1;
  }
  const { services, endpointslices } = await loadObjectsFromPath(EXAMPLE);
  console.log(`switchyard demo: ${EXAMPLE} on ${NODE}, --proxy-mode=${mode}`);
  const topology = await createTopology({ pods: localPods(endpointslices), ipv6: false });
  let daemon: ChildProcess | undefined;
  const stopAll = async (): Promise<void> => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon?.once('exit', r));
    }
    await topology.destroy();
  };
  try {
    console.log(`pods: ${topology.pods.map((p) => `${p.name} ${p.ipv4}`).join(', ')}`);
    const output: string[] = [];
    daemon = spawn(
      'ip',
      [
        'netns',
        'exec',
        topology.nodeNs,
        process.execPath,
        join(ROOT, 'bin/switchyard.js'),
        `--proxy-mode=${mode}`,
        `--from=${EXAMPLE}`,
        `--hostname-override=${NODE}`,
        '--cluster-cidr=10.244.0.0/16',
        '--healthz-bind-address=127.0.0.1:10256',
        '--metrics-bind-address=127.0.0.1:10249',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    await waitForSync(daemon, output, 30_000);
    const summary = output
      .join('')
      .split('\n')
      .find((l) => l.includes('"msg":"synced"'));
    if (summary) {
      const s = JSON.parse(summary) as { servicePorts: number; endpoints: number; elapsedMs: number };
      console.log(
        `daemon synced: ${s.servicePorts} service ports, ${s.endpoints} endpoints in ${s.elapsedMs} ms\n`,
      );
    }
    const list = targets(services, topology);
    const interactive = process.stdout.isTTY === true;
    let stop = false;
    process.once('SIGINT', () => (stop = true));
    process.once('SIGTERM', () => (stop = true));
    do {
      await round(topology, list, 6);
      if (!interactive) break;
      console.log('\n(Ctrl-C to stop and clean up)\n');
      for (let i = 0; i < 50 && !stop; i++) await new Promise((r) => setTimeout(r, 100));
    } while (!stop);
    return 0;
  } finally {
    await stopAll();
    console.log('cleaned up: daemon stopped, namespaces and their rules removed');
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
