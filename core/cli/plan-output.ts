import { stringify } from 'yaml';
import type { EndpointPlan, NodePortAddresses, ServicePortPlan, Snapshot } from '../model/snapshot.js';

/** Skips the planner reported, in the shape `plan` prints them. */
export interface PrintedSkip {
  readonly kind: string;
  readonly key: string;
  readonly field: string;
  readonly reason: string;
}

function endpointText(ep: EndpointPlan): string {
  const host = ep.ip.includes(':') ? `[${ep.ip}]` : ep.ip;
  const flags: string[] = [];
  if (!ep.ready)
    flags.push(
      ep.serving && ep.terminating ? 'serving-terminating' : ep.terminating ? 'terminating' : 'not-ready',
    );
  flags.push(ep.isLocal ? 'local' : `node=${ep.nodeName ?? '?'}`);
  if (ep.zone) flags.push(`zone=${ep.zone}`);
  const who = ep.targetName ? ` ${ep.targetName}` : '';
  return `${host}:${ep.port}${who} (${flags.join(', ')})`;
}

function nodePortText(n: NodePortAddresses): string | string[] {
  return n.kind === 'all' ? 'all local addresses' : [...n.cidrs];
}

function servicePortView(sp: ServicePortPlan): Record<string, unknown> {
  const view: Record<string, unknown> = {
    protocol: sp.protocol,
    family: sp.family,
    clusterIP: `${sp.clusterIP}:${sp.port}`,
  };
  if (sp.nodePort !== undefined) view.nodePort = sp.nodePort;
  if (sp.externalIPs.length) view.externalIPs = [...sp.externalIPs];
  if (sp.loadBalancerIPs.length) view.loadBalancerIPs = [...sp.loadBalancerIPs];
  if (sp.loadBalancerSourceRanges.length) view.loadBalancerSourceRanges = [...sp.loadBalancerSourceRanges];
  if (sp.sessionAffinity)
    view.sessionAffinity = { clientIP: { timeoutSeconds: sp.sessionAffinity.timeoutSeconds } };
  if (sp.internalPolicyLocal) view.internalTrafficPolicy = 'Local';
  if (sp.externalPolicyLocal) view.externalTrafficPolicy = 'Local';
  if (sp.healthCheckNodePort !== undefined) view.healthCheckNodePort = sp.healthCheckNodePort;
  view.internal =
    sp.internal === 'forward' ? sp.internalEndpoints.map(endpointText) : sp.internal.toUpperCase();
  const externallyReachable =
    sp.nodePort !== undefined || sp.externalIPs.length > 0 || sp.loadBalancerIPs.length > 0;
  if (externallyReachable) {
    view.external =
      sp.external === 'forward' ? sp.externalEndpoints.map(endpointText) : sp.external.toUpperCase();
    if (sp.shortCircuitEndpoints.length && sp.externalPolicyLocal) {
      view.externalFromPodsAndNode = sp.shortCircuitEndpoints.map(endpointText);
    }
  }
  const unused = sp.allEndpoints.filter((ep) => !sp.reachableEndpoints.includes(ep));
  if (unused.length) view.notUsed = unused.map(endpointText);
  return view;
}

/** The document `switchyard plan` prints: this node's snapshot, for humans first. */
export function planDocument(
  snapshot: Snapshot,
  skips: readonly PrintedSkip[] = [],
): Record<string, unknown> {
  const services: Record<string, unknown> = {};
  const ids = [...snapshot.servicePorts.keys()].sort();
  for (const id of ids) {
    const sp = snapshot.servicePorts.get(id);
    if (sp) services[id] = servicePortView(sp);
  }
  const doc: Record<string, unknown> = {
    node: {
      name: snapshot.nodeName,
      ...(snapshot.zone ? { zone: snapshot.zone } : {}),
      ips: [...snapshot.nodeIPs.IPv4, ...snapshot.nodeIPs.IPv6],
    },
    families: [...snapshot.families],
    masqueradeAll: snapshot.masqueradeAll,
    clusterCIDRs: [...snapshot.clusterCIDRs.IPv4, ...snapshot.clusterCIDRs.IPv6],
    nodePortAddresses: {
      IPv4: nodePortText(snapshot.nodePortAddresses.IPv4),
      IPv6: nodePortText(snapshot.nodePortAddresses.IPv6),
    },
    servicePorts: services,
  };
  if (snapshot.healthChecks.length) {
    doc.healthCheckNodePorts = snapshot.healthChecks.map((h) => ({
      service: h.serviceKey,
      port: h.port,
      localEndpoints: h.localEndpoints,
    }));
  }
  if (skips.length) doc.skipped = skips.map((s) => `${s.kind} ${s.key} ${s.field}: ${s.reason}`);
  return doc;
}

export function formatPlan(
  snapshot: Snapshot,
  skips: readonly PrintedSkip[],
  format: 'yaml' | 'json' = 'yaml',
): string {
  const doc = planDocument(snapshot, skips);
  return format === 'json' ? `${JSON.stringify(doc, undefined, 2)}\n` : stringify(doc, { lineWidth: 0 });
}
