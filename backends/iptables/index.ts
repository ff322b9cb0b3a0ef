/**
 * The iptables backend's public entry: `--proxy-mode=iptables`.
 */
import type { BackendContext, BackendRegistration } from '../../plugins/sdk/index.js';
import { IptablesBackend } from './iptables-backend.js';

export { IptablesBackend } from './iptables-backend.js';
export type { AfterSyncHook, IptablesBackendDeps } from './iptables-backend.js';
export { renderFamily } from './render.js';
export type { IptablesVariant } from './variant.js';

export const iptablesRegistration: BackendRegistration = {
  name: 'iptables',
  description: "kube-proxy's iptables layout through iptables-restore (legacy or nft), with partial syncs",
  create(context: BackendContext): IptablesBackend {
    return new IptablesBackend(context);
  },
};
