/**
 * `switchyard trace --from FILE|--kubeconfig K --hostname-override NODE --source IP
 * --destination IP:PORT [--protocol tcp|udp|sctp] [-o json]`: where would this packet go on
 * this node, and why. "Why doesn't my Service work", answered from the same planner and
 * matcher the proxy runs.
 */
import { createMatcher, DEFAULT_SEED, type Matcher } from '../../matcher/src/index.js';
import type { ParsedCommand } from '../config/index.js';
import type { Logger } from '../log.js';
import type { SourceEvent } from '../model/events.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import type { Snapshot } from '../model/snapshot.js';
import { splitCIDRs } from '../planner/plan-node.js';
import { Planner, plannerConfigFrom } from '../planner/planner.js';
import { Tracker } from '../tracker/tracker.js';
import { formatTraceJson, formatTraceText } from './trace-format.js';
import { traceReport } from './trace-report.js';

type TraceCommand = Extract<ParsedCommand, { kind: 'trace' }>;

export interface TraceOptions {
  /** The matcher's PRNG seed (the sample pick); default the matcher's default seed. */
  readonly seed?: number;
  /** Use this matcher (it is loaded with the snapshot). */
  readonly matcher?: Matcher;
  /** Where the report goes (default stdout); errors go to `writeError` (default stderr). */
  readonly write?: (text: string) => void;
  readonly writeError?: (text: string) => void;
}

/** Runs `switchyard trace`; returns the exit code (0 printed a report, 2 bad usage). */
export async function runTrace(
  config: ProxyConfig,
  command: TraceCommand,
  logger: Logger,
  load: (config: ProxyConfig, logger: Logger) => Promise<SourceEvent[]>,
  options: TraceOptions = {},
): Promise<number> {
  const write = options.write ?? ((t: string): void => void process.stdout.write(t));
  const writeError = options.writeError ?? ((t: string): void => void process.stderr.write(t));
  if (command.source === undefined || command.destination === undefined) {
    writeError('switchyard trace: --source IP and --destination IP:PORT are required\n');
    return 2;
  }
  const tracker = new Tracker(config);
  for (const event of await load(config, logger)) tracker.apply(event);
  const { snapshot } = new Planner(logger).plan(tracker.state(), plannerConfigFrom(config));
  const matcher =
    options.matcher ??
    (await createMatcher({
      seed: options.seed ?? DEFAULT_SEED,
      logger: logger.isLevelEnabled('debug') ? logger : logger.child({}, { level: 'warn' }),
    }));
  matcher.load(snapshot);
  const report = traceReport(traceSnapshot(snapshot, config), matcher, {
    source: command.source,
    destination: command.destination.ip,
    port: command.destination.port,
    protocol: command.protocol,
    ...traceLocalLabel(config),
  });
  write(command.flags.output === 'json' ? formatTraceJson(report) : formatTraceText(report));
  return 0;
}

/**
 * The kernel tells pod traffic apart by input interface with `--detect-local-mode`
 * BridgeInterface / InterfaceNamePrefix; a trace only has a source address, so it stands in
 * `--cluster-cidr` for the pod addresses then (and says so).
 */
function traceSnapshot(snapshot: Snapshot, config: ProxyConfig): Snapshot {
  if (snapshot.localInterface === undefined) return snapshot;
  return { ...snapshot, clusterCIDRs: splitCIDRs(config.clusterCIDRs).cidrs };
}

function traceLocalLabel(config: ProxyConfig): { localLabel?: string } {
  const d = config.detectLocal;
  if (d.mode === 'NodeCIDR') return { localLabel: "the Node's podCIDRs" };
  if (d.mode === 'BridgeInterface' || d.mode === 'InterfaceNamePrefix') {
    const iface = d.mode === 'BridgeInterface' ? d.bridgeInterface : `${d.interfaceNamePrefix}*`;
    return {
      localLabel: `--cluster-cidr (standing in for the input interface ${iface}, --detect-local-mode=${d.mode})`,
    };
  }
  return {};
}
