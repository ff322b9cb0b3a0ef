import type { Logger } from '../log.js';
import type { SourceEvent } from '../model/events.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import type { ParsedCommand } from '../config/index.js';

type TraceCommand = Extract<ParsedCommand, { kind: 'trace' }>;

export async function runTrace(
  _config: ProxyConfig,
  _command: TraceCommand,
  _logger: Logger,
  _load: (config: ProxyConfig, logger: Logger) => Promise<SourceEvent[]>,
): Promise<number> {
  process.stderr.write('switchyard: trace is not implemented yet\n');
  return 2;
}
