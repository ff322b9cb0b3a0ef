export { ConfigError } from './config-error.js';
export {
  parseArgs,
  usage,
  packageVersion,
  type ParsedCommand,
  type CommandFlags,
  type CommandName,
  type TraceDestination,
} from './parse-args.js';
export { loadConfig, resolveConfig, DEFAULTS, type LoadedConfig, type ConfigIO } from './load-config.js';
export {
  parseKubeProxyConfiguration,
  KUBE_PROXY_CONFIG_API_VERSION,
  KUBE_PROXY_CONFIG_KIND,
  type FileConfig,
} from './kube-proxy-configuration.js';
export { FLAGS, type FlagSpec } from './flag-table.js';
export { parseGoDuration, formatGoDuration } from './duration.js';
