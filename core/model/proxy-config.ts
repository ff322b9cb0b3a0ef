/** kube-proxy's `--detect-local-mode` values. */
export const DETECT_LOCAL_MODES = [
  'ClusterCIDR',
  'NodeCIDR',
  'BridgeInterface',
  'InterfaceNamePrefix',
] as const;
export type DetectLocalMode = (typeof DETECT_LOCAL_MODES)[number];

/**
 * How traffic from this node's pods is told apart (kube-proxy's LocalTrafficDetector): by source
 * in `--cluster-cidr` (ClusterCIDR, the default), by source in the Node's `spec.podCIDRs`
 * (NodeCIDR), by input interface `bridgeInterface` (BridgeInterface) or by input interface name
 * starting with `interfaceNamePrefix` (InterfaceNamePrefix). It decides which ClusterIP traffic
 * is masqueraded and which external traffic short-circuits externalTrafficPolicy=Local.
 */
export interface DetectLocal {
  readonly mode: DetectLocalMode;
  /** `--pod-bridge-interface` (detectLocal.bridgeInterface); '' unless set. */
  readonly bridgeInterface: string;
  /** `--pod-interface-name-prefix` (detectLocal.interfaceNamePrefix); '' unless set. */
  readonly interfaceNamePrefix: string;
}

/**
 * The resolved configuration: kube-proxy's defaults, then the --config file
 * (KubeProxyConfiguration v1alpha1), then command-line flags (flags win).
 * Durations are in milliseconds.
 */
export interface ProxyConfig {
  /** `--proxy-mode`: nftables (default), iptables, ipvs, userspace, or a plugin's name. */
  readonly mode: string;
  readonly kubeconfig?: string;
  /** `--master`: overrides the kubeconfig's server. */
  readonly master?: string;
  /** `--hostname-override`, else the host name, lower-cased. */
  readonly hostname: string;
  /** `--cluster-cidr`, comma-separated CIDRs (either family). */
  readonly clusterCIDRs: readonly string[];
  /** `--detect-local-mode` with `--pod-bridge-interface` / `--pod-interface-name-prefix`. */
  readonly detectLocal: DetectLocal;
  /**
   * `--nodeport-addresses`: CIDRs, or the special values 'primary' (default: the Node's
   * primary IPs) or 'all'.
   */
  readonly nodePortAddresses: readonly string[];
  readonly masqueradeAll: boolean;
  /** Bit of the fwmark used for masquerade (kube-proxy `--iptables-masquerade-bit`, default 14). */
  readonly masqueradeBit: number;
  /** host:port; '' disables. Default 0.0.0.0:10256. */
  readonly healthzBindAddress: string;
  /** host:port; '' disables. Default 127.0.0.1:10249. */
  readonly metricsBindAddress: string;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  /** `--cleanup`: remove everything every known backend programmed, then exit. */
  readonly cleanup: boolean;
  /** `-v`: klog-style verbosity; 0 info, 2 verbose, 4+ debug. */
  readonly verbosity: number;
  /** `--plugin MODULE`, repeatable. */
  readonly plugins: readonly string[];
  /** Read objects from this YAML file or folder instead of the API server (switchyard extension). */
  readonly from?: string;
  readonly iptables: {
    /** Which iptables: 'auto' (detect as kube-proxy does), 'legacy' or 'nft'. */
    readonly variant: 'auto' | 'legacy' | 'nft';
    readonly localhostNodePorts: boolean;
  };
  readonly ipvs: {
    readonly scheduler: string;
    readonly strictARP: boolean;
    readonly tcpTimeoutMs: number;
    readonly tcpFinTimeoutMs: number;
    readonly udpTimeoutMs: number;
    readonly excludeCIDRs: readonly string[];
  };
  readonly conntrack: {
    readonly maxPerCore: number;
    readonly min: number;
    readonly tcpEstablishedTimeoutMs: number;
    readonly tcpCloseWaitTimeoutMs: number;
    readonly udpTimeoutMs: number;
    readonly udpStreamTimeoutMs: number;
  };
  /** Extra backend-specific settings from plugins (`--backend-opt key=value`). */
  readonly backendOptions: Readonly<Record<string, string>>;
}
