/**
 * The `--config` file: KubeProxyConfiguration, kubeproxy.config.k8s.io/v1alpha1.
 *
 * Decoding is strict, as kube-proxy's is: an unknown field, a duplicate key, a wrong type or a
 * wrong apiVersion/kind is an error naming the field. Fields that switchyard has no use for
 * (winkernel, oomScoreAdj, clientConnection.qps...) are accepted; a few whose non-default
 * value changes behaviour kube-proxy would have (featureGates, serviceProxyName,
 * detectLocalMode...) produce a warning.
 *
 * Besides v1alpha1's per-mode `iptables.syncPeriod` / `ipvs.syncPeriod` / `nftables.syncPeriod`
 * (which one applies depends on the mode, as in kube-proxy), top-level `syncPeriod` and
 * `minSyncPeriod` (the newer internal spelling) are accepted as a switchyard extension; the
 * mode's own section wins over them.
 */
import { parseDocument } from 'yaml';
import { ConfigError } from './config-error.js';
import { emptyLayer, type ConfigLayer } from './config-layer.js';
import { parseGoDuration } from './duration.js';
import {
  FlagValueError,
  IPVS_SCHEDULERS,
  bindAddress,
  cidrList,
  clusterCIDRList,
  detectLocalModeValue,
  interfaceNameValue,
  nodePortAddressList,
} from './flag-table.js';

export const KUBE_PROXY_CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const KUBE_PROXY_CONFIG_KIND = 'KubeProxyConfiguration';

type Leaf = 'string' | 'bool' | 'int' | 'number' | 'duration' | 'stringList' | 'boolMap' | 'any';
interface Schema {
  readonly [field: string]: Leaf | Schema;
}

const CONNTRACK: Schema = {
  maxPerCore: 'int',
  min: 'int',
  tcpEstablishedTimeout: 'duration',
  tcpCloseWaitTimeout: 'duration',
  tcpBeLiberal: 'bool',
  udpTimeout: 'duration',
  udpStreamTimeout: 'duration',
};

/** Every field of v1alpha1 (Kubernetes 1.29 – 1.34), plus top-level syncPeriod/minSyncPeriod. */
const SCHEMA: Schema = {
  apiVersion: 'string',
  kind: 'string',
  featureGates: 'boolMap',
  clientConnection: {
    kubeconfig: 'string',
    acceptContentTypes: 'string',
    contentType: 'string',
    qps: 'number',
    burst: 'int',
  },
  logging: {
    format: 'string',
    flushFrequency: 'any',
    verbosity: 'int',
    vmodule: 'any',
    options: 'any',
  },
  hostnameOverride: 'string',
  bindAddress: 'string',
  healthzBindAddress: 'string',
  metricsBindAddress: 'string',
  bindAddressHardFail: 'bool',
  enableProfiling: 'bool',
  showHiddenMetricsForVersion: 'string',
  serviceProxyName: 'string',
  mode: 'string',
  iptables: {
    masqueradeBit: 'int',
    masqueradeAll: 'bool',
    localhostNodePorts: 'bool',
    snatNodeInternalIP: 'bool',
    syncPeriod: 'duration',
    minSyncPeriod: 'duration',
  },
  ipvs: {
    syncPeriod: 'duration',
    minSyncPeriod: 'duration',
    scheduler: 'string',
    excludeCIDRs: 'stringList',
    strictARP: 'bool',
    tcpTimeout: 'duration',
    tcpFinTimeout: 'duration',
    udpTimeout: 'duration',
  },
  nftables: {
    masqueradeBit: 'int',
    masqueradeAll: 'bool',
    syncPeriod: 'duration',
    minSyncPeriod: 'duration',
    tableName: 'string',
  },
  winkernel: {
    networkName: 'string',
    sourceVip: 'string',
    enableDSR: 'bool',
    rootHnsEndpointName: 'string',
    forwardHealthCheckVip: 'bool',
  },
  detectLocalMode: 'string',
  detectLocal: { bridgeInterface: 'string', interfaceNamePrefix: 'string' },
  clusterCIDR: 'string',
  nodePortAddresses: 'stringList',
  oomScoreAdj: 'int',
  conntrack: CONNTRACK,
  configSyncPeriod: 'duration',
  portRange: 'string',
  udpIdleTimeout: 'duration',
  windowsRunAsService: 'bool',
  // switchyard extension (the internal / newer spelling)
  syncPeriod: 'duration',
  minSyncPeriod: 'duration',
};

type Plain = Record<string, unknown>;

function isPlainObject(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks `value` against `schema`, throwing a ConfigError naming the first bad field. */
function check(value: Plain, schema: Schema, path: string, where: string): void {
  for (const [key, v] of Object.entries(value)) {
    const fieldPath = path === '' ? key : `${path}.${key}`;
    const rule = schema[key];
    if (rule === undefined) throw new ConfigError(`${where}: unknown field "${fieldPath}"`, fieldPath);
    if (v === null || v === undefined) continue; // null is "unset", as in Go's decoder
    const bad = (want: string): never => {
      throw new ConfigError(
        `${where}: field "${fieldPath}" must be ${want}, got ${JSON.stringify(v)}`,
        fieldPath,
      );
    };
    if (typeof rule === 'object') {
      if (!isPlainObject(v)) bad('an object');
      check(v as Plain, rule, fieldPath, where);
      continue;
    }
    switch (rule) {
      case 'string':
        if (typeof v !== 'string') bad('a string');
        break;
      case 'bool':
        if (typeof v !== 'boolean') bad('true or false');
        break;
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > 2 ** 31) bad('an integer');
        break;
      case 'number':
        if (typeof v !== 'number') bad('a number');
        break;
      case 'duration': {
        if (typeof v !== 'string') bad('a duration string such as "30s"');
        const ms = parseGoDuration(v as string);
        if (typeof ms === 'string') bad(`a duration such as "30s" (${ms})`);
        if ((ms as number) < 0) bad('a non-negative duration');
        break;
      }
      case 'stringList':
        if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) bad('a list of strings');
        break;
      case 'boolMap':
        if (!isPlainObject(v) || Object.values(v).some((b) => typeof b !== 'boolean'))
          bad('a map of name: true|false');
        break;
      case 'any':
        break;
    }
  }
}

export interface FileConfig {
  readonly layer: ConfigLayer;
  readonly warnings: readonly string[];
}

/**
 * Parses KubeProxyConfiguration YAML (or JSON) text. `where` names the source in errors
 * ("config file /etc/kube-proxy/config.conf"). Throws ConfigError.
 */
export function parseKubeProxyConfiguration(text: string, where = 'config file'): FileConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw new ConfigError(`${where}: invalid YAML: ${first.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS();
  if (!isPlainObject(raw)) throw new ConfigError(`${where}: not a KubeProxyConfiguration object`);
  if (raw.apiVersion !== KUBE_PROXY_CONFIG_API_VERSION) {
    throw new ConfigError(
      `${where}: unsupported apiVersion ${JSON.stringify(raw.apiVersion ?? '')} (want ${KUBE_PROXY_CONFIG_API_VERSION})`,
      'apiVersion',
    );
  }
  if (raw.kind !== KUBE_PROXY_CONFIG_KIND) {
    throw new ConfigError(
      `${where}: unsupported kind ${JSON.stringify(raw.kind ?? '')} (want ${KUBE_PROXY_CONFIG_KIND})`,
      'kind',
    );
  }
  check(raw, SCHEMA, '', where);
  return toLayer(raw, where);
}

function obj(v: unknown): Plain {
  return isPlainObject(v) ? v : {};
}

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function durationMs(v: unknown): number | undefined {
  // Validated already by check(); "0s" means "unset" for the fields kube-proxy defaults.
  if (typeof v !== 'string') return undefined;
  const ms = parseGoDuration(v);
  return typeof ms === 'number' ? ms : undefined;
}

function nonZeroDurationMs(v: unknown): number | undefined {
  const ms = durationMs(v);
  return ms === undefined || ms === 0 ? undefined : ms;
}

function int(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function boolean(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

function toLayer(raw: Plain, where: string): FileConfig {
  const layer = emptyLayer();
  const warnings: string[] = [];
  const field = <T>(path: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof FlagValueError)
        throw new ConfigError(`${where}: field "${path}": ${err.message}`, path);
      throw err;
    }
  };
  const set = <K extends keyof ConfigLayer>(key: K, v: ConfigLayer[K] | undefined): void => {
    if (v !== undefined) layer[key] = v;
  };

  set('mode', nonEmptyString(raw.mode));
  set('kubeconfig', nonEmptyString(obj(raw.clientConnection).kubeconfig));
  set('hostnameOverride', nonEmptyString(raw.hostnameOverride)?.toLowerCase());
  /** A non-empty string field, parsed by `parse` (its errors name `path`). */
  const parsed = <K extends keyof ConfigLayer>(
    key: K,
    path: string,
    text: string | undefined,
    parse: (text: string) => ConfigLayer[K],
  ): void => {
    if (text !== undefined)
      set(
        key,
        field(path, () => parse(text)),
      );
  };
  parsed('clusterCIDRs', 'clusterCIDR', nonEmptyString(raw.clusterCIDR), clusterCIDRList);
  parsed('detectLocalMode', 'detectLocalMode', nonEmptyString(raw.detectLocalMode), detectLocalModeValue);
  const detectLocal = obj(raw.detectLocal);
  parsed(
    'podBridgeInterface',
    'detectLocal.bridgeInterface',
    nonEmptyString(detectLocal.bridgeInterface),
    interfaceNameValue,
  );
  parsed(
    'podInterfaceNamePrefix',
    'detectLocal.interfaceNamePrefix',
    nonEmptyString(detectLocal.interfaceNamePrefix),
    interfaceNameValue,
  );
  const npa = Array.isArray(raw.nodePortAddresses)
    ? (raw.nodePortAddresses as string[]).map((s) => s.trim()).filter((s) => s !== '')
    : [];
  if (npa.length > 0)
    set(
      'nodePortAddresses',
      field('nodePortAddresses', () => nodePortAddressList(npa)),
    );
  // In the file an empty address means "the default" (kube-proxy's defaulting), not "disabled".
  const healthz = nonEmptyString(raw.healthzBindAddress);
  if (healthz !== undefined)
    set(
      'healthzBindAddress',
      field('healthzBindAddress', () => bindAddress(healthz, 10256)),
    );
  const metrics = nonEmptyString(raw.metricsBindAddress);
  if (metrics !== undefined)
    set(
      'metricsBindAddress',
      field('metricsBindAddress', () => bindAddress(metrics, 10249)),
    );
  const verbosity = int(obj(raw.logging).verbosity);
  if (verbosity !== undefined) {
    if (verbosity < 0)
      throw new ConfigError(`${where}: field "logging.verbosity" must not be negative`, 'logging.verbosity');
    layer.verbosity = verbosity;
  }

  // Top-level (switchyard extension).
  assignPeriods(layer.common, raw, false);

  const ipt = obj(raw.iptables);
  assignPeriods(layer.iptables, ipt, true);
  assignMasquerade(layer.iptables, ipt, 'iptables.', where);
  if (boolean(ipt.localhostNodePorts) !== undefined)
    layer.iptables.localhostNodePorts = boolean(ipt.localhostNodePorts)!;

  const nft = obj(raw.nftables);
  assignPeriods(layer.nftables, nft, true);
  assignMasquerade(layer.nftables, nft, 'nftables.', where);

  const ipvs = obj(raw.ipvs);
  assignPeriods(layer.ipvs, ipvs, false);
  const scheduler = nonEmptyString(ipvs.scheduler);
  if (scheduler !== undefined) {
    if (!IPVS_SCHEDULERS.includes(scheduler)) {
      throw new ConfigError(
        `${where}: field "ipvs.scheduler": unknown scheduler "${scheduler}" (known: ${IPVS_SCHEDULERS.join(', ')})`,
        'ipvs.scheduler',
      );
    }
    layer.ipvs.scheduler = scheduler;
  }
  if (boolean(ipvs.strictARP) !== undefined) layer.ipvs.strictARP = boolean(ipvs.strictARP)!;
  if (durationMs(ipvs.tcpTimeout) !== undefined) layer.ipvs.tcpTimeoutMs = durationMs(ipvs.tcpTimeout)!;
  if (durationMs(ipvs.tcpFinTimeout) !== undefined)
    layer.ipvs.tcpFinTimeoutMs = durationMs(ipvs.tcpFinTimeout)!;
  if (durationMs(ipvs.udpTimeout) !== undefined) layer.ipvs.udpTimeoutMs = durationMs(ipvs.udpTimeout)!;
  if (Array.isArray(ipvs.excludeCIDRs)) {
    const list = (ipvs.excludeCIDRs as string[]).join(',');
    layer.ipvs.excludeCIDRs = field('ipvs.excludeCIDRs', () => cidrList(list));
  }

  const ct = obj(raw.conntrack);
  for (const [key, name] of [
    ['maxPerCore', 'maxPerCore'],
    ['min', 'min'],
  ] as const) {
    const n = int(ct[key]);
    if (n === undefined) continue;
    if (n < 0)
      throw new ConfigError(`${where}: field "conntrack.${key}" must not be negative`, `conntrack.${key}`);
    layer.conntrack[name] = n;
  }
  const ctDurations = [
    ['tcpEstablishedTimeout', 'tcpEstablishedTimeoutMs'],
    ['tcpCloseWaitTimeout', 'tcpCloseWaitTimeoutMs'],
    ['udpTimeout', 'udpTimeoutMs'],
    ['udpStreamTimeout', 'udpStreamTimeoutMs'],
  ] as const;
  for (const [key, name] of ctDurations) {
    const ms = durationMs(ct[key]);
    if (ms !== undefined) layer.conntrack[name] = ms;
  }

  // Accepted, but they would change behaviour: say so.
  const gates = obj(raw.featureGates);
  if (Object.keys(gates).length > 0)
    warnings.push(
      `${where}: featureGates are ignored (switchyard has none): ${Object.keys(gates).join(', ')}`,
    );
  if (nonEmptyString(raw.serviceProxyName) !== undefined) {
    warnings.push(
      `${where}: serviceProxyName is not supported; Services labelled service.kubernetes.io/service-proxy-name are skipped`,
    );
  }
  if (ct.tcpBeLiberal === true) warnings.push(`${where}: conntrack.tcpBeLiberal is ignored`);
  if (raw.enableProfiling === true) warnings.push(`${where}: enableProfiling is ignored`);
  if (nonEmptyString(raw.bindAddress) !== undefined)
    warnings.push(`${where}: bindAddress is ignored (node IPs come from the Node object)`);

  return { layer, warnings };
}

function assignPeriods(
  target: { syncPeriodMs?: number; minSyncPeriodMs?: number },
  section: Plain,
  zeroMinIsUnset: boolean,
): void {
  // kube-proxy's defaulting turns a zero syncPeriod into 30s, and a zero iptables / nftables
  // minSyncPeriod into 1s (Go cannot tell 0 from unset there). ipvs.minSyncPeriod has no
  // such defaulting: 0 is its default and means "sync at once".
  const sync = nonZeroDurationMs(section.syncPeriod);
  if (sync !== undefined) target.syncPeriodMs = sync;
  const min = zeroMinIsUnset ? nonZeroDurationMs(section.minSyncPeriod) : durationMs(section.minSyncPeriod);
  if (min !== undefined) target.minSyncPeriodMs = min;
}

function assignMasquerade(
  target: { masqueradeAll?: boolean; masqueradeBit?: number },
  section: Plain,
  prefix: string,
  where: string,
): void {
  const all = boolean(section.masqueradeAll);
  if (all !== undefined) target.masqueradeAll = all;
  const bit = int(section.masqueradeBit);
  if (bit !== undefined) {
    if (bit < 0 || bit > 31)
      throw new ConfigError(
        `${where}: field "${prefix}masqueradeBit" must be within [0, 31]`,
        `${prefix}masqueradeBit`,
      );
    target.masqueradeBit = bit;
  }
}
