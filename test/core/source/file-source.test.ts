/**
 * FileSource and loadObjectsFromPath against real files in a temporary folder.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Subscription } from 'rxjs';
import { FileSource, loadObjectsFromPath, parseManifest } from '../../../core/source/file-source.js';
import type { ResourceKind, SourceEvent } from '../../../core/model/events.js';
import type { Logger } from '../../../core/log.js';
import { silentLogger } from '../../../core/log.js';

const waitFor = (fn: () => void, timeout = 4000): Promise<void> => vi.waitFor(fn, { timeout, interval: 10 });

const SERVICE_WEB = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 10.96.0.10
  ports:
    - port: 80
      targetPort: 8080
`;

const SLICE_WEB = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
  - addresses: [10.244.0.5]
    conditions: {ready: true}
ports:
  - port: 8080
`;

const NODE_A = `apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {topology.kubernetes.io/zone: z1}
`;

function service(name: string, ns = 'default', port = 80): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec: {clusterIP: 10.96.0.11, ports: [{port: ${port}}]}
`;
}

function lastReplace(events: readonly SourceEvent[], resource: ResourceKind): string[] | undefined {
  const e = events
    .filter((x): x is SourceEvent & { type: 'replace' } => x.type === 'replace' && x.resource === resource)
    .at(-1);
  return e?.objects
    .map((o) => `${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`)
    .sort();
}

const count = (events: readonly SourceEvent[], type: SourceEvent['type'], resource?: ResourceKind): number =>
  events.filter((e) => e.type === type && (resource === undefined || e.resource === resource)).length;

function capturingLogger(): { logger: Logger; lines: { msg?: string; file?: string; line?: number }[] } {
  const lines: { msg?: string; file?: string; line?: number }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) },
  );
  return { logger, lines };
}

describe('parseManifest / loadObjectsFromPath', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-source-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads multi-document YAML, List items, defaults namespaces and ignores other kinds', async () => {
    await writeFile(
      join(dir, 'a.yaml'),
      [
        SERVICE_WEB,
        SLICE_WEB,
        NODE_A,
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n',
        '', // an empty document
        `apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Service, metadata: {name: in-list, namespace: other}}
  - {apiVersion: v1, kind: Secret, metadata: {name: s}}
`,
        `apiVersion: v1
kind: ServiceList
items:
  - metadata: {name: typed-list-item}
`,
      ].join('---\n'),
    );
    await writeFile(
      join(dir, 'b.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-b' } }),
    );
    await writeFile(join(dir, 'notes.txt'), 'kind: Service\nmetadata: {name: not-a-manifest}\n');
    await writeFile(join(dir, '.hidden.yaml'), service('hidden'));
    const r = await loadObjectsFromPath(dir, silentLogger());
    expect(r.errors).toEqual([]);
    expect(r.files.map((f) => f.slice(dir.length + 1))).toEqual(['a.yaml', 'b.json']);
    expect(r.services.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`).sort()).toEqual([
      'default/typed-list-item',
      'default/web',
      'other/in-list',
    ]);
    expect(r.services.find((s) => s.metadata?.name === 'typed-list-item')?.kind).toBe('Service');
    expect(r.endpointslices.map((s) => s.endpoints?.[0]?.addresses)).toEqual([['10.244.0.5']]);
    expect(r.nodes.map((n) => n.metadata?.name).sort()).toEqual(['node-a', 'node-b']);
    expect(r.nodes.find((n) => n.metadata?.name === 'node-a')?.metadata?.namespace).toBeUndefined();
  });

  it('reports a parse error with file and line, and the file contributes nothing', async () => {
    await writeFile(join(dir, 'good.yaml'), SERVICE_WEB);
    await writeFile(join(dir, 'bad.yaml'), `${service('ok')}---\nkind: Service\nmetadata:\n  name: @bad\n`);
    const r = await loadObjectsFromPath(dir);
    expect(r.services.map((s) => s.metadata?.name)).toEqual(['web']);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ file: join(dir, 'bad.yaml'), line: 8, column: 9 });
    await expect(loadObjectsFromPath(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });

  it('lets a later definition of the same object win', () => {
    const r = parseManifest(
      `${service('dup', 'default', 80)}---\n${service('dup', 'default', 81)}`,
      'x.yaml',
    );
    expect(r.objects?.length).toBe(2);
  });
});

describe('FileSource', () => {
  let dir: string;
  let source: FileSource | undefined;
  let sub: Subscription | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-source-'));
  });
  afterEach(async () => {
    sub?.unsubscribe();
    await source?.stop();
    source = sub = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  function start(path: string, logger: Logger = silentLogger()): SourceEvent[] {
    source = new FileSource({ path, nodeName: 'node-a', logger, debounceMs: 30 });
    const events: SourceEvent[] = [];
    sub = source.events$().subscribe((e) => events.push(e));
    return events;
  }

  it('emits a replace per resource at start, with every Node, and reloads on change', async () => {
    await writeFile(join(dir, 'services.yaml'), `${SERVICE_WEB}---\n${service('api', 'prod')}`);
    await writeFile(
      join(dir, 'cluster.yaml'),
      `${SLICE_WEB}---\n${NODE_A}---\n${NODE_A.replace('node-a', 'node-b')}`,
    );
    const events = start(dir);
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    expect(lastReplace(events, 'services')).toEqual(['default/web', 'prod/api']);
    expect(lastReplace(events, 'endpointslices')).toEqual(['default/web-1']);
    expect(lastReplace(events, 'nodes')).toEqual(['node-a', 'node-b']);

    await writeFile(join(dir, 'services.yaml'), SERVICE_WEB.replace('port: 80', 'port: 81'));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/web']));
    const svc = events
      .filter(
        (e): e is SourceEvent & { type: 'replace' } => e.type === 'replace' && e.resource === 'services',
      )
      .at(-1)!.objects[0] as { spec?: { ports?: { port?: number }[] } };
    expect(svc.spec?.ports?.[0]?.port).toBe(81);

    // a new file is picked up
    await writeFile(join(dir, 'more.yml'), service('extra'));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/extra', 'default/web']));
    expect(count(events, 'degraded')).toBe(0);
  });

  it('debounces a burst of writes into one reload', async () => {
    await writeFile(join(dir, 's.yaml'), service('s0'));
    const events = start(dir);
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    for (let i = 1; i <= 5; i++) await writeFile(join(dir, 's.yaml'), service(`s${i}`));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/s5']));
    await new Promise((r) => setTimeout(r, 100));
    // 1 initial + at most 2 reloads (the burst may straddle one debounce window), not 5
    expect(count(events, 'replace', 'services')).toBeLessThanOrEqual(3);
  });

  it('keeps the last good state on a parse error, logs file:line, and recovers when fixed', async () => {
    const { logger, lines } = capturingLogger();
    await writeFile(join(dir, 'a.yaml'), service('a'));
    await writeFile(join(dir, 'b.yaml'), service('b'));
    const events = start(dir, logger);
    await waitFor(() => expect(count(events, 'replace')).toBe(3));

    await writeFile(
      join(dir, 'b.yaml'),
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: b\nspec: {ports: [\n',
    );
    await waitFor(() => expect(count(events, 'degraded')).toBe(3));
    const warn = lines.find((l) => l.msg?.includes(`${join(dir, 'b.yaml')}:`));
    expect(warn?.msg).toMatch(new RegExp(`b\\.yaml:\\d+:\\d+: `));
    expect(warn?.line).toBeGreaterThanOrEqual(5);
    // other files still reload; the broken one keeps its last good objects
    await writeFile(join(dir, 'a.yaml'), service('a2'));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/a2', 'default/b']));
    expect(count(events, 'degraded')).toBe(3);

    await writeFile(join(dir, 'b.yaml'), service('b-fixed'));
    await waitFor(() => expect(count(events, 'recovered')).toBe(3));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/a2', 'default/b-fixed']));
  });

  it('removing a file removes its objects', async () => {
    await writeFile(join(dir, 'a.yaml'), `${service('a')}---\n${NODE_A}`);
    await writeFile(join(dir, 'b.yaml'), service('b'));
    const events = start(dir);
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await rm(join(dir, 'a.yaml'));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/b']));
    expect(lastReplace(events, 'nodes')).toEqual([]);
  });

  it('watches a single file, following editors that save by writing a new file and renaming it', async () => {
    const file = join(dir, 'objects.yaml');
    await writeFile(file, service('v1'));
    await writeFile(join(dir, 'unrelated.yaml'), service('not-read'));
    const events = start(file);
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/v1']));
    for (const version of ['v2', 'v3']) {
      await writeFile(`${file}.tmp`, service(version));
      await rename(`${file}.tmp`, file);
      await waitFor(() => expect(lastReplace(events, 'services')).toEqual([`default/${version}`]));
    }
    await rm(file);
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual([]));
    await writeFile(file, service('back'));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/back']));
  });

  it('withholds the initial replace until the files parse, saying why', async () => {
    const { logger, lines } = capturingLogger();
    await writeFile(join(dir, 'a.yaml'), 'kind: Service\nmetadata: {name: [x\n');
    const events = start(dir, logger);
    await waitFor(() => expect(count(events, 'degraded')).toBe(3));
    await new Promise((r) => setTimeout(r, 100));
    expect(count(events, 'replace')).toBe(0);
    expect(lines.some((l) => l.file === join(dir, 'a.yaml') && typeof l.line === 'number')).toBe(true);
    await writeFile(join(dir, 'a.yaml'), service('a'));
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    expect(count(events, 'recovered')).toBe(3);
    expect(lastReplace(events, 'services')).toEqual(['default/a']);
  });

  it('follows a folder that appears after start', async () => {
    const sub1 = join(dir, 'manifests');
    const events = start(sub1);
    await waitFor(() => expect(count(events, 'degraded')).toBe(3));
    await mkdir(sub1);
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await writeFile(join(sub1, 'a.yaml'), service('a'));
    await waitFor(() => expect(lastReplace(events, 'services')).toEqual(['default/a']));
  });

  it('stop() completes the stream and no reload happens afterwards', async () => {
    await writeFile(join(dir, 'a.yaml'), service('a'));
    const events = start(dir);
    let completed = false;
    sub!.add(() => (completed = true));
    await waitFor(() => expect(count(events, 'replace')).toBe(3));
    await source!.stop();
    expect(completed).toBe(true);
    const n = events.length;
    await writeFile(join(dir, 'a.yaml'), service('b'));
    await new Promise((r) => setTimeout(r, 150));
    expect(events.length).toBe(n);
  });
});
