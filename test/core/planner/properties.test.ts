/** Property tests: the planner never throws on garbage, and IP text round-trips. */
import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { KubeEndpointSlice, KubeService } from '../../../core/model/kube.js';
import { formatIP, normalizeIP, parseIP } from '../../../core/net/ip.js';
import { endpoint, makeNode, makeService, makeSlice, NODE, port } from '../../support/fixtures.js';
import { planOf } from './helpers.js';

const good = makeService({
  name: 'good',
  clusterIP: '10.96.0.20',
  type: 'NodePort',
  ports: [port('http', 80, { nodePort: 30080 })],
});
const goodSlice = makeSlice({
  service: 'good',
  endpoints: [endpoint('10.244.1.20', { nodeName: NODE }), '10.244.2.20'],
});
const baseline = [
  ...planOf({ services: [good], slices: [goodSlice], node: makeNode() }).snapshot.servicePorts.values(),
];

/** Replaces the value at a random path of a JSON-ish object with garbage. */
function corrupt<T>(obj: T, path: (string | number)[], value: unknown): T {
  const copy = structuredClone(obj) as unknown;
  let cur = copy as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) {
    const next = cur[path[i] as string];
    if (typeof next !== 'object' || next === null) return copy as T;
    cur = next as Record<string | number, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
  return copy as T;
}

const garbage = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer({ min: -100000, max: 100000 }),
  fc.double(),
  fc.string(),
  fc.boolean(),
  fc.constantFrom(
    'None',
    '',
    'TCP',
    'Local',
    'ClientIP',
    '10.96.0.1',
    'fd00::1',
    '0.0.0.0/0',
    'IPv6',
    'FQDN',
  ),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string(), fc.integer(), fc.constant(null)), {
    maxKeys: 3,
  }),
);

const servicePaths: (string | number)[][] = [
  ['spec'],
  ['spec', 'type'],
  ['spec', 'clusterIP'],
  ['spec', 'clusterIPs'],
  ['spec', 'clusterIPs', 0],
  ['spec', 'ports'],
  ['spec', 'ports', 0],
  ['spec', 'ports', 0, 'port'],
  ['spec', 'ports', 0, 'protocol'],
  ['spec', 'ports', 0, 'name'],
  ['spec', 'ports', 0, 'nodePort'],
  ['spec', 'externalIPs'],
  ['spec', 'loadBalancerSourceRanges'],
  ['spec', 'sessionAffinity'],
  ['spec', 'sessionAffinityConfig'],
  ['spec', 'externalTrafficPolicy'],
  ['spec', 'internalTrafficPolicy'],
  ['spec', 'healthCheckNodePort'],
  ['status'],
  ['status', 'loadBalancer'],
  ['status', 'loadBalancer', 'ingress'],
];
const slicePaths: (string | number)[][] = [
  ['addressType'],
  ['ports'],
  ['ports', 0],
  ['ports', 0, 'port'],
  ['ports', 0, 'name'],
  ['endpoints'],
  ['endpoints', 0],
  ['endpoints', 0, 'addresses'],
  ['endpoints', 0, 'addresses', 0],
  ['endpoints', 0, 'conditions'],
  ['endpoints', 0, 'conditions', 'ready'],
  ['endpoints', 0, 'hints'],
  ['endpoints', 0, 'nodeName'],
  ['endpoints', 0, 'targetRef'],
];

describe('planner robustness', () => {
  it('never throws, and never changes another Service', () => {
    const bad = makeService({
      name: 'bad',
      clusterIP: '10.96.0.30',
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      externalIPs: ['172.16.77.50'],
      loadBalancerSourceRanges: ['203.0.113.0/25'],
      ports: [port('http', 80, { nodePort: 30081 })],
      status: { loadBalancer: { ingress: [{ ip: '198.51.100.7' }] } },
    });
    const badSlice = makeSlice({
      service: 'bad',
      endpoints: [endpoint('10.244.3.1', { nodeName: NODE, zoneHints: ['z'] })],
    });
    fc.assert(
      fc.property(
        fc.constantFrom(...servicePaths),
        garbage,
        fc.constantFrom(...slicePaths),
        garbage,
        (sPath, sValue, ePath, eValue) => {
          const svc = corrupt<KubeService>(bad, sPath, sValue);
          const slice = corrupt<KubeEndpointSlice>(badSlice, ePath, eValue);
          const r = planOf({ services: [svc, good], slices: [slice, goodSlice], node: makeNode() });
          const others = [...r.snapshot.servicePorts.values()].filter((p) => p.serviceKey === 'default/good');
          expect(others).toEqual(baseline);
          for (const p of r.snapshot.servicePorts.values()) {
            // Verdict invariants.
            if (p.internal === 'forward') expect(p.internalEndpoints.length).toBeGreaterThan(0);
            if (p.external === 'forward') expect(p.externalEndpoints.length).toBeGreaterThan(0);
            expect(p.port).toBeGreaterThanOrEqual(1);
            expect(p.port).toBeLessThanOrEqual(65535);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('IP text', () => {
  const v6bytes = fc.uint8Array({ minLength: 16, maxLength: 16 });

  it('IPv6: format then parse gives the same bytes; the text is valid and canonical', () => {
    fc.assert(
      fc.property(v6bytes, (bytes) => {
        const ip = { family: 'IPv6' as const, bytes: [...bytes] };
        const text = formatIP(ip);
        expect(isIPv6(text)).toBe(true);
        const back = parseIP(text);
        const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
        if (mapped) expect(back?.family).toBe('IPv4');
        else {
          expect(back?.bytes).toEqual([...bytes]);
          expect(normalizeIP(text.toUpperCase())).toBe(text);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('normalizeIP is idempotent', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string()), (s) => {
        const n = normalizeIP(s);
        if (n !== undefined) expect(normalizeIP(n)).toBe(n);
      }),
      { numRuns: 2000 },
    );
  });

  it('every address fast-check calls valid parses', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (s) => {
        expect(parseIP(s)).toBeDefined();
      }),
      { numRuns: 2000 },
    );
  });
});
