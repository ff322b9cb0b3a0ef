/**
 * kube-proxy's healthCheckNodePort servers (pkg/proxy/healthcheck/service_health.go): one HTTP
 * listener per externalTrafficPolicy=Local LoadBalancer Service, answering cloud load balancers
 * whether this node has local endpoints for it.
 *
 * - `sync(healthChecks)` after every successful sync: opens listeners for new Services, closes
 *   those of Services that are gone or whose port changed, and updates endpoint counts of the
 *   others in place (no reopen).
 * - Response, on any path: header `X-Load-Balancing-Endpoint-Weight: N`, JSON body
 *   `{"service":{"namespace","name"},"localEndpoints":N,"serviceProxyHealthy":bool}` in
 *   upstream's tab-indented layout; 200 iff N > 0 and the proxy is healthy, else 503.
 * - Listening address: 0.0.0.0 (every IPv4 address) by default. kube-proxy narrows this to the
 *   `--nodeport-addresses` IPs; switchyard keeps it simple and documents it.
 * - A port that cannot be opened is logged and retried at the next sync, never fatal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { inject, injectable } from 'tsyringe';
import type { Logger } from 'pino';
import { TOKENS } from '../tokens.js';
import type { HealthCheckPlan } from '../model/snapshot.js';
import { HttpListener } from './http-listener.js';

/** Whether the proxy itself is healthy (HealthState implements it). */
export interface ProxyHealthCheck {
  isHealthy(): boolean;
}

export interface ServiceHealthStatus {
  readonly serviceKey: string;
  readonly port: number;
  /** The port actually bound (differs from `port` only when `port` is 0, in tests). */
  readonly boundPort: number;
  readonly localEndpoints: number;
}

/** The body kube-proxy writes, byte for byte (tab-indented, no trailing newline). */
export function serviceHealthBody(
  namespace: string,
  name: string,
  localEndpoints: number,
  proxyHealthy: boolean,
): string {
  return JSON.stringify(
    { service: { namespace, name }, localEndpoints, serviceProxyHealthy: proxyHealthy },
    undefined,
    '\t',
  );
}

interface Instance {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  localEndpoints: number;
  readonly listener: HttpListener;
}

@injectable()
export class ServiceHealthServer {
  private readonly services = new Map<string, Instance>();
  /** Serializes sync() and stop() so listeners are never opened twice. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.HealthState) private readonly proxyHealth: ProxyHealthCheck,
    private readonly host = '0.0.0.0',
  ) {}

  /** Make the listeners match the snapshot's health checks. Never throws. */
  sync(checks: readonly HealthCheckPlan[]): Promise<void> {
    const run = this.queue.then(() => this.doSync(checks));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Close every listener. */
  stop(): Promise<void> {
    const run = this.queue.then(async () => {
      const all = [...this.services.values()];
      this.services.clear();
      await Promise.all(all.map((i) => i.listener.close()));
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** What is open now, sorted by service. */
  status(): ServiceHealthStatus[] {
    return [...this.services.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([serviceKey, i]) => ({
        serviceKey,
        port: i.port,
        boundPort: i.listener.address()?.port ?? i.port,
        localEndpoints: i.localEndpoints,
      }));
  }

  private async doSync(checks: readonly HealthCheckPlan[]): Promise<void> {
    const wanted = new Map<string, HealthCheckPlan>();
    for (const check of checks) {
      if (!Number.isInteger(check.port) || check.port < 0 || check.port > 65535) {
        this.logger.warn(
          { service: check.serviceKey, port: check.port },
          'invalid healthCheckNodePort; skipped',
        );
        continue;
      }
      wanted.set(check.serviceKey, check);
    }

    const closing: Promise<void>[] = [];
    for (const [key, instance] of this.services) {
      const next = wanted.get(key);
      if (next === undefined || next.port !== instance.port) {
        this.logger.debug({ service: key, port: instance.port }, 'closing healthcheck');
        this.services.delete(key);
        closing.push(instance.listener.close());
      }
    }
    await Promise.all(closing);

    const opening: Promise<void>[] = [];
    for (const [key, check] of wanted) {
      const existing = this.services.get(key);
      if (existing) {
        existing.localEndpoints = check.localEndpoints;
        continue;
      }
      const instance: Instance = {
        namespace: check.namespace,
        name: check.name,
        port: check.port,
        localEndpoints: check.localEndpoints,
        listener: new HttpListener(
          `healthcheck ${key}`,
          (req, res) => this.handle(key, req, res),
          this.logger,
        ),
      };
      opening.push(
        instance.listener.start({ host: this.host, port: check.port }).then((ok) => {
          if (ok) {
            this.services.set(key, instance);
            this.logger.debug({ service: key, port: check.port }, 'opened healthcheck');
          } else {
            // Logged by the listener; not kept, so the next sync tries again.
            this.logger.warn(
              { service: key, port: check.port },
              'failed to start service healthcheck; will retry at the next sync',
            );
          }
        }),
      );
    }
    await Promise.all(opening);
  }

  private handle(key: string, _req: IncomingMessage, res: ServerResponse): void {
    const instance = this.services.get(key);
    const [namespace, name] = instance ? [instance.namespace, instance.name] : splitKey(key);
    const count = instance?.localEndpoints ?? 0;
    const proxyHealthy = this.proxyHealth.isHealthy();
    res.writeHead(count !== 0 && proxyHealthy ? 200 : 503, {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Load-Balancing-Endpoint-Weight': String(count),
    });
    res.end(serviceHealthBody(namespace, name, count, proxyHealthy));
  }
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return slash < 0 ? ['', key] : [key.slice(0, slash), key.slice(slash + 1)];
}
