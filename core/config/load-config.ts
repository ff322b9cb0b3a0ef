/**
 * From the parsed command line (and the --config file it names) to the resolved ProxyConfig.
 *
 * Precedence, lowest first: kube-proxy's defaults, the KubeProxyConfiguration file, flags
 * given on the command line. (kube-proxy itself ignores most flags when --config is set;
 * switchyard lets an explicit flag win, which is what the flags' own help promises.)
 *
 * Sync periods: `--sync-period` / `--min-sync-period` win; else kube-proxy's mode-specific
 * flag (`--ipvs-*` when the mode is ipvs, `--iptables-*` for every other mode); else the
 * file's section for the mode (ipvs → ipvs, nftables → nftables, anything else → iptables);
 * else top-level file syncPeriod/minSyncPeriod; else 30s / 1s. A mode-specific flag that does
 * not apply to the chosen mode is ignored with a warning.
 */
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import type { DetectLocal, ProxyConfig } from '../model/proxy-config.js';
import { ConfigError } from './config-error.js';
import type { ConfigLayer, SectionLayer } from './config-layer.js';
import type { CommandFlags } from './flag-table.js';
import { parseKubeProxyConfiguration, type FileConfig } from './kube-proxy-configuration.js';
import { joinHostPort, parseHostPort } from './net-parse.js';

/** kube-proxy's defaults, with nftables as our default mode. */
export const DEFAULTS = {
  mode: 'nftables',
  healthzBindAddress: '0.0.0.0:10256',
  metricsBindAddress: '127.0.0.1:10249',
  syncPeriodMs: 30_000,
  minSyncPeriodMs: 1_000,
  masqueradeBit: 14,
  ipvsScheduler: 'rr',
  conntrack: {
    maxPerCore: 32 * 1024,
    min: 128 * 1024,
    tcpEstablishedTimeoutMs: 24 * 3_600_000,
    tcpCloseWaitTimeoutMs: 3_600_000,
    udpTimeoutMs: 0,
    udpStreamTimeoutMs: 0,
  },
} as const;

export interface LoadedConfig {
  readonly config: ProxyConfig;
  /** Non-fatal notes for the caller to log once. */
  readonly warnings: readonly string[];
}

export interface ConfigIO {
  readFile(path: string): Promise<string>;
  hostname(): string;
}

const defaultIO: ConfigIO = {
  readFile: (path) => readFile(path, 'utf8'),
  hostname: () => osHostname(),
};

/** Reads the --config file (if any) and resolves the ProxyConfig. Throws ConfigError. */
export async function loadConfig(flags: CommandFlags, io: Partial<ConfigIO> = {}): Promise<LoadedConfig> {
  const { readFile: read, hostname } = { ...defaultIO, ...io };
  let file: FileConfig | undefined;
  if (flags.configFile !== undefined) {
    let text: string;
    try {
      text = await read(flags.configFile);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ConfigError(`--config: cannot read ${flags.configFile}: ${code}`, '--config');
    }
    file = parseKubeProxyConfiguration(text, `config file ${flags.configFile}`);
  }
  return resolveConfig(flags, file, hostname());
}

type SectionName = 'iptables' | 'nftables' | 'ipvs';

/** Which v1alpha1 section a mode reads from the file (kube-proxy's conversion). */
function fileSectionFor(mode: string): SectionName {
  if (mode === 'ipvs') return 'ipvs';
  if (mode === 'nftables') return 'nftables';
  return 'iptables';
}

/** Pure: defaults ← file ← flags. */
export function resolveConfig(
  flags: CommandFlags,
  file: FileConfig | undefined,
  systemHostname: string,
): LoadedConfig {
  const warnings: string[] = [...(file?.warnings ?? [])];
  const f: ConfigLayer = flags.layer;
  const c: ConfigLayer | undefined = file?.layer;

  const mode = f.mode ?? c?.mode ?? DEFAULTS.mode;
  const flagSection: SectionLayer = mode === 'ipvs' ? f.ipvs : f.iptables;
  const section = fileSectionFor(mode);
  const fileSection: SectionLayer | undefined = c?.[section];

  for (const [name, value, applies] of [
    ['--ipvs-sync-period', f.ipvs.syncPeriodMs, mode === 'ipvs'],
    ['--ipvs-min-sync-period', f.ipvs.minSyncPeriodMs, mode === 'ipvs'],
    ['--iptables-sync-period', f.iptables.syncPeriodMs, mode !== 'ipvs'],
    ['--iptables-min-sync-period', f.iptables.minSyncPeriodMs, mode !== 'ipvs'],
  ] as const) {
    if (value !== undefined && !applies) {
      warnings.push(
        `${name} is ignored with --proxy-mode=${mode} (use ${name.replace(/--(ipvs|iptables)-/, '--')})`,
      );
    } else if (
      value !== undefined &&
      (name.includes('min') ? f.common.minSyncPeriodMs : f.common.syncPeriodMs) !== undefined
    ) {
      warnings.push(`${name} is overridden by ${name.replace(/--(ipvs|iptables)-/, '--')}`);
    }
  }

  // kube-proxy's file defaulting gives ipvs.minSyncPeriod 0 (sync at once), the others 1s.
  const fileMinDefault = c !== undefined && section === 'ipvs' ? 0 : undefined;
  const syncPeriodMs =
    f.common.syncPeriodMs ??
    flagSection.syncPeriodMs ??
    fileSection?.syncPeriodMs ??
    c?.common.syncPeriodMs ??
    DEFAULTS.syncPeriodMs;
  const minSyncPeriodMs =
    f.common.minSyncPeriodMs ??
    flagSection.minSyncPeriodMs ??
    fileSection?.minSyncPeriodMs ??
    c?.common.minSyncPeriodMs ??
    fileMinDefault ??
    DEFAULTS.minSyncPeriodMs;
  if (minSyncPeriodMs > syncPeriodMs) {
    throw new ConfigError(
      `min-sync-period (${minSyncPeriodMs}ms) must not exceed sync-period (${syncPeriodMs}ms)`,
      '--min-sync-period',
    );
  }

  // masqueradeAll / masqueradeBit: nftables mode reads the nftables section, others iptables.
  const masqSection = mode === 'nftables' ? c?.nftables : c?.iptables;
  const masqueradeAll = f.common.masqueradeAll ?? masqSection?.masqueradeAll ?? false;
  const masqueradeBit = f.common.masqueradeBit ?? masqSection?.masqueradeBit ?? DEFAULTS.masqueradeBit;

  const hostnameOverride = f.hostnameOverride ?? c?.hostnameOverride;
  const hostname = (hostnameOverride ?? systemHostname).trim().toLowerCase();
  if (hostname === '')
    throw new ConfigError('cannot determine the node name: set --hostname-override', '--hostname-override');

  const nodePortAddresses =
    f.nodePortAddresses ??
    c?.nodePortAddresses ??
    (mode === 'iptables' || mode === 'ipvs' ? ['all'] : ['primary']);

  const healthzBindAddress = withPort(
    f.healthzBindAddress ?? c?.healthzBindAddress ?? DEFAULTS.healthzBindAddress,
    flags.healthzPort,
  );
  const metricsBindAddress = withPort(
    f.metricsBindAddress ?? c?.metricsBindAddress ?? DEFAULTS.metricsBindAddress,
    flags.metricsPort,
  );

  const detectLocal: DetectLocal = {
    mode: f.detectLocalMode ?? c?.detectLocalMode ?? 'ClusterCIDR',
    bridgeInterface: f.podBridgeInterface ?? c?.podBridgeInterface ?? '',
    interfaceNamePrefix: f.podInterfaceNamePrefix ?? c?.podInterfaceNamePrefix ?? '',
  };
  // kube-proxy's validation: the interface mode needs its name
  if (detectLocal.mode === 'BridgeInterface' && detectLocal.bridgeInterface === '')
    throw new ConfigError(
      '--detect-local-mode=BridgeInterface needs --pod-bridge-interface (detectLocal.bridgeInterface)',
      '--pod-bridge-interface',
    );
  if (detectLocal.mode === 'InterfaceNamePrefix' && detectLocal.interfaceNamePrefix === '')
    throw new ConfigError(
      '--detect-local-mode=InterfaceNamePrefix needs --pod-interface-name-prefix (detectLocal.interfaceNamePrefix)',
      '--pod-interface-name-prefix',
    );

  const kubeconfig = f.kubeconfig ?? c?.kubeconfig;
  const config: ProxyConfig = {
    mode,
    ...(kubeconfig === undefined || kubeconfig === '' ? {} : { kubeconfig }),
    ...(f.master === undefined || f.master === '' ? {} : { master: f.master }),
    hostname,
    clusterCIDRs: f.clusterCIDRs ?? c?.clusterCIDRs ?? [],
    detectLocal,
    nodePortAddresses,
    masqueradeAll,
    masqueradeBit,
    healthzBindAddress,
    metricsBindAddress,
    minSyncPeriodMs,
    syncPeriodMs,
    cleanup: flags.cleanup,
    verbosity: f.verbosity ?? c?.verbosity ?? 0,
    plugins: [...flags.plugins],
    ...(flags.from === undefined ? {} : { from: flags.from }),
    iptables: {
      variant: f.iptables.variant ?? 'auto',
      localhostNodePorts: f.iptables.localhostNodePorts ?? c?.iptables.localhostNodePorts ?? true,
    },
    ipvs: {
      scheduler: f.ipvs.scheduler ?? c?.ipvs.scheduler ?? DEFAULTS.ipvsScheduler,
      strictARP: f.ipvs.strictARP ?? c?.ipvs.strictARP ?? false,
      tcpTimeoutMs: f.ipvs.tcpTimeoutMs ?? c?.ipvs.tcpTimeoutMs ?? 0,
      tcpFinTimeoutMs: f.ipvs.tcpFinTimeoutMs ?? c?.ipvs.tcpFinTimeoutMs ?? 0,
      udpTimeoutMs: f.ipvs.udpTimeoutMs ?? c?.ipvs.udpTimeoutMs ?? 0,
      excludeCIDRs: f.ipvs.excludeCIDRs ?? c?.ipvs.excludeCIDRs ?? [],
    },
    conntrack: {
      maxPerCore: f.conntrack.maxPerCore ?? c?.conntrack.maxPerCore ?? DEFAULTS.conntrack.maxPerCore,
      min: f.conntrack.min ?? c?.conntrack.min ?? DEFAULTS.conntrack.min,
      tcpEstablishedTimeoutMs:
        f.conntrack.tcpEstablishedTimeoutMs ??
        c?.conntrack.tcpEstablishedTimeoutMs ??
        DEFAULTS.conntrack.tcpEstablishedTimeoutMs,
      tcpCloseWaitTimeoutMs:
        f.conntrack.tcpCloseWaitTimeoutMs ??
        c?.conntrack.tcpCloseWaitTimeoutMs ??
        DEFAULTS.conntrack.tcpCloseWaitTimeoutMs,
      udpTimeoutMs: f.conntrack.udpTimeoutMs ?? c?.conntrack.udpTimeoutMs ?? DEFAULTS.conntrack.udpTimeoutMs,
      udpStreamTimeoutMs:
        f.conntrack.udpStreamTimeoutMs ??
        c?.conntrack.udpStreamTimeoutMs ??
        DEFAULTS.conntrack.udpStreamTimeoutMs,
    },
    backendOptions: { ...flags.backendOptions },
  };
  return { config, warnings };
}

/** Applies a deprecated --healthz-port / --metrics-port: 0 disables, else replaces the port. */
function withPort(address: string, port: number | undefined): string {
  if (port === undefined) return address;
  if (port === 0) return '';
  if (address === '') return '';
  const hp = parseHostPort(address);
  return typeof hp === 'string' ? address : joinHostPort(hp.host, port);
}
