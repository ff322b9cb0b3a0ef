/**
 * The userspace backend's only kernel help: one nftables table per family,
 * `ip switchyard-userspace` / `ip6 switchyard-userspace`, with a fixed set of chains and rules
 * and every Service living in set and map elements:
 *
 *   - map `fe`:    daddr . l4proto . dport → local listener port (redirect target), and
 *     map `fe_np`: l4proto . dport → listener port for NodePorts on every local address;
 *   - sets `reject_fe` / `reject_np`: Service ports without endpoints (REJECT in the kernel,
 *     so UDP clients get their ICMP port unreachable, which no socket can send);
 *   - sets `drop_fe` / `drop_np` (Local policy, no local endpoint: dropped unless the source is
 *     a pod, which short-circuits), `drop_all` (internalTrafficPolicy Local, no local endpoint);
 *   - `lb_ranged` + `lb_allowed`: loadBalancerSourceRanges;
 *   - `cluster_ips`: the ClusterIPs, so an undefined port is rejected.
 *
 * Traffic arriving from outside or from pods is `redirect`ed (to the incoming interface's
 * address, no route_localnet needed); the node's own traffic is DNATed to its own source address
 * in the output hook, so replies of the 0.0.0.0-bound UDP sockets leave with the address
 * conntrack expects. Pure: the text for one atomic `nft -f -`.
 */
import type { IPFamily } from '../sdk/index.js';
import type { Frontend } from './frontends.js';

export const USERSPACE_TABLE = 'switchyard-userspace';

export interface RenderInput {
  readonly family: IPFamily;
  readonly frontends: readonly Frontend[];
  /** Listener port by frontend key (frontends that listen without a port are left out). */
  readonly listenerPorts: ReadonlyMap<string, number>;
  readonly clusterIPs: readonly string[];
  readonly clusterCIDRs: readonly string[];
}

export interface RenderResult {
  readonly text: string;
  readonly elements: number;
}

export function nftFamily(family: IPFamily): 'ip' | 'ip6' {
  return family === 'IPv4' ? 'ip' : 'ip6';
}

function proto(p: Frontend['protocol']): string {
  return p === 'TCP' ? 'tcp' : 'udp';
}

function elements(list: readonly string[]): string {
  return list.length === 0 ? '' : ` elements = { ${list.join(', ')} };`;
}

/** The whole table: create-then-delete (so the delete never fails), then define it afresh. */
export function renderTable(input: RenderInput): RenderResult {
  const fam = nftFamily(input.family);
  const addr = input.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr';
  const ipk = fam; // `ip daddr` / `ip6 daddr`
  const fe: string[] = [];
  const feNp: string[] = [];
  const rejectFe: string[] = [];
  const rejectNp: string[] = [];
  const dropFe: string[] = [];
  const dropNp: string[] = [];
  const dropAll: string[] = [];
  const lbRanged: string[] = [];
  const lbAllowed: string[] = [];
  const sorted = [...input.frontends]
    .filter((f) => f.family === input.family)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const f of sorted) {
    const np = f.address === '*';
    const tuple = np ? `${proto(f.protocol)} . ${f.port}` : `${f.address} . ${proto(f.protocol)} . ${f.port}`;
    const listener = input.listenerPorts.get(f.key);
    if (f.listen && listener !== undefined) (np ? feNp : fe).push(`${tuple} : ${listener}`);
    if (f.reject) (np ? rejectNp : rejectFe).push(tuple);
    if (f.dropExternal) (np ? dropNp : dropFe).push(tuple);
    if (f.dropAll && !np) dropAll.push(tuple);
    if (f.sourceRanges.length > 0 && !np) {
      lbRanged.push(tuple);
      for (const r of f.sourceRanges) lbAllowed.push(`${tuple} . ${r}`);
    }
  }
  const key3 = `${addr} . inet_proto . inet_service`;
  const key2 = 'inet_proto . inet_service';
  const t3 = `${ipk} daddr . meta l4proto . th dport`;
  const t2 = 'meta l4proto . th dport';
  const lines = [
    `add table ${fam} ${USERSPACE_TABLE}`,
    `delete table ${fam} ${USERSPACE_TABLE}`,
    `table ${fam} ${USERSPACE_TABLE} {`,
    `  map fe { type ${key3} : inet_service;${elements(fe)} }`,
    `  map fe_np { type ${key2} : inet_service;${elements(feNp)} }`,
    `  set reject_fe { type ${key3};${elements(rejectFe)} }`,
    `  set reject_np { type ${key2};${elements(rejectNp)} }`,
    `  set drop_fe { type ${key3};${elements(dropFe)} }`,
    `  set drop_np { type ${key2};${elements(dropNp)} }`,
    `  set drop_all { type ${key3};${elements(dropAll)} }`,
    `  set lb_ranged { type ${key3};${elements(lbRanged)} }`,
    `  set lb_allowed { type ${key3} . ${addr}; flags interval;${elements(lbAllowed)} }`,
    `  set cluster_ips { type ${addr};${elements([...input.clusterIPs])} }`,
    `  set cluster_cidrs { type ${addr}; flags interval;${elements([...input.clusterCIDRs])} }`,
    '  chain filter_prerouting {',
    '    type filter hook prerouting priority dstnat - 10; policy accept;',
    `    ${t3} @lb_ranged ${t3} . ${ipk} saddr != @lb_allowed drop`,
    `    ${t3} @drop_all drop`,
    `    ${t3} @drop_fe ${ipk} saddr != @cluster_cidrs drop`,
    `    fib daddr type local ${t2} @drop_np ${ipk} saddr != @cluster_cidrs drop`,
    '  }',
    '  chain filter_output_drop {',
    '    type filter hook output priority -110; policy accept;',
    `    ${t3} @drop_all drop`,
    '  }',
    '  chain nat_prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    meta l4proto { tcp, udp } redirect to :${t3} map @fe`,
    `    fib daddr type local meta l4proto { tcp, udp } redirect to :${t2} map @fe_np`,
    '  }',
    '  chain nat_output {',
    '    type nat hook output priority -100; policy accept;',
    `    meta l4proto { tcp, udp } dnat to ${ipk} saddr : ${t3} map @fe`,
    `    fib daddr type local meta l4proto { tcp, udp } dnat to ${ipk} saddr : ${t2} map @fe_np`,
    '  }',
    '  chain refuse {',
    `    ${t3} @reject_fe reject`,
    `    fib daddr type local ${t2} @reject_np reject`,
    `    ${ipk} daddr @cluster_ips reject`,
    '  }',
    '  chain filter_input {',
    '    type filter hook input priority filter - 10; policy accept;',
    '    ct state new jump refuse',
    '  }',
    '  chain filter_forward {',
    '    type filter hook forward priority filter - 10; policy accept;',
    '    ct state new jump refuse',
    '  }',
    '  chain filter_output {',
    '    type filter hook output priority filter - 10; policy accept;',
    '    ct state new jump refuse',
    '  }',
    '}',
  ];
  const count =
    fe.length +
    feNp.length +
    rejectFe.length +
    rejectNp.length +
    dropFe.length +
    dropNp.length +
    dropAll.length +
    lbRanged.length +
    lbAllowed.length +
    input.clusterIPs.length +
    input.clusterCIDRs.length;
  return { text: `${lines.join('\n')}\n`, elements: count };
}

/** Remove the table of each family (missing tables are fine: create first, then delete). */
export function renderCleanup(families: readonly IPFamily[]): string {
  return `${families.flatMap((f) => [`add table ${nftFamily(f)} ${USERSPACE_TABLE}`, `delete table ${nftFamily(f)} ${USERSPACE_TABLE}`]).join('\n')}\n`;
}
