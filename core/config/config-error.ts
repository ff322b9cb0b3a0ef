/**
 * A bad flag or config file. The message is one line naming the flag (or file field) and the
 * reason; the CLI prints it and exits with status 2.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The flag (e.g. "--cluster-cidr") or field path (e.g. "iptables.syncPeriod") at fault, if any. */
  readonly subject?: string;

  constructor(message: string, subject?: string) {
    super(message.replace(/\s*\n\s*/g, ' '));
    if (subject !== undefined) this.subject = subject;
  }
}
