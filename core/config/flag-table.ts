/**
 * Every command-line flag switchyard understands: kube-proxy's spellings and meanings, plus
 * a few of our own. Data, not code paths: the parser, --help and docs/configuration.md all
 * read this table.
 */
import { DETECT_LOCAL_MODES, type DetectLocalMode } from '../model/proxy-config.js';
import { INTERFACE_NAME_RULE, validInterfaceName } from '../net/interface-name.js';
import type { Protocol } from '../model/snapshot.js';
import type { ConfigLayer } from './config-layer.js';
import { parseNonNegativeDuration } from './duration.js';
import { joinHostPort, parseCIDR, parseHostPort, parseIP } from './net-parse.js';

export type FlagKind = 'string' | 'bool' | 'int' | 'duration' | 'list';

export type CommandName = 'run' | 'plan' | 'trace';

export interface TraceDestination {
  readonly ip: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

/** Everything the command line said, before the config file and defaults are applied. */
export interface CommandFlags {
  /** Settings that stack over the file and the defaults. */
  readonly layer: ConfigLayer;
  /** Long names of the flags given on the command line (without dashes). */
  readonly explicit: Set<string>;
  configFile?: string;
  cleanup: boolean;
  plugins: string[];
  from?: string;
  backendOptions: Record<string, string>;
  /** Deprecated kube-proxy `--healthz-port` / `--metrics-port` (0 disables the server). */
  healthzPort?: number;
  metricsPort?: number;
  // plan / trace
  output?: 'yaml' | 'json';
  source?: string;
  destination?: TraceDestination;
  protocol?: Protocol;
  help: boolean;
  version: boolean;
}

/** Thrown by a flag's `set` with the reason only; the parser adds the flag's name. */
export class FlagValueError extends Error {}

export type FlagGroup =
  | 'general'
  | 'networking'
  | 'sync'
  | 'iptables'
  | 'ipvs'
  | 'conntrack'
  | 'switchyard'
  | 'plan'
  | 'trace'
  | 'compat';

export interface FlagSpec {
  /** Long name without the leading dashes. */
  readonly name: string;
  readonly short?: string;
  readonly kind: FlagKind;
  /** Placeholder for the value in --help. */
  readonly metavar?: string;
  /** The default, as --help shows it ('' prints nothing). */
  readonly defaultText: string;
  readonly help: string;
  readonly group: FlagGroup;
  /** Commands that accept this flag; all when undefined. */
  readonly commands?: readonly CommandName[];
  /** Accepted for kube-proxy compatibility but without effect: a warning is collected. */
  readonly ignored?: boolean;
  /** Recognized but refused (switchyard cannot honor it). */
  readonly unsupported?: string;
  /** Repeatable (each occurrence adds); otherwise the last occurrence wins. */
  readonly repeatable?: boolean;
  /** Apply a value. `value` is already a boolean for 'bool' flags. */
  set(flags: CommandFlags, value: string | boolean): void;
}

function reason(text: string): never {
  throw new FlagValueError(text);
}

function duration(text: string): number {
  const ms = parseNonNegativeDuration(text);
  return typeof ms === 'string' ? reason(ms) : ms;
}

function int(text: string, min: number, max: number): number {
  if (!/^[+-]?\d+$/.test(text.trim())) reason('not an integer');
  const n = Number(text.trim());
  if (n < min || n > max) reason(`must be within [${min}, ${max}]`);
  return n;
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Comma list of CIDRs, canonicalized; every entry must parse. */
export function cidrList(text: string): string[] {
  return splitList(text).map((c) => parseCIDR(c)?.cidr ?? reason(`"${c}" is not a valid CIDR`));
}

/** `--detect-local-mode` (kube-proxy's values, case-sensitive); '' means the default. */
export function detectLocalModeValue(text: string): DetectLocalMode | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  if (!(DETECT_LOCAL_MODES as readonly string[]).includes(t))
    reason(`must be one of ${DETECT_LOCAL_MODES.join(', ')}`);
  return t as DetectLocalMode;
}

/** An interface name (or name prefix) for local-traffic detection (core/net/interface-name.ts). */
export function interfaceNameValue(text: string): string {
  const t = text.trim();
  if (t === '') reason('must not be empty');
  if (!validInterfaceName(t)) reason(`must be ${INTERFACE_NAME_RULE}`);
  return t;
}

/** `--cluster-cidr` rules (kube-proxy): at most one CIDR per family. */
export function clusterCIDRList(text: string): string[] {
  const cidrs = splitList(text).map((c) => parseCIDR(c) ?? reason(`"${c}" is not a valid CIDR`));
  if (cidrs.length > 2) reason('at most two CIDRs (one IPv4 and one IPv6) are allowed');
  if (cidrs.length === 2 && cidrs[0]!.family === cidrs[1]!.family) {
    reason('two CIDRs must be one IPv4 and one IPv6');
  }
  return cidrs.map((c) => c.cidr);
}

/** `--nodeport-addresses`: CIDRs, or exactly one of the keywords 'primary' / 'all'. */
export function nodePortAddressList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    const lower = v.toLowerCase();
    if (lower === 'primary' || lower === 'all') {
      if (values.length !== 1) reason(`"${v}" cannot be combined with other values`);
      return [lower];
    }
    out.push(parseCIDR(v)?.cidr ?? reason(`"${v}" is not a valid CIDR (or 'primary' / 'all')`));
  }
  return out;
}

/**
 * `--healthz-bind-address` / `--metrics-bind-address` (kube-proxy's IPPortVar): `ip:port`,
 * `[ipv6]:port`, or a bare IP that gets the default port; '' disables the server.
 */
export function bindAddress(text: string, defaultPort: number): string {
  const t = text.trim();
  if (t === '') return '';
  const bare = parseIP(t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t);
  if (bare !== undefined) return joinHostPort(t.startsWith('[') ? t.slice(1, -1) : t, defaultPort);
  const hp = parseHostPort(t);
  return typeof hp === 'string'
    ? reason(`${hp} (want ip, ip:port or [ipv6]:port)`)
    : joinHostPort(hp.host, hp.port);
}

export const IPVS_SCHEDULERS: readonly string[] = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'sh',
  'dh',
  'sed',
  'nq',
  'mh',
];

/** Go's strconv.ParseBool. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

const str = (v: string | boolean): string => String(v);
const bool = (v: string | boolean): boolean => v === true;

function ignored(name: string, kind: FlagKind, help: string, metavar?: string): FlagSpec {
  return {
    name,
    kind,
    ...(metavar === undefined ? {} : { metavar }),
    defaultText: '',
    help: `kube-proxy compatibility: accepted and ignored. ${help}`,
    group: 'compat',
    ignored: true,
    set: (_f, v) => {
      if (kind === 'int') int(str(v), -(2 ** 31), 2 ** 31 - 1);
      if (kind === 'duration') duration(str(v));
    },
  };
}

export const FLAGS: readonly FlagSpec[] = [
  // ---- general
  {
    name: 'help',
    short: 'h',
    kind: 'bool',
    defaultText: '',
    help: 'Print this help and exit.',
    group: 'general',
    set: (f, v) => void (f.help = bool(v)),
  },
  {
    name: 'version',
    kind: 'bool',
    defaultText: '',
    help: 'Print "switchyard <version>" and exit.',
    group: 'general',
    set: (f, v) => void (f.version = bool(v)),
  },
  {
    name: 'config',
    kind: 'string',
    metavar: 'FILE',
    defaultText: '',
    help: 'KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1). Flags given on the command line override its values.',
    group: 'general',
    set: (f, v) => void (f.configFile = str(v) === '' ? undefined : str(v)),
  },
  {
    name: 'proxy-mode',
    kind: 'string',
    metavar: 'MODE',
    defaultText: 'nftables',
    help: 'Backend: nftables, iptables, ipvs, userspace, or the name a --plugin registered.',
    group: 'general',
    set: (f, v) => void (f.layer.mode = str(v).trim() === '' ? undefined : str(v).trim()),
  },
  {
    name: 'kubeconfig',
    kind: 'string',
    metavar: 'FILE',
    defaultText: '',
    help: 'kubeconfig with the API server location and credentials (in-cluster config when unset).',
    group: 'general',
    set: (f, v) => void (f.layer.kubeconfig = str(v)),
  },
  {
    name: 'master',
    kind: 'string',
    metavar: 'URL',
    defaultText: '',
    help: "API server address; overrides the kubeconfig's server.",
    group: 'general',
    set: (f, v) => void (f.layer.master = str(v)),
  },
  {
    name: 'hostname-override',
    kind: 'string',
    metavar: 'NAME',
    defaultText: '',
    help: "Name of this node's Node object (default: the host name, lower-cased).",
    group: 'general',
    set: (f, v) => {
      const name = str(v).trim().toLowerCase();
      if (name === '') reason('empty hostname-override is invalid');
      f.layer.hostnameOverride = name;
    },
  },
  {
    name: 'cleanup',
    kind: 'bool',
    defaultText: 'false',
    help: 'Remove everything every known backend programmed, then exit.',
    group: 'general',
    set: (f, v) => void (f.cleanup = bool(v)),
  },
  {
    name: 'v',
    short: 'v',
    kind: 'int',
    metavar: 'N',
    defaultText: '0',
    help: 'Log verbosity: 0 info, 2 debug, 4+ trace.',
    group: 'general',
    set: (f, v) => void (f.layer.verbosity = int(str(v), 0, 2 ** 31 - 1)),
  },
  {
    name: 'healthz-bind-address',
    kind: 'string',
    metavar: 'IP[:PORT]',
    defaultText: '0.0.0.0:10256',
    help: 'Health check server address (a bare IP gets port 10256); empty disables it.',
    group: 'general',
    set: (f, v) => void (f.layer.healthzBindAddress = bindAddress(str(v), 10256)),
  },
  {
    name: 'metrics-bind-address',
    kind: 'string',
    metavar: 'IP[:PORT]',
    defaultText: '127.0.0.1:10249',
    help: 'Metrics server address (a bare IP gets port 10249); empty disables it.',
    group: 'general',
    set: (f, v) => void (f.layer.metricsBindAddress = bindAddress(str(v), 10249)),
  },
  {
    name: 'healthz-port',
    kind: 'int',
    metavar: 'PORT',
    defaultText: '10256',
    help: 'Deprecated (kube-proxy): the port of --healthz-bind-address; 0 disables the server.',
    group: 'general',
    set: (f, v) => void (f.healthzPort = int(str(v), 0, 65535)),
  },
  {
    name: 'metrics-port',
    kind: 'int',
    metavar: 'PORT',
    defaultText: '10249',
    help: 'Deprecated (kube-proxy): the port of --metrics-bind-address; 0 disables the server.',
    group: 'general',
    set: (f, v) => void (f.metricsPort = int(str(v), 0, 65535)),
  },
  // ---- networking
  {
    name: 'cluster-cidr',
    kind: 'list',
    metavar: 'CIDRS',
    defaultText: '',
    help: 'Pod CIDRs, comma-separated (at most one per family); traffic from them is "local".',
    group: 'networking',
    set: (f, v) => void (f.layer.clusterCIDRs = clusterCIDRList(str(v))),
  },
  {
    name: 'detect-local-mode',
    kind: 'string',
    metavar: 'MODE',
    defaultText: 'ClusterCIDR',
    help: "How traffic from pods is told apart: ClusterCIDR (source in --cluster-cidr), NodeCIDR (source in the Node's podCIDRs), BridgeInterface (--pod-bridge-interface) or InterfaceNamePrefix (--pod-interface-name-prefix).",
    group: 'networking',
    set: (f, v) => {
      const mode = detectLocalModeValue(str(v));
      if (mode === undefined) delete f.layer.detectLocalMode;
      else f.layer.detectLocalMode = mode;
    },
  },
  {
    name: 'pod-bridge-interface',
    kind: 'string',
    metavar: 'NAME',
    defaultText: '',
    help: 'With --detect-local-mode=BridgeInterface: traffic that comes in on this interface is from pods.',
    group: 'networking',
    set: (f, v) => void (f.layer.podBridgeInterface = interfaceNameValue(str(v))),
  },
  {
    name: 'pod-interface-name-prefix',
    kind: 'string',
    metavar: 'PREFIX',
    defaultText: '',
    help: 'With --detect-local-mode=InterfaceNamePrefix: traffic that comes in on an interface whose name starts with this is from pods.',
    group: 'networking',
    set: (f, v) => void (f.layer.podInterfaceNamePrefix = interfaceNameValue(str(v))),
  },
  {
    name: 'nodeport-addresses',
    kind: 'list',
    metavar: 'CIDRS',
    defaultText: 'primary (all for iptables/ipvs)',
    help: "Node IPs NodePorts accept connections on: comma-separated CIDRs, or 'primary' (the Node's primary IPs), or 'all'.",
    group: 'networking',
    set: (f, v) => {
      // Empty means "unset" (the mode's default), as an empty list does in kube-proxy.
      const list = nodePortAddressList(splitList(str(v)));
      f.layer.nodePortAddresses = list.length === 0 ? undefined : list;
    },
  },
  {
    name: 'masquerade-all',
    kind: 'bool',
    defaultText: 'false',
    help: 'SNAT all traffic sent to Service cluster IPs.',
    group: 'networking',
    set: (f, v) => void (f.layer.common.masqueradeAll = bool(v)),
  },
  {
    name: 'iptables-masquerade-bit',
    kind: 'int',
    metavar: 'BIT',
    defaultText: '14',
    help: 'Bit of the fwmark space marking packets to SNAT, [0, 31] (all backends use it).',
    group: 'networking',
    set: (f, v) => void (f.layer.common.masqueradeBit = int(str(v), 0, 31)),
  },
  // ---- sync
  {
    name: 'sync-period',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '30s',
    help: 'Full resync interval (e.g. 30s, 1m). Wins over the mode-specific spellings.',
    group: 'sync',
    set: (f, v) => void (f.layer.common.syncPeriodMs = positive(duration(str(v)))),
  },
  {
    name: 'min-sync-period',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '1s',
    help: 'Minimum interval between syncs; 0 syncs on every change. Wins over the mode-specific spellings.',
    group: 'sync',
    set: (f, v) => void (f.layer.common.minSyncPeriodMs = duration(str(v))),
  },
  {
    name: 'iptables-sync-period',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '30s',
    help: 'kube-proxy spelling of --sync-period; applies when --proxy-mode is not ipvs.',
    group: 'sync',
    set: (f, v) => void (f.layer.iptables.syncPeriodMs = positive(duration(str(v)))),
  },
  {
    name: 'iptables-min-sync-period',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '1s',
    help: 'kube-proxy spelling of --min-sync-period; applies when --proxy-mode is not ipvs.',
    group: 'sync',
    set: (f, v) => void (f.layer.iptables.minSyncPeriodMs = duration(str(v))),
  },
  {
    name: 'ipvs-sync-period',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '30s',
    help: 'kube-proxy spelling of --sync-period; applies when --proxy-mode is ipvs.',
    group: 'sync',
    set: (f, v) => void (f.layer.ipvs.syncPeriodMs = positive(duration(str(v)))),
  },
  {
    name: 'ipvs-min-sync-period',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '1s',
    help: 'kube-proxy spelling of --min-sync-period; applies when --proxy-mode is ipvs.',
    group: 'sync',
    set: (f, v) => void (f.layer.ipvs.minSyncPeriodMs = duration(str(v))),
  },
  // ---- iptables
  {
    name: 'iptables-localhost-nodeports',
    kind: 'bool',
    defaultText: 'true',
    help: 'Allow NodePorts on 127.0.0.1 (iptables mode, IPv4).',
    group: 'iptables',
    set: (f, v) => void (f.layer.iptables.localhostNodePorts = bool(v)),
  },
  {
    name: 'iptables-variant',
    kind: 'string',
    metavar: 'auto|legacy|nft',
    defaultText: 'auto',
    help: 'switchyard: which iptables to drive; auto detects as kube-proxy does.',
    group: 'iptables',
    set: (f, v) => {
      const s = str(v).trim();
      if (s !== 'auto' && s !== 'legacy' && s !== 'nft') reason('must be auto, legacy or nft');
      f.layer.iptables.variant = s;
    },
  },
  // ---- ipvs
  {
    name: 'ipvs-scheduler',
    kind: 'string',
    metavar: 'NAME',
    defaultText: 'rr',
    help: `IPVS scheduler: ${IPVS_SCHEDULERS.join(', ')}.`,
    group: 'ipvs',
    set: (f, v) => {
      const s = str(v).trim();
      if (s !== '' && !IPVS_SCHEDULERS.includes(s))
        reason(`unknown scheduler (known: ${IPVS_SCHEDULERS.join(', ')})`);
      f.layer.ipvs.scheduler = s === '' ? 'rr' : s;
    },
  },
  {
    name: 'ipvs-strict-arp',
    kind: 'bool',
    defaultText: 'false',
    help: 'Set arp_ignore=1 and arp_announce=2.',
    group: 'ipvs',
    set: (f, v) => void (f.layer.ipvs.strictARP = bool(v)),
  },
  {
    name: 'ipvs-tcp-timeout',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '0s',
    help: 'Idle IPVS TCP timeout; 0 leaves the system value.',
    group: 'ipvs',
    set: (f, v) => void (f.layer.ipvs.tcpTimeoutMs = duration(str(v))),
  },
  {
    name: 'ipvs-tcpfin-timeout',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '0s',
    help: 'IPVS TCP timeout after FIN; 0 leaves the system value.',
    group: 'ipvs',
    set: (f, v) => void (f.layer.ipvs.tcpFinTimeoutMs = duration(str(v))),
  },
  {
    name: 'ipvs-udp-timeout',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '0s',
    help: 'IPVS UDP timeout; 0 leaves the system value.',
    group: 'ipvs',
    set: (f, v) => void (f.layer.ipvs.udpTimeoutMs = duration(str(v))),
  },
  {
    name: 'ipvs-exclude-cidrs',
    kind: 'list',
    metavar: 'CIDRS',
    defaultText: '',
    help: 'CIDRs the ipvs backend must not touch when cleaning up.',
    group: 'ipvs',
    set: (f, v) => void (f.layer.ipvs.excludeCIDRs = cidrList(str(v))),
  },
  // ---- conntrack
  {
    name: 'conntrack-max-per-core',
    kind: 'int',
    metavar: 'N',
    defaultText: '32768',
    help: 'Conntrack entries per CPU core (0 leaves the limit and ignores --conntrack-min).',
    group: 'conntrack',
    set: (f, v) => void (f.layer.conntrack.maxPerCore = int(str(v), 0, 2 ** 31 - 1)),
  },
  {
    name: 'conntrack-min',
    kind: 'int',
    metavar: 'N',
    defaultText: '131072',
    help: 'Minimum conntrack entries, whatever --conntrack-max-per-core says.',
    group: 'conntrack',
    set: (f, v) => void (f.layer.conntrack.min = int(str(v), 0, 2 ** 31 - 1)),
  },
  {
    name: 'conntrack-tcp-timeout-established',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '24h0m0s',
    help: 'Idle timeout of established TCP flows (0 leaves it as is).',
    group: 'conntrack',
    set: (f, v) => void (f.layer.conntrack.tcpEstablishedTimeoutMs = duration(str(v))),
  },
  {
    name: 'conntrack-tcp-timeout-close-wait',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '1h0m0s',
    help: 'Timeout of TCP flows in CLOSE_WAIT.',
    group: 'conntrack',
    set: (f, v) => void (f.layer.conntrack.tcpCloseWaitTimeoutMs = duration(str(v))),
  },
  {
    name: 'conntrack-udp-timeout',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '0s',
    help: 'Idle timeout of UNREPLIED UDP flows (0 leaves it as is).',
    group: 'conntrack',
    set: (f, v) => void (f.layer.conntrack.udpTimeoutMs = duration(str(v))),
  },
  {
    name: 'conntrack-udp-timeout-stream',
    kind: 'duration',
    metavar: 'DURATION',
    defaultText: '0s',
    help: 'Idle timeout of ASSURED UDP flows (0 leaves it as is).',
    group: 'conntrack',
    set: (f, v) => void (f.layer.conntrack.udpStreamTimeoutMs = duration(str(v))),
  },
  // ---- switchyard
  {
    name: 'plugin',
    kind: 'string',
    metavar: 'MODULE',
    defaultText: '',
    repeatable: true,
    help: 'Load a backend plugin (path relative to the working directory, absolute path, or package name). Repeatable.',
    group: 'switchyard',
    set: (f, v) => {
      if (str(v).trim() === '') reason('empty module name');
      f.plugins.push(str(v).trim());
    },
  },
  {
    name: 'from',
    kind: 'string',
    metavar: 'PATH',
    defaultText: '',
    help: 'Read Services, EndpointSlices and Nodes from this YAML file or folder instead of the API server.',
    group: 'switchyard',
    set: (f, v) => void (f.from = str(v) === '' ? undefined : str(v)),
  },
  {
    name: 'backend-opt',
    kind: 'string',
    metavar: 'KEY=VALUE',
    defaultText: '',
    repeatable: true,
    help: 'A backend-specific setting (e.g. example.file=/tmp/x.jsonl). Repeatable.',
    group: 'switchyard',
    set: (f, v) => {
      const s = str(v);
      const eq = s.indexOf('=');
      if (eq <= 0 || s.slice(0, eq).trim() === '') reason('want KEY=VALUE');
      f.backendOptions[s.slice(0, eq).trim()] = s.slice(eq + 1);
    },
  },
  // ---- plan
  {
    name: 'output',
    short: 'o',
    kind: 'string',
    metavar: 'yaml|json',
    defaultText: 'yaml',
    help: 'plan: output format; trace: json, or text (the default).',
    group: 'plan',
    commands: ['plan', 'trace'],
    set: (f, v) => {
      const s = str(v).trim().toLowerCase();
      if (s !== 'yaml' && s !== 'json') reason('must be yaml or json');
      f.output = s;
    },
  },
  // ---- trace
  {
    name: 'source',
    kind: 'string',
    metavar: 'IP',
    defaultText: '',
    help: 'trace: the client address.',
    group: 'trace',
    commands: ['trace'],
    set: (f, v) => {
      const ip = parseIP(str(v).trim());
      if (ip === undefined) reason('not an IP address');
      f.source = str(v).trim();
    },
  },
  {
    name: 'destination',
    kind: 'string',
    metavar: 'IP:PORT',
    defaultText: '',
    help: 'trace: the destination (IPv6 as [addr]:port).',
    group: 'trace',
    commands: ['trace'],
    set: (f, v) => {
      const hp = parseHostPort(str(v), false);
      if (typeof hp === 'string') reason(hp);
      f.destination = { ip: hp.host, port: hp.port, family: hp.family };
    },
  },
  {
    name: 'protocol',
    kind: 'string',
    metavar: 'tcp|udp|sctp',
    defaultText: 'tcp',
    help: 'trace: the protocol.',
    group: 'trace',
    commands: ['trace'],
    set: (f, v) => {
      const s = str(v).trim().toUpperCase();
      if (s !== 'TCP' && s !== 'UDP' && s !== 'SCTP') reason('must be tcp, udp or sctp');
      f.protocol = s;
    },
  },
  // ---- kube-proxy flags that do not apply to switchyard
  ignored(
    'bind-address',
    'string',
    "kube-proxy's idea of the node's primary IP; switchyard reads it from the Node object.",
    'IP',
  ),
  ignored(
    'bind-address-hard-fail',
    'bool',
    'switchyard always fails when it cannot bind healthz or metrics.',
  ),
  ignored('oom-score-adj', 'int', 'Set it in the pod spec instead.', 'N'),
  ignored('profiling', 'bool', 'No /debug/pprof handler.'),
  ignored(
    'feature-gates',
    'string',
    'switchyard has no feature gates; topology and traffic-distribution features are always on.',
    'K=V,...',
  ),
  ignored('kube-api-content-type', 'string', 'switchyard always uses JSON.', 'TYPE'),
  ignored('kube-api-qps', 'string', 'No client-side rate limit.', 'QPS'),
  ignored('kube-api-burst', 'int', 'No client-side rate limit.', 'N'),
  ignored('show-hidden-metrics-for-version', 'string', 'No hidden metrics.', 'VERSION'),
  ignored('config-sync-period', 'duration', 'switchyard does not relist periodically.', 'DURATION'),
  ignored('proxy-port-range', 'string', 'Unused by kube-proxy too.', 'RANGE'),
  ignored('conntrack-tcp-be-liberal', 'bool', 'nf_conntrack_tcp_be_liberal is not changed.'),
  ignored('logging-format', 'string', 'switchyard logs JSON lines (pino).', 'FORMAT'),
  ignored('log-flush-frequency', 'duration', 'Logs are written at once.', 'DURATION'),
  ignored('vmodule', 'string', 'Use -v.', 'PATTERN=N,...'),
  ignored('log-text-info-buffer-size', 'string', 'See --logging-format.', 'SIZE'),
  ignored('log-text-split-stream', 'bool', 'See --logging-format.'),
  ignored('log-json-info-buffer-size', 'string', 'See --logging-format.', 'SIZE'),
  ignored('log-json-split-stream', 'bool', 'See --logging-format.'),
  {
    name: 'write-config-to',
    kind: 'string',
    metavar: 'FILE',
    defaultText: '',
    help: 'kube-proxy only; not supported.',
    group: 'compat',
    unsupported:
      'not supported by switchyard (write the KubeProxyConfiguration by hand; see docs/configuration.md)',
    set: () => undefined,
  },
  {
    name: 'init-only',
    kind: 'bool',
    defaultText: '',
    help: 'kube-proxy only; not supported.',
    group: 'compat',
    unsupported: 'not supported by switchyard (it needs no privileged init step)',
    set: () => undefined,
  },
];

function positive(ms: number): number {
  if (ms <= 0) reason('must be greater than 0');
  return ms;
}

/** Looks a flag up by long name. */
export function findFlag(name: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.name === name);
}

/** Looks a flag up by its one-letter shorthand. */
export function findShortFlag(letter: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.short === letter);
}
