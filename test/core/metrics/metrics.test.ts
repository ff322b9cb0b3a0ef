import { register as globalRegistry } from 'prom-client';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  Metrics,
  NETWORK_PROGRAMMING_BUCKETS,
  SYNC_DURATION_BUCKETS,
} from '../../../core/metrics/metrics.js';
import type { Snapshot } from '../../../core/model/snapshot.js';
import { servicePort } from '../pipeline/fakes.js';

function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

function snapshotOf(ports: ReturnType<typeof servicePort>[]): Snapshot {
  return {
    generation: 1,
    nodeName: 'node-a',
    nodeLabels: {},
    nodeIPs: { IPv4: ['192.168.77.2'], IPv6: ['fd00::2'] },
    families: ['IPv4', 'IPv6'],
    clusterCIDRs: { IPv4: [], IPv6: [] },
    masqueradeAll: false,
    nodePortAddresses: { IPv4: { kind: 'all' }, IPv6: { kind: 'all' } },
    servicePorts: new Map(ports.map((p) => [p.id, p])),
    healthChecks: [],
  };
}

describe('Metrics', () => {
  it('uses its own registry, never the global one, and two instances coexist', async () => {
    const a = new Metrics({ mode: 'nftables' }, { defaultMetrics: false });
    const b = new Metrics({ mode: 'nftables' }, { defaultMetrics: false });
    a.syncSucceeded({ seconds: 0.5, full: true, families: ['IPv4'], atMs: 1_700_000_000_000 });
    expect(await globalRegistry.metrics()).not.toContain('kubeproxy_');
    expect(await a.exposition()).toContain(
      'kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} 1',
    );
    expect(await b.exposition()).not.toContain(
      'kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}',
    );
  });

  it("exposes kube-proxy's names, types and help texts", async () => {
    const m = new Metrics({ mode: 'nftables' }, { defaultMetrics: false });
    const text = await m.exposition();
    const expected: [string, string, string][] = [
      ['kubeproxy_sync_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds'],
      [
        'kubeproxy_sync_full_proxy_rules_duration_seconds',
        'histogram',
        'SyncProxyRules latency in seconds for full resyncs',
      ],
      [
        'kubeproxy_sync_partial_proxy_rules_duration_seconds',
        'histogram',
        'SyncProxyRules latency in seconds for partial resyncs',
      ],
      [
        'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
        'gauge',
        'The last time proxy rules were successfully synced',
      ],
      [
        'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
        'gauge',
        'The last time a sync of proxy rules was queued',
      ],
      [
        'kubeproxy_network_programming_duration_seconds',
        'histogram',
        'In Cluster Network Programming Latency in seconds',
      ],
      [
        'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
        'gauge',
        'Pending proxy rules Endpoint changes',
      ],
      [
        'kubeproxy_sync_proxy_rules_endpoint_changes_total',
        'counter',
        'Cumulative proxy rules Endpoint changes',
      ],
      ['kubeproxy_sync_proxy_rules_service_changes_pending', 'gauge', 'Pending proxy rules Service changes'],
      [
        'kubeproxy_sync_proxy_rules_service_changes_total',
        'counter',
        'Cumulative proxy rules Service changes',
      ],
      [
        'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
        'gauge',
        'Number of services with a Local traffic policy and no endpoints',
      ],
      ['kubeproxy_proxy_healthz_total', 'counter', 'Cumulative proxy healthz HTTP status'],
      ['kubeproxy_proxy_livez_total', 'counter', 'Cumulative proxy livez HTTP status'],
      [
        'kubeproxy_sync_proxy_rules_nftables_sync_failures_total',
        'counter',
        'Cumulative proxy nftables sync failures',
      ],
      [
        'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total',
        'counter',
        'Cumulative proxy nftables cleanup failures',
      ],
      ['switchyard_sync_failures_total', 'counter', 'Cumulative failed syncs of the proxy backend'],
      [
        'switchyard_skipped_objects_total',
        'counter',
        'Malformed or unsupported Kubernetes objects (or parts of them) skipped by the planner',
      ],
      ['switchyard_backend_info', 'gauge', 'The data-plane backend in use (value is always 1)'],
    ];
    for (const [name, type, help] of expected) {
      expect(text, name).toContain(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`);
    }
    // iptables-only metrics are not registered in nftables mode, as upstream
    expect(text).not.toContain('kubeproxy_sync_proxy_rules_iptables');
  });

  it('registers the mode-specific metrics upstream registers for each mode', async () => {
    const ipt = await new Metrics({ mode: 'iptables' }, { defaultMetrics: false }).exposition();
    for (const name of [
      'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
      'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
      'kubeproxy_sync_proxy_rules_iptables_total',
      'kubeproxy_sync_proxy_rules_iptables_last',
    ])
      expect(ipt).toContain(`# TYPE ${name} `);
    expect(ipt).not.toContain('nftables');
    const ipvs = await new Metrics({ mode: 'ipvs' }, { defaultMetrics: false }).exposition();
    expect(ipvs).toContain('# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter');
    expect(ipvs).not.toContain('kubeproxy_sync_proxy_rules_iptables_total');
    const user = await new Metrics({ mode: 'userspace' }, { defaultMetrics: false }).exposition();
    expect(user).not.toContain('iptables');
    expect(user).not.toContain('nftables');
  });

  it("uses kube-proxy's buckets", async () => {
    expect(SYNC_DURATION_BUCKETS).toHaveLength(15);
    expect(SYNC_DURATION_BUCKETS[0]).toBe(0.001);
    expect(SYNC_DURATION_BUCKETS[14]).toBeCloseTo(16.384, 10);
    expect(NETWORK_PROGRAMMING_BUCKETS).toHaveLength(1 + 2 + 59 + 12 + 7);
    expect(NETWORK_PROGRAMMING_BUCKETS.slice(0, 5)).toEqual([0, 0.25, 0.5, 1, 2]);
    expect(NETWORK_PROGRAMMING_BUCKETS.slice(-8)).toEqual([115, 120, 150, 180, 210, 240, 270, 300]);
    const m = new Metrics({ mode: 'nftables' }, { defaultMetrics: false });
    m.syncSucceeded({ seconds: 0.003, full: false, families: ['IPv4'], atMs: 0 });
    m.networkProgrammed(1.5, 'IPv6');
    const text = await m.exposition();
    expect(lines(text, 'kubeproxy_sync_proxy_rules_duration_seconds_bucket')).toHaveLength(16);
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.002",ip_family="IPv4"} 0',
    );
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004",ip_family="IPv4"} 1',
    );
    expect(text).toContain('kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"} 1');
    expect(text).not.toContain('kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}');
    expect(lines(text, 'kubeproxy_network_programming_duration_seconds_bucket')).toHaveLength(82);
    expect(text).toContain(
      'kubeproxy_network_programming_duration_seconds_bucket{le="1",ip_family="IPv6"} 0',
    );
    expect(text).toContain(
      'kubeproxy_network_programming_duration_seconds_bucket{le="2",ip_family="IPv6"} 1',
    );
  });

  it('records per-family successes, timestamps in seconds, failures and the mode counter', async () => {
    const m = new Metrics({ mode: 'iptables' }, { defaultMetrics: false });
    m.syncSucceeded({ seconds: 1, full: true, families: ['IPv4', 'IPv6'], atMs: 1_700_000_000_500 });
    m.syncQueued(1_700_000_000_000, ['IPv4']);
    m.syncFailed(['IPv4']);
    m.iptablesRules('IPv4', 'nat', 1234, 56);
    m.iptablesPartialRestoreFailed('IPv4');
    const text = await m.exposition();
    expect(text).toContain('kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv6"} 1');
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1700000000.5',
    );
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"} 1700000000',
    );
    expect(text).toContain('switchyard_sync_failures_total{ip_family="IPv4"} 1');
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv4"} 1');
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_total{ip_family="IPv4",table="nat"} 1234');
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_last{ip_family="IPv4",table="nat"} 56');
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total{ip_family="IPv4"} 1',
    );
  });

  it('tracks change totals and pending counts', async () => {
    const m = new Metrics({ mode: 'nftables' }, { defaultMetrics: false });
    m.changesSeen(2, 5);
    m.changesSeen(1, 0);
    let text = await m.exposition();
    expect(text).toContain('kubeproxy_sync_proxy_rules_service_changes_total 3');
    expect(text).toContain('kubeproxy_sync_proxy_rules_service_changes_pending 3');
    expect(text).toContain('kubeproxy_sync_proxy_rules_endpoint_changes_total 5');
    expect(text).toContain('kubeproxy_sync_proxy_rules_endpoint_changes_pending 5');
    m.changesTaken();
    text = await m.exposition();
    expect(text).toContain('kubeproxy_sync_proxy_rules_service_changes_pending 0');
    expect(text).toContain('kubeproxy_sync_proxy_rules_endpoint_changes_pending 0');
    expect(text).toContain('kubeproxy_sync_proxy_rules_service_changes_total 3');
  });

  it('counts Local-policy service ports without local endpoints per family and policy', async () => {
    const m = new Metrics({ mode: 'nftables' }, { defaultMetrics: false });
    const local = servicePort('ns/a:/TCP/IPv4', 'ns/a', 2, {
      internalPolicyLocal: true,
      externalPolicyLocal: true,
    });
    const localV6 = servicePort('ns/a:/TCP/IPv6', 'ns/a', 2, { family: 'IPv6', externalPolicyLocal: true });
    const ok = servicePort('ns/b:/TCP/IPv4', 'ns/b', 1, { internalPolicyLocal: true });
    const okWithLocal = { ...ok, localEndpoints: ok.clusterEndpoints };
    m.recordSnapshot(snapshotOf([local, localV6, okWithLocal]));
    let text = await m.exposition();
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="internal"} 1',
    );
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="external"} 1',
    );
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv6",traffic_policy="internal"} 0',
    );
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv6",traffic_policy="external"} 1',
    );
    m.recordSnapshot(snapshotOf([okWithLocal]));
    text = await m.exposition();
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="internal"} 0',
    );
    expect(text).toContain(
      'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv6",traffic_policy="external"} 0',
    );
  });

  it('keeps only the current backend_info pair, counts skips and healthz codes', async () => {
    const m = new Metrics({ mode: 'iptables' }, { defaultMetrics: false });
    m.backendInfo('iptables', 'nft');
    m.backendInfo('iptables', 'legacy');
    m.skipped('Service', 'invalid clusterIP');
    m.skipped('Service', 'invalid clusterIP');
    m.healthzServed(200);
    m.healthzServed(503);
    m.livezServed(200);
    const text = await m.exposition();
    expect(text).toContain('switchyard_backend_info{backend="iptables",variant="legacy"} 1');
    expect(text).not.toContain('variant="nft"');
    expect(text).toContain('switchyard_skipped_objects_total{kind="Service",reason="invalid clusterIP"} 2');
    expect(text).toContain('kubeproxy_proxy_healthz_total{code="200"} 1');
    expect(text).toContain('kubeproxy_proxy_healthz_total{code="503"} 1');
    expect(text).toContain('kubeproxy_proxy_livez_total{code="200"} 1');
  });

  it('includes process and Node.js default metrics', async () => {
    const text = await new Metrics({ mode: 'nftables' }).exposition();
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_heap_size_total_bytes gauge');
  });

  describe('BackendMetrics (SDK)', () => {
    function withLog() {
      const logs: { msg: string }[] = [];
      const logger = pino(
        { level: 'debug' },
        { write: (s: string) => void logs.push(JSON.parse(s) as { msg: string }) },
      );
      const m = new Metrics({ mode: 'userspace' }, { defaultMetrics: false, logger });
      return { m, logs };
    }

    it('prefixes names, adds the backend label, sets gauges and adds to counters', async () => {
      const { m } = withLog();
      const bm = m.backendMetrics('acme');
      bm.gauge('flows', 'Open flows', 7);
      bm.gauge('flows', 'Open flows', 9);
      bm.counter('packets_total', 'Packets handled', 3, { proto: 'tcp' });
      bm.counter('packets_total', 'Packets handled', undefined, { proto: 'tcp' });
      m.backendMetrics('other').gauge('flows', 'Open flows', 1);
      const text = await m.exposition();
      expect(text).toContain(
        '# HELP switchyard_backend_flows Open flows\n# TYPE switchyard_backend_flows gauge',
      );
      expect(text).toContain('switchyard_backend_flows{backend="acme"} 9');
      expect(text).toContain('switchyard_backend_flows{backend="other"} 1');
      expect(text).toContain('# TYPE switchyard_backend_packets_total counter');
      expect(text).toContain('switchyard_backend_packets_total{backend="acme",proto="tcp"} 4');
    });

    it('drops bad calls (invalid name, reserved label, label change, type clash, negative) and logs each once', async () => {
      const { m, logs } = withLog();
      const bm = m.backendMetrics('acme');
      bm.gauge('bad name!', 'x', 1);
      bm.gauge('bad name!', 'x', 1);
      bm.gauge('g', 'x', 1, { backend: 'spoof' });
      bm.gauge('g', 'x', 1, { a: '1' });
      bm.gauge('g', 'x', 2, { b: '1' });
      bm.counter('g', 'x', 1, { a: '1' });
      bm.counter('c', 'x', -1);
      bm.gauge('h', 'x', Number.NaN);
      const text = await m.exposition();
      expect(text).not.toContain('bad');
      expect(text).toContain('switchyard_backend_g{backend="acme",a="1"} 1');
      expect(text).not.toContain('spoof');
      expect(text).not.toContain('switchyard_backend_c');
      expect(text).not.toContain('switchyard_backend_h');
      expect(logs.filter((l) => l.msg.includes('not a valid Prometheus name'))).toHaveLength(1);
      expect(logs.filter((l) => l.msg.includes('reserved'))).toHaveLength(1);
      expect(logs.filter((l) => l.msg.includes('differ from its first use'))).toHaveLength(1);
      expect(logs.filter((l) => l.msg.includes('another type'))).toHaveLength(1);
      expect(logs.filter((l) => l.msg.includes('>= 0'))).toHaveLength(1);
      expect(logs.filter((l) => l.msg.includes('finite number,'))).toHaveLength(1);
    });
  });
});
