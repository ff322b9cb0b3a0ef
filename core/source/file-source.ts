/**
 * FileSource: Services, EndpointSlices and Nodes from a YAML file or a folder of YAML files,
 * watched for changes. It is the source for demos, benchmarks, tests and `switchyard plan --from`.
 *
 * - A folder means its top-level `*.yaml`, `*.yml` and `*.json` files (not recursive; dot-files
 *   and editor backups such as `x.yaml~` are skipped), read in name order.
 * - Files are multi-document YAML; `kind: List` (or `ServiceList`...) documents contribute their
 *   items. Services, EndpointSlices and Nodes are kept, other kinds are ignored (debug log).
 *   A namespaced object without a namespace gets `default`, as kubectl does. If two documents
 *   define the same object, the later one (file name order, then document order) wins.
 * - Every Node is delivered (the tracker picks the one named after this node).
 * - On start and after every change (fs.watch on the folder or on the file's folder, which also
 *   sees editors that save by rename; debounced, 100 ms by default) all three resources are
 *   emitted as `replace`.
 * - A file that fails to parse keeps its last good objects; the error is logged with file:line
 *   and `degraded` is emitted for every resource until all files parse again (`recovered`).
 *   Until a first load without errors, nothing is emitted but `degraded`: a half-read set of
 *   objects is never presented as the initial list.
 * - A removed file removes its objects (a removed path removes everything).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Observable, type Subscriber } from 'rxjs';
import { parseAllDocuments } from 'yaml';
import type { Logger } from '../log.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../model/kube.js';
import { objectKey, type ResourceKind, type SourceEvent } from '../model/events.js';
import type { Source } from './source.js';

type KubeObject = KubeService | KubeEndpointSlice | KubeNode;

export interface FileSourceOptions {
  /** A YAML file or a folder of YAML files. */
  readonly path: string;
  /** This node's name (informational: every Node is delivered). */
  readonly nodeName: string;
  readonly logger: Logger;
  /** Quiet time after a file event before reloading (default 100 ms). */
  readonly debounceMs?: number;
}

/** Objects read from files, per resource. */
export interface LoadedObjects {
  readonly services: KubeService[];
  readonly endpointslices: KubeEndpointSlice[];
  readonly nodes: KubeNode[];
}

/** A file that could not be read or parsed; line and column are 1-based. */
export interface FileLoadError {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
}

export interface LoadResult extends LoadedObjects {
  /** The files read. */
  readonly files: readonly string[];
  /** Files that failed (their objects are absent from the result). */
  readonly errors: readonly FileLoadError[];
}

const RESOURCE_BY_KIND: Readonly<Record<string, ResourceKind>> = {
  Service: 'services',
  EndpointSlice: 'endpointslices',
  Node: 'nodes',
};

const NAMESPACED: Readonly<Record<ResourceKind, boolean>> = {
  services: true,
  endpointslices: true,
  nodes: false,
};

const RESOURCES: readonly ResourceKind[] = ['services', 'endpointslices', 'nodes'];

/** One object read from a manifest, with the resource it belongs to. */
export interface Classified {
  readonly resource: ResourceKind;
  readonly object: KubeObject;
}

function isManifestName(name: string): boolean {
  return !name.startsWith('.') && /\.(ya?ml|json)$/i.test(name);
}

/** The manifest files `path` stands for, sorted; throws (ENOENT...) when `path` is unreadable. */
export async function listManifestFiles(path: string): Promise<string[]> {
  const st = await stat(path);
  if (!st.isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const files: string[] = [];
  for (const e of entries) {
    if (!isManifestName(e.name)) continue;
    const full = join(path, e.name);
    if (e.isFile()) files.push(full);
    else if (e.isSymbolicLink()) {
      const target = await stat(full).catch(() => undefined);
      if (target?.isFile()) files.push(full);
    }
  }
  return files.sort();
}

function classify(doc: unknown, file: string, out: Classified[], log: Logger | undefined): void {
  if (doc === null || doc === undefined) return;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    log?.warn({ file }, `${file}: a document that is not an object was ignored`);
    return;
  }
  const obj = doc as { kind?: unknown; items?: unknown; metadata?: { namespace?: string } };
  const kind = typeof obj.kind === 'string' ? obj.kind : undefined;
  if (kind !== undefined && kind.endsWith('List') && Array.isArray(obj.items)) {
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
    for (const item of obj.items) {
      if (itemKind !== undefined && item !== null && typeof item === 'object' && !('kind' in item)) {
        classify({ ...(item as object), kind: itemKind }, file, out, log);
      } else {
        classify(item, file, out, log);
      }
    }
    return;
  }
  const resource = kind !== undefined ? RESOURCE_BY_KIND[kind] : undefined;
  if (resource === undefined) {
    log?.debug({ file, kind }, 'ignoring object of a kind switchyard does not read');
    return;
  }
  // (an object without metadata has no name either: it is passed on; the planner skips and counts it)
  if (NAMESPACED[resource] && obj.metadata && typeof obj.metadata === 'object' && !obj.metadata.namespace) {
    obj.metadata.namespace = 'default';
  }
  out.push({ resource, object: obj as KubeObject });
}

/** Parses one manifest file's text: its objects, or the first error with its position. */
export function parseManifest(
  text: string,
  file: string,
  log?: Logger,
): { objects: Classified[]; error?: undefined } | { objects?: undefined; error: FileLoadError } {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const objects: Classified[] = [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      return {
        error: {
          file,
          line: pos?.line,
          column: pos?.col,
          message: err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
        },
      };
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      const line = doc.range ? lineOf(text, doc.range[0]) : undefined;
      return { error: { file, line, message: e instanceof Error ? e.message : String(e) } };
    }
    classify(value, file, objects, log);
  }
  return { objects };
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function formatError(e: FileLoadError): string {
  const where =
    e.line !== undefined ? `${e.file}:${e.line}${e.column !== undefined ? `:${e.column}` : ''}` : e.file;
  return `${where}: ${e.message}`;
}

/** Merges per-file objects in file order; a later definition of the same object wins. */
function merge(perFile: ReadonlyMap<string, readonly Classified[]>, log: Logger | undefined): LoadedObjects {
  const byResource: Record<ResourceKind, Map<string, KubeObject>> = {
    services: new Map(),
    endpointslices: new Map(),
    nodes: new Map(),
  };
  const unnamed: Record<ResourceKind, KubeObject[]> = { services: [], endpointslices: [], nodes: [] };
  for (const file of [...perFile.keys()].sort()) {
    for (const { resource, object } of perFile.get(file)!) {
      const key = objectKey(object.metadata);
      if (key === undefined) {
        unnamed[resource].push(object);
        continue;
      }
      if (byResource[resource].has(key))
        log?.warn({ file, resource, key }, `${file}: ${resource} ${key} defined twice; the later one wins`);
      byResource[resource].set(key, object);
    }
  }
  return {
    services: [...byResource.services.values(), ...unnamed.services] as KubeService[],
    endpointslices: [...byResource.endpointslices.values(), ...unnamed.endpointslices] as KubeEndpointSlice[],
    nodes: [...byResource.nodes.values(), ...unnamed.nodes] as KubeNode[],
  };
}

/**
 * Reads a file or folder once (for `switchyard plan --from`). Throws when `path` does not exist;
 * files that fail to read or parse are listed in `errors` and contribute nothing.
 */
export async function loadObjectsFromPath(path: string, logger?: Logger): Promise<LoadResult> {
  const files = await listManifestFiles(path);
  const perFile = new Map<string, Classified[]>();
  const errors: FileLoadError[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      errors.push({ file, message: e instanceof Error ? e.message : String(e) });
      continue;
    }
    const parsed = parseManifest(text, file, logger);
    if (parsed.error) errors.push(parsed.error);
    else perFile.set(file, parsed.objects);
  }
  return { ...merge(perFile, logger), files, errors };
}

/** One subscription's state: last good objects per file, watchers, the debounce timer. */
class FileSession {
  private readonly perFile = new Map<string, Classified[]>();
  private initialDone = false;
  private degraded = false;
  private lastErrorText = '';
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  private stopped = false;
  private parentWatcher: FSWatcher | undefined;
  private dirWatcher: FSWatcher | undefined;
  private readonly debounceMs: number;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    private readonly subscriber: Subscriber<SourceEvent>,
    debounceMs: number | undefined,
  ) {
    this.debounceMs = debounceMs ?? 100;
  }

  start(): void {
    this.parentWatcher = this.makeWatcher(
      dirname(this.path),
      (name) => name === null || name === basename(this.path),
    );
    void this.runReload();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.parentWatcher?.close();
    this.dirWatcher?.close();
    this.parentWatcher = this.dirWatcher = undefined;
    await this.reloading;
  }

  private makeWatcher(dir: string, relevant: (name: string | null) => boolean): FSWatcher | undefined {
    try {
      const w = watch(dir, { persistent: true }, (_event, name) => {
        if (relevant(name === null ? null : String(name))) this.schedule();
      });
      w.on('error', (err) => {
        this.log.debug({ dir, err: err.message }, 'file watcher error');
        w.close();
        if (this.dirWatcher === w) this.dirWatcher = undefined;
        if (this.parentWatcher === w) this.parentWatcher = undefined;
        this.schedule();
      });
      return w;
    } catch (err) {
      this.log.debug({ dir, err: (err as Error).message }, 'cannot watch');
      return undefined;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runReload();
    }, this.debounceMs);
  }

  private async runReload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async (): Promise<void> => {
      do {
        this.reloadAgain = false;
        try {
          await this.reload();
        } catch (err) {
          this.log.error({ err }, 'reload failed');
        }
      } while (this.reloadAgain && !this.stopped);
    })();
    await this.reloading;
    this.reloading = undefined;
  }

  private emit(e: SourceEvent): void {
    if (!this.stopped) this.subscriber.next(e);
  }

  private async reload(): Promise<void> {
    const errors: FileLoadError[] = [];
    let files: string[] | undefined;
    let isDir = false;
    try {
      isDir = (await stat(this.path)).isDirectory();
      files = await listManifestFiles(this.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (this.initialDone) {
          this.log.warn({ path: this.path }, `${this.path} is gone: removing every object it held`);
          files = [];
        } else {
          errors.push({ file: this.path, message: 'no such file or directory' });
        }
      } else {
        errors.push({ file: this.path, message: e instanceof Error ? e.message : String(e) });
      }
    }
    if (this.stopped) return;
    // keep a watcher inside the folder while the path is one (it may come and go)
    if (isDir && !this.dirWatcher)
      this.dirWatcher = this.makeWatcher(this.path, (name) => name === null || isManifestName(name));
    if (!isDir && this.dirWatcher) {
      this.dirWatcher.close();
      this.dirWatcher = undefined;
    }
    if (files !== undefined) {
      const listed = new Set(files);
      for (const f of [...this.perFile.keys()]) if (!listed.has(f)) this.perFile.delete(f);
      for (const file of files) {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
            this.perFile.delete(file); // removed between listing and reading
          } else {
            errors.push({ file, message: e instanceof Error ? e.message : String(e) });
          }
          continue;
        }
        const parsed = parseManifest(text, file, this.log);
        if (parsed.error) errors.push(parsed.error);
        else this.perFile.set(file, parsed.objects);
      }
    }
    if (this.stopped) return;
    this.report(errors);
    if (errors.length > 0 && !this.initialDone) return;
    this.initialDone = true;
    const merged = merge(this.perFile, this.log);
    this.log.debug(
      {
        files: this.perFile.size,
        services: merged.services.length,
        endpointslices: merged.endpointslices.length,
        nodes: merged.nodes.length,
      },
      'loaded',
    );
    for (const resource of RESOURCES) this.emit({ type: 'replace', resource, objects: merged[resource] });
  }

  private report(errors: readonly FileLoadError[]): void {
    if (errors.length === 0) {
      this.lastErrorText = '';
      if (this.degraded) {
        this.degraded = false;
        this.log.info({ path: this.path }, 'all manifest files read again');
        for (const resource of RESOURCES) this.emit({ type: 'recovered', resource });
      }
      return;
    }
    const text = errors.map(formatError).join('; ');
    if (text !== this.lastErrorText) {
      for (const e of errors) {
        this.log.warn(
          { file: e.file, line: e.line, column: e.column },
          `${formatError(e)} (keeping the file's last good objects)`,
        );
      }
      this.lastErrorText = text;
    }
    if (!this.degraded) {
      this.degraded = true;
      for (const resource of RESOURCES) this.emit({ type: 'degraded', resource, reason: text });
    }
  }
}

/** The file/folder source. See the file comment for the semantics. */
export class FileSource implements Source {
  private readonly log: Logger;
  private readonly sessions = new Set<{ session: FileSession; subscriber: Subscriber<SourceEvent> }>();
  private readonly stopping = new Set<Promise<void>>();

  constructor(private readonly options: FileSourceOptions) {
    this.log = options.logger.child({ component: 'file-source', path: options.path });
  }

  events$(): Observable<SourceEvent> {
    return new Observable<SourceEvent>((subscriber) => {
      const session = new FileSession(this.options.path, this.log, subscriber, this.options.debounceMs);
      const entry = { session, subscriber };
      this.sessions.add(entry);
      session.start();
      return () => {
        this.sessions.delete(entry);
        const p = session.stop().finally(() => this.stopping.delete(p));
        this.stopping.add(p);
      };
    });
  }

  async stop(): Promise<void> {
    const entries = [...this.sessions];
    this.sessions.clear();
    await Promise.all(entries.map((e) => e.session.stop()));
    await Promise.all([...this.stopping]);
    for (const e of entries) e.subscriber.complete();
  }
}
