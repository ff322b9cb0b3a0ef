/**
 * ApiServerFixture: a small but real Kubernetes API server for tests. It speaks the list/watch
 * protocol over HTTP or HTTPS (self-signed certificate generated at start with the `openssl`
 * CLI) with optional bearer-token auth, for:
 *
 *   /api/v1/services                       /api/v1/namespaces/{ns}/services[/{name}]
 *   /apis/discovery.k8s.io/v1/endpointslices  /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices[/{name}]
 *   /api/v1/nodes[/{name}]
 *
 * Lists return `{kind: XList, apiVersion, metadata: {resourceVersion}, items}` (items without
 * kind/apiVersion, as the real server sends them). `?watch=true` streams newline-delimited JSON
 * events ADDED / MODIFIED / DELETED / BOOKMARK (only with allowWatchBookmarks=true) that happened
 * after `resourceVersion`; without a resourceVersion (or "0") the watch first sends ADDED for
 * every current object. A resourceVersion older than the last `compact()` gets HTTP 200 and one
 * ERROR event carrying a `Status` with code 410 (reason Expired), then the stream ends, exactly
 * like the real server's watch cache. `timeoutSeconds` ends the stream cleanly (fractions are
 * accepted here so tests stay fast). Selectors: see api-selectors.ts; a label selector applied to
 * a watch turns a MODIFIED that leaves the selection into DELETED and one that enters it into
 * ADDED, like the real server.
 *
 * Test controls: create/update/apply/delete, compact(), dropWatches(), closeWatches(), pause(mode)/resume(),
 * bookmark(), a request log with counters, kubeconfig(path), close().
 *
 * pause() modes (the API is unavailable; every open watch is torn down abruptly first):
 *  - 'unavailable' (default): every request gets 503 with a Status body (an API server whose
 *    etcd is gone, or a load balancer without healthy backends);
 *  - 'reset': every request's connection is destroyed without a response;
 *  - 'hang': requests get no answer until resume(), which then destroys those connections.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { parseFieldSelector, parseLabelSelector, SelectorError, type Selector } from './api-selectors.js';

export type ApiResource = 'services' | 'endpointslices' | 'nodes';

interface ResourceInfo {
  readonly kind: string;
  readonly listKind: string;
  readonly apiVersion: string;
  readonly namespaced: boolean;
}

const RESOURCE_INFO: Readonly<Record<ApiResource, ResourceInfo>> = {
  services: { kind: 'Service', listKind: 'ServiceList', apiVersion: 'v1', namespaced: true },
  endpointslices: {
    kind: 'EndpointSlice',
    listKind: 'EndpointSliceList',
    apiVersion: 'discovery.k8s.io/v1',
    namespaced: true,
  },
  nodes: { kind: 'Node', listKind: 'NodeList', apiVersion: 'v1', namespaced: false },
};

/** What the object controls accept: any API object shape (core/model's Kube* types fit). */
export interface FixtureInput {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
}

/** Any API object: only metadata is interpreted. */
export interface FixtureObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface StoredEvent {
  readonly rv: number;
  readonly type: EventType;
  readonly resource: ApiResource;
  readonly object: FixtureObject;
  readonly previous?: FixtureObject;
}

interface OpenWatch {
  readonly resource: ApiResource;
  readonly namespace?: string;
  readonly label: Selector;
  readonly field: Selector;
  readonly bookmarks: boolean;
  readonly res: http.ServerResponse;
  timer?: NodeJS.Timeout;
}

export type PauseMode = 'unavailable' | 'reset' | 'hang';

export type RequestVerb = 'list' | 'watch' | 'get' | 'other';

export interface RequestLogEntry {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly resource?: ApiResource;
  readonly namespace?: string;
  readonly verb: RequestVerb;
  /** HTTP status sent (0 when the connection was reset or held). */
  status: number;
}

export interface ApiServerFixtureOptions {
  /** Serve HTTPS with a freshly generated self-signed certificate (default false). */
  readonly tls?: boolean;
  /** When set, every request must carry `Authorization: Bearer <token>`, else 401. */
  readonly token?: string;
}

const execFileAsync = promisify(execFile);

function statusBody(code: number, reason: string, message: string): FixtureObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function keyOf(resource: ApiResource, namespace: string | undefined, name: string): string {
  return RESOURCE_INFO[resource].namespaced ? `${namespace ?? 'default'}/${name}` : name;
}

interface Route {
  readonly resource: ApiResource;
  readonly namespace?: string;
  readonly name?: string;
}

function route(pathname: string): Route | undefined {
  let m = /^\/api\/v1\/(services|nodes)(?:\/([^/]+))?$/.exec(pathname);
  if (m) {
    const resource = m[1] as ApiResource;
    // /api/v1/services/{name} does not exist (services are namespaced)
    if (resource === 'services' && m[2] !== undefined) return undefined;
    return { resource, name: m[2] };
  }
  m = /^\/api\/v1\/namespaces\/([^/]+)\/services(?:\/([^/]+))?$/.exec(pathname);
  if (m) return { resource: 'services', namespace: m[1], name: m[2] };
  m = /^\/apis\/discovery\.k8s\.io\/v1\/endpointslices$/.exec(pathname);
  if (m) return { resource: 'endpointslices' };
  m = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices(?:\/([^/]+))?$/.exec(pathname);
  if (m) return { resource: 'endpointslices', namespace: m[1], name: m[2] };
  return undefined;
}

export class ApiServerFixture {
  private readonly store: Record<ApiResource, Map<string, FixtureObject>> = {
    services: new Map(),
    endpointslices: new Map(),
    nodes: new Map(),
  };
  private history: StoredEvent[] = [];
  private rv = 1;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedRv = 0;
  private readonly watches = new Set<OpenWatch>();
  private readonly held = new Set<http.IncomingMessage>();
  private readonly log: RequestLogEntry[] = [];
  private paused: PauseMode | undefined;
  /** Every TCP connection, including ones still in the TLS handshake (closeAllConnections misses those). */
  private readonly sockets = new Set<Socket>();
  private closing = false;

  private constructor(
    private readonly server: http.Server | https.Server,
    readonly url: string,
    readonly token: string | undefined,
    /** PEM of the self-signed certificate (HTTPS only); it is its own CA. */
    readonly caPem: string | undefined,
    private readonly tmpDir: string | undefined,
  ) {}

  /** Starts a fixture on 127.0.0.1 with an ephemeral port. */
  static async start(options: ApiServerFixtureOptions = {}): Promise<ApiServerFixture> {
    let server: http.Server | https.Server;
    let caPem: string | undefined;
    let dir: string | undefined;
    if (options.tls) {
      dir = await mkdtemp(join(tmpdir(), 'switchyard-apiserver-'));
      const keyFile = join(dir, 'key.pem');
      const certFile = join(dir, 'cert.pem');
      await execFileAsync('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
        '-subj',
        '/CN=switchyard-fixture',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ]);
      caPem = await readFile(certFile, 'utf8');
      const key = await readFile(keyFile, 'utf8');
      server = https.createServer({ key, cert: caPem });
    } else {
      server = http.createServer();
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    const fixture = new ApiServerFixture(server, url, options.token, caPem, dir);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => fixture.handle(req, res));
    server.on('connection', (socket: Socket) => fixture.track(socket));
    return fixture;
  }

  /** A random token suitable for `token`. */
  static randomToken(): string {
    return randomBytes(16).toString('hex');
  }

  // ---------------------------------------------------------------- object controls

  /** The current (global) resourceVersion. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Stores a new object (throws if it exists) and notifies watches with ADDED. Returns the stored copy. */
  create(resource: ApiResource, obj: FixtureObject | FixtureInput): FixtureObject {
    const { key, stored } = this.prepare(resource, obj);
    if (this.store[resource].has(key)) throw new Error(`${resource} ${key} already exists`);
    stored.metadata!.uid ??= randomUUID();
    stored.metadata!.creationTimestamp ??= new Date().toISOString();
    return this.commit(resource, key, 'ADDED', stored, undefined);
  }

  /** Replaces an existing object (throws if missing) and notifies watches with MODIFIED. */
  update(resource: ApiResource, obj: FixtureObject | FixtureInput): FixtureObject {
    const { key, stored } = this.prepare(resource, obj);
    const previous = this.store[resource].get(key);
    if (!previous) throw new Error(`${resource} ${key} not found`);
    stored.metadata!.uid = previous.metadata?.uid;
    stored.metadata!.creationTimestamp = previous.metadata?.creationTimestamp;
    return this.commit(resource, key, 'MODIFIED', stored, previous);
  }

  /** create or update. */
  apply(resource: ApiResource, obj: FixtureObject | FixtureInput): FixtureObject {
    const { key } = this.prepare(resource, obj);
    return this.store[resource].has(key) ? this.update(resource, obj) : this.create(resource, obj);
  }

  /** Deletes an object (by its metadata name/namespace) and notifies watches with DELETED. */
  delete(resource: ApiResource, obj: FixtureObject | FixtureInput): FixtureObject {
    const { key } = this.prepare(resource, obj);
    const previous = this.store[resource].get(key);
    if (!previous) throw new Error(`${resource} ${key} not found`);
    const stored = structuredClone(previous);
    return this.commit(resource, key, 'DELETED', stored, previous);
  }

  /** The stored copy of an object, if any. */
  get(resource: ApiResource, name: string, namespace?: string): FixtureObject | undefined {
    const o = this.store[resource].get(keyOf(resource, namespace, name));
    return o ? structuredClone(o) : undefined;
  }

  /** Every stored object of a resource. */
  objects(resource: ApiResource): FixtureObject[] {
    return [...this.store[resource].values()].map((o) => structuredClone(o));
  }

  /** Forgets the event history: a later watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Abruptly destroys every open watch connection (no final chunk). */
  dropWatches(): void {
    for (const w of [...this.watches]) this.destroyWatch(w);
  }

  /** Ends every open watch cleanly (final chunk sent), as the real server does at its timeout. */
  closeWatches(): void {
    for (const w of [...this.watches]) {
      if (w.timer) clearTimeout(w.timer);
      this.watches.delete(w);
      w.res.end();
    }
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch that allows bookmarks. */
  bookmark(): void {
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      const info = RESOURCE_INFO[w.resource];
      this.writeEvent(w.res, {
        type: 'BOOKMARK',
        object: {
          kind: info.kind,
          apiVersion: info.apiVersion,
          metadata: { resourceVersion: String(this.rv) },
        },
      });
    }
  }

  /** Makes the API unavailable (see the file comment for the modes); open watches are dropped. */
  pause(mode: PauseMode = 'unavailable'): void {
    this.paused = mode;
    this.dropWatches();
  }

  /** Ends an outage; held ('hang') requests are destroyed so their clients retry. */
  resume(): void {
    this.paused = undefined;
    for (const req of this.held) req.socket.destroy();
    this.held.clear();
  }

  get isPaused(): boolean {
    return this.paused !== undefined;
  }

  // ---------------------------------------------------------------- request log

  /** Every request received, oldest first. */
  get requests(): readonly RequestLogEntry[] {
    return this.log;
  }

  /** Number of list requests answered 200 for a resource (all namespaces and single-namespace). */
  listCount(resource: ApiResource): number {
    return this.log.filter((e) => e.resource === resource && e.verb === 'list' && e.status === 200).length;
  }

  /** Number of watch requests (any outcome) for a resource. */
  watchCount(resource: ApiResource): number {
    return this.log.filter((e) => e.resource === resource && e.verb === 'watch').length;
  }

  /** Watch connections currently open (optionally for one resource). */
  openWatches(resource?: ApiResource): number {
    let n = 0;
    for (const w of this.watches) if (resource === undefined || w.resource === resource) n++;
    return n;
  }

  /** Waits until at least `count` watches are open (optionally for one resource). */
  async waitForWatches(count: number, resource?: ApiResource, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.openWatches(resource) < count) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${count} open ${resource ?? ''} watches (have ${this.openWatches(resource)})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  clearLog(): void {
    this.log.length = 0;
  }

  // ---------------------------------------------------------------- client config

  /** A kubeconfig (JSON, which is YAML) pointing at this server, with CA data and token. */
  kubeconfigText(): string {
    const cluster: Record<string, unknown> = { server: this.url };
    if (this.caPem !== undefined)
      cluster['certificate-authority-data'] = Buffer.from(this.caPem).toString('base64');
    // client-node refuses plain http unless insecure-skip-tls-verify is set (it has no TLS to skip)
    else cluster['insecure-skip-tls-verify'] = true;
    const user: Record<string, unknown> = {};
    if (this.token !== undefined) user.token = this.token;
    return JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fixture', cluster }],
        users: [{ name: 'fixture', user }],
        contexts: [{ name: 'fixture', context: { cluster: 'fixture', user: 'fixture' } }],
        'current-context': 'fixture',
      },
      undefined,
      2,
    );
  }

  /** Writes kubeconfigText() to `path`; returns the path. */
  async kubeconfig(path: string): Promise<string> {
    await writeFile(path, this.kubeconfigText(), { mode: 0o600 });
    return path;
  }

  /** A client-node KubeConfig pointing at this server. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigText());
    return kc;
  }

  /** Stops the server, destroying every connection, and removes the certificate files. */
  async close(): Promise<void> {
    this.closing = true;
    for (const w of [...this.watches]) this.destroyWatch(w);
    for (const req of this.held) req.socket.destroy();
    this.held.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const s of this.sockets) s.destroy();
    });
    if (this.tmpDir !== undefined) await rm(this.tmpDir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- internals

  private track(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private prepare(
    resource: ApiResource,
    obj: FixtureObject | FixtureInput,
  ): { key: string; stored: FixtureObject } {
    const info = RESOURCE_INFO[resource];
    const name = obj.metadata?.name;
    if (!name) throw new Error(`${resource}: object without metadata.name`);
    const stored = structuredClone(obj) as FixtureObject;
    stored.kind = info.kind;
    stored.apiVersion = info.apiVersion;
    stored.metadata = { ...stored.metadata };
    if (info.namespaced) stored.metadata.namespace ??= 'default';
    else delete stored.metadata.namespace;
    return { key: keyOf(resource, stored.metadata.namespace, name), stored };
  }

  private commit(
    resource: ApiResource,
    key: string,
    type: EventType,
    stored: FixtureObject,
    previous: FixtureObject | undefined,
  ): FixtureObject {
    this.rv++;
    stored.metadata!.resourceVersion = String(this.rv);
    if (type === 'DELETED') this.store[resource].delete(key);
    else this.store[resource].set(key, stored);
    const event: StoredEvent = { rv: this.rv, type, resource, object: stored, previous };
    this.history.push(event);
    for (const w of this.watches) {
      if (w.resource === resource) this.sendStored(w, event);
    }
    return structuredClone(stored);
  }

  private inScope(w: OpenWatch, o: FixtureObject | undefined): boolean {
    if (!o) return false;
    if (w.namespace !== undefined && o.metadata?.namespace !== w.namespace) return false;
    return w.label(o) && w.field(o);
  }

  private sendStored(w: OpenWatch, e: StoredEvent): void {
    const now = this.inScope(w, e.object);
    const before = this.inScope(w, e.previous);
    let type: EventType | undefined;
    if (e.type === 'ADDED') type = now ? 'ADDED' : undefined;
    else if (e.type === 'DELETED') type = before || now ? 'DELETED' : undefined;
    else if (now && before) type = 'MODIFIED';
    else if (now) type = 'ADDED';
    else if (before) type = 'DELETED';
    if (type !== undefined) this.writeEvent(w.res, { type, object: e.object });
  }

  private writeEvent(res: http.ServerResponse, event: { type: string; object: unknown }): void {
    if (res.destroyed || res.writableEnded) return;
    res.write(JSON.stringify(event) + '\n');
  }

  private destroyWatch(w: OpenWatch): void {
    if (w.timer) clearTimeout(w.timer);
    this.watches.delete(w);
    w.res.socket?.destroy();
    w.res.destroy();
  }

  private sendJson(res: http.ServerResponse, entry: RequestLogEntry, status: number, body: unknown): void {
    entry.status = status;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fixture');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const r = route(url.pathname);
    const isWatch = query.watch === 'true' || query.watch === '1';
    const verb: RequestVerb =
      req.method !== 'GET' || !r ? 'other' : isWatch ? 'watch' : r.name !== undefined ? 'get' : 'list';
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      resource: r?.resource,
      namespace: r?.namespace,
      verb,
      status: 0,
    };
    this.log.push(entry);

    if (this.paused === 'reset') {
      req.socket.destroy();
      return;
    }
    if (this.paused === 'hang') {
      this.held.add(req);
      res.on('close', () => this.held.delete(req));
      return;
    }
    if (this.paused === 'unavailable') {
      this.sendJson(
        res,
        entry,
        503,
        statusBody(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'),
      );
      return;
    }
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      this.sendJson(res, entry, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (!r) {
      this.sendJson(
        res,
        entry,
        404,
        statusBody(404, 'NotFound', 'the server could not find the requested resource'),
      );
      return;
    }
    if (req.method !== 'GET') {
      this.sendJson(res, entry, 405, statusBody(405, 'MethodNotAllowed', 'the fixture only serves GET'));
      return;
    }
    let label: Selector;
    let field: Selector;
    try {
      label = parseLabelSelector(query.labelSelector);
      field = parseFieldSelector(query.fieldSelector);
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err;
      this.sendJson(res, entry, 400, statusBody(400, 'BadRequest', err.message));
      return;
    }
    const info = RESOURCE_INFO[r.resource];
    if (r.name !== undefined && !isWatch) {
      const o = this.store[r.resource].get(keyOf(r.resource, r.namespace, r.name));
      if (!o) {
        this.sendJson(res, entry, 404, statusBody(404, 'NotFound', `${r.resource} "${r.name}" not found`));
      } else {
        this.sendJson(res, entry, 200, o);
      }
      return;
    }
    // a watch on /{resource}/{name} is a watch with fieldSelector metadata.name={name}
    const byName: Selector = r.name !== undefined ? (o) => o.metadata?.name === r.name : () => true;
    const combinedField: Selector = (o) => field(o) && byName(o);
    if (!isWatch) {
      const items = [...this.store[r.resource].values()]
        .filter(
          (o) =>
            (r.namespace === undefined || o.metadata?.namespace === r.namespace) &&
            label(o) &&
            combinedField(o),
        )
        .map((o) => {
          const item = structuredClone(o);
          delete item.kind;
          delete item.apiVersion;
          return item;
        });
      this.sendJson(res, entry, 200, {
        kind: info.listKind,
        apiVersion: info.apiVersion,
        metadata: { resourceVersion: String(this.rv) },
        items,
      });
      return;
    }
    this.startWatch(res, entry, r, label, combinedField, query);
  }

  private startWatch(
    res: http.ServerResponse,
    entry: RequestLogEntry,
    r: Route,
    label: Selector,
    field: Selector,
    query: Record<string, string>,
  ): void {
    const rvParam = query.resourceVersion;
    let fromRv: number | undefined;
    if (rvParam !== undefined && rvParam !== '' && rvParam !== '0') {
      fromRv = Number(rvParam);
      if (!Number.isInteger(fromRv) || fromRv < 0) {
        this.sendJson(res, entry, 400, statusBody(400, 'BadRequest', `invalid resource version: ${rvParam}`));
        return;
      }
    }
    entry.status = 200;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (fromRv !== undefined && fromRv < this.compactedRv) {
      res.end(
        JSON.stringify({
          type: 'ERROR',
          object: statusBody(410, 'Expired', `too old resource version: ${fromRv} (${this.compactedRv})`),
        }) + '\n',
      );
      return;
    }
    const w: OpenWatch = {
      resource: r.resource,
      namespace: r.namespace,
      label,
      field,
      bookmarks: query.allowWatchBookmarks === 'true',
      res,
    };
    if (fromRv === undefined) {
      const current = [...this.store[r.resource].values()].sort(
        (a, b) => Number(a.metadata?.resourceVersion) - Number(b.metadata?.resourceVersion),
      );
      for (const o of current) if (this.inScope(w, o)) this.writeEvent(res, { type: 'ADDED', object: o });
    } else {
      for (const e of this.history) {
        if (e.rv > fromRv && e.resource === r.resource) this.sendStored(w, e);
      }
    }
    this.watches.add(w);
    const timeout = Number(query.timeoutSeconds);
    if (query.timeoutSeconds !== undefined && Number.isFinite(timeout) && timeout > 0) {
      w.timer = setTimeout(() => {
        this.watches.delete(w);
        res.end();
      }, timeout * 1000);
    }
    const cleanup = (): void => {
      if (w.timer) clearTimeout(w.timer);
      this.watches.delete(w);
    };
    // (IncomingMessage 'close' fires once the request body is read, so only the response counts)
    res.on('close', cleanup);
  }
}
