import type { Observable } from 'rxjs';
import type { Logger } from '../log.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import type { SourceEvent } from '../model/events.js';
import { FileSource } from './file-source.js';
import { KubeSource } from './kube-source.js';

/**
 * Where Services, EndpointSlices and this node's Node come from.
 *
 * `events$()` is cold: each subscription runs its own list/watch (or file load) session from
 * scratch, starting with one `replace` per resource once that resource's initial list is
 * complete; unsubscribing ends that session. `stop()` ends every session (the streams complete)
 * and resolves once no timer, socket or file watcher of the source is left.
 */
export interface Source {
  events$(): Observable<SourceEvent>;
  stop(): Promise<void>;
}

/**
 * The source the configuration asks for: `FileSource` when `from` is set, else `KubeSource`
 * (kubeconfig, else in-cluster; `master` overrides the server). The container registers this
 * as the factory for TOKENS.Source.
 */
export function createSource(
  config: Pick<ProxyConfig, 'kubeconfig' | 'master' | 'hostname' | 'from'>,
  logger: Logger,
): Source {
  if (config.from !== undefined && config.from !== '') {
    return new FileSource({ path: config.from, nodeName: config.hostname, logger });
  }
  return new KubeSource({
    kubeconfig: config.kubeconfig,
    master: config.master,
    nodeName: config.hostname,
    logger,
  });
}
