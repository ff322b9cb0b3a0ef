export {
  staleUdpFlows,
  unhandledUdpFlows,
  parseConntrackList,
  conntrackArgs,
  type ConntrackDeletion,
} from './stale-udp-flows.js';
export { clearConntrack, listUdpConntrack } from './clear-conntrack.js';
