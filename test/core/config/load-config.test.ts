// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  loadConfig,
  parseArgs,
  parseKubeProxyConfiguration,
  resolveConfig,
} from '../../../core/config/index.js';
import type { ProxyConfig } from '../../../core/model/proxy-config.js';

const HEADER = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';

function fromFile(yaml: string, argv: string[] = [], hostname = 'host-1'): ProxyConfig {
  const cmd = parseArgs(argv);
  if (cmd.kind !== 'run') throw new Error('expected run');
  return resolveConfig(cmd.flags, parseKubeProxyConfiguration(HEADER + yaml), hostname).config;
}

function fileError(text: string): string {
  try {
    parseKubeProxyConfiguration(text, 'config file k.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

/** What `kube-proxy --write-config-to` prints for a default v1alpha1 configuration (1.31). */
const KUBE_PROXY_DEFAULT_DUMP = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 10
  contentType: application/vnd.kubernetes.protobuf
  kubeconfig: ""
  qps: 5
clusterCIDR: ""
configSyncPeriod: 15m0s
conntrack:
  maxPerCore: 32768
  min: 131072
  tcpBeLiberal: false
  tcpCloseWaitTimeout: 1h0m0s
  tcpEstablishedTimeout: 24h0m0s
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: 0.0.0.0:10256
hostnameOverride: ""
iptables:
  localhostNodePorts: true
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 1s
  syncPeriod: 30s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 30s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 5s
  format: text
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: 127.0.0.1:10249
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 1s
  syncPeriod: 30s
nodePortAddresses: null
oomScoreAdj: -999
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`;

describe('KubeProxyConfiguration file', () => {
  it("accepts kube-proxy's own full default dump, and it resolves to the same defaults as no file", () => {
    const cmd = parseArgs([]);
    if (cmd.kind !== 'run') throw new Error('run');
    const file = parseKubeProxyConfiguration(KUBE_PROXY_DEFAULT_DUMP);
    expect(file.warnings).toEqual([
      'config file: bindAddress is ignored (node IPs come from the Node object)',
    ]);
    const withFile = resolveConfig(cmd.flags, file, 'h').config;
    const without = resolveConfig(cmd.flags, undefined, 'h').config;
    expect(withFile).toEqual(without);
  });

  it('an empty configuration gets the defaults', () => {
    const c = fromFile('');
    expect(c.mode).toBe('nftables');
    expect(c.syncPeriodMs).toBe(30_000);
    expect(c.minSyncPeriodMs).toBe(1000);
    expect(c.masqueradeBit).toBe(14);
    expect(c.healthzBindAddress).toBe('0.0.0.0:10256');
    expect(c.metricsBindAddress).toBe('127.0.0.1:10249');
    expect(c.hostname).toBe('host-1');
  });

  it('maps every field switchyard uses', () => {
    const c = fromFile(`
mode: iptables
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
hostnameOverride: Node-A
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
nodePortAddresses: [192.168.77.0/24]
healthzBindAddress: 192.168.77.2
metricsBindAddress: "[::]:9000"
logging:
  verbosity: 3
iptables:
  masqueradeAll: true
  masqueradeBit: 12
  localhostNodePorts: false
  syncPeriod: 1m
  minSyncPeriod: 250ms
ipvs:
  scheduler: wrr
  strictARP: true
  excludeCIDRs: [10.1.0.0/16]
  tcpTimeout: 900s
  tcpFinTimeout: 2m
  udpTimeout: 300s
conntrack:
  maxPerCore: 0
  min: 1000
  tcpEstablishedTimeout: 2h
  tcpCloseWaitTimeout: 30m
  udpTimeout: 30s
  udpStreamTimeout: 2m
`);
    expect(c).toMatchObject({
      mode: 'iptables',
      kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf',
      hostname: 'node-a',
      clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
      nodePortAddresses: ['192.168.77.0/24'],
      healthzBindAddress: '192.168.77.2:10256',
      metricsBindAddress: '[::]:9000',
      verbosity: 3,
      masqueradeAll: true,
      masqueradeBit: 12,
      syncPeriodMs: 60_000,
      minSyncPeriodMs: 250,
      iptables: { variant: 'auto', localhostNodePorts: false },
      ipvs: {
        scheduler: 'wrr',
        strictARP: true,
        excludeCIDRs: ['10.1.0.0/16'],
        tcpTimeoutMs: 900_000,
        tcpFinTimeoutMs: 120_000,
        udpTimeoutMs: 300_000,
      },
      conntrack: {
        maxPerCore: 0,
        min: 1000,
        tcpEstablishedTimeoutMs: 7_200_000,
        tcpCloseWaitTimeoutMs: 1_800_000,
        udpTimeoutMs: 30_000,
        udpStreamTimeoutMs: 120_000,
      },
    });
  });

  it('the mode picks the section for sync periods and masquerading (kube-proxy conversion)', () => {
    const sections = `
iptables: { syncPeriod: 11s, minSyncPeriod: 2s, masqueradeAll: true, masqueradeBit: 11 }
nftables: { syncPeriod: 22s, minSyncPeriod: 3s, masqueradeAll: false, masqueradeBit: 22 }
ipvs: { syncPeriod: 33s, minSyncPeriod: 4s }
`;
    expect(fromFile(`mode: nftables\n${sections}`)).toMatchObject({
      syncPeriodMs: 22_000,
      minSyncPeriodMs: 3000,
      masqueradeAll: false,
      masqueradeBit: 22,
    });
    expect(fromFile(`mode: iptables\n${sections}`)).toMatchObject({
      syncPeriodMs: 11_000,
      minSyncPeriodMs: 2000,
      masqueradeAll: true,
      masqueradeBit: 11,
    });
    expect(fromFile(`mode: ipvs\n${sections}`)).toMatchObject({
      syncPeriodMs: 33_000,
      minSyncPeriodMs: 4000,
      masqueradeAll: true,
      masqueradeBit: 11,
    });
    // userspace and plugins read the iptables section, as kube-proxy's default branch does
    expect(fromFile(`mode: userspace\n${sections}`)).toMatchObject({
      syncPeriodMs: 11_000,
      masqueradeBit: 11,
    });
    // no mode in the file: ours (nftables)
    expect(fromFile(sections)).toMatchObject({ mode: 'nftables', syncPeriodMs: 22_000 });
  });

  it("ipvs.minSyncPeriod defaults to 0 in a file (kube-proxy's defaulting); a zero iptables.minSyncPeriod means 1s", () => {
    expect(fromFile('mode: ipvs\n').minSyncPeriodMs).toBe(0);
    expect(fromFile('mode: iptables\niptables: { minSyncPeriod: 0s }\n').minSyncPeriodMs).toBe(1000);
    expect(fromFile('iptables: { syncPeriod: 0s }\n', ['--proxy-mode=iptables']).syncPeriodMs).toBe(30_000);
  });

  it('top-level syncPeriod/minSyncPeriod are accepted; the mode section wins over them', () => {
    expect(fromFile('syncPeriod: 40s\nminSyncPeriod: 0s\n')).toMatchObject({
      syncPeriodMs: 40_000,
      minSyncPeriodMs: 0,
    });
    expect(fromFile('syncPeriod: 40s\nnftables: { syncPeriod: 50s }\n').syncPeriodMs).toBe(50_000);
  });

  it('null values are unset, as in Go', () => {
    const c = fromFile(
      'nodePortAddresses: null\nipvs: { excludeCIDRs: null }\nconntrack: { maxPerCore: null }\n',
    );
    expect(c.nodePortAddresses).toEqual(['primary']);
    expect(c.ipvs.excludeCIDRs).toEqual([]);
    expect(c.conntrack.maxPerCore).toBe(32768);
  });

  it('warns about accepted fields that would change behaviour', () => {
    const file = parseKubeProxyConfiguration(
      HEADER + 'featureGates: { Foo: true }\nserviceProxyName: other\nconntrack: { tcpBeLiberal: true }\n',
      'f',
    );
    expect(file.warnings).toHaveLength(3);
    expect(file.warnings[0]).toBe('f: featureGates are ignored (switchyard has none): Foo');
  });

  it('detectLocalMode and detectLocal are read and checked', () => {
    const file = parseKubeProxyConfiguration(
      HEADER +
        'detectLocalMode: InterfaceNamePrefix\ndetectLocal: { interfaceNamePrefix: veth, bridgeInterface: cbr0 }\n',
      'f',
    );
    expect(file.warnings).toEqual([]);
    expect(file.layer.detectLocalMode).toBe('InterfaceNamePrefix');
    expect(file.layer.podInterfaceNamePrefix).toBe('veth');
    expect(file.layer.podBridgeInterface).toBe('cbr0');
    expect(() => parseKubeProxyConfiguration(HEADER + 'detectLocalMode: Bridge\n', 'f')).toThrow(
      /field "detectLocalMode": must be one of ClusterCIDR/,
    );
    expect(() =>
      parseKubeProxyConfiguration(HEADER + 'detectLocal: { interfaceNamePrefix: "veth*" }\n', 'f'),
    ).toThrow(/field "detectLocal.interfaceNamePrefix"/);
  });
});

describe('KubeProxyConfiguration file errors (one line, naming the field)', () => {
  const cases: Record<string, [string, RegExp]> = {
    'unknown top-level field': [HEADER + 'mod: ipvs\n', /^config file k\.yaml: unknown field "mod"$/],
    'unknown nested field': [
      HEADER + 'iptables:\n  masqueradeAl: true\n',
      /unknown field "iptables\.masqueradeAl"/,
    ],
    'unknown field in conntrack': [
      HEADER + 'conntrack: { maxPerCpu: 1 }\n',
      /unknown field "conntrack\.maxPerCpu"/,
    ],
    'wrong apiVersion': [
      'apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n',
      /unsupported apiVersion "kubeproxy\.config\.k8s\.io\/v1alpha2" \(want kubeproxy\.config\.k8s\.io\/v1alpha1\)/,
    ],
    'missing apiVersion': ['kind: KubeProxyConfiguration\n', /unsupported apiVersion ""/],
    'wrong kind': [
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n',
      /unsupported kind "KubeletConfiguration"/,
    ],
    'not a map': ['- a\n- b\n', /not a KubeProxyConfiguration object/],
    'invalid YAML': [HEADER + 'mode: [\n', /invalid YAML/],
    'duplicate key': [HEADER + 'mode: ipvs\nmode: iptables\n', /invalid YAML/],
    'duration as number': [
      HEADER + 'iptables: { syncPeriod: 30 }\n',
      /field "iptables\.syncPeriod" must be a duration string/,
    ],
    'bad duration': [
      HEADER + 'nftables: { minSyncPeriod: soon }\n',
      /field "nftables\.minSyncPeriod" must be a duration/,
    ],
    'negative duration': [
      HEADER + 'ipvs: { tcpTimeout: -1s }\n',
      /field "ipvs\.tcpTimeout" must be a non-negative duration/,
    ],
    'bool as string': [
      HEADER + 'iptables: { masqueradeAll: "yes" }\n',
      /field "iptables\.masqueradeAll" must be true or false/,
    ],
    'int as string': [
      HEADER + 'iptables: { masqueradeBit: "14" }\n',
      /field "iptables\.masqueradeBit" must be an integer/,
    ],
    'masqueradeBit out of range': [
      HEADER + 'nftables: { masqueradeBit: 40 }\n',
      /field "nftables\.masqueradeBit" must be within \[0, 31\]/,
    ],
    'bad clusterCIDR': [
      HEADER + 'clusterCIDR: 10.244.0.0\n',
      /field "clusterCIDR": "10\.244\.0\.0" is not a valid CIDR/,
    ],
    'bad nodePortAddresses': [HEADER + 'nodePortAddresses: [eth0]\n', /field "nodePortAddresses"/],
    'nodePortAddresses not a list': [
      HEADER + 'nodePortAddresses: primary\n',
      /field "nodePortAddresses" must be a list of strings/,
    ],
    'bad healthzBindAddress': [
      HEADER + 'healthzBindAddress: localhost:1\n',
      /field "healthzBindAddress": "localhost" is not an IP/,
    ],
    'unknown scheduler': [
      HEADER + 'ipvs: { scheduler: fastest }\n',
      /field "ipvs\.scheduler": unknown scheduler "fastest"/,
    ],
    'section not an object': [HEADER + 'iptables: true\n', /field "iptables" must be an object/],
    'negative conntrack min': [
      HEADER + 'conntrack: { min: -1 }\n',
      /field "conntrack\.min" must not be negative/,
    ],
    'featureGates not bools': [
      HEADER + 'featureGates: { Foo: "on" }\n',
      /field "featureGates" must be a map/,
    ],
  };
  for (const [name, [text, re]] of Object.entries(cases)) {
    it(name, () => {
      expect(fileError(text)).toMatch(re);
    });
  }
});

describe('precedence: defaults ← file ← flags given on the command line', () => {
  const file = `
mode: ipvs
hostnameOverride: from-file
clusterCIDR: 10.244.0.0/16
healthzBindAddress: 0.0.0.0:1111
ipvs: { syncPeriod: 33s, minSyncPeriod: 3s, scheduler: lc }
iptables: { masqueradeAll: false, masqueradeBit: 11 }
conntrack: { min: 5 }
`;
  it('file values hold when no flag is given', () => {
    expect(fromFile(file)).toMatchObject({
      mode: 'ipvs',
      hostname: 'from-file',
      clusterCIDRs: ['10.244.0.0/16'],
      healthzBindAddress: '0.0.0.0:1111',
      syncPeriodMs: 33_000,
      minSyncPeriodMs: 3000,
      masqueradeBit: 11,
      ipvs: { scheduler: 'lc' },
      conntrack: { min: 5 },
    });
  });

  it('explicit flags override the file', () => {
    const c = fromFile(file, [
      '--proxy-mode=nftables',
      '--hostname-override=from-flag',
      '--cluster-cidr=10.245.0.0/16',
      '--healthz-bind-address=127.0.0.1:2222',
      '--masquerade-all',
      '--iptables-masquerade-bit=9',
      '--ipvs-scheduler=sh',
      '--conntrack-min=6',
      '--min-sync-period=100ms',
    ]);
    expect(c).toMatchObject({
      mode: 'nftables',
      hostname: 'from-flag',
      clusterCIDRs: ['10.245.0.0/16'],
      healthzBindAddress: '127.0.0.1:2222',
      masqueradeAll: true,
      masqueradeBit: 9,
      minSyncPeriodMs: 100,
      // the file's nftables section is empty, so the default sync period applies after the mode change
      syncPeriodMs: 30_000,
      ipvs: { scheduler: 'sh' },
      conntrack: { min: 6 },
    });
  });

  it("a mode-specific flag beats the file's section for that mode", () => {
    expect(fromFile(file, ['--ipvs-sync-period=44s']).syncPeriodMs).toBe(44_000);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads --config from disk, warns, and uses os hostname when no override', async () => {
    const path = join(dir, 'kube-proxy.yaml');
    writeFileSync(path, HEADER + 'mode: iptables\nfeatureGates: { X: true }\n');
    const cmd = parseArgs(['--config', path, '--profiling']);
    if (cmd.kind !== 'run') throw new Error('run');
    const { config, warnings } = await loadConfig(cmd.flags, { hostname: () => ' Worker-7.Example ' });
    expect(config.mode).toBe('iptables');
    expect(config.hostname).toBe('worker-7.example');
    expect(warnings).toEqual([`config file ${path}: featureGates are ignored (switchyard has none): X`]);
    expect(cmd.warnings).toEqual(['--profiling is a kube-proxy flag that switchyard accepts and ignores']);
  });

  it('a missing --config file is a one-line ConfigError', async () => {
    const cmd = parseArgs([`--config=${join(dir, 'nope.yaml')}`]);
    if (cmd.kind !== 'run') throw new Error('run');
    await expect(loadConfig(cmd.flags)).rejects.toThrow(/^--config: cannot read .*nope\.yaml: ENOENT$/);
  });

  it('without --config, the real host name is used', async () => {
    const cmd = parseArgs([]);
    if (cmd.kind !== 'run') throw new Error('run');
    const { config } = await loadConfig(cmd.flags);
    expect(config.hostname).toMatch(/^[a-z0-9.-]+$/);
    expect(config.hostname.length).toBeGreaterThan(0);
  });
});
