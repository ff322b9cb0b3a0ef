/**
 * The IPVS backend's public entry: `--proxy-mode=ipvs`.
 */
import type { BackendContext, BackendRegistration } from '../../plugins/sdk/index.js';
import { IpvsBackend } from './ipvs-backend.js';

export { IpvsBackend, needsConnReuseModeZero } from './ipvs-backend.js';
export {
  planSync,
  contributionOf,
  selectNodePortIPs,
  renderIptables,
  renderIptablesCleanup,
  renderIptablesSync,
  renderSetCreates,
  JUMPS,
  type IpvsPlan,
  type IpvsState,
  type KernelState,
  type VirtualServer,
  type RealServer,
  type RenderOptions,
} from './render.js';
export {
  kernelStateFrom,
  parseIpvsSave,
  parseIpsetSave,
  parseAddresses,
  parseConnections,
} from './kernel-state.js';
export * from './names.js';

export const ipvsRegistration: BackendRegistration = {
  name: 'ipvs',
  description:
    "kube-proxy's IPVS mode: Service IPs on a dummy interface, IPVS virtual servers (NAT), ipsets + a fixed set of iptables rules",
  create(context: BackendContext): IpvsBackend {
    return new IpvsBackend(context);
  },
};
