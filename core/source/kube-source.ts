/**
 * KubeSource: Services, EndpointSlices and this node's Node from the Kubernetes API server.
 *
 * Configuration and authentication come from @kubernetes/client-node's `KubeConfig`
 * (`--kubeconfig`, else in-cluster; `--master` overrides the server; tokens, token files, exec
 * plugins, client certificates and CAs are all applied by `KubeConfig.applyToHTTPSOptions`).
 * The list and watch requests themselves are driven here, over node:http/https with the agent
 * and headers that KubeConfig produces, instead of through client-node's `ListWatch`
 * (makeInformer) or `Watch`, because in 1.4.0:
 *  - ListWatch stops for good on any watch or list error other than 410 (it only calls its
 *    error callbacks), has no backoff, never asks for bookmarks or a server-side timeout, and
 *    reports a relist as per-object add/delete instead of one complete set (we need `replace`);
 *  - Watch only hands back its AbortController after the response headers arrived, so a
 *    request hanging in connect or TLS cannot be cancelled by stop(); its 30 s timeout is dead
 *    code (the signal is overwritten), and it silently drops lines it cannot parse;
 *  - the generated list clients deserialize into typed models (Dates, unknown fields dropped),
 *    while watch events are raw JSON, so a relist would look like a change to every object.
 * Driving both list and watch here gives raw API JSON on both paths, abortable requests at
 * every stage, and the reflector semantics client-go has:
 *
 *  - list (no resourceVersion: a consistent read) → `replace`; then watch from the list's
 *    resourceVersion with allowWatchBookmarks and a server-side timeoutSeconds (300–600 s,
 *    randomized like client-go); ADDED/MODIFIED → `upsert`, DELETED → `delete`, every event
 *    and BOOKMARK advances the resume point;
 *  - a watch that ends (timeout) or breaks after it was established is resumed at once from
 *    the last resourceVersion, without a relist;
 *  - 410 Gone (an ERROR event with code 410, or HTTP 410) → relist, emitting `replace`, which
 *    carries any deletion made meanwhile;
 *  - a failed request (connection refused/reset, timeout, HTTP error, unparsable list) →
 *    `degraded` (once per outage), retry with capped exponential backoff and jitter; the
 *    first request that succeeds afterwards → `recovered`. The resume point is kept, so after
 *    an outage the watch replays what happened meanwhile (or gets 410 and relists). An error
 *    never produces a `replace`: only a successful list does.
 */
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { Observable, type Subscriber } from 'rxjs';
import type { Logger } from '../log.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../model/kube.js';
import { SERVICE_LABEL_SELECTOR } from '../model/kube.js';
import type { ResourceKind, SourceEvent } from '../model/events.js';
import type { Source } from './source.js';

type KubeObject = KubeService | KubeEndpointSlice | KubeNode;

export interface BackoffOptions {
  /** First retry delay (default 500 ms). */
  readonly initialMs: number;
  /** Cap (default 30 s). */
  readonly maxMs: number;
  /** Growth per failure (default 2). */
  readonly factor: number;
  /** Random spread, as a fraction of the delay (default 0.2: ±20 %). */
  readonly jitter: number;
}

export interface KubeSourceOptions {
  /** Path of a kubeconfig; else in-cluster configuration (or `master` alone). */
  readonly kubeconfig?: string;
  /** API server URL overriding the kubeconfig's (kube-proxy `--master`). */
  readonly master?: string;
  /** This node's name: only the Node with this name is watched. */
  readonly nodeName: string;
  readonly logger: Logger;
  /** A ready KubeConfig (tests, embedding); `kubeconfig`/`master` are then ignored. */
  readonly kubeConfig?: KubeConfig;
  readonly backoff?: Partial<BackoffOptions>;
  /** Server-side watch timeout; default random in [300, 600) s per watch, like client-go. */
  readonly watchTimeoutSeconds?: number;
  /** Timeout for a list, and for a watch to answer with headers (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** A watch with no bytes for this long is considered dead (default watch timeout + 30 s). */
  readonly watchIdleTimeoutMs?: number;
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };

interface ResourceSpec {
  readonly resource: ResourceKind;
  readonly path: string;
  readonly kind: string;
  readonly apiVersion: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

function resourceSpecs(nodeName: string): ResourceSpec[] {
  return [
    {
      resource: 'services',
      path: '/api/v1/services',
      kind: 'Service',
      apiVersion: 'v1',
      labelSelector: SERVICE_LABEL_SELECTOR,
    },
    {
      resource: 'endpointslices',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
    },
    {
      resource: 'nodes',
      path: '/api/v1/nodes',
      kind: 'Node',
      apiVersion: 'v1',
      fieldSelector: `metadata.name=${nodeName}`,
    },
  ];
}

/** An HTTP answer other than 200, with the Status message when the server sent one. */
export class ApiStatusError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Builds the client configuration as kube-proxy does: `kubeconfig` file, else `master` alone
 * (no credentials), else in-cluster; `master` overrides the current cluster's server.
 * Plain-http servers are marked skipTLSVerify, which client-node requires to allow http at all.
 */
export function buildKubeConfig(options: { kubeconfig?: string; master?: string }): KubeConfig {
  const kc = new KubeConfig();
  if (options.kubeconfig) {
    kc.loadFromFile(options.kubeconfig);
  } else if (options.master) {
    kc.loadFromClusterAndUser(
      { name: 'master', server: options.master, skipTLSVerify: false },
      { name: 'anonymous' },
    );
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
      throw new Error(
        'no --kubeconfig or --master given and not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)',
      );
    }
    kc.loadFromCluster();
  }
  const current = kc.getCurrentCluster();
  if (!current) throw new Error('kubeconfig has no current cluster');
  kc.clusters = kc.clusters.map((c) => {
    const server = c.name === current.name && options.master ? options.master : c.server;
    return { ...c, server, skipTLSVerify: c.skipTLSVerify || server.startsWith('http:') };
  });
  return kc;
}

/** The API's objects with kind/apiVersion filled in (list items come without them). */
function normalize<T extends KubeObject>(obj: T, spec: ResourceSpec): T {
  if (obj.kind && obj.apiVersion) return obj;
  return { ...obj, kind: obj.kind ?? spec.kind, apiVersion: obj.apiVersion ?? spec.apiVersion };
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

function statusMessage(body: string, statusCode: number): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return `HTTP ${statusCode}: ${parsed.message}`;
  } catch {
    // not a Status
  }
  return `HTTP ${statusCode}${http.STATUS_CODES[statusCode] ? ` ${http.STATUS_CODES[statusCode]}` : ''}`;
}

interface OpenResponse {
  readonly req: http.ClientRequest;
  readonly res: http.IncomingMessage;
  readonly agent: http.Agent | undefined;
}

/** One GET with KubeConfig's TLS, auth and agent; resolves with the response headers received. */
async function openRequest(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | undefined>,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<OpenResponse> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  signal.throwIfAborted();
  const agent = opts.agent instanceof http.Agent ? opts.agent : undefined;
  const headers = {
    ...(opts.headers as Record<string, string> | undefined),
    Accept: 'application/json',
    'User-Agent': 'switchyard',
  };
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise<OpenResponse>((resolve, reject) => {
    const req = mod.request(url, { ...opts, method: 'GET', headers, signal });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
    req.on('error', (err) => {
      agent?.destroy();
      reject(err);
    });
    req.on('response', (res) => resolve({ req, res, agent }));
    req.end();
  });
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

type WatchOutcome =
  /** the server ended the stream (timeout) or it broke after it was established */
  | { kind: 'ended'; events: number; broken?: string }
  /** 410: the resume point is gone, relist */
  | { kind: 'expired' };

interface WatchEventLine {
  type?: string;
  object?: KubeObject & { code?: number; message?: string; reason?: string };
}

/** List/watch loop for one resource, with client-go reflector semantics (see the file comment). */
class Reflector {
  private rv = '';
  private degraded = false;
  private failures = 0;
  /** Consecutive watches that ended within a second without delivering anything. */
  private quickEnds = 0;

  constructor(
    private readonly spec: ResourceSpec,
    private readonly kc: KubeConfig,
    private readonly opts: Required<Pick<KubeSourceOptions, 'requestTimeoutMs'>> &
      Pick<KubeSourceOptions, 'watchTimeoutSeconds' | 'watchIdleTimeoutMs'> & { backoff: BackoffOptions },
    private readonly log: Logger,
    private readonly emit: (e: SourceEvent) => void,
    private readonly signal: AbortSignal,
  ) {}

  async run(): Promise<void> {
    while (!this.signal.aborted) {
      try {
        if (this.rv === '') await this.list();
        const started = Date.now();
        const outcome = await this.watch();
        if (this.signal.aborted) return;
        if (outcome.kind === 'expired') {
          this.log.info({ resourceVersion: this.rv }, 'watch resourceVersion expired (410 Gone), relisting');
          this.rv = '';
          continue;
        }
        const quick = outcome.events === 0 && Date.now() - started < 1000;
        this.quickEnds = quick ? this.quickEnds + 1 : 0;
        if (!quick) this.succeeded();
        if (outcome.broken !== undefined) {
          this.log.info({ reason: outcome.broken, resourceVersion: this.rv }, 'watch broke, resuming');
          // a stream that keeps breaking right after it opens is an outage, not a blip
          if (this.quickEnds >= 3) this.fail(`watch ${this.spec.resource}: ${outcome.broken}`);
        }
        // one short-lived watch is resumed at once; a run of them backs off (no hot loop)
        if (this.quickEnds >= 2) await sleep(this.delay(), undefined, { signal: this.signal });
      } catch (err) {
        if (this.signal.aborted) return;
        // HTTP 410 on a watch (a list has no resourceVersion to expire; a 410 there is a failure)
        if (err instanceof ApiStatusError && err.statusCode === 410 && this.rv !== '') {
          this.rv = '';
          continue;
        }
        this.fail(describeError(err));
        await sleep(this.delay(), undefined, { signal: this.signal }).catch(() => undefined);
      }
    }
  }

  private fail(reason: string): void {
    this.failures++;
    if (!this.degraded) {
      this.degraded = true;
      this.log.warn(
        { reason },
        'API server unreachable or failing; keeping the last known state and retrying',
      );
      this.emit({ type: 'degraded', resource: this.spec.resource, reason });
    } else {
      this.log.debug({ reason, failures: this.failures }, 'still failing');
    }
  }

  private succeeded(): void {
    this.failures = 0;
    if (this.degraded) {
      this.degraded = false;
      this.log.info('API server reachable again');
      this.emit({ type: 'recovered', resource: this.spec.resource });
    }
  }

  private delay(): number {
    const { initialMs, maxMs, factor, jitter } = this.opts.backoff;
    const n = Math.max(this.failures, this.quickEnds - 1);
    const base = Math.min(maxMs, initialMs * factor ** Math.max(0, n - 1));
    return Math.max(0, Math.round(base * (1 + jitter * (2 * Math.random() - 1))));
  }

  private async list(): Promise<void> {
    const { req, res, agent } = await openRequest(
      this.kc,
      this.spec.path,
      { labelSelector: this.spec.labelSelector, fieldSelector: this.spec.fieldSelector },
      this.signal,
      this.opts.requestTimeoutMs,
    );
    try {
      const body = await readBody(res);
      if (res.statusCode !== 200)
        throw new ApiStatusError(
          res.statusCode ?? 0,
          `list ${this.spec.resource}: ${statusMessage(body, res.statusCode ?? 0)}`,
        );
      let parsed: { items?: unknown; metadata?: { resourceVersion?: unknown } };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        throw new Error(`list ${this.spec.resource}: response is not JSON`);
      }
      const rv = parsed.metadata?.resourceVersion;
      if (!Array.isArray(parsed.items) || typeof rv !== 'string' || rv === '') {
        throw new Error(`list ${this.spec.resource}: response has no items or resourceVersion`);
      }
      const objects = (parsed.items as KubeObject[])
        .filter((o): o is KubeObject => typeof o === 'object' && o !== null)
        .map((o) => normalize(o, this.spec));
      this.succeeded();
      this.quickEnds = 0;
      this.rv = rv;
      this.log.debug({ count: objects.length, resourceVersion: rv }, 'listed');
      this.emit({ type: 'replace', resource: this.spec.resource, objects });
    } finally {
      req.destroy();
      agent?.destroy();
    }
  }

  private watchTimeoutSeconds(): number {
    return this.opts.watchTimeoutSeconds ?? Math.floor(300 * (1 + Math.random()));
  }

  private async watch(): Promise<WatchOutcome> {
    const timeoutSeconds = this.watchTimeoutSeconds();
    const { req, res, agent } = await openRequest(
      this.kc,
      this.spec.path,
      {
        watch: 'true',
        resourceVersion: this.rv,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(timeoutSeconds),
        labelSelector: this.spec.labelSelector,
        fieldSelector: this.spec.fieldSelector,
      },
      this.signal,
      this.opts.requestTimeoutMs,
    );
    try {
      if (res.statusCode !== 200) {
        const body = await readBody(res);
        throw new ApiStatusError(
          res.statusCode ?? 0,
          `watch ${this.spec.resource}: ${statusMessage(body, res.statusCode ?? 0)}`,
        );
      }
      // during a run of watches that break right after opening, an answer is not a recovery
      if (this.quickEnds < 3) this.succeeded();
      const idle = this.opts.watchIdleTimeoutMs ?? timeoutSeconds * 1000 + 30_000;
      req.setTimeout(idle, () => req.destroy(new Error(`watch silent for ${idle} ms`)));
      return await this.consume(res);
    } finally {
      req.destroy();
      agent?.destroy();
    }
  }

  /** Reads watch events until the stream ends, breaks, or says 410. */
  private consume(res: http.IncomingMessage): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve) => {
      let buffered = '';
      let events = 0;
      let settled = false;
      const finish = (o: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        res.removeAllListeners('data');
        resolve(o);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while (!settled && (nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          let ev: WatchEventLine;
          try {
            ev = JSON.parse(line) as WatchEventLine;
          } catch {
            finish({ kind: 'ended', events, broken: 'unparsable watch event' });
            return;
          }
          const outcome = this.handleEvent(ev);
          if (outcome) {
            finish(outcome);
            return;
          }
          events++;
        }
      });
      res.on('end', () => finish({ kind: 'ended', events }));
      res.on('error', (err) => finish({ kind: 'ended', events, broken: describeError(err) }));
      res.on('close', () =>
        finish({ kind: 'ended', events, broken: res.complete ? undefined : 'connection closed' }),
      );
    });
  }

  /** Applies one event; returns an outcome when the watch must end. */
  private handleEvent(ev: WatchEventLine): WatchOutcome | undefined {
    const obj = ev.object;
    if (typeof obj !== 'object' || obj === null)
      return { kind: 'ended', events: 0, broken: 'watch event without object' };
    const rv = obj.metadata?.resourceVersion;
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.emit({ type: 'upsert', resource: this.spec.resource, object: normalize(obj, this.spec) });
        break;
      case 'DELETED':
        this.emit({ type: 'delete', resource: this.spec.resource, object: normalize(obj, this.spec) });
        break;
      case 'BOOKMARK':
        break;
      case 'ERROR':
        if (obj.code === 410) return { kind: 'expired' };
        return {
          kind: 'ended',
          events: 0,
          broken: `ERROR event: ${obj.message ?? obj.reason ?? 'unknown'} (${obj.code ?? '?'})`,
        };
      default:
        this.log.debug({ type: ev.type }, 'ignoring unknown watch event type');
        return undefined;
    }
    if (typeof rv === 'string' && rv !== '') this.rv = rv;
    return undefined;
  }
}

/** The Kubernetes API source. See the file comment for the semantics. */
export class KubeSource implements Source {
  private readonly kc: KubeConfig;
  private readonly log: Logger;
  private readonly sessions = new Set<{ controller: AbortController; subscriber: Subscriber<SourceEvent> }>();
  /** Reflector loops still running (including those of sessions already unsubscribed). */
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly options: KubeSourceOptions) {
    this.kc = options.kubeConfig ?? buildKubeConfig(options);
    this.log = options.logger.child({ component: 'kube-source' });
  }

  /** The API server this source talks to. */
  get server(): string | undefined {
    return this.kc.getCurrentCluster()?.server;
  }

  events$(): Observable<SourceEvent> {
    return new Observable<SourceEvent>((subscriber) => {
      const controller = new AbortController();
      const backoff = { ...DEFAULT_BACKOFF, ...this.options.backoff };
      const opts = {
        requestTimeoutMs: this.options.requestTimeoutMs ?? 30_000,
        watchTimeoutSeconds: this.options.watchTimeoutSeconds,
        watchIdleTimeoutMs: this.options.watchIdleTimeoutMs,
        backoff,
      };
      const emit = (e: SourceEvent): void => {
        if (!controller.signal.aborted) subscriber.next(e);
      };
      this.log.info({ server: this.server, node: this.options.nodeName }, 'starting list/watch');
      const reflectors = resourceSpecs(this.options.nodeName).map(
        (spec) =>
          new Reflector(
            spec,
            this.kc,
            opts,
            this.log.child({ resource: spec.resource }),
            emit,
            controller.signal,
          ),
      );
      const done = Promise.all(
        reflectors.map((r) =>
          r.run().catch((err: unknown) => {
            if (!controller.signal.aborted) this.log.error({ err }, 'reflector crashed');
          }),
        ),
      ).then(() => {
        this.running.delete(done);
      });
      this.running.add(done);
      const session = { controller, subscriber };
      this.sessions.add(session);
      return () => {
        controller.abort();
        this.sessions.delete(session);
      };
    });
  }

  async stop(): Promise<void> {
    const sessions = [...this.sessions];
    this.sessions.clear();
    for (const s of sessions) s.controller.abort();
    await Promise.all([...this.running]);
    for (const s of sessions) s.subscriber.complete();
  }
}
