/**
 * IPVS vs nftables sync benchmark, run as plain JavaScript INSIDE the VM (same kernel, same
 * emulated CPU for both, so the ratio is fair):
 *
 *   node dist/test/vm/ipvs-bench-guest.js OUT_DIR [services...]   (default 1000 10000)
 *
 * For each size N (N ClusterIP Services × 10 endpoints, test/support/snapshot-gen.ts) and each
 * backend: a full sync on an empty node, then a one-endpoint incremental sync (one endpoint
 * added to one Service), each timed around backend.sync() (= event-to-kernel for the backend),
 * then cleanup. Writes OUT_DIR/ipvs-bench.json. Launched by test/bench/ipvs.bench.ts.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SpawnExecutor } from '../../backends/exec/executor.js';
import type { ServicePortPlan } from '../../core/model/snapshot.js';
import { createBackend, proxyConfigFromFlags } from '../e2e/backend-loader.js';
import { bigSnapshot, endpoint, partialDelta, withPorts, fullDelta } from '../support/snapshot-gen.js';

export interface BenchRow {
  readonly backend: string;
  readonly services: number;
  readonly endpointsPerService: number;
  readonly fullSyncMs: number;
  readonly oneEndpointSyncMs: number;
  readonly fullStats?: Readonly<Record<string, number>>;
  readonly oneEndpointStats?: Readonly<Record<string, number>>;
  readonly cleanupMs: number;
  readonly rssMB: number;
  readonly error?: string;
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: ipvs-bench-guest.js OUT_DIR [services...]');
  const sizes = process.argv
    .slice(3)
    .map(Number)
    .filter((n) => n > 0);
  const rows: BenchRow[] = [];
  const save = (): void =>
    writeFileSync(
      join(out, 'ipvs-bench.json'),
      JSON.stringify({ kernel: release(), cpus: cpus().length, rows }, null, 2),
    );
  const executor = new SpawnExecutor();
  for (const services of sizes.length > 0 ? sizes : [1000, 10_000]) {
    const snapshot = bigSnapshot({ services, endpointsPerService: 10 });
    const [id, port] = [...snapshot.servicePorts][Math.floor(services / 2)]!;
    const eps = [...port.clusterEndpoints, endpoint('10.250.0.1', 8080)];
    const changed: ServicePortPlan = {
      ...port,
      clusterEndpoints: eps,
      internalEndpoints: eps,
      externalEndpoints: eps,
      reachableEndpoints: eps,
      allEndpoints: eps,
    };
    const next = withPorts(snapshot, [changed]);
    for (const name of ['ipvs', 'nftables']) {
      const backend = await createBackend(
        name,
        proxyConfigFromFlags([`--proxy-mode=${name}`, '--cluster-cidr=10.244.0.0/16']),
        executor,
      );
      let row: BenchRow;
      try {
        const support = await backend.probe();
        if (!support.supported) throw new Error(`${name} unsupported: ${support.reason}`);
        let t = performance.now();
        const full = await backend.sync(snapshot, fullDelta(snapshot));
        const fullSyncMs = performance.now() - t;
        t = performance.now();
        const one = await backend.sync(next, partialDelta([id]));
        const oneEndpointSyncMs = performance.now() - t;
        const rssMB = Math.round(process.memoryUsage().rss / 1e6);
        t = performance.now();
        await backend.cleanup();
        row = {
          backend: name,
          services,
          endpointsPerService: 10,
          fullSyncMs: Math.round(fullSyncMs),
          oneEndpointSyncMs: Math.round(oneEndpointSyncMs),
          fullStats: full.stats,
          oneEndpointStats: one.stats,
          cleanupMs: Math.round(performance.now() - t),
          rssMB,
        };
      } catch (e) {
        await backend.cleanup().catch(() => undefined);
        row = {
          backend: name,
          services,
          endpointsPerService: 10,
          fullSyncMs: -1,
          oneEndpointSyncMs: -1,
          cleanupMs: -1,
          rssMB: -1,
          error: String(e).slice(0, 2000),
        };
      }
      rows.push(row);
      process.stdout.write(
        `[ipvs-bench] ${JSON.stringify({ ...row, fullStats: undefined, oneEndpointStats: undefined })}\n`,
      );
      save();
    }
  }
  save();
}

await main();
