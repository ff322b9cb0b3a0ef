/**
 * Interface names (or name prefixes) used to recognise pod traffic (`--detect-local-mode`
 * BridgeInterface / InterfaceNamePrefix). Linux takes 1–15 bytes without whitespace, '/' or
 * ':'; the wildcard and quote characters iptables and nft rules would misread ('+', '*',
 * quotes, backslash) are refused too.
 */
export function validInterfaceName(name: unknown): name is string {
  return (
    typeof name === 'string' && name.length > 0 && Buffer.byteLength(name) <= 15 && !/[\s/:+*"'\\]/.test(name)
  );
}

/** What validInterfaceName checks, for error messages. */
export const INTERFACE_NAME_RULE =
  'an interface name: 1–15 bytes without whitespace, /, :, +, *, quotes or backslash';
