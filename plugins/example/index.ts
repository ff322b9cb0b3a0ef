/**
 * The example vendor plugin: a backend named "example-log" that programs nothing and records
 * every snapshot it is handed, one JSON line per sync, to the file given by
 * `--backend-opt example.file=/path` (or, without that option, logs a one-line summary).
 *
 * It is written only against switchyard's public SDK (plugins/sdk), exactly as a vendor would
 * write one, and it doubles as the observable test backend of the daemon's end-to-end tests.
 *
 *   switchyard --plugin ./dist/plugins/example/index.js --proxy-mode=example-log \
 *     --backend-opt example.file=/tmp/syncs.jsonl --from deploy/examples/online-store.yaml
 */
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type {
  BackendContext,
  BackendRegistry,
  BackendSupport,
  EndpointPlan,
  ProxyBackend,
  ServicePortPlan,
  Snapshot,
  SnapshotDelta,
  SwitchyardPlugin,
  SyncResult,
} from '../sdk/index.js';

export const EXAMPLE_BACKEND_NAME = 'example-log';
/** The --backend-opt key naming the JSON-lines file. */
export const EXAMPLE_FILE_OPTION = 'example.file';

/** One endpoint as recorded. */
export interface ExampleEndpointRecord {
  readonly ip: string;
  readonly port: number;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly isLocal: boolean;
  readonly nodeName?: string;
  readonly targetName?: string;
}

/** One service port as recorded. */
export interface ExampleServicePortRecord {
  readonly id: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly protocol: string;
  readonly nodePort?: number;
  readonly internal: string;
  readonly external: string;
  readonly internalEndpoints: readonly ExampleEndpointRecord[];
  readonly externalEndpoints: readonly ExampleEndpointRecord[];
}

/** One line of the JSON-lines file: what one sync() call was asked to do. */
export interface ExampleSyncRecord {
  /** 1 for the first sync() of this process, then 2, 3... */
  readonly sync: number;
  readonly generation: number;
  readonly node: string;
  readonly full: boolean;
  /** Sorted ServicePortPlan ids. */
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  /** Every service port of the snapshot, sorted by id. */
  readonly servicePorts: readonly ExampleServicePortRecord[];
  readonly time: string;
}

function endpointRecord(e: EndpointPlan): ExampleEndpointRecord {
  return {
    ip: e.ip,
    port: e.port,
    ready: e.ready,
    serving: e.serving,
    terminating: e.terminating,
    isLocal: e.isLocal,
    ...(e.nodeName === undefined ? {} : { nodeName: e.nodeName }),
    ...(e.targetName === undefined ? {} : { targetName: e.targetName }),
  };
}

function servicePortRecord(sp: ServicePortPlan): ExampleServicePortRecord {
  return {
    id: sp.id,
    clusterIP: sp.clusterIP,
    port: sp.port,
    protocol: sp.protocol,
    ...(sp.nodePort === undefined ? {} : { nodePort: sp.nodePort }),
    internal: sp.internal,
    external: sp.external,
    internalEndpoints: sp.internalEndpoints.map(endpointRecord),
    externalEndpoints: sp.externalEndpoints.map(endpointRecord),
  };
}

/** Pure: the record for one sync. */
export function syncRecord(
  sync: number,
  snapshot: Snapshot,
  delta: SnapshotDelta,
  now: Date,
): ExampleSyncRecord {
  const ids = [...snapshot.servicePorts.keys()].sort();
  return {
    sync,
    generation: snapshot.generation,
    node: snapshot.nodeName,
    full: delta.full,
    changed: [...delta.changed].sort(),
    removed: [...delta.removed].sort(),
    servicePorts: ids.map((id) => servicePortRecord(snapshot.servicePorts.get(id)!)),
    time: now.toISOString(),
  };
}

export class ExampleLogBackend implements ProxyBackend {
  readonly name = EXAMPLE_BACKEND_NAME;
  private syncs = 0;
  private readonly file: string | undefined;

  constructor(
    private readonly context: BackendContext,
    private readonly now: () => Date = () => new Date(),
  ) {
    const file = context.config.backendOptions[EXAMPLE_FILE_OPTION];
    this.file = file === undefined || file === '' ? undefined : file;
  }

  async probe(): Promise<BackendSupport> {
    return { supported: true, details: { output: this.file ?? 'log' } };
  }

  async sync(snapshot: Snapshot, delta: SnapshotDelta): Promise<SyncResult> {
    this.syncs += 1;
    const record = syncRecord(this.syncs, snapshot, delta, this.now());
    const endpoints = record.servicePorts.reduce((n, sp) => n + sp.internalEndpoints.length, 0);
    if (this.file !== undefined) {
      await mkdir(dirname(this.file), { recursive: true });
      await appendFile(this.file, JSON.stringify(record) + '\n');
    } else {
      this.context.logger.info(
        {
          sync: record.sync,
          full: record.full,
          changed: record.changed.length,
          removed: record.removed.length,
        },
        'example-log: snapshot received',
      );
    }
    this.context.metrics.counter('example_syncs_total', 'Snapshots the example backend recorded.');
    this.context.metrics.gauge(
      'example_service_ports',
      'Service ports in the last snapshot.',
      record.servicePorts.length,
    );
    return { full: delta.full, stats: { servicePorts: record.servicePorts.length, endpoints } };
  }

  async cleanup(): Promise<void> {
    if (this.file !== undefined) await rm(this.file, { force: true });
  }
}

/** The plugin entry point: `--plugin` calls this with switchyard's backend registry. */
export function register(registry: BackendRegistry): void {
  registry.register({
    name: EXAMPLE_BACKEND_NAME,
    description:
      'Example vendor plugin: records each snapshot as a JSON line (--backend-opt example.file=PATH) or logs a summary.',
    create: (context) => new ExampleLogBackend(context),
  });
}

const plugin: SwitchyardPlugin = { register };
export default plugin;
