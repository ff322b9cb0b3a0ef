import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { formatBindAddress, type BindAddress } from './parse-bind-address.js';

/**
 * One HTTP server on one address, with kube-proxy's failure behaviour: a listen error is logged,
 * never thrown; with `retryMs` set the listen is retried on a timer (kube-proxy retries its healthz
 * and metrics servers every 5 s), otherwise the owner retries.
 */
export class HttpListener {
  private server?: Server;
  private retryTimer?: NodeJS.Timeout;
  private bound?: BindAddress;
  private closed = false;

  constructor(
    private readonly name: string,
    private readonly handler: RequestListener,
    private readonly logger: Logger,
    private readonly retryMs?: number,
  ) {}

  /** Start listening. Resolves true when listening, false when the attempt failed (logged). */
  async start(address: BindAddress): Promise<boolean> {
    this.closed = false;
    const ok = await this.tryListen(address);
    if (!ok && this.retryMs !== undefined) this.scheduleRetry(address);
    return ok;
  }

  /** The address actually bound (the real port when 0 was asked), or undefined. */
  address(): BindAddress | undefined {
    return this.bound;
  }

  listening(): boolean {
    return this.bound !== undefined;
  }

  /** Stop listening, drop open connections, cancel retries. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const server = this.server;
    this.server = undefined;
    this.bound = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private scheduleRetry(address: BindAddress): void {
    if (this.closed || this.retryMs === undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.tryListen(address).then((ok) => {
        if (!ok) this.scheduleRetry(address);
      });
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private tryListen(address: BindAddress): Promise<boolean> {
    const server = createServer(this.handler);
    server.keepAliveTimeout = 5000;
    return new Promise<boolean>((resolve) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.close();
        this.logger.error(
          { err, server: this.name, address: formatBindAddress(address), code: err.code },
          `failed to start ${this.name} server`,
        );
        resolve(false);
      };
      server.once('error', onError);
      server.listen({ host: address.host, port: address.port }, () => {
        server.off('error', onError);
        server.on('error', (err) =>
          this.logger.error({ err, server: this.name }, `${this.name} server error`),
        );
        if (this.closed) {
          server.close();
          resolve(false);
          return;
        }
        const info = server.address() as AddressInfo;
        this.server = server;
        this.bound = { host: address.host, port: info.port };
        this.logger.debug(
          { server: this.name, address: formatBindAddress(this.bound) },
          `${this.name} server listening`,
        );
        resolve(true);
      });
    });
  }
}
