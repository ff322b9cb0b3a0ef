/**
 * The subset of the Kubernetes API objects switchyard reads, as plain JSON shapes.
 *
 * Sources (the API server through @kubernetes/client-node, or YAML files) hand these over
 * untouched; every field is optional because bad input is data: the planner validates and
 * skips what is malformed. Field names are the API's own (camelCase JSON).
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string | Date;
}

export interface KubeServicePort {
  name?: string;
  protocol?: string; // TCP (default), UDP, SCTP
  port?: number;
  targetPort?: number | string;
  nodePort?: number;
  appProtocol?: string;
}

export interface KubeService {
  apiVersion?: string;
  kind?: 'Service' | string;
  metadata?: ObjectMeta;
  spec?: {
    type?: string; // ClusterIP (default), NodePort, LoadBalancer, ExternalName
    clusterIP?: string;
    clusterIPs?: string[];
    ipFamilies?: string[];
    ipFamilyPolicy?: string;
    ports?: KubeServicePort[];
    selector?: Record<string, string>;
    externalIPs?: string[];
    externalName?: string;
    loadBalancerIP?: string;
    loadBalancerSourceRanges?: string[];
    externalTrafficPolicy?: string; // Cluster (default) | Local
    internalTrafficPolicy?: string; // Cluster (default) | Local
    healthCheckNodePort?: number;
    sessionAffinity?: string; // None (default) | ClientIP
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    trafficDistribution?: string; // PreferClose | PreferSameZone | PreferSameNode
    allocateLoadBalancerNodePorts?: boolean;
  };
  status?: {
    loadBalancer?: {
      ingress?: { ip?: string; hostname?: string; ipMode?: string; ports?: unknown[] }[];
    };
  };
}

export interface KubeEndpointPort {
  name?: string;
  protocol?: string;
  port?: number;
  appProtocol?: string;
}

export interface KubeEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  hostname?: string;
  nodeName?: string;
  zone?: string;
  hints?: { forZones?: { name?: string }[]; forNodes?: { name?: string }[] };
  targetRef?: { kind?: string; name?: string; namespace?: string; uid?: string };
}

export interface KubeEndpointSlice {
  apiVersion?: string;
  kind?: 'EndpointSlice' | string;
  metadata?: ObjectMeta;
  addressType?: string; // IPv4 | IPv6 | FQDN
  endpoints?: KubeEndpoint[];
  ports?: KubeEndpointPort[];
}

export interface KubeNode {
  apiVersion?: string;
  kind?: 'Node' | string;
  metadata?: ObjectMeta;
  spec?: {
    podCIDR?: string;
    podCIDRs?: string[];
    unschedulable?: boolean;
    taints?: { key?: string; value?: string; effect?: string }[];
  };
  status?: { addresses?: { type?: string; address?: string }[] };
}

/** The label EndpointSlices carry to name their Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Services with either label are not ours (headless, or claimed by another proxy). */
export const SERVICE_LABEL_SELECTOR =
  '!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name';
/** Node label holding the zone, used by topology hints and trafficDistribution. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
