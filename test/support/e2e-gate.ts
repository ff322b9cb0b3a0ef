import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';

/** True when CI demands every end-to-end test to run (a skip is then a failure). */
export function e2eRequired(): boolean {
  return process.env.SWITCHYARD_E2E === 'required';
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why kernel end-to-end tests cannot run here, or undefined when they can.
 * `tools` are commands that must be on PATH (scripts/setup.sh installs them as root).
 */
export function kernelUnavailableReason(tools: readonly string[] = ['ip', 'nft']): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return 'not root (network namespaces need root)';
  const missing = tools.filter((t) => !hasCommand(t));
  if (missing.length > 0) return `missing ${missing.join(', ')} (run scripts/setup.sh as root)`;
  return undefined;
}

/**
 * `describe` for kernel tests: runs when `reason` is undefined; otherwise skips, saying why,
 * unless SWITCHYARD_E2E=required, in which case it registers a failing suite.
 */
export function describeE2E(name: string, reason: string | undefined, body: () => void): void {
  if (reason === undefined) {
    describe(name, body);
    return;
  }
  if (e2eRequired()) {
    describe(name, () => {
      it('can run here', () => {
        throw new Error(`${name}: cannot run (${reason}) and SWITCHYARD_E2E=required`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": ${reason}`);
  describe.skip(`${name} (skipped: ${reason})`, body);
}
