/**
 * kube-proxy's metrics server (default 127.0.0.1:10249), mirroring cmd/kube-proxy serveMetrics:
 *
 * - `/metrics`: the Prometheus exposition of switchyard's own registry;
 * - `/healthz`: component-base's plain healthz, `ok` (200, text/plain) while the process runs;
 * - `/proxyMode`: the proxy mode string (e.g. `nftables`), text/plain.
 *
 * Not served: `/configz`, `/debug/pprof` and the SLI endpoints. A listen failure is logged and
 * retried every 5 s, never fatal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { inject, injectable } from 'tsyringe';
import type { Logger } from 'pino';
import { TOKENS } from '../tokens.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import { HttpListener } from './http-listener.js';
import { parseBindAddress, type BindAddress } from './parse-bind-address.js';

/** kube-proxy's default metrics port. */
export const METRICS_PORT = 10249;

/** What the server needs from Metrics. */
export interface MetricsExposition {
  exposition(): Promise<string>;
  readonly contentType: string;
}

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };

@injectable()
export class MetricsServer {
  private readonly listener: HttpListener;
  private readonly address?: BindAddress;
  private readonly mode: string;

  constructor(
    @inject(TOKENS.Config) config: Pick<ProxyConfig, 'metricsBindAddress' | 'mode'>,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Metrics) private readonly metrics: MetricsExposition,
    retryMs = 5000,
  ) {
    this.mode = config.mode;
    this.address = parseBindAddress(config.metricsBindAddress, METRICS_PORT);
    this.listener = new HttpListener('metrics', (req, res) => this.handle(req, res), logger, retryMs);
  }

  /** Listen (no-op when the bind address is ''). Resolves once the first attempt is done. */
  async start(): Promise<void> {
    if (this.address === undefined) {
      this.logger.info('metrics server disabled (empty metricsBindAddress)');
      return;
    }
    await this.listener.start(this.address);
  }

  async stop(): Promise<void> {
    await this.listener.close();
  }

  boundAddress(): BindAddress | undefined {
    return this.listener.address();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    switch (path) {
      case '/metrics':
        this.metrics.exposition().then(
          (text) => {
            res.writeHead(200, { 'Content-Type': this.metrics.contentType });
            res.end(text);
          },
          (err: unknown) => {
            this.logger.error({ err }, 'collecting metrics failed');
            res.writeHead(500, TEXT);
            res.end('error collecting metrics\n');
          },
        );
        return;
      case '/healthz':
        res.writeHead(200, TEXT);
        res.end('ok');
        return;
      case '/proxyMode':
        res.writeHead(200, TEXT);
        res.end(this.mode);
        return;
      default:
        res.writeHead(404, TEXT);
        res.end('404 page not found\n');
    }
  }
}
