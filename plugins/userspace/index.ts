/**
 * The userspace backend, registered as `--proxy-mode=userspace`. Built only on the public SDK
 * (plugins/sdk) and the matcher package, as a vendor would build a backend. See README.md.
 */
import type { BackendContext, BackendRegistration, BackendRegistry, ProxyBackend } from '../sdk/index.js';
import { USERSPACE_BACKEND_NAME, UserspaceBackend } from './userspace-backend.js';

export {
  UserspaceBackend,
  USERSPACE_BACKEND_NAME,
  DEFAULT_CONNECT_TIMEOUTS_MS,
  type UserspaceOptions,
} from './userspace-backend.js';
export {
  frontendsOf,
  frontendsOfPlan,
  frontendKey,
  nodePortAddressesOf,
  type Frontend,
  type FrontendSet,
} from './frontends.js';
export {
  renderTable,
  renderCleanup,
  USERSPACE_TABLE,
  type RenderInput,
  type RenderResult,
} from './render.js';

export const userspaceRegistration: BackendRegistration = {
  name: USERSPACE_BACKEND_NAME,
  description:
    'relays Service traffic through sockets of this process; endpoints picked by the WebAssembly matcher',
  create: (context: BackendContext): ProxyBackend => new UserspaceBackend(context),
};

/** Plugin form: `--plugin plugins/userspace/index.js` (it is also built in). */
export function register(registry: BackendRegistry): void {
  if (registry.get(USERSPACE_BACKEND_NAME) === undefined) registry.register(userspaceRegistration);
}
