import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { silentLogger } from '../../../core/log.js';
import { HealthServer, healthBody } from '../../../core/server/health-server.js';
import { HealthState } from '../../../core/server/health-state.js';
import { Metrics } from '../../../core/metrics/metrics.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function fakeClock(start = Date.UTC(2025, 0, 1)) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

async function startServer(bind = '127.0.0.1:0', syncPeriodMs = 1000, retryMs = 5000) {
  const clock = fakeClock();
  const health = new HealthState({ syncPeriodMs }, clock);
  const metrics = new Metrics({ mode: 'nftables' }, { defaultMetrics: false });
  const server = new HealthServer({ healthzBindAddress: bind }, silentLogger(), health, metrics, retryMs);
  await server.start();
  cleanups.push(() => server.stop());
  const url = (path: string): string => `http://127.0.0.1:${server.boundAddress()!.port}${path}`;
  return { clock, health, metrics, server, url };
}

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('HealthServer', () => {
  it('answers /healthz and /livez 200 with kube-proxy JSON while starting up', async () => {
    const { url, clock } = await startServer();
    const r = await get(url('/healthz'));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    const now = new Date(clock.now()).toISOString();
    expect(JSON.parse(r.text)).toEqual({
      lastUpdated: now,
      currentTime: now,
      nodeEligible: true,
      healthy: true,
    });
    const l = await get(url('/livez'));
    expect(l.status).toBe(200);
    expect(JSON.parse(l.text)).toEqual({ lastUpdated: now, currentTime: now, healthy: true });
  });

  it('503 with the real lastUpdated when a queued change is older than 2 × syncPeriod', async () => {
    const { url, clock, health, metrics } = await startServer('127.0.0.1:0', 1000);
    health.updated(['IPv4']);
    const syncedAt = new Date(clock.now()).toISOString();
    health.queued(['IPv4']);
    clock.advance(1999);
    expect((await get(url('/healthz'))).status).toBe(200);
    clock.advance(1);
    const r = await get(url('/healthz'));
    expect(r.status).toBe(503);
    expect(JSON.parse(r.text)).toEqual({
      lastUpdated: syncedAt,
      currentTime: new Date(clock.now()).toISOString(),
      nodeEligible: true,
      healthy: false,
      status: { IPv4: { lastUpdated: syncedAt, healthy: false } },
    });
    expect((await get(url('/livez'))).status).toBe(503);
    const text = await metrics.exposition();
    expect(text).toContain('kubeproxy_proxy_healthz_total{code="200"} 1');
    expect(text).toContain('kubeproxy_proxy_healthz_total{code="503"} 1');
    expect(text).toContain('kubeproxy_proxy_livez_total{code="503"} 1');
  });

  it('/healthz is 503 for a node being deleted while /livez stays 200', async () => {
    const { url, health } = await startServer();
    health.syncNode({ metadata: { name: 'n', deletionTimestamp: '2025-01-01T00:00:00Z' } });
    const h = await get(url('/healthz'));
    expect(h.status).toBe(503);
    expect(JSON.parse(h.text)).toMatchObject({ nodeEligible: false, healthy: true });
    expect((await get(url('/livez'))).status).toBe(200);
  });

  it('404 for other paths; query strings are ignored', async () => {
    const { url } = await startServer();
    expect((await get(url('/metrics'))).status).toBe(404);
    expect((await get(url('/healthz?verbose=1'))).status).toBe(200);
  });

  it("'' disables the server", async () => {
    const { server } = await startServer('');
    expect(server.boundAddress()).toBeUndefined();
  });

  it('a busy port is logged, not fatal, and retried until it is free', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const logs: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(s) });
    const health = new HealthState({ syncPeriodMs: 1000 }, fakeClock());
    const server = new HealthServer(
      { healthzBindAddress: `127.0.0.1:${port}` },
      logger,
      health,
      undefined,
      50,
    );
    cleanups.push(() => server.stop());
    await server.start();
    expect(server.boundAddress()).toBeUndefined();
    expect(logs.some((l) => l.includes('EADDRINUSE'))).toBe(true);
    await new Promise<void>((r) => blocker.close(() => r()));
    await vi.waitFor(() => expect(server.boundAddress()?.port).toBe(port), { timeout: 3000 });
    expect((await get(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
  });

  it('healthBody keeps Go field order and omits an empty status', () => {
    const body = healthBody({ currentTime: 0, healthy: true, status: new Map() }, true, true);
    expect(body).toBe(
      '{"lastUpdated":"1970-01-01T00:00:00.000Z","currentTime":"1970-01-01T00:00:00.000Z","nodeEligible":true,"healthy":true}',
    );
  });
});
