/**
 * The Snapshot: everything this node must do with Service traffic, decided by the planner.
 *
 * Backends render a Snapshot; they never look at Kubernetes objects and never re-derive a
 * Service semantic (readiness, terminating fallback, topology, traffic policies, affinity,
 * which addresses NodePorts listen on). Everything here is plain, immutable data.
 *
 * Identity matters: the planner reuses the very same ServicePortPlan object when nothing about
 * a Service port changed, so the pipeline computes a SnapshotDelta by reference comparison.
 */

export type IPFamily = 'IPv4' | 'IPv6';
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const IP_FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** What happens to a new connection that matches a Service port on one traffic path. */
export type TrafficVerdict =
  /** DNAT to one of the path's endpoints (the list is non-empty). */
  | 'forward'
  /** The Service has no usable endpoint anywhere: refuse at once (ICMP unreachable / TCP RST). */
  | 'reject'
  /** A Local traffic policy and no local endpoint: silently drop. */
  | 'drop';

export interface EndpointPlan {
  /** Normalized IP (IPv6 in canonical compressed form). */
  readonly ip: string;
  /** The resolved target port (named targetPorts already resolved through the slice's ports). */
  readonly port: number;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** The endpoint runs on this node (endpoint.nodeName === node name). */
  readonly isLocal: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
  /** e.g. the Pod name from targetRef, for humans (plan, trace, demo). */
  readonly targetName?: string;
}

export interface SessionAffinity {
  /** ClientIP affinity timeout; kube-proxy's default is 10800 s. */
  readonly timeoutSeconds: number;
}

/** One Service port in one IP family: the unit every backend programs. */
export interface ServicePortPlan {
  /** Stable unique id: `${namespace}/${name}:${portName}/${protocol}/${family}`. */
  readonly id: string;
  /** `${namespace}/${name}` */
  readonly serviceKey: string;
  readonly namespace: string;
  readonly name: string;
  /** The ServicePort's name; '' when the Service has a single unnamed port. */
  readonly portName: string;
  readonly protocol: Protocol;
  readonly family: IPFamily;

  readonly clusterIP: string;
  readonly port: number;
  /** Set for NodePort and LoadBalancer Services (unless allocateLoadBalancerNodePorts=false). */
  readonly nodePort?: number;
  /** spec.externalIPs of this family. */
  readonly externalIPs: readonly string[];
  /** status.loadBalancer.ingress[].ip of this family (ipMode Proxy excluded, as kube-proxy does). */
  readonly loadBalancerIPs: readonly string[];
  /** Normalized CIDRs of this family; empty means every source may reach the LB IPs. */
  readonly loadBalancerSourceRanges: readonly string[];
  readonly sessionAffinity?: SessionAffinity;

  readonly internalPolicyLocal: boolean;
  /** externalTrafficPolicy=Local on an externally accessible Service. */
  readonly externalPolicyLocal: boolean;
  /** Set when externalPolicyLocal on a LoadBalancer Service. */
  readonly healthCheckNodePort?: number;

  /** Endpoints for Cluster-policy paths: ready ones (topology-filtered), else serving+terminating. */
  readonly clusterEndpoints: readonly EndpointPlan[];
  /** Node-local endpoints for Local-policy paths: ready ones, else serving+terminating ones. */
  readonly localEndpoints: readonly EndpointPlan[];
  /** Endpoints for traffic to the ClusterIP (clusterEndpoints or localEndpoints by policy). */
  readonly internalEndpoints: readonly EndpointPlan[];
  /** Endpoints for traffic to NodePort / externalIPs / LB IPs from outside the node. */
  readonly externalEndpoints: readonly EndpointPlan[];
  /**
   * With externalPolicyLocal, traffic to external destinations that comes from a pod (inside
   * clusterCIDR) or from the node itself short-circuits to clusterEndpoints (masqueraded when
   * it is the node's own). Empty when there is no such short-circuit.
   */
  readonly shortCircuitEndpoints: readonly EndpointPlan[];
  /** Every endpoint any path of this node may use (union, de-duplicated). */
  readonly reachableEndpoints: readonly EndpointPlan[];
  /** Every endpoint in the slices after validation, whatever its conditions (for trace/plan). */
  readonly allEndpoints: readonly EndpointPlan[];

  /** Traffic to the ClusterIP. */
  readonly internal: TrafficVerdict;
  /** Traffic to NodePort / externalIPs / LB IPs (from outside; pods and the node short-circuit). */
  readonly external: TrafficVerdict;
}

/** Where NodePorts listen, per family. */
export type NodePortAddresses =
  /** Every local address of the node (kube-proxy `--nodeport-addresses` 0.0.0.0/0 or "all"). */
  | { readonly kind: 'all' }
  /** Local addresses inside these CIDRs (the node's primary IPs become /32 or /128). */
  | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

/**
 * Local (pod) traffic recognised by the interface it came in on (kube-proxy's
 * `--detect-local-mode` BridgeInterface or InterfaceNamePrefix): packets that arrived on the
 * interface `name`, or with `prefix` on any interface whose name starts with `name`. Traffic
 * the node sends itself never matches (it has no input interface).
 */
export interface LocalInterface {
  readonly name: string;
  readonly prefix: boolean;
}

export interface HealthCheckPlan {
  /** `${namespace}/${name}` */
  readonly serviceKey: string;
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  /**
   * Distinct local READY endpoint IPs of the Service, across its ports (kube-proxy counts ready
   * ones only: a node left with only terminating endpoints must fail the check so the LB drains it).
   */
  readonly localEndpoints: number;
}

export interface PerFamily<T> {
  readonly IPv4: T;
  readonly IPv6: T;
}

export interface Snapshot {
  /** Increases by one with every plan. */
  readonly generation: number;
  readonly nodeName: string;
  /** Labels of this node's Node object (empty when unknown). */
  readonly nodeLabels: Readonly<Record<string, string>>;
  readonly zone?: string;
  /** Node IPs by family, primary first (InternalIP, then ExternalIP). */
  readonly nodeIPs: PerFamily<readonly string[]>;
  /** The families this node programs. */
  readonly families: readonly IPFamily[];
  /**
   * Where local (pod) traffic comes from, split by family: `--cluster-cidr` with
   * `--detect-local-mode` ClusterCIDR (the default), this node's `spec.podCIDRs` with NodeCIDR.
   * Empty means "no pod CIDR known": no masquerade of off-cluster traffic to ClusterIPs and no
   * pod short-circuit, as in kube-proxy, unless `localInterface` is set.
   */
  readonly clusterCIDRs: PerFamily<readonly string[]>;
  /**
   * With `--detect-local-mode` BridgeInterface / InterfaceNamePrefix: local traffic is what came
   * in on this interface (then `clusterCIDRs` is empty). Backends that program masquerade or the
   * externalTrafficPolicy=Local short-circuit must use it where they would use `clusterCIDRs`.
   */
  readonly localInterface?: LocalInterface;
  readonly masqueradeAll: boolean;
  readonly nodePortAddresses: PerFamily<NodePortAddresses>;
  /** Keyed by ServicePortPlan.id. */
  readonly servicePorts: ReadonlyMap<string, ServicePortPlan>;
  /** healthCheckNodePort servers this node must run (externalTrafficPolicy=Local LB Services). */
  readonly healthChecks: readonly HealthCheckPlan[];
}

/** What changed since the last snapshot whose sync succeeded. */
export interface SnapshotDelta {
  /** Program everything (start, after a failure, periodic resync, node or config change). */
  readonly full: boolean;
  /** ServicePortPlan ids added or changed. Everything when full. */
  readonly changed: ReadonlySet<string>;
  /** ServicePortPlan ids that existed in the last applied snapshot and are gone now. */
  readonly removed: ReadonlySet<string>;
}

export interface SyncResult {
  /** Whether this sync programmed everything (a backend may upgrade a partial sync to full). */
  readonly full: boolean;
  /** Free-form counters for the per-sync summary log line and metrics (rules, elements...). */
  readonly stats?: Readonly<Record<string, number>>;
}

export interface BackendSupport {
  readonly supported: boolean;
  /** When unsupported: one line saying why (missing binary, kernel module...). */
  readonly reason?: string;
  /** What was found, e.g. { iptables: 'nft', nft: '1.0.6' }. */
  readonly details?: Readonly<Record<string, string>>;
}

/** The backend contract. See DESIGN.md, "The backend contract". */
export interface ProxyBackend {
  readonly name: string;
  /** Can it run here? Checks binaries and kernel support; changes nothing. */
  probe(): Promise<BackendSupport>;
  /**
   * Make the data plane match the snapshot. Calls never overlap. A throw marks the sync failed;
   * the core retries with backoff and the next call has delta.full = true.
   */
  sync(snapshot: Snapshot, delta: SnapshotDelta): Promise<SyncResult>;
  /** Remove everything this backend ever programmed, and nothing else. */
  cleanup(): Promise<void>;
  /** Optional: stop background work (servers, timers) when the daemon shuts down. */
  close?(): Promise<void>;
}
