/**
 * What the running kernel and tools can do, for skip reasons of end-to-end cases.
 */
import { readFileSync } from 'node:fs';

/**
 * Why SCTP traffic cannot be sent here, or undefined when it can. SCTP needs the kernel's SCTP
 * sockets (CONFIG_IP_SCTP, module `sctp`); netfilter can still match and NAT SCTP without
 * them, but nothing could send or answer an association.
 */
export function sctpUnavailableReason(): string | undefined {
  let protocols = '';
  try {
    protocols = readFileSync('/proc/net/protocols', 'utf8');
  } catch {
    return 'cannot read /proc/net/protocols';
  }
  if (!/^SCTP\s/m.test(protocols)) {
    return 'the kernel has no SCTP sockets (CONFIG_IP_SCTP unset or module sctp not loaded)';
  }
  // The traffic agent (test/support/agent.mjs) is plain Node.js, which has no SCTP sockets.
  return 'the traffic agent has no SCTP client/server (Node.js has no SCTP sockets)';
}
