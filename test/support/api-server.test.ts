/**
 * Self-tests of the list/watch API server fixture, driven through the real
 * @kubernetes/client-node (generated API clients, Watch, makeInformer/ListWatch).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  makeInformer,
  Watch,
  type V1Service,
} from '@kubernetes/client-node';
import { ApiServerFixture, type FixtureObject } from './api-server.js';

function svc(name: string, labels?: Record<string, string>, namespace = 'default'): FixtureObject {
  return {
    metadata: { name, namespace, labels },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }] },
  };
}

interface WatchEvent {
  type: string;
  object: { kind?: string; code?: number; metadata?: { name?: string; resourceVersion?: string } };
}

/** Opens a client-node Watch and collects its events until done. */
async function openWatch(
  kc: KubeConfig,
  path: string,
  params: Record<string, string | number | boolean | undefined>,
): Promise<{ events: WatchEvent[]; done: Promise<unknown>; abort: () => void }> {
  const events: WatchEvent[] = [];
  let resolveDone!: (err: unknown) => void;
  const done = new Promise<unknown>((r) => (resolveDone = r));
  const controller = await new Watch(kc).watch(
    path,
    params,
    (type, object) => events.push({ type, object }),
    (err) => resolveDone(err),
  );
  return { events, done, abort: () => controller.abort() };
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ApiServerFixture through @kubernetes/client-node', () => {
  let fixture: ApiServerFixture | undefined;
  const cleanups: (() => unknown)[] = [];

  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    await fixture?.close();
    fixture = undefined;
  });

  it('lists services over HTTP with kind, apiVersion and a resourceVersion', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('a'));
    fixture.create('services', svc('b', undefined, 'kube-system'));
    const api = fixture.kubeConfig().makeApiClient(CoreV1Api);
    const list = await api.listServiceForAllNamespaces();
    expect(list.kind).toBe('ServiceList');
    expect(list.apiVersion).toBe('v1');
    expect(list.metadata?.resourceVersion).toBe(String(fixture.resourceVersion));
    expect(list.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`).sort()).toEqual([
      'default/a',
      'kube-system/b',
    ]);
    const ns = await api.listNamespacedService({ namespace: 'kube-system' });
    expect(ns.items.map((s) => s.metadata?.name)).toEqual(['b']);
    expect(fixture.listCount('services')).toBe(2);
  });

  it('serves HTTPS with its self-signed CA and enforces the bearer token', async () => {
    fixture = await ApiServerFixture.start({ tls: true, token: ApiServerFixture.randomToken() });
    expect(fixture.url).toMatch(/^https:/);
    fixture.create('nodes', { metadata: { name: 'node-1' } });
    const dir = await mkdtemp(join(tmpdir(), 'kcfg-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const kc = new KubeConfig();
    kc.loadFromFile(await fixture.kubeconfig(join(dir, 'config')));
    const nodes = await kc.makeApiClient(CoreV1Api).listNode();
    expect(nodes.items.map((n) => n.metadata?.name)).toEqual(['node-1']);

    const bad = new KubeConfig();
    bad.loadFromString(fixture.kubeconfigText().replace(fixture.token!, 'wrong-token'));
    const err = await bad
      .makeApiClient(CoreV1Api)
      .listNode()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(401);

    // without the CA the certificate is not trusted
    const noCa = new KubeConfig();
    noCa.loadFromString(fixture.kubeconfigText().replace(/"certificate-authority-data": "[^"]*",?/, ''));
    await expect(noCa.makeApiClient(CoreV1Api).listNode()).rejects.toThrow(/certificate/i);
  });

  it('applies label selectors: not-exists, exists, equals, not-equals, in', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('plain'));
    fixture.create('services', svc('headless', { 'service.kubernetes.io/headless': '' }));
    fixture.create('services', svc('other-proxy', { 'service.kubernetes.io/service-proxy-name': 'foo' }));
    fixture.create('services', svc('app-a', { app: 'a' }));
    fixture.create('services', svc('app-b', { app: 'b' }));
    const api = fixture.kubeConfig().makeApiClient(CoreV1Api);
    const names = async (labelSelector: string): Promise<string[]> =>
      (await api.listServiceForAllNamespaces({ labelSelector })).items.map((s) => s.metadata!.name!).sort();
    expect(await names('!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name')).toEqual([
      'app-a',
      'app-b',
      'plain',
    ]);
    expect(await names('app')).toEqual(['app-a', 'app-b']);
    expect(await names('app=a')).toEqual(['app-a']);
    expect(await names('app!=a')).toEqual(['app-b', 'headless', 'other-proxy', 'plain']);
    expect(await names('app in (a, b),!service.kubernetes.io/headless')).toEqual(['app-a', 'app-b']);
    const bad = await api.listServiceForAllNamespaces({ labelSelector: 'a=(b' }).catch((e: unknown) => e);
    expect((bad as ApiException<unknown>).code).toBe(400);
  });

  it('selects nodes by field selector and serves GET /api/v1/nodes/{name}', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('nodes', {
      metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'z1' } },
    });
    fixture.create('nodes', { metadata: { name: 'node-2' } });
    const api = fixture.kubeConfig().makeApiClient(CoreV1Api);
    const list = await api.listNode({ fieldSelector: 'metadata.name=node-2' });
    expect(list.items.map((n) => n.metadata?.name)).toEqual(['node-2']);
    const node = await api.readNode({ name: 'node-1' });
    expect(node.metadata?.labels?.['topology.kubernetes.io/zone']).toBe('z1');
    const missing = await api.readNode({ name: 'nope' }).catch((e: unknown) => e);
    expect((missing as ApiException<unknown>).code).toBe(404);
  });

  it('lists endpointslices under discovery.k8s.io/v1', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('endpointslices', {
      metadata: { name: 'a-1', labels: { 'kubernetes.io/service-name': 'a' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.0.5'], conditions: { ready: true } }],
      ports: [{ port: 8080, protocol: 'TCP' }],
    });
    const api = fixture.kubeConfig().makeApiClient(DiscoveryV1Api);
    const all = await api.listEndpointSliceForAllNamespaces();
    expect(all.kind).toBe('EndpointSliceList');
    expect(all.items[0]?.endpoints[0]?.addresses).toEqual(['10.244.0.5']);
    const ns = await api.listNamespacedEndpointSlice({
      namespace: 'default',
      labelSelector: 'kubernetes.io/service-name=a',
    });
    expect(ns.items).toHaveLength(1);
  });

  it('streams ADDED/MODIFIED/DELETED after the given resourceVersion, and BOOKMARKs when allowed', async () => {
    fixture = await ApiServerFixture.start({ tls: true, token: 't0ken' });
    fixture.create('services', svc('before'));
    const kc = fixture.kubeConfig();
    const list = await kc.makeApiClient(CoreV1Api).listServiceForAllNamespaces();
    const w = await openWatch(kc, '/api/v1/services', {
      resourceVersion: list.metadata?.resourceVersion,
      allowWatchBookmarks: true,
    });
    cleanups.push(w.abort);
    await fixture.waitForWatches(1, 'services');
    fixture.create('services', svc('x'));
    fixture.update('services', { ...svc('x'), spec: { type: 'NodePort' } });
    fixture.delete('services', svc('x'));
    fixture.bookmark();
    await until(() => w.events.length >= 4);
    expect(w.events.map((e) => `${e.type}:${e.object.metadata?.name ?? ''}`)).toEqual([
      'ADDED:x',
      'MODIFIED:x',
      'DELETED:x',
      'BOOKMARK:',
    ]);
    expect(w.events[0]!.object.kind).toBe('Service');
    const rvs = w.events.map((e) => Number(e.object.metadata?.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
    expect(rvs[3]).toBe(fixture.resourceVersion);
    expect(fixture.watchCount('services')).toBe(1);
    expect(fixture.requests.at(-1)?.query.allowWatchBookmarks).toBe('true');
  });

  it('turns label-selection changes into ADDED/DELETED on a selected watch', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('s'));
    const kc = fixture.kubeConfig();
    const w = await openWatch(kc, '/api/v1/services', {
      resourceVersion: String(fixture.resourceVersion),
      labelSelector: '!service.kubernetes.io/headless',
    });
    cleanups.push(w.abort);
    await fixture.waitForWatches(1);
    fixture.update('services', svc('s', { 'service.kubernetes.io/headless': '' }));
    fixture.update('services', svc('s', { 'service.kubernetes.io/headless': '', other: 'x' }));
    fixture.update('services', svc('s'));
    await until(() => w.events.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(w.events.map((e) => e.type)).toEqual(['DELETED', 'ADDED']);
  });

  it('answers a watch from a compacted resourceVersion with a 410 ERROR event and ends the stream', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('a'));
    const oldRv = String(fixture.resourceVersion);
    fixture.create('services', svc('b'));
    fixture.compact();
    const w = await openWatch(fixture.kubeConfig(), '/api/v1/services', { resourceVersion: oldRv });
    expect(await w.done).toBeNull();
    expect(w.events).toHaveLength(1);
    expect(w.events[0]!.type).toBe('ERROR');
    expect(w.events[0]!.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    // the current resourceVersion is still fine
    const ok = await openWatch(fixture.kubeConfig(), '/api/v1/services', {
      resourceVersion: String(fixture.resourceVersion),
    });
    cleanups.push(ok.abort);
    fixture.create('services', svc('c'));
    await until(() => ok.events.length === 1);
    expect(ok.events[0]!.object.metadata?.name).toBe('c');
  });

  it('ends a watch after timeoutSeconds and reports abrupt drops as errors', async () => {
    fixture = await ApiServerFixture.start();
    const kc = fixture.kubeConfig();
    const t0 = Date.now();
    const timed = await openWatch(kc, '/api/v1/nodes', { resourceVersion: '1', timeoutSeconds: 0.2 });
    expect(await timed.done).toBeNull();
    expect(Date.now() - t0).toBeLessThan(2000);

    const dropped = await openWatch(kc, '/api/v1/nodes', { resourceVersion: '1' });
    await fixture.waitForWatches(1);
    fixture.dropWatches();
    expect(await dropped.done).toBeInstanceOf(Error);
    expect(fixture.openWatches()).toBe(0);
  });

  it('refuses requests while paused (503 or reset) and serves again after resume', async () => {
    fixture = await ApiServerFixture.start();
    const api = fixture.kubeConfig().makeApiClient(CoreV1Api);
    fixture.pause();
    const unavailable = await api.listNode().catch((e: unknown) => e);
    expect((unavailable as ApiException<unknown>).code).toBe(503);
    fixture.pause('reset');
    await expect(api.listNode()).rejects.toThrow();
    fixture.resume();
    expect((await api.listNode()).items).toEqual([]);
  });

  it('drives a client-node informer: add/update/delete, then a relist after 410', async () => {
    fixture = await ApiServerFixture.start({ tls: true, token: 'tok' });
    fixture.create('services', svc('keep'));
    fixture.create('services', svc('gone'));
    const kc = fixture.kubeConfig();
    const api = kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1Service>(kc, '/api/v1/services', () => api.listServiceForAllNamespaces());
    const seen: string[] = [];
    informer.on('add', (s) => seen.push(`add:${s.metadata?.name}`));
    informer.on('update', (s) => seen.push(`update:${s.metadata?.name}`));
    informer.on('delete', (s) => seen.push(`delete:${s.metadata?.name}`));
    await informer.start();
    cleanups.push(() => informer.stop());
    await fixture.waitForWatches(1);
    fixture.update('services', { ...svc('keep'), spec: { type: 'NodePort' } });
    await until(() => seen.includes('update:keep'));

    // history lost while the informer's watch is closed: its resume gets 410 and it relists
    // (all synchronous, so the informer reconnects only after the compaction)
    fixture.closeWatches();
    fixture.delete('services', svc('gone'));
    fixture.compact();
    await until(() => seen.includes('delete:gone'));
    await fixture.waitForWatches(1); // (ListWatch.stop() during a relist would still open the next watch)
    expect(fixture.listCount('services')).toBe(2);
    expect(informer.list().map((s) => s.metadata?.name)).toEqual(['keep']);
  });
});
