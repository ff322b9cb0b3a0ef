/**
 * The packet-tracer behaviour table: ONE fixed cluster and, for each case, where traffic starts,
 * where it goes and what must happen (which endpoints answer, or REJECT, or DROP; masqueraded
 * or not). Every data-plane backend runs the same table (test/e2e/behaviour.e2e.test.ts); a
 * backend that cannot do something lists the case in BACKEND_EXCEPTIONS with the reason.
 *
 * IP plan (DESIGN.md): pods 10.244.0.0/16 (node-a 10.244.1.0/24, node-b 10.244.2.0/24),
 * ClusterIPs 10.96.0.0/16 and fd00:10:96::/112, node 192.168.77.2 / fd00:77::2 (second address
 * 192.168.88.2 / fd00:88::2, outside --nodeport-addresses), external client 192.168.77.1 /
 * fd00:77::1 with sources 203.0.113.10 (inside the LB source range 203.0.113.0/25) and
 * 203.0.113.200 (outside), externalIPs 172.16.77.0/24, LB ingress IPs 198.51.100.0/24.
 *
 * Pods (test/support/netns-topology.ts): pod-a and pod-b on node-a (this node), pod-c on node-b.
 * Every pod serves TCP 8080 and UDP 5353 (echo with its name and the client address it saw).
 * The node namespace itself serves every NodePort of the table under the name 'node', so a
 * NodePort that must NOT be proxied on an address is seen answered by the node, and one that a
 * backend failed to program cannot pass for REJECT or DROP. Traffic the node forwards unprogrammed
 * (a VIP without rules) comes back as ICMP host/network unreachable from the upstream router.
 */
import type {
  KubeEndpoint,
  KubeEndpointSlice,
  KubeNode,
  KubeService,
  KubeServicePort,
} from '../../core/model/kube.js';
import type { ClusterState } from '../../core/model/cluster-state.js';
import { endpoint, makeNode, makeService, makeSlice, makeState, slicePort } from '../support/fixtures.js';
import { TOPOLOGY_PLAN as P, type TopologySpec } from '../support/netns-topology.js';

export const NAMESPACE = 'e2e';
export const TCP_TARGET = 8080;
export const UDP_TARGET = 5353;
export const SCTP_TARGET = 7777;

/** The pods of the table's topology. */
export const BEHAVIOUR_TOPOLOGY: TopologySpec = {
  pods: [
    { name: 'pod-a', tcpPorts: [TCP_TARGET], udpPorts: [UDP_TARGET] },
    { name: 'pod-b', tcpPorts: [TCP_TARGET], udpPorts: [UDP_TARGET] },
    { name: 'pod-c', node: 'remote', tcpPorts: [TCP_TARGET], udpPorts: [UDP_TARGET] },
  ],
  // The node itself listens on every NodePort of the table: a NodePort the backend does not
  // program is answered by 'node' (never passes for REJECT or DROP).
  nodeServers: { tcpPorts: [30040, 30050, 30060, 30080, 30090], udpPorts: [30051, 30053] },
};

/** Pod addresses as the topology assigns them (first local pod .10, next .11; remote .10 on node-b). */
export const POD_IPS: Readonly<
  Record<string, { readonly v4: string; readonly v6: string; readonly node: string }>
> = {
  'pod-a': { v4: '10.244.1.10', v6: 'fd00:10:244:1::10', node: P.nodeName },
  'pod-b': { v4: '10.244.1.11', v6: 'fd00:10:244:1::11', node: P.nodeName },
  'pod-c': { v4: '10.244.2.10', v6: 'fd00:10:244:2::10', node: P.otherNodeName },
};

/** Fixed addresses of the table's Services. */
export const VIP = {
  web: '10.96.0.10',
  web6: 'fd00:10:96::10',
  nodeport: '10.96.0.20',
  nodeport6: 'fd00:10:96::20',
  extip: '10.96.0.30',
  extipExternal: '172.16.77.10',
  lb: '10.96.0.40',
  lbIngress: '198.51.100.10',
  local: '10.96.0.50',
  local6: 'fd00:10:96::50',
  localExternal: '172.16.77.50',
  localIngress: '198.51.100.20',
  localNone: '10.96.0.60',
  itpLocal: '10.96.0.70',
  itpNone: '10.96.0.80',
  empty: '10.96.0.90',
  empty6: 'fd00:10:96::90',
  sticky: '10.96.0.100',
  sctp: '10.96.0.110',
  solo: '10.96.0.120',
  solo6: 'fd00:10:96::120',
} as const;

export const NODE_PORT = {
  nodeport: 30080,
  nodeportUdp: 30053,
  lb: 30040,
  local: 30050,
  localNone: 30060,
  empty: 30090,
} as const;

// ------------------------------------------------------------------ the cluster

type PodName = keyof typeof POD_IPS;

function ep(pod: PodName, family: 'v4' | 'v6'): KubeEndpoint {
  const p = POD_IPS[pod];
  if (!p) throw new Error(`unknown pod ${pod}`);
  return {
    ...endpoint(p[family], { nodeName: p.node, ready: true, serving: true, terminating: false, pod }),
    hostname: pod,
  };
}

const HTTP: KubeServicePort = { name: 'http', protocol: 'TCP', port: 80, targetPort: TCP_TARGET };
const DNS: KubeServicePort = { name: 'dns', protocol: 'UDP', port: 53, targetPort: UDP_TARGET };

interface SvcDef {
  readonly service: KubeService;
  /** Pods behind it (IPv4 slice; IPv6 slice too when the Service is dual-stack). */
  readonly pods: readonly PodName[];
}

function svc(name: string, spec: Parameters<typeof makeService>[0], pods: readonly PodName[]): SvcDef {
  return { service: makeService({ name, namespace: NAMESPACE, ...spec }), pods };
}

function slicesFor(def: SvcDef): KubeEndpointSlice[] {
  const service = def.service;
  const name = service.metadata?.name ?? '';
  const ports = (service.spec?.ports ?? []).map((p) =>
    slicePort(
      p.name ?? '',
      typeof p.targetPort === 'number' ? p.targetPort : (p.port ?? 0),
      p.protocol ?? 'TCP',
    ),
  );
  const families = service.spec?.ipFamilies ?? ['IPv4'];
  return families.map((family) =>
    makeSlice({
      name: `${name}-${family === 'IPv6' ? 'v6' : 'v4'}`,
      namespace: NAMESPACE,
      service: name,
      addressType: family,
      ports,
      endpoints: def.pods.map((p) => ep(p, family === 'IPv6' ? 'v6' : 'v4')),
    }),
  );
}

const DUAL = { ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' } as const;

function serviceDefs(): SvcDef[] {
  return [
    // ClusterIP over TCP and UDP, both families; 81/82 are ports the Service does not define.
    svc('web', { clusterIP: VIP.web, clusterIPs: [VIP.web, VIP.web6], ...DUAL, ports: [HTTP, DNS] }, [
      'pod-a',
      'pod-b',
      'pod-c',
    ]),
    // NodePort (policy Cluster) on --nodeport-addresses only.
    svc(
      'nodeport',
      {
        type: 'NodePort',
        clusterIP: VIP.nodeport,
        clusterIPs: [VIP.nodeport, VIP.nodeport6],
        ...DUAL,
        ports: [
          { ...HTTP, nodePort: NODE_PORT.nodeport },
          { ...DNS, nodePort: NODE_PORT.nodeportUdp },
        ],
      },
      ['pod-a', 'pod-c'],
    ),
    // externalIPs, policy Cluster.
    svc('extip', { clusterIP: VIP.extip, externalIPs: [VIP.extipExternal], ports: [HTTP, DNS] }, [
      'pod-b',
      'pod-c',
    ]),
    // LoadBalancer with loadBalancerSourceRanges.
    svc(
      'lb',
      {
        type: 'LoadBalancer',
        clusterIP: VIP.lb,
        ports: [{ ...HTTP, nodePort: NODE_PORT.lb }],
        loadBalancerSourceRanges: ['203.0.113.0/25'],
        status: { loadBalancer: { ingress: [{ ip: VIP.lbIngress }] } },
      },
      ['pod-a', 'pod-b'],
    ),
    // externalTrafficPolicy Local with one local (pod-a) and one remote (pod-c) endpoint.
    svc(
      'local',
      {
        type: 'LoadBalancer',
        clusterIP: VIP.local,
        clusterIPs: [VIP.local, VIP.local6],
        ...DUAL,
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32050,
        externalIPs: [VIP.localExternal],
        ports: [
          { ...HTTP, nodePort: NODE_PORT.local },
          { ...DNS, nodePort: NODE_PORT.local + 1 },
        ],
        status: { loadBalancer: { ingress: [{ ip: VIP.localIngress }] } },
      },
      ['pod-a', 'pod-c'],
    ),
    // externalTrafficPolicy Local without a local endpoint.
    svc(
      'local-none',
      {
        type: 'NodePort',
        clusterIP: VIP.localNone,
        externalTrafficPolicy: 'Local',
        ports: [{ ...HTTP, nodePort: NODE_PORT.localNone }],
      },
      ['pod-c'],
    ),
    // internalTrafficPolicy Local, with and without a local endpoint.
    svc('itp-local', { clusterIP: VIP.itpLocal, internalTrafficPolicy: 'Local', ports: [HTTP, DNS] }, [
      'pod-a',
      'pod-c',
    ]),
    svc('itp-none', { clusterIP: VIP.itpNone, internalTrafficPolicy: 'Local', ports: [HTTP, DNS] }, [
      'pod-c',
    ]),
    // No endpoints at all (a slice with none).
    svc(
      'empty',
      {
        type: 'NodePort',
        clusterIP: VIP.empty,
        clusterIPs: [VIP.empty, VIP.empty6],
        ...DUAL,
        ports: [{ ...HTTP, nodePort: NODE_PORT.empty }, DNS],
      },
      [],
    ),
    // sessionAffinity ClientIP.
    svc(
      'sticky',
      {
        clusterIP: VIP.sticky,
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } },
        ports: [HTTP, DNS],
      },
      ['pod-a', 'pod-b', 'pod-c'],
    ),
    // SCTP.
    svc(
      'sctp',
      {
        clusterIP: VIP.sctp,
        ports: [{ name: 'sctp', protocol: 'SCTP', port: 7777, targetPort: SCTP_TARGET }],
      },
      ['pod-a', 'pod-c'],
    ),
    // One endpoint, pod-a: hairpin.
    svc('solo', { clusterIP: VIP.solo, clusterIPs: [VIP.solo, VIP.solo6], ...DUAL, ports: [HTTP, DNS] }, [
      'pod-a',
    ]),
  ];
}

export interface BehaviourCluster {
  readonly services: readonly KubeService[];
  readonly slices: readonly KubeEndpointSlice[];
  readonly node: KubeNode;
}

/** The fixed cluster, as fresh plain objects (as the API server would deliver them). */
export function behaviourCluster(): BehaviourCluster {
  const defs = serviceDefs();
  return {
    services: defs.map((d) => d.service),
    slices: defs.flatMap(slicesFor),
    node: {
      ...makeNode({ name: P.nodeName, internalIPs: [P.nodeIPv4, P.nodeIPv6] }),
      spec: { podCIDR: P.localPodCIDRv4, podCIDRs: [P.localPodCIDRv4, P.localPodCIDRv6] },
    },
  };
}

/** The fixed cluster as the tracker would hand it to the planner. */
export function behaviourClusterState(): ClusterState {
  const c = behaviourCluster();
  return makeState({ services: [...c.services], slices: [...c.slices], node: c.node });
}

// ------------------------------------------------------------------ configurations

/** kube-proxy flags every configuration shares. */
export const BASE_FLAGS: readonly string[] = [
  `--hostname-override=${P.nodeName}`,
  `--cluster-cidr=${P.clusterCIDRv4},${P.clusterCIDRv6}`,
  '--nodeport-addresses=192.168.77.0/24,fd00:77::/64',
];

/** Named configurations (flags on top of BASE_FLAGS); cases pick one by name. */
export const CONFIGS = {
  default: [] as readonly string[],
  'masquerade-all': ['--masquerade-all'] as readonly string[],
  // --detect-local-mode: the node's podCIDR (10.244.1.0/24) instead of --cluster-cidr; the
  // pods' host-side veths (vp0 pod-a, vp1 pod-b; pod-c comes in on peer0) by name prefix or name
  'detect-node-cidr': ['--detect-local-mode=NodeCIDR'] as readonly string[],
  'detect-interface-prefix': [
    '--detect-local-mode=InterfaceNamePrefix',
    '--pod-interface-name-prefix=vp',
  ] as readonly string[],
  'detect-bridge': ['--detect-local-mode=BridgeInterface', '--pod-bridge-interface=vp1'] as readonly string[],
} as const;
export type ConfigName = keyof typeof CONFIGS;

export function flagsFor(config: ConfigName): string[] {
  return [...BASE_FLAGS, ...CONFIGS[config]];
}

// ------------------------------------------------------------------ the table

/** Where traffic starts: a pod, the node itself, or the external client. */
export type From = 'pod-a' | 'pod-b' | 'pod-c' | 'node' | 'external';

export interface Expectation {
  /**
   * Names that may answer (every one must be seen over repeated samples), or 'reject' (refused
   * at once: TCP RST / ICMP unreachable), or 'drop' (no answer at all).
   */
  readonly endpoints: readonly string[] | 'reject' | 'drop';
  /** The server saw a source other than the client's own address (undefined: not checked). */
  readonly masqueraded?: boolean;
  /** Every sample answered by the same endpoint (session affinity). */
  readonly sameEndpointEveryTime?: boolean;
}

export interface BehaviourCase {
  /** Unique, stable name: exceptions refer to it. */
  readonly name: string;
  /** The issue 3 §2 behaviour this case covers. */
  readonly covers: string;
  readonly from: From;
  /** Source address to send from (the external client has several). */
  readonly sourceIp?: string;
  readonly to: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  readonly expect: Expectation;
  /** Which configuration (default: 'default'). */
  readonly config?: ConfigName;
}

const ALL3 = ['pod-a', 'pod-b', 'pod-c'];

export const BEHAVIOUR_CASES: readonly BehaviourCase[] = [
  // --- ClusterIP, protocols -------------------------------------------------------------
  {
    name: 'clusterip-tcp-from-pod',
    covers: 'ClusterIP TCP',
    from: 'pod-b',
    to: VIP.web,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ALL3 },
  },
  {
    name: 'clusterip-udp-from-pod',
    covers: 'ClusterIP UDP',
    from: 'pod-b',
    to: VIP.web,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ALL3 },
  },
  {
    name: 'clusterip-sctp-from-pod',
    covers: 'ClusterIP SCTP',
    from: 'pod-b',
    to: VIP.sctp,
    port: 7777,
    protocol: 'SCTP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: false },
  },
  {
    name: 'clusterip-sctp-from-node',
    covers: 'ClusterIP SCTP from outside clusterCIDR is masqueraded',
    from: 'node',
    to: VIP.sctp,
    port: 7777,
    protocol: 'SCTP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: true },
  },
  // --- undefined port ----------------------------------------------------------------------
  {
    name: 'clusterip-undefined-tcp-port-rejected',
    covers: 'ClusterIP on an undefined port is rejected',
    from: 'pod-b',
    to: VIP.web,
    port: 81,
    protocol: 'TCP',
    expect: { endpoints: 'reject' },
  },
  {
    name: 'clusterip-undefined-udp-port-rejected',
    covers: 'ClusterIP on an undefined port is rejected',
    from: 'pod-b',
    to: VIP.web,
    port: 54,
    protocol: 'UDP',
    expect: { endpoints: 'reject' },
  },
  // --- NodePort and nodePortAddresses ----------------------------------------------------
  {
    name: 'nodeport-tcp-external',
    covers: 'NodePort on --nodeport-addresses; external with policy Cluster is masqueraded',
    from: 'external',
    to: P.nodeIPv4,
    port: NODE_PORT.nodeport,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: true },
  },
  {
    name: 'nodeport-udp-external',
    covers: 'NodePort UDP',
    from: 'external',
    to: P.nodeIPv4,
    port: NODE_PORT.nodeportUdp,
    protocol: 'UDP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: true },
  },
  {
    name: 'nodeport-from-pod',
    covers: 'NodePort from a pod',
    from: 'pod-b',
    to: P.nodeIPv4,
    port: NODE_PORT.nodeport,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'] },
  },
  {
    name: 'nodeport-not-on-other-address',
    covers: 'NodePort only on --nodeport-addresses (the node itself answers elsewhere)',
    from: 'external',
    to: P.secondNodeIPv4,
    port: NODE_PORT.nodeport,
    protocol: 'TCP',
    expect: { endpoints: ['node'], masqueraded: false },
  },
  {
    name: 'nodeport-udp-not-on-other-address',
    covers: 'NodePort only on --nodeport-addresses',
    from: 'external',
    to: P.secondNodeIPv4,
    port: NODE_PORT.nodeportUdp,
    protocol: 'UDP',
    expect: { endpoints: ['node'], masqueraded: false },
  },
  {
    name: 'clusterip-of-nodeport-service',
    covers: 'ClusterIP of a NodePort Service',
    from: 'pod-b',
    to: VIP.nodeport,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'] },
  },
  // --- externalIPs -------------------------------------------------------------------------
  {
    name: 'externalip-tcp-external',
    covers: 'externalIPs (policy Cluster: masqueraded)',
    from: 'external',
    to: VIP.extipExternal,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-b', 'pod-c'], masqueraded: true },
  },
  {
    name: 'externalip-udp-external',
    covers: 'externalIPs UDP',
    from: 'external',
    to: VIP.extipExternal,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ['pod-b', 'pod-c'], masqueraded: true },
  },
  // --- LoadBalancer + source ranges -----------------------------------------------------------
  {
    name: 'lb-allowed-source',
    covers: 'LoadBalancer IP, source inside loadBalancerSourceRanges',
    from: 'external',
    sourceIp: P.clientAllowedIPv4,
    to: VIP.lbIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-b'], masqueraded: true },
  },
  {
    name: 'lb-other-source-dropped',
    covers: 'LoadBalancer IP, other sources dropped',
    from: 'external',
    sourceIp: P.clientDeniedIPv4,
    to: VIP.lbIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: 'drop' },
  },
  {
    name: 'lb-node-ip-source-dropped',
    covers: 'LoadBalancer IP, other sources dropped',
    from: 'external',
    sourceIp: P.clientIPv4,
    to: VIP.lbIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: 'drop' },
  },
  {
    name: 'lb-nodeport-ignores-source-ranges',
    covers: 'loadBalancerSourceRanges apply to the LB IP only',
    from: 'external',
    sourceIp: P.clientDeniedIPv4,
    to: P.nodeIPv4,
    port: NODE_PORT.lb,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-b'], masqueraded: true },
  },
  // --- sessionAffinity ----------------------------------------------------------------------
  {
    name: 'affinity-clientip-tcp',
    covers: 'sessionAffinity ClientIP',
    from: 'pod-b',
    to: VIP.sticky,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ALL3, sameEndpointEveryTime: true },
  },
  {
    name: 'affinity-clientip-udp',
    covers: 'sessionAffinity ClientIP',
    from: 'external',
    to: VIP.sticky,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ALL3, sameEndpointEveryTime: true },
  },
  // --- externalTrafficPolicy Local -------------------------------------------------------------
  {
    name: 'etp-local-nodeport-external',
    covers: 'externalTrafficPolicy Local: external only to local endpoints, client IP preserved',
    from: 'external',
    to: P.nodeIPv4,
    port: NODE_PORT.local,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'etp-local-nodeport-udp-external',
    covers: 'externalTrafficPolicy Local (UDP)',
    from: 'external',
    to: P.nodeIPv4,
    port: NODE_PORT.local + 1,
    protocol: 'UDP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'etp-local-lb-external',
    covers: 'externalTrafficPolicy Local on the LB IP',
    from: 'external',
    to: VIP.localIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'etp-local-externalip-external',
    covers: 'externalTrafficPolicy Local on an externalIP',
    from: 'external',
    to: VIP.localExternal,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'etp-local-nodeport-from-pod',
    covers: 'externalTrafficPolicy Local: pods reach every endpoint',
    from: 'pod-b',
    to: P.nodeIPv4,
    port: NODE_PORT.local,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: false },
  },
  {
    name: 'etp-local-lb-from-pod',
    covers: 'externalTrafficPolicy Local: pods reach every endpoint',
    from: 'pod-b',
    to: VIP.localIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: false },
  },
  {
    name: 'etp-local-nodeport-from-node',
    covers: 'externalTrafficPolicy Local: the node reaches every endpoint (masqueraded)',
    from: 'node',
    to: P.nodeIPv4,
    port: NODE_PORT.local,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: true },
  },
  {
    name: 'etp-local-clusterip-from-pod',
    covers: 'externalTrafficPolicy Local leaves the ClusterIP alone',
    from: 'pod-b',
    to: VIP.local,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'] },
  },
  {
    name: 'etp-local-no-local-endpoint-dropped',
    covers: 'Local policy without a local endpoint: DROP',
    from: 'external',
    to: P.nodeIPv4,
    port: NODE_PORT.localNone,
    protocol: 'TCP',
    expect: { endpoints: 'drop' },
  },
  {
    name: 'etp-local-no-local-endpoint-from-pod',
    covers: 'Local policy without a local endpoint: pods still reach every endpoint',
    from: 'pod-b',
    to: P.nodeIPv4,
    port: NODE_PORT.localNone,
    protocol: 'TCP',
    expect: { endpoints: ['pod-c'] },
  },
  // --- internalTrafficPolicy Local ----------------------------------------------------------------
  {
    name: 'itp-local-from-pod',
    covers: 'internalTrafficPolicy Local: only local endpoints',
    from: 'pod-b',
    to: VIP.itpLocal,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'itp-local-udp-from-pod',
    covers: 'internalTrafficPolicy Local (UDP)',
    from: 'pod-b',
    to: VIP.itpLocal,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'itp-local-from-node',
    covers: 'internalTrafficPolicy Local from the node',
    from: 'node',
    to: VIP.itpLocal,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  {
    name: 'itp-local-no-local-endpoint-dropped',
    covers: 'Local policy without a local endpoint: DROP',
    from: 'pod-b',
    to: VIP.itpNone,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: 'drop' },
  },
  {
    name: 'itp-local-no-local-endpoint-udp-dropped',
    covers: 'Local policy without a local endpoint: DROP',
    from: 'pod-b',
    to: VIP.itpNone,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: 'drop' },
  },
  // --- no endpoints: REJECT -------------------------------------------------------------------------
  {
    name: 'no-endpoints-tcp-rejected',
    covers: 'no endpoints: REJECT (refused at once)',
    from: 'pod-a',
    to: VIP.empty,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: 'reject' },
  },
  {
    name: 'no-endpoints-udp-rejected',
    covers: 'no endpoints: REJECT',
    from: 'pod-a',
    to: VIP.empty,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: 'reject' },
  },
  {
    name: 'no-endpoints-from-node-rejected',
    covers: 'no endpoints: REJECT',
    from: 'node',
    to: VIP.empty,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: 'reject' },
  },
  {
    name: 'no-endpoints-nodeport-rejected',
    covers: 'no endpoints: REJECT on the NodePort',
    from: 'external',
    to: P.nodeIPv4,
    port: NODE_PORT.empty,
    protocol: 'TCP',
    expect: { endpoints: 'reject' },
  },
  // --- masquerade -------------------------------------------------------------------------------
  {
    name: 'masq-clusterip-from-node',
    covers: 'ClusterIP from outside clusterCIDR (the node) is masqueraded',
    from: 'node',
    to: VIP.web,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ALL3, masqueraded: true },
  },
  {
    name: 'masq-clusterip-udp-from-node',
    covers: 'ClusterIP from outside clusterCIDR (the node) is masqueraded',
    from: 'node',
    to: VIP.web,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ALL3, masqueraded: true },
  },
  {
    name: 'masq-clusterip-from-external',
    covers: 'ClusterIP from outside clusterCIDR (external) is masqueraded',
    from: 'external',
    to: VIP.web,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ALL3, masqueraded: true },
  },
  {
    name: 'no-masq-clusterip-from-pod',
    covers: 'pod to ClusterIP is not masqueraded',
    from: 'pod-a',
    to: VIP.extip,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-b', 'pod-c'], masqueraded: false },
  },
  {
    name: 'no-masq-clusterip-udp-from-pod',
    covers: 'pod to ClusterIP is not masqueraded',
    from: 'pod-a',
    to: VIP.extip,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ['pod-b', 'pod-c'], masqueraded: false },
  },
  {
    name: 'hairpin-masqueraded',
    covers: 'hairpin: a pod reaching itself through its Service sees another source',
    from: 'pod-a',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  {
    name: 'hairpin-udp-masqueraded',
    covers: 'hairpin (UDP)',
    from: 'pod-a',
    to: VIP.solo,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  {
    name: 'ipv6-hairpin-masqueraded',
    covers: 'hairpin (IPv6)',
    from: 'pod-a',
    to: VIP.solo6,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  {
    name: 'masquerade-all-pod-to-clusterip',
    covers: '--masquerade-all masquerades pod traffic too',
    config: 'masquerade-all',
    from: 'pod-a',
    to: VIP.extip,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-b', 'pod-c'], masqueraded: true },
  },
  {
    name: 'masquerade-all-udp-pod-to-clusterip',
    covers: '--masquerade-all',
    config: 'masquerade-all',
    from: 'pod-b',
    to: VIP.web,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ALL3, masqueraded: true },
  },
  {
    name: 'masquerade-all-itp-local-from-pod',
    covers: '--masquerade-all with internalTrafficPolicy Local',
    config: 'masquerade-all',
    from: 'pod-b',
    to: VIP.itpLocal,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  // --- IPv6 alongside IPv4 ------------------------------------------------------------------------
  {
    name: 'ipv6-clusterip-tcp-from-pod',
    covers: 'IPv6 ClusterIP',
    from: 'pod-b',
    to: VIP.web6,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ALL3 },
  },
  {
    name: 'ipv6-clusterip-udp-from-pod',
    covers: 'IPv6 ClusterIP (UDP)',
    from: 'pod-b',
    to: VIP.web6,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ALL3 },
  },
  {
    name: 'ipv6-clusterip-from-node-masqueraded',
    covers: 'IPv6 ClusterIP from the node is masqueraded',
    from: 'node',
    to: VIP.web6,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ALL3, masqueraded: true },
  },
  {
    name: 'ipv6-nodeport-external',
    covers: 'IPv6 NodePort on --nodeport-addresses',
    from: 'external',
    to: P.nodeIPv6,
    port: NODE_PORT.nodeport,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: true },
  },
  {
    name: 'ipv6-nodeport-not-on-other-address',
    covers: 'IPv6 NodePort only on --nodeport-addresses',
    from: 'external',
    to: P.secondNodeIPv6,
    port: NODE_PORT.nodeport,
    protocol: 'TCP',
    expect: { endpoints: ['node'], masqueraded: false },
  },
  {
    name: 'ipv6-etp-local-nodeport-external',
    covers: 'IPv6 externalTrafficPolicy Local',
    from: 'external',
    to: P.nodeIPv6,
    port: NODE_PORT.local,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'ipv6-no-endpoints-rejected',
    covers: 'IPv6 no endpoints: REJECT',
    from: 'pod-a',
    to: VIP.empty6,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: 'reject' },
  },
  {
    name: 'ipv6-no-endpoints-udp-rejected',
    covers: 'IPv6 no endpoints: REJECT (UDP)',
    from: 'pod-a',
    to: VIP.empty6,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: 'reject' },
  },
  // --- --detect-local-mode ----------------------------------------------------------------------
  {
    name: 'pod-other-node-to-clusterip-not-masqueraded',
    covers: 'a pod on another node (inside --cluster-cidr) keeps its address to a ClusterIP',
    from: 'pod-c',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'detect-node-cidr-other-node-pod-masqueraded',
    covers:
      "--detect-local-mode=NodeCIDR: a source outside this node's podCIDR is masqueraded to a ClusterIP",
    config: 'detect-node-cidr',
    from: 'pod-c',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  {
    name: 'detect-node-cidr-local-pod-not-masqueraded',
    covers: '--detect-local-mode=NodeCIDR: a pod of this node keeps its address',
    config: 'detect-node-cidr',
    from: 'pod-b',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'detect-node-cidr-etp-local-lb-from-pod',
    covers: '--detect-local-mode=NodeCIDR: a pod of this node short-circuits externalTrafficPolicy Local',
    config: 'detect-node-cidr',
    from: 'pod-b',
    to: VIP.localIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: false },
  },
  {
    name: 'detect-prefix-local-pod-not-masqueraded',
    covers: '--detect-local-mode=InterfaceNamePrefix: traffic from a pod interface keeps its address',
    config: 'detect-interface-prefix',
    from: 'pod-b',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'detect-prefix-udp-local-pod-not-masqueraded',
    covers: '--detect-local-mode=InterfaceNamePrefix (UDP)',
    config: 'detect-interface-prefix',
    from: 'pod-b',
    to: VIP.solo,
    port: 53,
    protocol: 'UDP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'detect-prefix-ipv6-local-pod-not-masqueraded',
    covers: '--detect-local-mode=InterfaceNamePrefix (IPv6)',
    config: 'detect-interface-prefix',
    from: 'pod-b',
    to: VIP.solo6,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'detect-prefix-other-interface-masqueraded',
    covers: '--detect-local-mode=InterfaceNamePrefix: a pod address from another interface is masqueraded',
    config: 'detect-interface-prefix',
    from: 'pod-c',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  {
    name: 'detect-prefix-node-masqueraded',
    covers: '--detect-local-mode=InterfaceNamePrefix: the node itself is masqueraded to a ClusterIP',
    config: 'detect-interface-prefix',
    from: 'node',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: true },
  },
  {
    name: 'detect-prefix-etp-local-lb-from-pod',
    covers: '--detect-local-mode=InterfaceNamePrefix: pods short-circuit externalTrafficPolicy Local',
    config: 'detect-interface-prefix',
    from: 'pod-b',
    to: VIP.localIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a', 'pod-c'], masqueraded: false },
  },
  {
    name: 'detect-prefix-etp-local-lb-from-other-interface',
    covers:
      '--detect-local-mode=InterfaceNamePrefix: other interfaces get externalTrafficPolicy Local as outside traffic',
    config: 'detect-interface-prefix',
    from: 'pod-c',
    to: VIP.localIngress,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'detect-bridge-named-interface-not-masqueraded',
    covers: '--detect-local-mode=BridgeInterface: traffic from that interface keeps its address',
    config: 'detect-bridge',
    from: 'pod-b',
    to: VIP.solo,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-a'], masqueraded: false },
  },
  {
    name: 'detect-bridge-other-interface-masqueraded',
    covers: '--detect-local-mode=BridgeInterface: the name is exact (vp0 is not vp1)',
    config: 'detect-bridge',
    from: 'pod-a',
    to: VIP.extip,
    port: 80,
    protocol: 'TCP',
    expect: { endpoints: ['pod-b', 'pod-c'], masqueraded: true },
  },
];

/**
 * Cases a backend cannot pass, with the reason, by backend name. A listed case is reported as
 * skipped for that backend (never silently). Keep the reasons honest and specific.
 */
export const BACKEND_EXCEPTIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  nftables: {},
  // An IPVS virtual server has one real-server list for every source: with
  // externalTrafficPolicy Local the NodePort / externalIP / LB virtual servers hold only the
  // local endpoints, for pods and the node too. kube-proxy's IPVS mode does the same (no
  // short-circuit to every endpoint as its iptables and nftables modes have).
  ipvs: {
    'etp-local-nodeport-from-pod':
      'IPVS: a Local-policy NodePort serves local endpoints to pods too (as kube-proxy IPVS mode)',
    'etp-local-lb-from-pod':
      'IPVS: a Local-policy LB IP serves local endpoints to pods too (as kube-proxy IPVS mode)',
    'etp-local-nodeport-from-node':
      'IPVS: a Local-policy NodePort serves local endpoints to the node too, unmasqueraded (as kube-proxy IPVS mode)',
    'detect-node-cidr-etp-local-lb-from-pod':
      'IPVS: a Local-policy LB IP serves local endpoints to pods too (as kube-proxy IPVS mode)',
    'detect-prefix-etp-local-lb-from-pod':
      'IPVS: a Local-policy LB IP serves local endpoints to pods too (as kube-proxy IPVS mode)',
    'etp-local-no-local-endpoint-from-pod':
      'IPVS: a Local-policy NodePort without local endpoints has no real server for pods either (as kube-proxy IPVS mode)',
    // Seen in the VM (kernel 6.1): every SCTP probe of one client lands on the same real server.
    // The probe is a bare INIT from a raw socket that never completes an association; the DNAT
    // and masquerade it observes are right, only the spread over endpoints does not show.
    'clusterip-sctp-from-pod':
      'IPVS: raw-socket SCTP INIT probes from one client all reach one real server, so the spread over endpoints is not observable',
    'clusterip-sctp-from-node':
      'IPVS: raw-socket SCTP INIT probes from one client all reach one real server, so the spread over endpoints is not observable',
  },
  // The userspace backend relays through sockets of its own process (plugins/userspace/README.md):
  // endpoints always see a connection from the node, so a case that expects the client's own
  // address cannot pass; the endpoint choice in these cases is the same as in the others. Its
  // sockets must live in the node namespace: it runs through the daemon (daemon.e2e.test.ts).
  userspace: {
    ...Object.fromEntries(
      [
        'etp-local-nodeport-external',
        'etp-local-nodeport-udp-external',
        'etp-local-lb-external',
        'etp-local-externalip-external',
        'etp-local-nodeport-from-pod',
        'etp-local-lb-from-pod',
        'itp-local-from-pod',
        'itp-local-udp-from-pod',
        'no-masq-clusterip-from-pod',
        'no-masq-clusterip-udp-from-pod',
        'ipv6-etp-local-nodeport-external',
        'pod-other-node-to-clusterip-not-masqueraded',
        'detect-node-cidr-local-pod-not-masqueraded',
        'detect-node-cidr-etp-local-lb-from-pod',
        'detect-prefix-local-pod-not-masqueraded',
        'detect-prefix-udp-local-pod-not-masqueraded',
        'detect-prefix-ipv6-local-pod-not-masqueraded',
        'detect-prefix-etp-local-lb-from-pod',
        'detect-prefix-etp-local-lb-from-other-interface',
        'detect-bridge-named-interface-not-masqueraded',
      ].map((name) => [
        name,
        'userspace: the relay connects from the node, so endpoints never see the client address',
      ]),
    ),
    'clusterip-sctp-from-pod': 'userspace: Node.js has no SCTP sockets; SCTP Service ports are not relayed',
    'clusterip-sctp-from-node': 'userspace: Node.js has no SCTP sockets; SCTP Service ports are not relayed',
  },
};

/** The exception reason of a case for a backend, if any. */
export function exceptionFor(backend: string, caseName: string): string | undefined {
  return BACKEND_EXCEPTIONS[backend]?.[caseName];
}

/** Cases grouped by configuration, in table order. */
export function casesByConfig(
  cases: readonly BehaviourCase[] = BEHAVIOUR_CASES,
): Map<ConfigName, BehaviourCase[]> {
  const out = new Map<ConfigName, BehaviourCase[]>();
  for (const c of cases) {
    const k = c.config ?? 'default';
    out.set(k, [...(out.get(k) ?? []), c]);
  }
  return out;
}
