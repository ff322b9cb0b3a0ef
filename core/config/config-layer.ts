/**
 * One source of settings (the command line, or the KubeProxyConfiguration file), before
 * defaults. Every field is optional: undefined means "this source did not say". The resolver
 * (resolve-config.ts) stacks defaults ← file ← flags.
 *
 * Sync periods, masqueradeAll and masqueradeBit live in per-mode sections, as they do in
 * KubeProxyConfiguration v1alpha1; which section applies depends on the final mode.
 */

import type { DetectLocalMode } from '../model/proxy-config.js';

export interface SectionLayer {
  syncPeriodMs?: number;
  minSyncPeriodMs?: number;
  masqueradeAll?: boolean;
  masqueradeBit?: number;
}

export interface IPTablesLayer extends SectionLayer {
  localhostNodePorts?: boolean;
  variant?: 'auto' | 'legacy' | 'nft';
}

export interface IPVSLayer extends SectionLayer {
  scheduler?: string;
  strictARP?: boolean;
  tcpTimeoutMs?: number;
  tcpFinTimeoutMs?: number;
  udpTimeoutMs?: number;
  excludeCIDRs?: string[];
}

export interface ConntrackLayer {
  maxPerCore?: number;
  min?: number;
  tcpEstablishedTimeoutMs?: number;
  tcpCloseWaitTimeoutMs?: number;
  udpTimeoutMs?: number;
  udpStreamTimeoutMs?: number;
}

export interface ConfigLayer {
  mode?: string;
  kubeconfig?: string;
  master?: string;
  hostnameOverride?: string;
  clusterCIDRs?: string[];
  detectLocalMode?: DetectLocalMode;
  podBridgeInterface?: string;
  podInterfaceNamePrefix?: string;
  nodePortAddresses?: string[];
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  verbosity?: number;
  /** Mode-independent values: the `--sync-period` / `--masquerade-all` style flags, or top-level file fields. */
  common: SectionLayer;
  iptables: IPTablesLayer;
  nftables: SectionLayer;
  ipvs: IPVSLayer;
  conntrack: ConntrackLayer;
}

export function emptyLayer(): ConfigLayer {
  return { common: {}, iptables: {}, nftables: {}, ipvs: {}, conntrack: {} };
}
