export { staleUdpFlows, conntrackArgs, type ConntrackDeletion } from './stale-udp-flows.js';
export { clearConntrack } from './clear-conntrack.js';
