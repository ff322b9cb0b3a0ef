// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  FLAGS,
  parseArgs,
  resolveConfig,
  type ParsedCommand,
} from '../../../core/config/index.js';
import type { ProxyConfig } from '../../../core/model/proxy-config.js';

function run(argv: string[]): Extract<ParsedCommand, { kind: 'run' }> {
  const cmd = parseArgs(argv);
  if (cmd.kind !== 'run') throw new Error(`expected run, got ${cmd.kind}`);
  return cmd;
}

function config(argv: string[], hostname = 'Node-A'): ProxyConfig {
  return resolveConfig(run(argv).flags, undefined, hostname).config;
}

function configError(argv: string[]): ConfigError {
  try {
    const cmd = parseArgs(argv);
    if (cmd.kind === 'run' || cmd.kind === 'plan' || cmd.kind === 'trace')
      resolveConfig(cmd.flags, undefined, 'node-a');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${argv.join(' ')}`);
}

describe('parseArgs: defaults', () => {
  it('no flags: run with kube-proxy defaults and nftables', () => {
    const c = config([]);
    expect(c).toEqual({
      mode: 'nftables',
      hostname: 'node-a',
      clusterCIDRs: [],
      detectLocal: { mode: 'ClusterCIDR', bridgeInterface: '', interfaceNamePrefix: '' },
      nodePortAddresses: ['primary'],
      masqueradeAll: false,
      masqueradeBit: 14,
      healthzBindAddress: '0.0.0.0:10256',
      metricsBindAddress: '127.0.0.1:10249',
      minSyncPeriodMs: 1000,
      syncPeriodMs: 30000,
      cleanup: false,
      verbosity: 0,
      plugins: [],
      iptables: { variant: 'auto', localhostNodePorts: true },
      ipvs: {
        scheduler: 'rr',
        strictARP: false,
        tcpTimeoutMs: 0,
        tcpFinTimeoutMs: 0,
        udpTimeoutMs: 0,
        excludeCIDRs: [],
      },
      conntrack: {
        maxPerCore: 32768,
        min: 131072,
        tcpEstablishedTimeoutMs: 86_400_000,
        tcpCloseWaitTimeoutMs: 3_600_000,
        udpTimeoutMs: 0,
        udpStreamTimeoutMs: 0,
      },
      backendOptions: {},
    } satisfies ProxyConfig);
  });

  it('detect-local-mode: kube-proxy values, interface names required and checked', () => {
    expect(config(['--detect-local-mode=NodeCIDR']).detectLocal.mode).toBe('NodeCIDR');
    expect(
      config(['--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix=veth']).detectLocal,
    ).toEqual({ mode: 'InterfaceNamePrefix', bridgeInterface: '', interfaceNamePrefix: 'veth' });
    expect(
      config(['--detect-local-mode=BridgeInterface', '--pod-bridge-interface', 'cbr0']).detectLocal,
    ).toEqual({
      mode: 'BridgeInterface',
      bridgeInterface: 'cbr0',
      interfaceNamePrefix: '',
    });
    expect(config(['--detect-local-mode=']).detectLocal.mode).toBe('ClusterCIDR');
    expect(configError(['--detect-local-mode=nodecidr']).message).toMatch(/ClusterCIDR, NodeCIDR/);
    expect(configError(['--detect-local-mode=BridgeInterface']).message).toMatch(/--pod-bridge-interface/);
    expect(configError(['--detect-local-mode=InterfaceNamePrefix']).message).toMatch(
      /--pod-interface-name-prefix/,
    );
    expect(configError(['--pod-interface-name-prefix=veth+']).message).toMatch(/without whitespace/);
    expect(configError(['--pod-bridge-interface=a-very-long-bridge']).message).toMatch(/1–15 bytes/);
    expect(configError(['--pod-bridge-interface=']).message).toMatch(/must not be empty/);
  });

  it('nodeport-addresses defaults to all for iptables and ipvs (kube-proxy), primary otherwise', () => {
    expect(config(['--proxy-mode=iptables']).nodePortAddresses).toEqual(['all']);
    expect(config(['--proxy-mode=ipvs']).nodePortAddresses).toEqual(['all']);
    expect(config(['--proxy-mode=userspace']).nodePortAddresses).toEqual(['primary']);
  });
});

interface ValidCase {
  readonly argv: string[];
  readonly expect: (c: ProxyConfig) => unknown;
  readonly want: unknown;
}

const valid: Record<string, ValidCase> = {
  'proxy-mode =': { argv: ['--proxy-mode=ipvs'], expect: (c) => c.mode, want: 'ipvs' },
  'proxy-mode space': { argv: ['--proxy-mode', 'example-log'], expect: (c) => c.mode, want: 'example-log' },
  kubeconfig: {
    argv: ['--kubeconfig', '/etc/kubernetes/proxy.conf'],
    expect: (c) => c.kubeconfig,
    want: '/etc/kubernetes/proxy.conf',
  },
  master: {
    argv: ['--master=https://192.168.77.2:6443'],
    expect: (c) => c.master,
    want: 'https://192.168.77.2:6443',
  },
  'hostname-override trims and lower-cases': {
    argv: ['--hostname-override', '  Node-B '],
    expect: (c) => c.hostname,
    want: 'node-b',
  },
  'cluster-cidr one': {
    argv: ['--cluster-cidr=10.244.0.0/16'],
    expect: (c) => c.clusterCIDRs,
    want: ['10.244.0.0/16'],
  },
  'cluster-cidr dual stack, canonical': {
    argv: ['--cluster-cidr', '10.244.7.9/16,FD00:0:0:0::/48'],
    expect: (c) => c.clusterCIDRs,
    want: ['10.244.0.0/16', 'fd00::/48'],
  },
  'nodeport-addresses cidrs': {
    argv: ['--nodeport-addresses=192.168.77.0/24,127.0.0.0/8'],
    expect: (c) => c.nodePortAddresses,
    want: ['192.168.77.0/24', '127.0.0.0/8'],
  },
  'nodeport-addresses primary': {
    argv: ['--nodeport-addresses', 'primary'],
    expect: (c) => c.nodePortAddresses,
    want: ['primary'],
  },
  'nodeport-addresses all': {
    argv: ['--nodeport-addresses=all', '--proxy-mode=nftables'],
    expect: (c) => c.nodePortAddresses,
    want: ['all'],
  },
  'nodeport-addresses empty means the default': {
    argv: ['--nodeport-addresses='],
    expect: (c) => c.nodePortAddresses,
    want: ['primary'],
  },
  'masquerade-all bare': { argv: ['--masquerade-all'], expect: (c) => c.masqueradeAll, want: true },
  'masquerade-all=true': { argv: ['--masquerade-all=true'], expect: (c) => c.masqueradeAll, want: true },
  'masquerade-all=false': { argv: ['--masquerade-all=false'], expect: (c) => c.masqueradeAll, want: false },
  'masquerade-all=1 (Go ParseBool)': {
    argv: ['--masquerade-all=1'],
    expect: (c) => c.masqueradeAll,
    want: true,
  },
  'iptables-masquerade-bit': {
    argv: ['--iptables-masquerade-bit', '31'],
    expect: (c) => c.masqueradeBit,
    want: 31,
  },
  'iptables-masquerade-bit 0': {
    argv: ['--iptables-masquerade-bit=0'],
    expect: (c) => c.masqueradeBit,
    want: 0,
  },
  'healthz host:port': {
    argv: ['--healthz-bind-address=127.0.0.1:12345'],
    expect: (c) => c.healthzBindAddress,
    want: '127.0.0.1:12345',
  },
  'healthz bare IP gets 10256': {
    argv: ['--healthz-bind-address', '192.168.77.2'],
    expect: (c) => c.healthzBindAddress,
    want: '192.168.77.2:10256',
  },
  'healthz bare IPv6 gets brackets': {
    argv: ['--healthz-bind-address=::'],
    expect: (c) => c.healthzBindAddress,
    want: '[::]:10256',
  },
  'healthz empty disables': {
    argv: ['--healthz-bind-address='],
    expect: (c) => c.healthzBindAddress,
    want: '',
  },
  'metrics [ipv6]:port': {
    argv: ['--metrics-bind-address', '[::1]:9100'],
    expect: (c) => c.metricsBindAddress,
    want: '[::1]:9100',
  },
  'metrics bare IP gets 10249': {
    argv: ['--metrics-bind-address=0.0.0.0'],
    expect: (c) => c.metricsBindAddress,
    want: '0.0.0.0:10249',
  },
  'healthz-port replaces the port': {
    argv: ['--healthz-port=9999'],
    expect: (c) => c.healthzBindAddress,
    want: '0.0.0.0:9999',
  },
  'metrics-port 0 disables': { argv: ['--metrics-port', '0'], expect: (c) => c.metricsBindAddress, want: '' },
  'min-sync-period 500ms': { argv: ['--min-sync-period=500ms'], expect: (c) => c.minSyncPeriodMs, want: 500 },
  'min-sync-period 0': { argv: ['--min-sync-period', '0'], expect: (c) => c.minSyncPeriodMs, want: 0 },
  'sync-period 1m30s': { argv: ['--sync-period=1m30s'], expect: (c) => c.syncPeriodMs, want: 90_000 },
  'sync-period 1h': { argv: ['--sync-period', '1h'], expect: (c) => c.syncPeriodMs, want: 3_600_000 },
  'sync-period 1.5s': { argv: ['--sync-period', '1.5s'], expect: (c) => c.syncPeriodMs, want: 1500 },
  'iptables-sync-period in nftables mode': {
    argv: ['--iptables-sync-period=10s'],
    expect: (c) => c.syncPeriodMs,
    want: 10_000,
  },
  'iptables-min-sync-period in iptables mode': {
    argv: ['--proxy-mode=iptables', '--iptables-min-sync-period=2s'],
    expect: (c) => c.minSyncPeriodMs,
    want: 2000,
  },
  'ipvs-sync-period in ipvs mode': {
    argv: ['--proxy-mode=ipvs', '--ipvs-sync-period', '45s'],
    expect: (c) => c.syncPeriodMs,
    want: 45_000,
  },
  'ipvs-min-sync-period in ipvs mode': {
    argv: ['--proxy-mode=ipvs', '--ipvs-min-sync-period=0s'],
    expect: (c) => c.minSyncPeriodMs,
    want: 0,
  },
  'ipvs-sync-period ignored in nftables mode': {
    argv: ['--ipvs-sync-period=45s'],
    expect: (c) => c.syncPeriodMs,
    want: 30_000,
  },
  'generic wins over mode-specific': {
    argv: ['--proxy-mode=ipvs', '--ipvs-sync-period=45s', '--sync-period=20s'],
    expect: (c) => c.syncPeriodMs,
    want: 20_000,
  },
  'ipvs-scheduler': { argv: ['--ipvs-scheduler', 'wlc'], expect: (c) => c.ipvs.scheduler, want: 'wlc' },
  'ipvs-scheduler empty means rr': {
    argv: ['--ipvs-scheduler='],
    expect: (c) => c.ipvs.scheduler,
    want: 'rr',
  },
  'ipvs-strict-arp': { argv: ['--ipvs-strict-arp'], expect: (c) => c.ipvs.strictARP, want: true },
  'ipvs-tcp-timeout': { argv: ['--ipvs-tcp-timeout=15m'], expect: (c) => c.ipvs.tcpTimeoutMs, want: 900_000 },
  'ipvs-tcpfin-timeout': {
    argv: ['--ipvs-tcpfin-timeout', '2m'],
    expect: (c) => c.ipvs.tcpFinTimeoutMs,
    want: 120_000,
  },
  'ipvs-udp-timeout': { argv: ['--ipvs-udp-timeout=300ms'], expect: (c) => c.ipvs.udpTimeoutMs, want: 300 },
  'ipvs-exclude-cidrs': {
    argv: ['--ipvs-exclude-cidrs=10.96.0.0/16, 2001:db8::/64'],
    expect: (c) => c.ipvs.excludeCIDRs,
    want: ['10.96.0.0/16', '2001:db8::/64'],
  },
  'iptables-localhost-nodeports=false': {
    argv: ['--iptables-localhost-nodeports=false'],
    expect: (c) => c.iptables.localhostNodePorts,
    want: false,
  },
  'iptables-variant legacy': {
    argv: ['--iptables-variant', 'legacy'],
    expect: (c) => c.iptables.variant,
    want: 'legacy',
  },
  'iptables-variant nft': {
    argv: ['--iptables-variant=nft'],
    expect: (c) => c.iptables.variant,
    want: 'nft',
  },
  'conntrack-max-per-core': {
    argv: ['--conntrack-max-per-core=0'],
    expect: (c) => c.conntrack.maxPerCore,
    want: 0,
  },
  'conntrack-min': { argv: ['--conntrack-min', '65536'], expect: (c) => c.conntrack.min, want: 65536 },
  'conntrack-tcp-timeout-established': {
    argv: ['--conntrack-tcp-timeout-established=2h'],
    expect: (c) => c.conntrack.tcpEstablishedTimeoutMs,
    want: 7_200_000,
  },
  'conntrack-tcp-timeout-close-wait': {
    argv: ['--conntrack-tcp-timeout-close-wait', '60s'],
    expect: (c) => c.conntrack.tcpCloseWaitTimeoutMs,
    want: 60_000,
  },
  'conntrack-udp-timeout': {
    argv: ['--conntrack-udp-timeout=30s'],
    expect: (c) => c.conntrack.udpTimeoutMs,
    want: 30_000,
  },
  'conntrack-udp-timeout-stream': {
    argv: ['--conntrack-udp-timeout-stream=5m'],
    expect: (c) => c.conntrack.udpStreamTimeoutMs,
    want: 300_000,
  },
  'detect-local-mode': {
    argv: ['--detect-local-mode=NodeCIDR'],
    expect: (c) => c.detectLocal.mode,
    want: 'NodeCIDR',
  },
  'pod-bridge-interface': {
    argv: ['--detect-local-mode=BridgeInterface', '--pod-bridge-interface=br0'],
    expect: (c) => c.detectLocal,
    want: { mode: 'BridgeInterface', bridgeInterface: 'br0', interfaceNamePrefix: '' },
  },
  'pod-interface-name-prefix': {
    argv: ['--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix=cali'],
    expect: (c) => c.detectLocal,
    want: { mode: 'InterfaceNamePrefix', bridgeInterface: '', interfaceNamePrefix: 'cali' },
  },
  cleanup: { argv: ['--cleanup'], expect: (c) => c.cleanup, want: true },
  '-v N': { argv: ['-v', '4'], expect: (c) => c.verbosity, want: 4 },
  '-vN': { argv: ['-v2'], expect: (c) => c.verbosity, want: 2 },
  '-v=N': { argv: ['-v=3'], expect: (c) => c.verbosity, want: 3 },
  '--v=N': { argv: ['--v=5'], expect: (c) => c.verbosity, want: 5 },
  '--v N': { argv: ['--v', '1'], expect: (c) => c.verbosity, want: 1 },
  'plugin repeatable': {
    argv: ['--plugin', './plugins/example/index.ts', '--plugin=@vendor/switchyard-ebpf'],
    expect: (c) => c.plugins,
    want: ['./plugins/example/index.ts', '@vendor/switchyard-ebpf'],
  },
  from: {
    argv: ['--from', 'deploy/examples/online-store.yaml'],
    expect: (c) => c.from,
    want: 'deploy/examples/online-store.yaml',
  },
  'backend-opt repeatable, value may contain =': {
    argv: ['--backend-opt', 'example.file=/tmp/a=b.jsonl', '--backend-opt=vendor.level=3'],
    expect: (c) => c.backendOptions,
    want: { 'example.file': '/tmp/a=b.jsonl', 'vendor.level': '3' },
  },
  'the last of a repeated flag wins': {
    argv: ['--proxy-mode=ipvs', '--proxy-mode=iptables'],
    expect: (c) => c.mode,
    want: 'iptables',
  },
};

describe('parseArgs: every flag', () => {
  for (const [name, tc] of Object.entries(valid)) {
    it(name, () => {
      expect(tc.expect(config(tc.argv))).toEqual(tc.want);
    });
  }

  it('the table covers every non-compat flag that sets config', () => {
    const tested = new Set(
      Object.values(valid)
        .flatMap((tc) => tc.argv)
        .filter((a) => a.startsWith('-'))
        .map((a) => a.replace(/^--?/, '').replace(/=.*$/, '').replace(/^v\d$/, 'v')),
    );
    const untested = FLAGS.filter(
      (f) =>
        f.group !== 'compat' &&
        f.group !== 'plan' &&
        f.group !== 'trace' &&
        !['help', 'version', 'config'].includes(f.name),
    )
      .map((f) => f.name)
      .filter((n) => !tested.has(n));
    expect(untested).toEqual([]);
  });
});

const invalid: Record<string, { argv: string[]; message: RegExp }> = {
  'unknown flag': { argv: ['--proxy-mod=ipvs'], message: /^unknown flag: --proxy-mod$/ },
  'unknown shorthand': { argv: ['-x'], message: /unknown shorthand flag: 'x'/ },
  'single-dash long flag': { argv: ['-kubeconfig=/x'], message: /unknown shorthand flag: 'k'/ },
  'missing value': { argv: ['--kubeconfig'], message: /^flag needs an argument: --kubeconfig$/ },
  'bool garbage': { argv: ['--masquerade-all=maybe'], message: /invalid value "maybe" for --masquerade-all/ },
  'cluster-cidr not a CIDR': {
    argv: ['--cluster-cidr=10.244.0.0'],
    message: /--cluster-cidr: "10.244.0.0" is not a valid CIDR/,
  },
  'cluster-cidr bad prefix': { argv: ['--cluster-cidr=10.244.0.0/33'], message: /--cluster-cidr/ },
  'cluster-cidr two IPv4': {
    argv: ['--cluster-cidr=10.244.0.0/16,10.245.0.0/16'],
    message: /one IPv4 and one IPv6/,
  },
  'cluster-cidr three': { argv: ['--cluster-cidr=10.0.0.0/8,fd00::/8,10.1.0.0/16'], message: /at most two/ },
  'nodeport-addresses garbage': {
    argv: ['--nodeport-addresses=eth0'],
    message: /--nodeport-addresses: "eth0" is not a valid CIDR/,
  },
  'nodeport-addresses primary combined': {
    argv: ['--nodeport-addresses=primary,10.0.0.0/8'],
    message: /"primary" cannot be combined/,
  },
  'masquerade-bit 32': {
    argv: ['--iptables-masquerade-bit=32'],
    message: /--iptables-masquerade-bit: must be within \[0, 31\]/,
  },
  'masquerade-bit -1': { argv: ['--iptables-masquerade-bit', '-1'], message: /must be within \[0, 31\]/ },
  'masquerade-bit text': { argv: ['--iptables-masquerade-bit=x'], message: /not an integer/ },
  'healthz hostname': {
    argv: ['--healthz-bind-address=localhost:10256'],
    message: /--healthz-bind-address: "localhost" is not an IP address/,
  },
  'healthz bad port': {
    argv: ['--healthz-bind-address=0.0.0.0:70000'],
    message: /"70000" is not a valid port/,
  },
  'metrics IPv6 without brackets': {
    argv: ['--metrics-bind-address=::1:10249'],
    message: /--metrics-bind-address/,
  },
  'healthz-port out of range': {
    argv: ['--healthz-port=65536'],
    message: /--healthz-port: must be within \[0, 65535\]/,
  },
  'negative duration': {
    argv: ['--min-sync-period=-1s'],
    message: /--min-sync-period: must not be negative/,
  },
  'duration without unit': { argv: ['--sync-period=30'], message: /--sync-period: missing unit/ },
  'duration garbage': {
    argv: ['--sync-period', 'soon'],
    message: /invalid value "soon" for --sync-period: invalid duration/,
  },
  'sync-period zero': { argv: ['--sync-period=0s'], message: /--sync-period: must be greater than 0/ },
  'iptables-sync-period zero': {
    argv: ['--iptables-sync-period=0'],
    message: /--iptables-sync-period: must be greater than 0/,
  },
  'ipvs-sync-period garbage': { argv: ['--ipvs-sync-period=1x'], message: /--ipvs-sync-period/ },
  'ipvs-min-sync-period negative': {
    argv: ['--ipvs-min-sync-period=-5s'],
    message: /--ipvs-min-sync-period/,
  },
  'iptables-min-sync-period garbage': {
    argv: ['--iptables-min-sync-period=s'],
    message: /--iptables-min-sync-period/,
  },
  'min above sync': {
    argv: ['--min-sync-period=1m', '--sync-period=30s'],
    message: /must not exceed sync-period/,
  },
  'ipvs-scheduler unknown': {
    argv: ['--ipvs-scheduler=fastest'],
    message: /--ipvs-scheduler: unknown scheduler/,
  },
  'ipvs-tcp-timeout garbage': { argv: ['--ipvs-tcp-timeout=never'], message: /--ipvs-tcp-timeout/ },
  'ipvs-tcpfin-timeout negative': { argv: ['--ipvs-tcpfin-timeout=-1m'], message: /--ipvs-tcpfin-timeout/ },
  'ipvs-udp-timeout garbage': { argv: ['--ipvs-udp-timeout=1'], message: /--ipvs-udp-timeout/ },
  'ipvs-exclude-cidrs garbage': {
    argv: ['--ipvs-exclude-cidrs=10.96.0.0/16,x'],
    message: /--ipvs-exclude-cidrs: "x"/,
  },
  'ipvs-strict-arp garbage': { argv: ['--ipvs-strict-arp=yes'], message: /--ipvs-strict-arp/ },
  'iptables-localhost-nodeports garbage': {
    argv: ['--iptables-localhost-nodeports=no'],
    message: /--iptables-localhost-nodeports/,
  },
  'iptables-variant unknown': {
    argv: ['--iptables-variant=both'],
    message: /--iptables-variant: must be auto, legacy or nft/,
  },
  'conntrack-max-per-core negative': {
    argv: ['--conntrack-max-per-core=-1'],
    message: /--conntrack-max-per-core/,
  },
  'conntrack-min text': { argv: ['--conntrack-min=lots'], message: /--conntrack-min: not an integer/ },
  'conntrack timeout garbage': {
    argv: ['--conntrack-tcp-timeout-established=1d'],
    message: /--conntrack-tcp-timeout-established/,
  },
  'conntrack close-wait negative': {
    argv: ['--conntrack-tcp-timeout-close-wait=-1h'],
    message: /--conntrack-tcp-timeout-close-wait/,
  },
  'conntrack udp garbage': { argv: ['--conntrack-udp-timeout=x'], message: /--conntrack-udp-timeout/ },
  'conntrack udp stream garbage': {
    argv: ['--conntrack-udp-timeout-stream=x'],
    message: /--conntrack-udp-timeout-stream/,
  },
  'empty hostname-override': {
    argv: ['--hostname-override=  '],
    message: /empty hostname-override is invalid/,
  },
  'v negative': { argv: ['-v', '-1'], message: /-v/ },
  'v text': { argv: ['--v=loud'], message: /--v: not an integer/ },
  'backend-opt without =': {
    argv: ['--backend-opt', 'example.file'],
    message: /--backend-opt: want KEY=VALUE/,
  },
  'backend-opt empty key': { argv: ['--backend-opt=x', '--backend-opt==v'], message: /--backend-opt/ },
  'plugin empty': { argv: ['--plugin='], message: /--plugin: empty module name/ },
  'cleanup garbage': { argv: ['--cleanup=please'], message: /--cleanup/ },
  'unknown command': { argv: ['serve'], message: /unknown command "serve"/ },
  'extra positional': { argv: ['plan', 'extra'], message: /unexpected argument "extra"/ },
  '-o outside plan': { argv: ['-o', 'json'], message: /-o is only valid with: plan/ },
  '--source outside trace': {
    argv: ['plan', '--source=10.244.1.5'],
    message: /--source is only valid with: trace/,
  },
  'plan -o xml': { argv: ['plan', '-o', 'xml'], message: /invalid value "xml" for -o: must be yaml or json/ },
  'trace bad source': { argv: ['trace', '--source=10.244.1'], message: /--source: not an IP address/ },
  'trace destination without port': { argv: ['trace', '--destination=10.96.0.10'], message: /--destination/ },
  'trace destination port 0': { argv: ['trace', '--destination=10.96.0.10:0'], message: /not a valid port/ },
  'trace protocol icmp': {
    argv: ['trace', '--protocol', 'icmp'],
    message: /--protocol: must be tcp, udp or sctp/,
  },
  'write-config-to refused': {
    argv: ['--write-config-to=/tmp/x'],
    message: /--write-config-to: not supported/,
  },
  'init-only refused': { argv: ['--init-only'], message: /--init-only: not supported/ },
  '--from with --kubeconfig': {
    argv: ['plan', '--from=x.yaml', '--kubeconfig=/k'],
    message: /^--from and --kubeconfig are mutually exclusive/,
  },
  '--from with --master': {
    argv: ['--master=https://h', '--from', 'x.yaml'],
    message: /^--from and --master are mutually exclusive/,
  },
  'ignored int flag still validated': {
    argv: ['--oom-score-adj=lots'],
    message: /--oom-score-adj: not an integer/,
  },
};

describe('parseArgs: invalid values are one-line ConfigErrors naming the flag', () => {
  for (const [name, tc] of Object.entries(invalid)) {
    it(name, () => {
      const err = configError(tc.argv);
      expect(err.message).toMatch(tc.message);
      expect(err.message).not.toContain('\n');
    });
  }
});

describe('parseArgs: commands', () => {
  it('plan with --from, --hostname-override and -o json', () => {
    const cmd = parseArgs([
      'plan',
      '--from',
      'deploy/examples/online-store.yaml',
      '--hostname-override=node-a',
      '-o',
      'json',
    ]);
    expect(cmd.kind).toBe('plan');
    if (cmd.kind !== 'plan') return;
    expect(cmd.output).toBe('json');
    expect(cmd.flags.from).toBe('deploy/examples/online-store.yaml');
    expect(resolveConfig(cmd.flags, undefined, 'x').config.hostname).toBe('node-a');
  });

  it('plan defaults to yaml; -ojson and --output=json work; the command may follow flags', () => {
    const a = parseArgs(['plan']);
    expect(a.kind === 'plan' && a.output).toBe('yaml');
    const b = parseArgs(['--from=x.yaml', 'plan', '-ojson']);
    expect(b.kind === 'plan' && b.output).toBe('json');
    const c = parseArgs(['plan', '--output=JSON']);
    expect(c.kind === 'plan' && c.output).toBe('json');
  });

  it('plan and trace take KUBECONFIG from env when neither --kubeconfig nor --from is given; run does not', () => {
    const env = { KUBECONFIG: '/home/me/.kube/config:/other' };
    const plan = parseArgs(['plan'], env);
    expect(plan.kind === 'plan' && plan.flags.layer.kubeconfig).toBe('/home/me/.kube/config');
    const explicit = parseArgs(['plan', '--kubeconfig=/k'], env);
    expect(explicit.kind === 'plan' && explicit.flags.layer.kubeconfig).toBe('/k');
    const fromFile = parseArgs(['plan', '--from=x.yaml'], env);
    expect(fromFile.kind === 'plan' && fromFile.flags.layer.kubeconfig).toBeUndefined();
    const daemon = parseArgs([], env);
    expect(daemon.kind === 'run' && daemon.flags.layer.kubeconfig).toBeUndefined();
  });

  it('trace parses source, destination (IPv4 and bracketed IPv6) and protocol', () => {
    const cmd = parseArgs([
      'trace',
      '--from',
      'x.yaml',
      '--source',
      '192.168.77.1',
      '--destination=10.96.0.10:80',
      '--protocol=udp',
    ]);
    expect(cmd).toMatchObject({
      kind: 'trace',
      source: '192.168.77.1',
      destination: { ip: '10.96.0.10', port: 80, family: 'IPv4' },
      protocol: 'UDP',
    });
    const v6 = parseArgs(['trace', '--destination', '[FD00:0::10]:443']);
    expect(v6).toMatchObject({
      kind: 'trace',
      destination: { ip: 'fd00::10', port: 443, family: 'IPv6' },
      protocol: 'TCP',
    });
  });

  it('-- ends the flags', () => {
    const cmd = parseArgs(['--proxy-mode=ipvs', '--', 'plan']);
    expect(cmd.kind).toBe('plan');
  });
});

describe('parseArgs: warnings', () => {
  it('kube-proxy flags that do not apply are accepted with a warning each', () => {
    const cmd = run([
      '--bind-address=0.0.0.0',
      '--oom-score-adj=-999',
      '--profiling',
      '--feature-gates=Foo=true',
      '--conntrack-tcp-be-liberal',
      '--config-sync-period=15m',
    ]);
    expect(cmd.warnings).toHaveLength(6);
    expect(cmd.warnings[0]).toBe('--bind-address is a kube-proxy flag that switchyard accepts and ignores');
  });

  it('a mode-specific sync flag for another mode is ignored with a warning', () => {
    const { config: c, warnings } = resolveConfig(run(['--ipvs-sync-period=45s']).flags, undefined, 'n');
    expect(c.syncPeriodMs).toBe(30_000);
    expect(warnings).toEqual([
      '--ipvs-sync-period is ignored with --proxy-mode=nftables (use --sync-period)',
    ]);
  });

  it('deprecated --healthz-port warns', () => {
    expect(run(['--healthz-port=1']).warnings).toEqual([
      '--healthz-port is deprecated; use --healthz-bind-address',
    ]);
  });
});

describe('--help and --version', () => {
  it('--help lists every accepted flag with its default', () => {
    const cmd = parseArgs(['--help']);
    expect(cmd.kind).toBe('help');
    if (cmd.kind !== 'help') return;
    for (const f of FLAGS) {
      if (f.unsupported !== undefined || f.commands !== undefined) continue;
      expect(cmd.text, f.name).toContain(`--${f.name}`);
    }
    expect(cmd.text).toContain('--proxy-mode MODE');
    expect(cmd.text).toContain('(default nftables)');
    expect(cmd.text).toContain('(default 0.0.0.0:10256)');
    expect(cmd.text).toContain('-v, --v N');
  });

  it('-h works and plan --help describes plan flags', () => {
    expect(parseArgs(['-h']).kind).toBe('help');
    const plan = parseArgs(['plan', '--help']);
    expect(plan.kind === 'help' && plan.text).toContain('-o, --output yaml|json');
    const trace = parseArgs(['trace', '-h']);
    expect(trace.kind === 'help' && trace.text).toContain('--destination IP:PORT');
  });

  it('--version prints switchyard and the package.json version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(parseArgs(['--version'])).toEqual({ kind: 'version', text: `switchyard ${pkg.version}` });
  });
});
