/**
 * Small builders for Kubernetes objects in tests. Each returns a fresh plain object shaped as
 * the API (or a YAML file) delivers it; override whatever you need. Defaults follow the test
 * IP plan of DESIGN.md: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2.
 *
 *   const svc = makeService({ name: 'web', ports: [port('http', 80)] });
 *   const slice = makeSlice({ service: 'web', endpoints: [endpoint('10.244.1.5', { nodeName: NODE })] });
 *   const node = makeNode({ zone: 'zone-a' });
 */
import type {
  KubeEndpoint,
  KubeEndpointPort,
  KubeEndpointSlice,
  KubeNode,
  KubeService,
  KubeServicePort,
} from '../../core/model/kube.js';
import type { ClusterState } from '../../core/model/cluster-state.js';

/** The node name the builders use by default ("this node" in planner tests). */
export const NODE = 'node-a';
/** Another node. */
export const OTHER_NODE = 'node-b';
export const NODE_IP = '192.168.77.2';

type ServiceSpec = NonNullable<KubeService['spec']>;
/** The spec's fields, with readonly arrays accepted (so `as const` values fit). */
type LooseSpec = {
  [K in keyof ServiceSpec]?: NonNullable<ServiceSpec[K]> extends (infer U)[] ? readonly U[] : ServiceSpec[K];
};

export interface ServiceFixture extends LooseSpec {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  status?: KubeService['status'];
}

/** A ServicePort: `port('http', 80)` is TCP 80 -> targetPort 'http'. */
export function port(
  name: string,
  portNumber: number,
  extra: Partial<KubeServicePort> = {},
): KubeServicePort {
  return { name, protocol: 'TCP', port: portNumber, targetPort: name || portNumber, ...extra };
}

/**
 * A Service. Defaults: default/web, type ClusterIP, clusterIP 10.96.0.10 (clusterIPs follows
 * clusterIP unless given), one port http TCP 80. Spec fields are given flat.
 */
export function makeService(f: ServiceFixture = {}): KubeService {
  const {
    name = 'web',
    namespace = 'default',
    labels,
    annotations,
    resourceVersion = '1',
    status,
    ...spec
  } = f;
  const clusterIP = 'clusterIP' in f ? f.clusterIP : '10.96.0.10';
  const clusterIPs =
    'clusterIPs' in f
      ? f.clusterIPs
      : clusterIP !== undefined && clusterIP !== 'None'
        ? [clusterIP]
        : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace,
      resourceVersion,
      ...(labels ? { labels } : {}),
      ...(annotations ? { annotations } : {}),
    },
    spec: {
      type: 'ClusterIP',
      ports: [port('http', 80)],
      ...(spec as ServiceSpec),
      ...(clusterIP !== undefined ? { clusterIP } : {}),
      ...(clusterIPs !== undefined ? { clusterIPs: [...clusterIPs] } : {}),
    },
    ...(status ? { status } : {}),
  };
}

export interface EndpointOptions {
  nodeName?: string;
  zone?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  /** hints.forZones names. */
  zoneHints?: string[];
  /** hints.forNodes names. */
  nodeHints?: string[];
  /** targetRef Pod name. */
  pod?: string;
}

/**
 * An endpoint at `ip`. Conditions are only set when given (nil conditions are meaningful: ready
 * nil means ready). nodeName defaults to OTHER_NODE (a remote endpoint); pass `nodeName: NODE`
 * for a local one.
 */
export function endpoint(ip: string, o: EndpointOptions = {}): KubeEndpoint {
  const conditions: NonNullable<KubeEndpoint['conditions']> = {};
  if (o.ready !== undefined) conditions.ready = o.ready;
  if (o.serving !== undefined) conditions.serving = o.serving;
  if (o.terminating !== undefined) conditions.terminating = o.terminating;
  const hints: NonNullable<KubeEndpoint['hints']> = {};
  if (o.zoneHints) hints.forZones = o.zoneHints.map((name) => ({ name }));
  if (o.nodeHints) hints.forNodes = o.nodeHints.map((name) => ({ name }));
  return {
    addresses: [ip],
    conditions,
    nodeName: o.nodeName ?? OTHER_NODE,
    ...(o.zone !== undefined ? { zone: o.zone } : {}),
    ...(o.zoneHints || o.nodeHints ? { hints } : {}),
    ...(o.pod !== undefined ? { targetRef: { kind: 'Pod', name: o.pod, namespace: 'default' } } : {}),
  };
}

export interface SliceFixture {
  /** Slice name; default `${service}-${addressType === 'IPv6' ? 'v6' : 'v4'}`. */
  name?: string;
  namespace?: string;
  /** The owning Service's name (kubernetes.io/service-name label); default 'web'. */
  service?: string;
  addressType?: string;
  /** Default: one port http TCP 8080. */
  ports?: KubeEndpointPort[];
  /** Endpoints, or bare IPs (remote, conditions nil). */
  endpoints?: (KubeEndpoint | string)[];
  resourceVersion?: string;
  labels?: Record<string, string>;
}

/** An EndpointSlice port. */
export function slicePort(name: string, portNumber: number, protocol = 'TCP'): KubeEndpointPort {
  return { name, protocol, port: portNumber };
}

/** An EndpointSlice for a Service. */
export function makeSlice(f: SliceFixture = {}): KubeEndpointSlice {
  const service = f.service ?? 'web';
  const addressType = f.addressType ?? 'IPv4';
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: f.name ?? `${service}-${addressType === 'IPv6' ? 'v6' : 'v4'}`,
      namespace: f.namespace ?? 'default',
      resourceVersion: f.resourceVersion ?? '1',
      labels: { 'kubernetes.io/service-name': service, ...(f.labels ?? {}) },
    },
    addressType,
    ports: f.ports ?? [slicePort('http', 8080)],
    endpoints: (f.endpoints ?? []).map((e) => (typeof e === 'string' ? endpoint(e) : e)),
  };
}

export interface NodeFixture {
  name?: string;
  /** InternalIP addresses; default [NODE_IP]. */
  internalIPs?: string[];
  externalIPs?: string[];
  zone?: string;
  labels?: Record<string, string>;
  resourceVersion?: string;
}

/** A Node (default NODE with InternalIP 192.168.77.2). */
export function makeNode(f: NodeFixture = {}): KubeNode {
  const labels: Record<string, string> = { 'kubernetes.io/hostname': f.name ?? NODE, ...(f.labels ?? {}) };
  if (f.zone !== undefined) labels['topology.kubernetes.io/zone'] = f.zone;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: f.name ?? NODE, resourceVersion: f.resourceVersion ?? '1', labels },
    status: {
      addresses: [
        ...(f.internalIPs ?? [NODE_IP]).map((address) => ({ type: 'InternalIP', address })),
        ...(f.externalIPs ?? []).map((address) => ({ type: 'ExternalIP', address })),
        { type: 'Hostname', address: f.name ?? NODE },
      ],
    },
  };
}

export interface StateFixture {
  services?: KubeService[];
  slices?: KubeEndpointSlice[];
  node?: KubeNode;
}

/**
 * A ClusterState holding these objects (all resources synced), built the way the Tracker
 * builds it: keys `${namespace}/${name}`, slices grouped by their service-name label and
 * sorted by key.
 */
export function makeState(f: StateFixture = {}): ClusterState {
  const services = new Map<string, KubeService>();
  for (const s of f.services ?? []) services.set(`${s.metadata?.namespace}/${s.metadata?.name}`, s);
  const endpointSlices = new Map<string, KubeEndpointSlice>();
  for (const s of f.slices ?? []) endpointSlices.set(`${s.metadata?.namespace}/${s.metadata?.name}`, s);
  const groups = new Map<string, KubeEndpointSlice[]>();
  for (const key of [...endpointSlices.keys()].sort()) {
    const s = endpointSlices.get(key) as KubeEndpointSlice;
    const svc = s.metadata?.labels?.['kubernetes.io/service-name'];
    if (!svc) continue;
    const gk = `${s.metadata?.namespace}/${svc}`;
    groups.set(gk, [...(groups.get(gk) ?? []), s]);
  }
  return {
    services,
    endpointSlices,
    slicesByService: groups,
    ...(f.node ? { node: f.node } : {}),
    synced: { services: true, endpointslices: true, nodes: true },
  };
}
