import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { silentLogger } from '../../../core/log.js';
import { ServiceHealthServer, serviceHealthBody } from '../../../core/server/service-health-server.js';
import type { HealthCheckPlan } from '../../../core/model/snapshot.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function plan(name: string, port: number, localEndpoints: number, namespace = 'default'): HealthCheckPlan {
  return { serviceKey: `${namespace}/${name}`, namespace, name, port, localEndpoints };
}

function setup(logger = silentLogger()) {
  const proxy = {
    healthy: true,
    isHealthy(): boolean {
      return this.healthy;
    },
  };
  const server = new ServiceHealthServer(logger, proxy, '127.0.0.1');
  cleanups.push(() => server.stop());
  const port = (key: string): number => server.status().find((s) => s.serviceKey === key)!.boundPort;
  return { proxy, server, port };
}

async function get(port: number, path = '/') {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function refused(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/`);
    return false;
  } catch {
    return true;
  }
}

describe('ServiceHealthServer', () => {
  it("answers with kube-proxy's body and weight header: 200 with local endpoints, 503 without", async () => {
    const { server, port } = setup();
    await server.sync([plan('web', 0, 2), plan('idle', 0, 0, 'other')]);
    const web = await get(port('default/web'), '/any/path');
    expect(web.status).toBe(200);
    expect(web.headers.get('x-load-balancing-endpoint-weight')).toBe('2');
    expect(web.headers.get('content-type')).toBe('application/json');
    expect(web.text).toBe(
      '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
    );
    const idle = await get(port('other/idle'));
    expect(idle.status).toBe(503);
    expect(idle.headers.get('x-load-balancing-endpoint-weight')).toBe('0');
    expect(JSON.parse(idle.text)).toEqual({
      service: { namespace: 'other', name: 'idle' },
      localEndpoints: 0,
      serviceProxyHealthy: true,
    });
  });

  it('updates endpoint counts in place without reopening the listener', async () => {
    const { server, port } = setup();
    await server.sync([plan('web', 0, 0)]);
    const before = port('default/web');
    expect((await get(before)).status).toBe(503);
    await server.sync([plan('web', 0, 3)]);
    expect(port('default/web')).toBe(before);
    const r = await get(before);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-load-balancing-endpoint-weight')).toBe('3');
  });

  it('closes the listeners of Services that are gone, and reopens when the port changes', async () => {
    const { server, port } = setup();
    await server.sync([plan('a', 0, 1), plan('b', 0, 1)]);
    const a = port('default/a');
    const b = port('default/b');
    await server.sync([plan('b', 0, 1)]);
    expect(server.status().map((s) => s.serviceKey)).toEqual(['default/b']);
    expect(await refused(a)).toBe(true);
    expect((await get(b)).status).toBe(200);

    const moved = await freePort();
    await server.sync([plan('b', moved, 1)]);
    expect(server.status()).toEqual([
      { serviceKey: 'default/b', port: moved, boundPort: moved, localEndpoints: 1 },
    ]);
    expect(await refused(b)).toBe(true);
    expect((await get(moved)).status).toBe(200);
  });

  it('503 with serviceProxyHealthy false when the proxy is unhealthy', async () => {
    const { server, port, proxy } = setup();
    await server.sync([plan('web', 0, 4)]);
    proxy.healthy = false;
    const r = await get(port('default/web'));
    expect(r.status).toBe(503);
    expect(JSON.parse(r.text)).toMatchObject({ localEndpoints: 4, serviceProxyHealthy: false });
  });

  it('a port that cannot be opened is logged, not fatal, and retried at the next sync', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const busy = (blocker.address() as { port: number }).port;
    const logs: string[] = [];
    const { server, port } = setup(pino({ level: 'info' }, { write: (s: string) => void logs.push(s) }));
    await server.sync([plan('busy', busy, 1), plan('fine', 0, 1)]);
    expect(server.status().map((s) => s.serviceKey)).toEqual(['default/fine']);
    expect(logs.some((l) => l.includes('EADDRINUSE'))).toBe(true);
    expect((await get(port('default/fine'))).status).toBe(200);
    await new Promise<void>((r) => blocker.close(() => r()));
    await server.sync([plan('busy', busy, 1), plan('fine', 0, 1)]);
    expect(server.status().map((s) => s.serviceKey)).toEqual(['default/busy', 'default/fine']);
    expect((await get(busy)).status).toBe(200);
  });

  it('skips an invalid port without affecting the others; stop() closes everything', async () => {
    const { server, port } = setup();
    await server.sync([plan('bad', 70000, 1), plan('ok', 0, 1)]);
    expect(server.status().map((s) => s.serviceKey)).toEqual(['default/ok']);
    const ok = port('default/ok');
    await server.stop();
    expect(server.status()).toEqual([]);
    expect(await refused(ok)).toBe(true);
  });

  it('serviceHealthBody matches the upstream layout', () => {
    expect(serviceHealthBody('ns', 'n', 0, false)).toBe(
      '{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "n"\n\t},\n\t"localEndpoints": 0,\n\t"serviceProxyHealthy": false\n}',
    );
  });
});
