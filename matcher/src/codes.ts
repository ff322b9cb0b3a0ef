/**
 * The numbers that cross the WebAssembly boundary. matcher/assembly/index.ts uses the same
 * values; keep the two in step.
 */
import type { Protocol, TrafficVerdict } from '../../core/model/snapshot.js';

/** `select` results below 0. An endpoint id is >= 1. */
export const NO_MATCH = -1;
/** The Service port matched but has no usable endpoint: reject (ICMP unreachable / TCP RST). */
export const NO_ENDPOINTS = -2;
/** Drop silently (Local policy without local endpoints, or a source outside loadBalancerSourceRanges). */
export const DROP = -3;

/** Query flags. */
export const FLAG_FROM_NODE = 1;
/** The caller knows the client is a pod (clusterCIDR is also checked by the matcher itself). */
export const FLAG_FROM_POD = 2;
/** Look the 5-tuple up in the flow table first, and remember a new choice there. */
export const FLAG_FLOW = 4;

export const PROTOCOL_NUMBERS: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

export function protocolName(n: number): Protocol | undefined {
  if (n === 6) return 'TCP';
  if (n === 17) return 'UDP';
  if (n === 132) return 'SCTP';
  return undefined;
}

export const VERDICT_CODES: Readonly<Record<TrafficVerdict, number>> = { forward: 0, reject: 1, drop: 2 };

export const KIND_CLUSTER_IP = 0;
export const KIND_EXTERNAL_IP = 1;
export const KIND_LOAD_BALANCER = 2;
export const KIND_NODE_PORT = 3;

export const PATH_INTERNAL = 1;
export const PATH_EXTERNAL = 2;
export const PATH_SHORT_CIRCUIT = 3;

export const REASON_PLAN = 1;
export const REASON_SOURCE_RANGE = 2;
export const REASON_AFFINITY = 3;
export const REASON_FLOW = 4;
export const REASON_RANDOM = 5;

export type FrontendKind = 'cluster-ip' | 'external-ip' | 'load-balancer' | 'node-port';
export type TrafficPath = 'internal' | 'external' | 'short-circuit';
export type SelectionReason = 'plan' | 'source-range' | 'affinity' | 'flow' | 'random';

const KINDS: readonly FrontendKind[] = ['cluster-ip', 'external-ip', 'load-balancer', 'node-port'];
const PATHS: readonly (TrafficPath | undefined)[] = [undefined, 'internal', 'external', 'short-circuit'];
const REASONS: readonly (SelectionReason | undefined)[] = [
  undefined,
  'plan',
  'source-range',
  'affinity',
  'flow',
  'random',
];

export interface DecodedDetail {
  readonly path?: TrafficPath;
  readonly frontend?: FrontendKind;
  readonly reason?: SelectionReason;
}

/** Decode `lastDetail()`: path | frontend kind << 4 | reason << 8. */
export function decodeDetail(bits: number): DecodedDetail {
  const path = PATHS[bits & 0xf];
  const reason = REASONS[(bits >>> 8) & 0xf];
  const frontend = path === undefined ? undefined : KINDS[(bits >>> 4) & 0xf];
  return { path, frontend, reason };
}

/** One step of the matcher's PRNG (xorshift32), identical in WebAssembly and TypeScript. */
export function xorshift32(x: number): number {
  let v = x >>> 0;
  v ^= v << 13;
  v >>>= 0;
  v ^= v >>> 17;
  v ^= v << 5;
  return v >>> 0;
}

export const DEFAULT_SEED = 0x9e3779b9;
