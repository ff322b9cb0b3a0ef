/**
 * Go duration strings (time.ParseDuration): "300ms", "1.5h", "2h45m", "1m30s", "0".
 * Units: ns, us (µs, μs), ms, s, m, h. Returned in milliseconds (possibly fractional).
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const TERM = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

/**
 * Parses a Go duration. Returns the milliseconds, or a one-line reason when it is not a
 * duration. Negative durations are parsed (Go allows them); callers reject them.
 */
export function parseGoDuration(text: string): number | string {
  let s = text.trim();
  if (s === '') return 'empty duration';
  let sign = 1;
  if (s[0] === '-' || s[0] === '+') {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return `invalid duration "${text}"`;
  let total = 0;
  while (s.length > 0) {
    const m = TERM.exec(s);
    if (m === null) {
      return /^\d+\.?\d*$/.test(s)
        ? `missing unit in duration "${text}" (e.g. 30s, 500ms, 1m30s)`
        : `invalid duration "${text}" (e.g. 30s, 500ms, 1m30s)`;
    }
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/** A non-negative Go duration in milliseconds, or a reason. */
export function parseNonNegativeDuration(text: string): number | string {
  const ms = parseGoDuration(text);
  if (typeof ms === 'string') return ms;
  if (ms < 0) return `must not be negative (got "${text}")`;
  return ms;
}

/** Formats milliseconds the way Go prints a time.Duration ("1m30s", "500ms", "0s"). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 0) return `-${formatGoDuration(-ms)}`;
  if (ms < 1000) return `${+ms.toFixed(6)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  let out = '';
  if (h > 0) out += `${h}h`;
  if (h > 0 || m > 0) out += `${m}m`;
  out += `${+s.toFixed(9)}s`;
  return out;
}
