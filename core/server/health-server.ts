/**
 * kube-proxy's healthz server (default 0.0.0.0:10256): `/healthz` and `/livez`, with the JSON
 * body and status rules of pkg/proxy/healthcheck/proxy_health.go:
 *
 * - `/livez`: 200 when every IP family is healthy (see HealthState), else 503.
 * - `/healthz`: the same, AND the node must be eligible (not being deleted); the body carries
 *   `nodeEligible`.
 * - When healthy, `lastUpdated` is reported as the current time (upstream's compatibility rule).
 * - A listen failure is logged and retried every 5 s, never fatal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { inject, injectable } from 'tsyringe';
import type { Logger } from 'pino';
import { TOKENS } from '../tokens.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import { HealthState, goTime, type ProxyHealth } from './health-state.js';
import { HttpListener } from './http-listener.js';
import { parseBindAddress, type BindAddress } from './parse-bind-address.js';

/** kube-proxy's default healthz port. */
export const HEALTHZ_PORT = 10256;

/** Counts served statuses (the Metrics class implements it). */
export interface HealthzCounters {
  healthzServed(code: number): void;
  livezServed(code: number): void;
}

/** The JSON body kube-proxy writes (Go struct field order; `status` omitted when empty). */
export function healthBody(health: ProxyHealth, nodeEligible: boolean | undefined, healthy: boolean): string {
  const body: Record<string, unknown> = {
    lastUpdated: goTime(healthy ? health.currentTime : health.lastUpdated),
    currentTime: goTime(health.currentTime),
  };
  if (nodeEligible !== undefined) body.nodeEligible = nodeEligible;
  body.healthy = health.healthy;
  if (health.status.size > 0) {
    const status: Record<string, unknown> = {};
    for (const family of [...health.status.keys()].sort()) {
      const s = health.status.get(family)!;
      status[family] = { lastUpdated: goTime(s.lastUpdated), healthy: s.healthy };
    }
    body.status = status;
  }
  return JSON.stringify(body);
}

@injectable()
export class HealthServer {
  private readonly listener: HttpListener;
  private readonly address?: BindAddress;

  constructor(
    @inject(TOKENS.Config) config: Pick<ProxyConfig, 'healthzBindAddress'>,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.HealthState) private readonly health: HealthState,
    @inject(TOKENS.Metrics) private readonly counters?: HealthzCounters,
    retryMs = 5000,
  ) {
    this.address = parseBindAddress(config.healthzBindAddress, HEALTHZ_PORT);
    this.listener = new HttpListener('healthz', (req, res) => this.handle(req, res), logger, retryMs);
  }

  /** Listen (no-op when the bind address is ''). Resolves once the first attempt is done. */
  async start(): Promise<void> {
    if (this.address === undefined) {
      this.logger.info('healthz server disabled (empty healthzBindAddress)');
      return;
    }
    await this.listener.start(this.address);
  }

  async stop(): Promise<void> {
    await this.listener.close();
  }

  /** The bound address (real port), when listening. */
  boundAddress(): BindAddress | undefined {
    return this.listener.address();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/healthz' && path !== '/livez') {
      res.writeHead(404, {
        'Content-Type': 'text/plain; charset=utf-8',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end('404 page not found\n');
      return;
    }
    const health = this.health.health();
    let healthy = health.healthy;
    let nodeEligible: boolean | undefined;
    if (path === '/healthz') {
      nodeEligible = this.health.nodeEligible();
      healthy = healthy && nodeEligible;
    }
    const code = healthy ? 200 : 503;
    if (path === '/healthz') this.counters?.healthzServed(code);
    else this.counters?.livezServed(code);
    res.writeHead(code, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
    res.end(healthBody(health, nodeEligible, healthy));
  }
}
