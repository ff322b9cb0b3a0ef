/**
 * The real daemon (`node bin/switchyard.js`, compiled) against the list/watch API server
 * fixture, with the example plugin as its backend: one sync per burst of changes, healthz,
 * metrics, exit codes. Needs no root: the example backend only writes a JSON-lines file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExampleSyncRecord } from '../../../plugins/example/index.js';
import { ApiServerFixture } from '../../support/api-server.js';
import { endpoint, makeNode, makeService, makeSlice, port, slicePort } from '../../support/fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const BIN = join(ROOT, 'bin/switchyard.js');
const PLUGIN = join(ROOT, 'dist/plugins/example/index.js');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as { port: number };
      s.close(() => resolve(p));
    });
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function webService(): ReturnType<typeof makeService> {
  return makeService({ namespace: 'shop', name: 'web', clusterIP: '10.96.0.10', ports: [port('http', 80)] });
}

function webSlice(ips: string[]): ReturnType<typeof makeSlice> {
  return makeSlice({
    namespace: 'shop',
    name: 'web-abc',
    service: 'web',
    ports: [slicePort('http', 8080)],
    endpoints: ips.map((ip) => endpoint(ip, { nodeName: 'node-a' })),
  });
}

describe('switchyard daemon against the API fixture', () => {
  let api: ApiServerFixture;
  let dir: string;
  let daemon: ChildProcess | undefined;
  let healthz: number;
  let metrics: number;
  let logs = '';

  const records = async (): Promise<ExampleSyncRecord[]> => {
    const text = await readFile(join(dir, 'syncs.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as ExampleSyncRecord);
  };

  beforeAll(async () => {
    api = await ApiServerFixture.start({ tls: true, token: ApiServerFixture.randomToken() });
    dir = await mkdtemp(join(tmpdir(), 'switchyard-daemon-'));
    api.create('nodes', makeNode({ name: 'node-a', internalIPs: ['192.168.77.2'] }));
    api.create('services', webService());
    api.create('endpointslices', webSlice(['10.244.1.10']));
    const kubeconfig = await api.kubeconfig(join(dir, 'kubeconfig'));
    healthz = await freePort();
    metrics = await freePort();
    daemon = spawn(
      process.execPath,
      [
        BIN,
        `--plugin=${PLUGIN}`,
        '--proxy-mode=example-log',
        `--backend-opt=example.file=${join(dir, 'syncs.jsonl')}`,
        `--kubeconfig=${kubeconfig}`,
        '--hostname-override=node-a',
        `--healthz-bind-address=127.0.0.1:${healthz}`,
        `--metrics-bind-address=127.0.0.1:${metrics}`,
        '--min-sync-period=2s',
        '--sync-period=1h',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    daemon.stdout?.on('data', (b: Buffer) => (logs += b.toString()));
    daemon.stderr?.on('data', (b: Buffer) => (logs += b.toString()));
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon?.once('close', r));
    }
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('programs the initial lists in one full sync', async () => {
    const first = await waitFor('first sync', async () =>
      (await records()).length > 0 ? records() : undefined,
    );
    expect(first).toHaveLength(1);
    expect(first[0].full).toBe(true);
    const web = first[0].servicePorts.find((sp) => sp.id === 'shop/web:http/TCP/IPv4');
    expect(web?.internalEndpoints.map((e) => `${e.ip}:${e.port}`)).toEqual(['10.244.1.10:8080']);
  }, 30_000);

  it('serves healthz with kube-proxy fields, and metrics', async () => {
    const res = await waitFor('healthz 200', async () => {
      const r = await fetch(`http://127.0.0.1:${healthz}/healthz`);
      return r.status === 200 ? r : undefined;
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toHaveProperty('lastUpdated');
    expect(body).toHaveProperty('currentTime');
    expect(body.nodeEligible).toBe(true);
    const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_last_timestamp_seconds\{[^}]*\} [1-9]/m);
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_duration_seconds_count\{[^}]*\} [1-9]/m);
    expect(await (await fetch(`http://127.0.0.1:${metrics}/proxyMode`)).text()).toBe('example-log');
  });

  it('turns a burst of changes right after a sync into exactly one more sync', async () => {
    const before = (await records()).length;
    // Inside min-sync-period (2 s) of the last sync: every change waits for one trailing sync.
    const ips = ['10.244.1.10'];
    for (let i = 11; i <= 20; i++) {
      ips.push(`10.244.1.${i}`);
      api.update('endpointslices', webSlice(ips));
    }
    const after = await waitFor('burst sync', async () => {
      const r = await records();
      return r.length > before ? r : undefined;
    });
    // Give a would-be second sync time to show up.
    await new Promise((r) => setTimeout(r, 3000));
    const all = await records();
    expect(all.length).toBe(before + 1);
    const last = all[all.length - 1];
    expect(last.full).toBe(false);
    expect(last.changed).toEqual(['shop/web:http/TCP/IPv4']);
    const web = last.servicePorts.find((sp) => sp.id === 'shop/web:http/TCP/IPv4');
    expect(web?.internalEndpoints).toHaveLength(11);
    expect(after.length).toBe(before + 1);
  }, 30_000);

  it('keeps the last state through an API outage and catches up after it', async () => {
    const before = (await records()).length;
    api.pause('reset');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await records()).length).toBe(before); // an outage is not a change
    api.resume();
    api.delete('services', webService());
    const after = await waitFor(
      'sync after outage',
      async () => {
        const r = await records();
        return r.length > before ? r : undefined;
      },
      40_000,
    );
    const last = after[after.length - 1];
    expect(last.removed).toContain('shop/web:http/TCP/IPv4');
    expect(last.servicePorts.find((sp) => sp.id === 'shop/web:http/TCP/IPv4')).toBeUndefined();
  }, 60_000);

  it('exits 0 on SIGTERM', async () => {
    daemon?.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => daemon?.once('close', (c) => r(c)));
    expect(code, logs).toBe(0);
  });
});

describe('switchyard command line', () => {
  it('exits 2 with one line naming the known backends for an unknown --proxy-mode', async () => {
    const r = await run(['--proxy-mode=warp', '--from', join(ROOT, 'deploy/examples/online-store.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown --proxy-mode "warp"; known: .*iptables.*nftables/);
  });

  it('exits 2 with one line for an unknown flag', async () => {
    const r = await run(['--warp-speed=9']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--warp-speed');
  });

  it('prints the plan of the bundled example cluster', async () => {
    const r = await run([
      'plan',
      '--from',
      join(ROOT, 'deploy/examples/online-store.yaml'),
      '--hostname-override=node-a',
    ]);
    expect(r.code, r.stderr).toBe(0);
    for (const name of ['shop/frontend', 'shop/orders-api', 'shop/payments'])
      expect(r.stdout).toContain(name);
    expect(r.stdout).toMatch(/nodePort: 30080/);
  });

  it('prints --version and --help', async () => {
    const v = await run(['--version']);
    expect(v.stdout).toMatch(/^switchyard \d+\.\d+\.\d+/);
    const h = await run(['--help']);
    expect(h.code).toBe(0);
    for (const flag of [
      '--proxy-mode',
      '--kubeconfig',
      '--cleanup',
      '--min-sync-period',
      '--nodeport-addresses',
    ])
      expect(h.stdout).toContain(flag);
  });
});
