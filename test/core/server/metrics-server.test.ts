import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { MetricsServer } from '../../../core/server/metrics-server.js';
import { Metrics } from '../../../core/metrics/metrics.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function startServer(mode = 'nftables', bind = '127.0.0.1:0') {
  const metrics = new Metrics({ mode }, { defaultMetrics: false });
  const server = new MetricsServer({ metricsBindAddress: bind, mode }, silentLogger(), metrics);
  await server.start();
  cleanups.push(() => server.stop());
  return { metrics, server, url: (p: string) => `http://127.0.0.1:${server.boundAddress()?.port}${p}` };
}

describe('MetricsServer', () => {
  it('serves the registry at /metrics in the Prometheus text format', async () => {
    const { metrics, url } = await startServer();
    metrics.syncSucceeded({ seconds: 0.01, full: true, families: ['IPv4'], atMs: 1_700_000_000_000 });
    const res = await fetch(url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(res.headers.get('content-type')).toContain('version=0.0.4');
    const text = await res.text();
    expect(text).toContain('kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} 1');
    expect(text).toContain('kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1700000000');
  });

  it('serves /proxyMode and a plain /healthz like kube-proxy', async () => {
    const { url } = await startServer('iptables');
    const mode = await fetch(url('/proxyMode'));
    expect(mode.status).toBe(200);
    expect(mode.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await mode.text()).toBe('iptables');
    const hz = await fetch(url('/healthz'));
    expect(hz.status).toBe(200);
    expect(await hz.text()).toBe('ok');
    expect((await fetch(url('/nope'))).status).toBe(404);
  });

  it("'' disables the server", async () => {
    const { server } = await startServer('nftables', '');
    expect(server.boundAddress()).toBeUndefined();
  });
});
