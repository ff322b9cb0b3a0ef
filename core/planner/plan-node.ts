/**
 * Node-level parts of the Snapshot: node IPs, zone, cluster CIDRs and where NodePorts listen.
 */
import type { KubeNode } from '../model/kube.js';
import { ZONE_LABEL } from '../model/kube.js';
import type { DetectLocal } from '../model/proxy-config.js';
import type { IPFamily, LocalInterface, NodePortAddresses, PerFamily } from '../model/snapshot.js';
import { validInterfaceName } from '../net/interface-name.js';
import { formatCIDR, formatIP, hostCIDR, parseCIDR, parseIP } from '../net/ip.js';
import type { SkipCollector } from './skips.js';

export interface NodeFacts {
  readonly labels: Readonly<Record<string, string>>;
  readonly zone?: string;
  /** Per family, InternalIP addresses first, then ExternalIP ones; normalized, de-duplicated. */
  readonly nodeIPs: PerFamily<readonly string[]>;
  /** `spec.podCIDRs` (else `spec.podCIDR`), valid entries only, as given. */
  readonly podCIDRs: readonly string[];
}

/**
 * What the planner reads from this node's Node. A Node with another name, or none, gives
 * empty facts. Unparsable addresses are skipped and reported.
 */
export function nodeFacts(node: KubeNode | undefined, nodeName: string, skips: SkipCollector): NodeFacts {
  const empty: NodeFacts = { labels: {}, nodeIPs: { IPv4: [], IPv6: [] }, podCIDRs: [] };
  if (!node || node.metadata?.name !== nodeName) return empty;
  const rawLabels = node.metadata?.labels;
  const labels: Record<string, string> = {};
  if (rawLabels && typeof rawLabels === 'object') {
    for (const [k, v] of Object.entries(rawLabels)) if (typeof v === 'string') labels[k] = v;
  }
  const zone = labels[ZONE_LABEL] ? labels[ZONE_LABEL] : undefined;
  const ips: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  const addresses = Array.isArray(node.status?.addresses) ? node.status.addresses : [];
  // kube-proxy's GetNodeHostIPs: all InternalIPs, then all ExternalIPs (the first of a
  // family is that family's primary IP).
  for (const wanted of ['InternalIP', 'ExternalIP']) {
    addresses.forEach((a, i) => {
      if (!a || typeof a !== 'object' || a.type !== wanted) return;
      const ip = parseIP(typeof a.address === 'string' ? a.address : undefined);
      if (!ip) {
        skips.add(
          'Node',
          nodeName,
          `status.addresses[${i}].address`,
          `not an IP: ${JSON.stringify(a.address ?? null)}; address ignored`,
        );
        return;
      }
      const text = formatIP(ip);
      if (!ips[ip.family].includes(text)) ips[ip.family].push(text);
    });
  }
  const rawPodCIDRs = Array.isArray(node.spec?.podCIDRs)
    ? node.spec.podCIDRs
    : typeof node.spec?.podCIDR === 'string' && node.spec.podCIDR !== ''
      ? [node.spec.podCIDR]
      : [];
  const podCIDRs: string[] = [];
  rawPodCIDRs.forEach((c, i) => {
    if (typeof c === 'string' && parseCIDR(c)) podCIDRs.push(c);
    else
      skips.add(
        'Node',
        nodeName,
        `spec.podCIDRs[${i}]`,
        `not a CIDR: ${JSON.stringify(c ?? null)}; ignored for --detect-local-mode=NodeCIDR`,
      );
  });
  return { labels, ...(zone !== undefined ? { zone } : {}), nodeIPs: ips, podCIDRs };
}

/**
 * `--cluster-cidr` split by family, normalized. Invalid entries are returned in `invalid`
 * (config validation should have caught them).
 */
export function splitCIDRs(values: readonly string[]): {
  cidrs: PerFamily<readonly string[]>;
  invalid: string[];
} {
  const out: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  const invalid: string[] = [];
  for (const raw of values) {
    const v = raw.trim();
    if (v === '') continue;
    const c = parseCIDR(v);
    if (!c) {
      invalid.push(raw);
      continue;
    }
    const text = formatCIDR(c);
    if (!out[c.family].includes(text)) out[c.family].push(text);
  }
  return { cidrs: out, invalid };
}

/**
 * Where NodePorts listen, per family, from `--nodeport-addresses`:
 * - empty or ['primary'] (the default): the node's primary IP of the family as a /32 or
 *   /128. With no node IP of that family (Node unknown yet, or single-stack) the family gets
 *   {kind:'all'}: kube-proxy does the same (it builds the CIDR list from the primary IPs and a
 *   family left without CIDRs falls back to 0.0.0.0/0 or ::/0).
 * - 'all' anywhere (a switchyard spelling): every local address, both families.
 * - CIDRs: those of each family; a zero CIDR (0.0.0.0/0, ::/0) means {kind:'all'} for its
 *   family. A family with no CIDR listed gets {kind:'cidrs', cidrs: []}: no NodePorts on that
 *   family. This follows the issue; kube-proxy instead listens on all addresses of a family
 *   for which no CIDR was given.
 * 'primary' mixed with CIDRs (kube-proxy's validation refuses it) adds the primary IPs.
 * Invalid entries are ignored and returned in `invalid`.
 */
export function resolveNodePortAddresses(
  values: readonly string[],
  nodeIPs: PerFamily<readonly string[]>,
): { addresses: PerFamily<NodePortAddresses>; invalid: string[] } {
  const trimmed = values.map((v) => v.trim()).filter((v) => v !== '');
  const all: NodePortAddresses = { kind: 'all' };
  const primary = (family: IPFamily): NodePortAddresses => {
    const ip = nodeIPs[family][0];
    const cidr = ip !== undefined ? hostCIDR(ip) : undefined;
    return cidr ? { kind: 'cidrs', cidrs: [cidr] } : all;
  };
  if (trimmed.length === 0 || trimmed.every((v) => v === 'primary')) {
    return { addresses: { IPv4: primary('IPv4'), IPv6: primary('IPv6') }, invalid: [] };
  }
  if (trimmed.includes('all')) return { addresses: { IPv4: all, IPv6: all }, invalid: [] };
  const lists: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  const zero: Record<IPFamily, boolean> = { IPv4: false, IPv6: false };
  const invalid: string[] = [];
  const add = (family: IPFamily, cidr: string): void => {
    if (!lists[family].includes(cidr)) lists[family].push(cidr);
  };
  for (const v of trimmed) {
    if (v === 'primary') {
      for (const family of ['IPv4', 'IPv6'] as const) {
        const p = primary(family);
        if (p.kind === 'cidrs') p.cidrs.forEach((c) => add(family, c));
      }
      continue;
    }
    const c = parseCIDR(v);
    if (!c) {
      invalid.push(v);
      continue;
    }
    if (c.prefixLength === 0) zero[c.family] = true;
    else add(c.family, formatCIDR(c));
  }
  const forFamily = (family: IPFamily): NodePortAddresses =>
    zero[family] ? all : { kind: 'cidrs', cidrs: lists[family] };
  return { addresses: { IPv4: forFamily('IPv4'), IPv6: forFamily('IPv6') }, invalid };
}

/**
 * Where local (pod) traffic comes from under `--detect-local-mode` (kube-proxy's
 * LocalTrafficDetector): the `--cluster-cidr` CIDRs (ClusterCIDR, the default), this node's pod
 * CIDRs (NodeCIDR; none until the Node has them), or an input interface (BridgeInterface: that
 * name; InterfaceNamePrefix: names starting with it).
 */
export function localTraffic(
  config: { readonly clusterCIDRs: readonly string[]; readonly detectLocal?: DetectLocal },
  nodePodCIDRs: readonly string[],
): { cidrs: readonly string[]; localInterface?: LocalInterface; invalidInterface?: string } {
  const d = config.detectLocal;
  const byInterface = (name: string, prefix: boolean): ReturnType<typeof localTraffic> =>
    // config validation refuses such names; a bad one means nothing is local (and a warning)
    validInterfaceName(name)
      ? { cidrs: [], localInterface: { name, prefix } }
      : { cidrs: [], invalidInterface: name };
  switch (d?.mode ?? 'ClusterCIDR') {
    case 'NodeCIDR':
      return { cidrs: nodePodCIDRs };
    case 'BridgeInterface':
      return byInterface(d!.bridgeInterface, false);
    case 'InterfaceNamePrefix':
      return byInterface(d!.interfaceNamePrefix, true);
    default:
      return { cidrs: config.clusterCIDRs };
  }
}
