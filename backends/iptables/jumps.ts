/**
 * The only rules switchyard puts into built-in chains: jumps into its own chains, as kube-proxy's
 * iptablesJumpChains. Listed in the order they should end up in each built-in chain.
 */
import { CHAINS } from './names.js';

export interface JumpRule {
  readonly table: 'nat' | 'filter';
  /** The built-in chain. */
  readonly chain: string;
  /** Match + `-j TARGET`, as argv. */
  readonly spec: readonly string[];
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];
const comment = (text: string): string[] => ['-m', 'comment', '--comment', text];

export const JUMPS: readonly JumpRule[] = [
  { table: 'filter', chain: 'INPUT', spec: [...NEW, ...comment('switchyard load balancer firewall'), '-j', CHAINS.firewall] },
  { table: 'filter', chain: 'INPUT', spec: [...comment('switchyard health check service ports'), '-j', CHAINS.nodePorts] },
  { table: 'filter', chain: 'INPUT', spec: [...NEW, ...comment('switchyard externally-visible service portals'), '-j', CHAINS.externalServices] },
  { table: 'filter', chain: 'FORWARD', spec: [...NEW, ...comment('switchyard load balancer firewall'), '-j', CHAINS.firewall] },
  { table: 'filter', chain: 'FORWARD', spec: [...comment('switchyard forwarding rules'), '-j', CHAINS.forward] },
  { table: 'filter', chain: 'FORWARD', spec: [...NEW, ...comment('switchyard service portals'), '-j', CHAINS.services] },
  { table: 'filter', chain: 'FORWARD', spec: [...NEW, ...comment('switchyard externally-visible service portals'), '-j', CHAINS.externalServices] },
  { table: 'filter', chain: 'OUTPUT', spec: [...NEW, ...comment('switchyard load balancer firewall'), '-j', CHAINS.firewall] },
  { table: 'filter', chain: 'OUTPUT', spec: [...NEW, ...comment('switchyard service portals'), '-j', CHAINS.services] },
  { table: 'filter', chain: 'OUTPUT', spec: [...NEW, ...comment('switchyard externally-visible service portals'), '-j', CHAINS.externalServices] },
  { table: 'nat', chain: 'PREROUTING', spec: [...comment('switchyard service portals'), '-j', CHAINS.services] },
  { table: 'nat', chain: 'OUTPUT', spec: [...comment('switchyard service portals'), '-j', CHAINS.services] },
  { table: 'nat', chain: 'POSTROUTING', spec: [...comment('switchyard postrouting rules'), '-j', CHAINS.postrouting] },
];
