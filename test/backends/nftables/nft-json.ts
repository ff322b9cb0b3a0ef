/**
 * Reading `nft -j list table` output back into comparable text, for kernel tests.
 */
import type { Executor } from '../../../backends/exec/executor.js';

type Json = unknown;

/** One JSON expression → nft-like text: concat `a . b`, prefix `addr/len`, verdicts `goto x`. */
export function exprText(e: Json): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  if (Array.isArray(e)) return e.map(exprText).join(', ');
  if (e && typeof e === 'object') {
    const o = e as Record<string, Json>;
    if ('concat' in o) return (o.concat as Json[]).map(exprText).join(' . ');
    if ('prefix' in o) {
      const p = o.prefix as { addr: Json; len: number };
      return `${exprText(p.addr)}/${p.len}`;
    }
    if ('elem' in o) return exprText((o.elem as { val: Json }).val);
    if ('goto' in o) return `goto ${(o.goto as { target: string }).target}`;
    if ('jump' in o) return `jump ${(o.jump as { target: string }).target}`;
    if ('drop' in o) return 'drop';
    if ('accept' in o) return 'accept';
    if ('range' in o) return (o.range as Json[]).map(exprText).join('-');
  }
  return JSON.stringify(e);
}

export interface TableView {
  readonly chains: Set<string>;
  /** set/map name → element texts (`key` or `key : value`). */
  readonly sets: Map<string, string[]>;
}

export function parseTable(json: string): TableView {
  const doc = JSON.parse(json) as { nftables: Record<string, Json>[] };
  const chains = new Set<string>();
  const sets = new Map<string, string[]>();
  for (const item of doc.nftables) {
    if ('chain' in item) chains.add((item.chain as { name: string }).name);
    const s = (item.set ?? item.map) as { name: string; elem?: Json[] } | undefined;
    if (s) {
      const elems = (s.elem ?? []).map((el) =>
        Array.isArray(el) ? `${exprText(el[0])} : ${exprText(el[1])}` : exprText(el),
      );
      sets.set(s.name, elems.sort());
    }
  }
  return { chains, sets };
}

/** `nft -j list table FAMILY switchyard`, or undefined when the table does not exist. */
export async function listTable(
  executor: Executor,
  family: 'ip' | 'ip6',
  name = 'switchyard',
): Promise<TableView | undefined> {
  const r = await executor.run('nft', ['-j', 'list', 'table', family, name], { allowFailure: true });
  if (r.code !== 0) return undefined;
  return parseTable(r.stdout);
}
