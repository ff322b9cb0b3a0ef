import { isIP } from 'node:net';

export interface BindAddress {
  /** An IP literal (IPv6 without brackets). */
  readonly host: string;
  /** 0 asks the kernel for an ephemeral port (tests). */
  readonly port: number;
}

/**
 * Parse a kube-proxy bind address: `host:port`, `[v6]:port`, a bare IP (then `defaultPort`, as
 * kube-proxy's AppendPortIfNeeded does), or `:port` (all IPv4 addresses). `''` (or only
 * whitespace) disables the server: undefined. Port 0 is allowed and binds an ephemeral port.
 * Throws an Error naming the input when it is not a valid address.
 */
export function parseBindAddress(input: string, defaultPort?: number): BindAddress | undefined {
  const text = input.trim();
  if (text === '') return undefined;
  const fail = (why: string): never => {
    throw new Error(`invalid bind address ${JSON.stringify(input)}: ${why}`);
  };

  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) fail('missing "]"');
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) fail('expected ":port" after "]"');
      portText = rest.slice(1);
    }
    if (isIP(host) !== 6) fail(`${JSON.stringify(host)} is not an IPv6 address`);
  } else if (isIP(text) !== 0) {
    // A bare IPv4 or IPv6 address (an unbracketed IPv6 has no port).
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) fail('expected host:port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') host = '0.0.0.0';
    else if (isIP(host) !== 4)
      fail(`${JSON.stringify(host)} is not an IP address (IPv6 needs [brackets] with a port)`);
  }

  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) fail('no port');
    port = defaultPort as number;
  } else {
    if (!/^\d{1,5}$/.test(portText)) fail(`port ${JSON.stringify(portText)} is not a number`);
    port = Number(portText);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`port ${port} is out of range`);
  return { host, port };
}

/** `host:port` with brackets for IPv6, for logs and URLs. */
export function formatBindAddress(address: BindAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
