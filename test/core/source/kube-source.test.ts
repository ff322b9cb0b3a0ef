/**
 * KubeSource against the list/watch API server fixture (real HTTP/HTTPS, real client-node
 * KubeConfig): initial lists, watch events, outages, dropped watches, 410 relists, selectors.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import { buildKubeConfig, KubeSource, type KubeSourceOptions } from '../../../core/source/kube-source.js';
import { createSource } from '../../../core/source/source.js';
import { FileSource } from '../../../core/source/file-source.js';
import { objectKey, type ResourceKind, type SourceEvent } from '../../../core/model/events.js';
import { silentLogger } from '../../../core/log.js';
import { ApiServerFixture, type FixtureObject } from '../../support/api-server.js';

const NODE = 'node-a';

function svc(name: string, labels?: Record<string, string>, port = 80): FixtureObject {
  return {
    metadata: { name, namespace: 'default', labels },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [{ port, protocol: 'TCP' }] },
  };
}

function slice(name: string, service: string, ip: string): FixtureObject {
  return {
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready: true } }],
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
}

function node(name: string): FixtureObject {
  return { metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: '192.168.77.2' }] } };
}

/** Folds events into the state a consumer would hold, per resource. */
function stateOf(
  events: readonly SourceEvent[],
  resource: ResourceKind,
): Map<string, { metadata?: { resourceVersion?: string } }> {
  const state = new Map<string, { metadata?: { resourceVersion?: string } }>();
  for (const e of events) {
    if (e.resource !== resource) continue;
    if (e.type === 'replace') {
      state.clear();
      for (const o of e.objects) state.set(objectKey(o.metadata)!, o);
    } else if (e.type === 'upsert') state.set(objectKey(e.object.metadata)!, e.object);
    else if (e.type === 'delete') state.delete(objectKey(e.object.metadata)!);
  }
  return state;
}

const count = (events: readonly SourceEvent[], type: SourceEvent['type'], resource?: ResourceKind): number =>
  events.filter((e) => e.type === type && (resource === undefined || e.resource === resource)).length;

const waitFor = (fn: () => void, timeout = 4000): Promise<void> => vi.waitFor(fn, { timeout, interval: 10 });

describe('KubeSource', () => {
  let fixture: ApiServerFixture | undefined;
  let source: KubeSource | undefined;
  let sub: Subscription | undefined;
  const dirs: string[] = [];

  afterEach(async () => {
    sub?.unsubscribe();
    await source?.stop();
    await fixture?.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    fixture = source = sub = undefined;
  });

  function start(options: Partial<KubeSourceOptions> = {}): SourceEvent[] {
    source = new KubeSource({
      nodeName: NODE,
      logger: silentLogger(),
      kubeConfig: options.kubeconfig === undefined ? fixture!.kubeConfig() : undefined,
      backoff: { initialMs: 20, maxMs: 100 },
      watchTimeoutSeconds: 60,
      requestTimeoutMs: 2000,
      ...options,
    });
    const events: SourceEvent[] = [];
    sub = source.events$().subscribe((e) => events.push(e));
    return events;
  }

  async function tmp(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'kube-source-'));
    dirs.push(d);
    return d;
  }

  it('over HTTP: the initial lists arrive as one replace per resource, objects with kind and apiVersion', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('web'));
    fixture.create('endpointslices', slice('web-1', 'web', '10.244.0.5'));
    fixture.create('nodes', node(NODE));
    fixture.create('nodes', node('node-b'));
    const events = start();
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    const replace = (r: ResourceKind): SourceEvent & { type: 'replace' } =>
      events.find((e): e is SourceEvent & { type: 'replace' } => e.type === 'replace' && e.resource === r)!;
    expect(replace('services').objects.map((o) => o.metadata?.name)).toEqual(['web']);
    expect(replace('services').objects[0]).toMatchObject({ kind: 'Service', apiVersion: 'v1' });
    expect(replace('endpointslices').objects[0]).toMatchObject({
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
    });
    // only this node's Node, selected by the server
    expect(replace('nodes').objects.map((o) => o.metadata?.name)).toEqual([NODE]);
    const nodeList = fixture.requests.find((r) => r.resource === 'nodes' && r.verb === 'list')!;
    expect(nodeList.query.fieldSelector).toBe(`metadata.name=${NODE}`);
    await fixture.waitForWatches(3);
    const svcWatch = fixture.requests.find((r) => r.resource === 'services' && r.verb === 'watch')!;
    expect(svcWatch.query).toMatchObject({ allowWatchBookmarks: 'true', timeoutSeconds: '60' });
    expect(svcWatch.query.resourceVersion).toBe(String(fixture.resourceVersion));
  });

  it('over HTTPS with a token (kubeconfig file): add, modify and delete propagate as upsert/delete', async () => {
    fixture = await ApiServerFixture.start({ tls: true, token: ApiServerFixture.randomToken() });
    fixture.create('services', svc('web'));
    const kubeconfig = await fixture.kubeconfig(join(await tmp(), 'kubeconfig'));
    const events = start({ kubeconfig });
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await fixture.waitForWatches(3);
    fixture.create('services', svc('api'));
    fixture.update('services', svc('web', undefined, 8080));
    fixture.create('endpointslices', slice('web-1', 'web', '10.244.0.5'));
    fixture.delete('services', svc('api'));
    fixture.create('nodes', node(NODE));
    fixture.create('nodes', node('node-b'));
    await waitFor(() => expect(count(events, 'upsert', 'nodes')).toBe(1));
    await waitFor(() => expect(count(events, 'delete', 'services')).toBe(1));
    const svcEvents = events.filter((e) => e.resource === 'services' && e.type !== 'replace');
    expect(svcEvents.map((e) => `${e.type}:${'object' in e ? e.object.metadata?.name : ''}`)).toEqual([
      'upsert:api',
      'upsert:web',
      'delete:api',
    ]);
    const web = stateOf(events, 'services').get('default/web') as { spec?: { ports?: { port?: number }[] } };
    expect(web.spec?.ports?.[0]?.port).toBe(8080);
    expect([...stateOf(events, 'endpointslices').keys()]).toEqual(['default/web-1']);
    expect([...stateOf(events, 'nodes').keys()]).toEqual([NODE]);
    expect(count(events, 'degraded')).toBe(0);
  });

  it('--master overrides the kubeconfig server and keeps its CA and token', async () => {
    fixture = await ApiServerFixture.start({ tls: true, token: 'secret' });
    fixture.create('services', svc('web'));
    const path = join(await tmp(), 'kubeconfig');
    await writeFile(path, fixture.kubeconfigText().replace(fixture.url, 'https://127.0.0.1:1'));
    const events = start({ kubeconfig: path, master: fixture.url });
    expect(source!.server).toBe(fixture.url);
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    expect(count(events, 'degraded')).toBe(0);
  });

  it('an outage never clears state; changes made during it arrive after recovery, without a relist', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('keep'));
    fixture.create('services', svc('doomed'));
    fixture.create('nodes', node(NODE));
    const events = start();
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await fixture.waitForWatches(3);

    fixture.pause();
    await waitFor(() => expect(count(events, 'degraded')).toBe(3));
    fixture.delete('services', svc('doomed'));
    fixture.create('services', svc('new'));
    fixture.update('services', svc('keep', undefined, 9090));
    // let several retries fail
    const watchesBefore = fixture.watchCount('services');
    await waitFor(() => expect(fixture!.watchCount('services')).toBeGreaterThan(watchesBefore + 2));
    expect(count(events, 'replace')).toBe(3);
    expect(events.filter((e) => e.type === 'upsert' || e.type === 'delete')).toEqual([]);
    expect([...stateOf(events, 'services').keys()].sort()).toEqual(['default/doomed', 'default/keep']);

    fixture.resume();
    await waitFor(() => expect(count(events, 'recovered')).toBe(3));
    await waitFor(() =>
      expect([...stateOf(events, 'services').keys()].sort()).toEqual(['default/keep', 'default/new']),
    );
    const keep = stateOf(events, 'services').get('default/keep') as {
      spec?: { ports?: { port?: number }[] };
    };
    expect(keep.spec?.ports?.[0]?.port).toBe(9090);
    expect(fixture.listCount('services')).toBe(1);
    expect(count(events, 'replace')).toBe(3);
    // degraded always precedes its recovered
    const svcStatus = events.filter(
      (e) => e.resource === 'services' && (e.type === 'degraded' || e.type === 'recovered'),
    );
    expect(svcStatus.map((e) => e.type)).toEqual(['degraded', 'recovered']);
  });

  it('connection resets and hanging requests count as an outage too', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('keep'));
    const events = start({ requestTimeoutMs: 200 });
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await fixture.waitForWatches(3);
    fixture.pause('reset');
    await waitFor(() => expect(count(events, 'degraded')).toBe(3));
    fixture.pause('hang');
    const held = fixture.watchCount('services');
    await waitFor(() => expect(fixture!.watchCount('services')).toBeGreaterThan(held + 1)); // timed out and retried
    fixture.resume();
    fixture.create('services', svc('after'));
    await waitFor(() => expect(stateOf(events, 'services').has('default/after')).toBe(true));
    expect(stateOf(events, 'services').has('default/keep')).toBe(true);
    expect(count(events, 'recovered', 'services')).toBe(1);
    expect(fixture.listCount('services')).toBe(1);
  });

  it('a dropped watch resumes from the last resourceVersion without a relist', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('web'));
    const events = start();
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await fixture.waitForWatches(3);
    fixture.create('services', svc('seen'));
    await waitFor(() => expect(count(events, 'upsert', 'services')).toBe(1));
    const lastRv = String(fixture.resourceVersion);

    fixture.dropWatches();
    fixture.create('services', svc('while-dropped'));
    await waitFor(() => expect(stateOf(events, 'services').has('default/while-dropped')).toBe(true));
    const resumed = fixture.requests.filter((r) => r.resource === 'services' && r.verb === 'watch');
    expect(resumed).toHaveLength(2);
    expect(resumed[1]!.query.resourceVersion).toBe(lastRv);
    expect(fixture.listCount('services')).toBe(1);
    expect(fixture.listCount('endpointslices')).toBe(1);
    expect(count(events, 'replace')).toBe(3);
    expect(count(events, 'degraded')).toBe(0);
  });

  it('410 Gone after compaction triggers a relist whose replace reflects deletions made meanwhile', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('keep'));
    fixture.create('services', svc('deleted-while-away'));
    fixture.create('endpointslices', slice('keep-1', 'keep', '10.244.0.5'));
    const events = start();
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await fixture.waitForWatches(3);

    // all synchronous: the source reconnects only after the history is gone
    fixture.dropWatches();
    fixture.delete('services', svc('deleted-while-away'));
    fixture.create('services', svc('created-while-away'));
    fixture.compact();

    await waitFor(() => expect(count(events, 'replace', 'services')).toBe(2));
    const relist = events
      .filter((e) => e.type === 'replace' && e.resource === 'services')
      .at(-1) as SourceEvent & { type: 'replace' };
    expect(relist.objects.map((o) => o.metadata?.name).sort()).toEqual(['created-while-away', 'keep']);
    expect(fixture.listCount('services')).toBe(2);
    // the deleted Service never came as a delete event: the replace carries it
    expect(count(events, 'delete')).toBe(0);
    expect(count(events, 'degraded')).toBe(0);
    // and watching continues from the relist
    await fixture.waitForWatches(3);
    fixture.create('services', svc('later'));
    await waitFor(() => expect(stateOf(events, 'services').has('default/later')).toBe(true));
  });

  it('bookmarks advance the resume point, so a compaction does not force a relist', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('nodes', node(NODE));
    const events = start();
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await fixture.waitForWatches(3);
    // changes this source does not watch advance the global resourceVersion
    for (let i = 0; i < 5; i++) fixture.create('nodes', node(`other-${i}`));
    fixture.bookmark();
    await new Promise((r) => setTimeout(r, 100));
    fixture.compact();
    fixture.dropWatches();
    await fixture.waitForWatches(3);
    const nodeWatches = fixture.requests.filter((r) => r.resource === 'nodes' && r.verb === 'watch');
    expect(nodeWatches.at(-1)!.query.resourceVersion).toBe(String(fixture.resourceVersion));
    expect(fixture.listCount('nodes')).toBe(1);
    expect(count(events, 'replace', 'nodes')).toBe(1);
  });

  it('the label selector keeps headless and other-proxy Services out, also when labels change', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('ours'));
    fixture.create('services', svc('headless', { 'service.kubernetes.io/headless': '' }));
    fixture.create('services', svc('theirs', { 'service.kubernetes.io/service-proxy-name': 'other-proxy' }));
    const events = start();
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    expect([...stateOf(events, 'services').keys()]).toEqual(['default/ours']);
    await fixture.waitForWatches(3);
    fixture.update('services', svc('ours', { 'service.kubernetes.io/service-proxy-name': 'other-proxy' }));
    fixture.update('services', svc('theirs'));
    await waitFor(() => expect([...stateOf(events, 'services').keys()]).toEqual(['default/theirs']));
    expect(
      fixture.requests.find((r) => r.resource === 'services' && r.verb === 'watch')!.query.labelSelector,
    ).toBe('!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name');
  });

  it('a rejected token is an outage: degraded, retried with capped backoff, never an empty replace', async () => {
    fixture = await ApiServerFixture.start({ tls: true, token: 'right' });
    const path = join(await tmp(), 'kubeconfig');
    await writeFile(path, fixture.kubeconfigText().replace('"right"', '"wrong"'));
    const events = start({ kubeconfig: path, backoff: { initialMs: 20, maxMs: 80, jitter: 0 } });
    await waitFor(() => expect(count(events, 'degraded')).toBe(3));
    await new Promise((r) => setTimeout(r, 600));
    expect(count(events, 'replace')).toBe(0);
    expect(count(events, 'degraded')).toBe(3);
    // 20, 40, 80, 80, ... ms: about 8 attempts in 600 ms, far fewer than without backoff, more than without retries
    const lists = fixture.requests.filter((r) => r.resource === 'services').length;
    expect(lists).toBeGreaterThanOrEqual(4);
    expect(lists).toBeLessThanOrEqual(14);
    expect(fixture.requests.every((r) => r.status === 401)).toBe(true);
  });

  it('watches that the server ends at once are resumed with backoff, not in a hot loop', async () => {
    fixture = await ApiServerFixture.start();
    fixture.create('services', svc('web'));
    const events = start({ watchTimeoutSeconds: 0.001, backoff: { initialMs: 50, maxMs: 100, jitter: 0 } });
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await new Promise((r) => setTimeout(r, 500));
    const watches = fixture.watchCount('services');
    // two immediate resumes, then one per 50-100 ms
    expect(watches).toBeGreaterThanOrEqual(4);
    expect(watches).toBeLessThanOrEqual(14);
    // clean ends are no outage, and the resume point is kept
    expect(count(events, 'degraded')).toBe(0);
    expect(fixture.listCount('services')).toBe(1);
  });

  it('stop() completes the stream and closes every connection, even mid-outage with hanging requests', async () => {
    fixture = await ApiServerFixture.start();
    const events = start();
    let completed = false;
    sub!.add(() => (completed = true));
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await fixture.waitForWatches(3);
    fixture.pause('hang');
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await source!.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(completed).toBe(true);
    fixture.resume();
    expect(fixture.openWatches()).toBe(0);
    const before = fixture.requests.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(fixture.requests.length).toBe(before);
  });

  it('unsubscribing ends the session too', async () => {
    fixture = await ApiServerFixture.start();
    start();
    await fixture.waitForWatches(3);
    sub!.unsubscribe();
    await waitFor(() => expect(fixture!.openWatches()).toBe(0));
  });
});

describe('buildKubeConfig / createSource', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('uses --master alone without credentials, allowing plain http', () => {
    const kc = buildKubeConfig({ master: 'http://127.0.0.1:8080' });
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'http://127.0.0.1:8080', skipTLSVerify: true });
    const tls = buildKubeConfig({ master: 'https://10.0.0.1:6443' });
    expect(tls.getCurrentCluster()).toMatchObject({ server: 'https://10.0.0.1:6443', skipTLSVerify: false });
  });

  it('falls back to the in-cluster configuration, and says so when there is none', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '');
    expect(() => buildKubeConfig({})).toThrow(/not running in a cluster/);
    vi.stubEnv('KUBERNETES_SERVICE_HOST', 'fd00::1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    const kc = buildKubeConfig({});
    expect(kc.getCurrentCluster()?.server).toBe('https://[fd00::1]:443');
    expect(kc.getCurrentCluster()?.caFile).toBe('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
    // --master alone (no kubeconfig) is used as is, like kube-proxy
    expect(buildKubeConfig({ master: 'https://api.example:6443' }).getCurrentCluster()?.server).toBe(
      'https://api.example:6443',
    );
  });

  it('createSource picks FileSource for --from and KubeSource otherwise', async () => {
    const file = createSource({ hostname: 'n', from: '/nonexistent' }, silentLogger());
    expect(file).toBeInstanceOf(FileSource);
    const kube = createSource({ hostname: 'n', master: 'http://127.0.0.1:1' }, silentLogger());
    expect(kube).toBeInstanceOf(KubeSource);
    expect((kube as KubeSource).server).toBe('http://127.0.0.1:1');
    await Promise.all([file.stop(), kube.stop()]);
  });
});
