/**
 * The command line: `switchyard [plan|trace] [flags]`, with kube-proxy's flag spellings and
 * pflag's syntax (`--flag=value`, `--flag value`, booleans as `--flag` or `--flag=false`,
 * shorthands `-v 4`, `-v=4`, `-v4`, `-o json`, `-h`, and `--` to end flags).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emptyLayer } from './config-layer.js';
import { ConfigError } from './config-error.js';
import {
  FLAGS,
  FlagValueError,
  findFlag,
  findShortFlag,
  parseGoBool,
  type CommandFlags,
  type CommandName,
  type FlagGroup,
  type FlagSpec,
  type TraceDestination,
} from './flag-table.js';
import type { Protocol } from '../model/snapshot.js';

export type { CommandFlags, CommandName, TraceDestination } from './flag-table.js';

interface CommandBase {
  readonly flags: CommandFlags;
  /** Non-fatal notes for the caller to log (ignored kube-proxy flags, deprecated spellings...). */
  readonly warnings: readonly string[];
}

export type ParsedCommand =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version'; readonly text: string }
  | (CommandBase & { readonly kind: 'run' })
  | (CommandBase & { readonly kind: 'plan'; readonly output: 'yaml' | 'json' })
  | (CommandBase & {
      readonly kind: 'trace';
      readonly source?: string;
      readonly destination?: TraceDestination;
      readonly protocol: Protocol;
    });

const COMMANDS: readonly CommandName[] = ['run', 'plan', 'trace'];

function newFlags(): CommandFlags {
  return {
    layer: emptyLayer(),
    explicit: new Set<string>(),
    cleanup: false,
    plugins: [],
    backendOptions: {},
    help: false,
    version: false,
  };
}

interface Occurrence {
  readonly spec: FlagSpec;
  /** How the user spelled it, for messages ("--v", "-v"). */
  readonly spelled: string;
  readonly value: string | boolean;
}

/**
 * Parses argv (without node and the script). `env` supplies KUBECONFIG as the default
 * --kubeconfig of `plan` and `trace` (the human-facing commands; the daemon, like kube-proxy,
 * ignores it). Throws ConfigError (one line) on an unknown flag or a bad value.
 */
export function parseArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): ParsedCommand {
  const occurrences: Occurrence[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      const spec = findFlag(name);
      if (spec === undefined) throw new ConfigError(`unknown flag: --${name}`, `--${name}`);
      const spelled = `--${name}`;
      if (eq >= 0) {
        occurrences.push({ spec, spelled, value: body.slice(eq + 1) });
      } else if (spec.kind === 'bool') {
        occurrences.push({ spec, spelled, value: true });
      } else {
        if (i + 1 >= argv.length) throw new ConfigError(`flag needs an argument: ${spelled}`, spelled);
        occurrences.push({ spec, spelled, value: argv[++i]! });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      const letter = arg[1]!;
      const spec = findShortFlag(letter);
      if (spec === undefined)
        throw new ConfigError(`unknown shorthand flag: '${letter}' in ${arg}`, `-${letter}`);
      const spelled = `-${letter}`;
      const rest = arg.slice(2);
      if (spec.kind === 'bool') {
        if (rest === '') occurrences.push({ spec, spelled, value: true });
        else if (rest.startsWith('=')) occurrences.push({ spec, spelled, value: rest.slice(1) });
        else throw new ConfigError(`unknown shorthand flag: '${rest[0]}' in ${arg}`, arg);
      } else if (rest !== '') {
        occurrences.push({ spec, spelled, value: rest.startsWith('=') ? rest.slice(1) : rest });
      } else {
        if (i + 1 >= argv.length) throw new ConfigError(`flag needs an argument: ${spelled}`, spelled);
        occurrences.push({ spec, spelled, value: argv[++i]! });
      }
      continue;
    }
    positionals.push(arg);
  }

  let command: CommandName = 'run';
  const [first, ...extra] = positionals;
  if (first !== undefined) {
    if (!(COMMANDS as readonly string[]).includes(first)) {
      throw new ConfigError(`unknown command "${first}" (commands: plan, trace; none runs the proxy)`);
    }
    command = first as CommandName;
  }
  if (extra.length > 0) throw new ConfigError(`unexpected argument "${extra[0]}"`);

  const flags = newFlags();
  const warnings: string[] = [];
  for (const occ of occurrences) {
    const { spec, spelled } = occ;
    let value = occ.value;
    if (spec.kind === 'bool' && typeof value === 'string') {
      const b = parseGoBool(value);
      if (b === undefined)
        throw new ConfigError(`invalid value "${value}" for ${spelled}: must be true or false`, spelled);
      value = b;
    }
    if (spec.unsupported !== undefined) throw new ConfigError(`${spelled}: ${spec.unsupported}`, spelled);
    if (spec.commands !== undefined && !spec.commands.includes(command)) {
      throw new ConfigError(`${spelled} is only valid with: ${spec.commands.join(', ')}`, spelled);
    }
    if (!spec.repeatable && flags.explicit.has(spec.name) && !spec.ignored) {
      // pflag semantics: the last occurrence wins. Say so, since it is usually a mistake.
      warnings.push(`${spelled} was given more than once; the last value wins`);
    }
    try {
      spec.set(flags, value);
    } catch (err) {
      if (err instanceof FlagValueError) {
        throw new ConfigError(`invalid value "${String(occ.value)}" for ${spelled}: ${err.message}`, spelled);
      }
      throw err;
    }
    flags.explicit.add(spec.name);
    if (spec.ignored) warnings.push(`${spelled} is a kube-proxy flag that switchyard accepts and ignores`);
    if (spec.name === 'healthz-port' || spec.name === 'metrics-port') {
      warnings.push(`${spelled} is deprecated; use --${spec.name.replace('-port', '-bind-address')}`);
    }
  }

  if (flags.help) return { kind: 'help', text: usage(command) };
  if (flags.version) return { kind: 'version', text: `switchyard ${packageVersion()}` };

  if (flags.from !== undefined) {
    const conflicting = ['kubeconfig', 'master'].find((n) => flags.explicit.has(n));
    if (conflicting !== undefined) {
      throw new ConfigError(
        `--from and --${conflicting} are mutually exclusive (read YAML or the API server, not both)`,
        '--from',
      );
    }
  }

  if (command !== 'run' && flags.layer.kubeconfig === undefined && flags.from === undefined) {
    const fromEnv = env.KUBECONFIG?.split(':').find((p) => p !== '');
    if (fromEnv !== undefined) flags.layer.kubeconfig = fromEnv;
  }

  switch (command) {
    case 'run':
      return { kind: 'run', flags, warnings };
    case 'plan':
      return { kind: 'plan', flags, warnings, output: flags.output ?? 'yaml' };
    case 'trace':
      return {
        kind: 'trace',
        flags,
        warnings,
        ...(flags.source === undefined ? {} : { source: flags.source }),
        ...(flags.destination === undefined ? {} : { destination: flags.destination }),
        protocol: flags.protocol ?? 'TCP',
      };
  }
}

const GROUP_TITLES: Readonly<Record<FlagGroup, string>> = {
  general: 'General',
  networking: 'Service networking',
  sync: 'Sync timing',
  iptables: 'iptables backend',
  ipvs: 'ipvs backend',
  conntrack: 'conntrack',
  switchyard: 'switchyard extensions',
  plan: 'plan',
  trace: 'trace',
  compat: 'kube-proxy flags accepted for compatibility (ignored with a warning)',
};

function flagSynopsis(spec: FlagSpec): string {
  const long = `--${spec.name}`;
  const names = spec.short !== undefined ? `-${spec.short}, ${long}` : `    ${long}`;
  return spec.kind === 'bool' ? names : `${names} ${spec.metavar ?? 'VALUE'}`;
}

/** The --help text: every flag with its default and help, grouped. */
export function usage(command: CommandName = 'run'): string {
  const lines: string[] = [];
  if (command === 'plan') {
    lines.push(
      'Usage: switchyard plan [--from PATH | --kubeconfig FILE] [--hostname-override NAME] [-o yaml|json] [flags]',
    );
    lines.push(
      '',
      "Prints what this node would program: the planner's snapshot, without touching the data plane.",
    );
  } else if (command === 'trace') {
    lines.push(
      'Usage: switchyard trace [--from PATH | --kubeconfig FILE] --source IP --destination IP:PORT [--protocol tcp|udp|sctp] [flags]',
    );
    lines.push('', 'Says where a packet to a Service address would go on this node, and why.');
  } else {
    lines.push('Usage: switchyard [plan|trace] [flags]');
    lines.push(
      '',
      'A Kubernetes Service proxy: a drop-in kube-proxy replacement with interchangeable backends.',
    );
    lines.push(
      'Without a command it runs the proxy. `switchyard plan --help` and `switchyard trace --help` describe those.',
    );
  }
  const groups = Object.keys(GROUP_TITLES) as FlagGroup[];
  for (const group of groups) {
    const specs = FLAGS.filter(
      (f) =>
        f.group === group &&
        (f.commands === undefined || f.commands.includes(command)) &&
        f.unsupported === undefined,
    );
    if (specs.length === 0) continue;
    lines.push('', `${GROUP_TITLES[group]}:`);
    for (const spec of specs) {
      const def = spec.defaultText === '' ? '' : ` (default ${spec.defaultText})`;
      lines.push(`  ${flagSynopsis(spec)}`);
      lines.push(`        ${spec.help}${def}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The version in the nearest package.json named "switchyard" above this module (src or dist). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'switchyard' && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
