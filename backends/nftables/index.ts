import type { BackendContext, BackendRegistration } from '../../plugins/sdk/index.js';
import { NftablesBackend } from './nftables-backend.js';

export { NftablesBackend } from './nftables-backend.js';
export {
  render,
  planSync,
  renderCleanup,
  type NftablesState,
  type RenderOptions,
  type RenderPlan,
} from './render.js';
export { applyScript, checkScript, applyCleanup } from './apply.js';
export * from './names.js';

export const nftablesRegistration: BackendRegistration = {
  name: 'nftables',
  description:
    "nftables (default): switchyard's own `ip`/`ip6 switchyard` tables, one atomic nft transaction per sync",
  create(context: BackendContext): NftablesBackend {
    return new NftablesBackend(context);
  },
};
