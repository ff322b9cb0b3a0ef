/**
 * Label and field selectors as the Kubernetes API server understands them, for the list/watch
 * fixture (test/support/api-server.ts). Supports the label forms `key`, `!key`, `key=value`,
 * `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, and the field selectors
 * `metadata.name` / `metadata.namespace` with `=`, `==`, `!=`.
 */

export interface SelectableObject {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
}

export type Selector = (obj: SelectableObject) => boolean;

/** A malformed selector; the fixture answers it with 400 BadRequest like the real server. */
export class SelectorError extends Error {}

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function labelRequirement(req: string): Selector {
  let m = /^!\s*([^\s=!(),]+)$/.exec(req);
  if (m) {
    const key = m[1]!;
    return (o) => o.metadata?.labels?.[key] === undefined;
  }
  m = /^([^\s=!(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(req);
  if (m) {
    const key = m[1]!;
    const values = new Set(
      m[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== ''),
    );
    const notin = m[2] === 'notin';
    return (o) => {
      const v = o.metadata?.labels?.[key];
      return notin ? v === undefined || !values.has(v) : v !== undefined && values.has(v);
    };
  }
  m = /^([^\s=!(),]+)\s*(==|!=|=)\s*([^\s=!(),]*)$/.exec(req);
  if (m) {
    const key = m[1]!;
    const value = m[3]!;
    if (m[2] === '!=') return (o) => o.metadata?.labels?.[key] !== value;
    return (o) => o.metadata?.labels?.[key] === value;
  }
  m = /^([^\s=!(),]+)$/.exec(req);
  if (m) {
    const key = m[1]!;
    return (o) => o.metadata?.labels?.[key] !== undefined;
  }
  throw new SelectorError(`unable to parse requirement: ${JSON.stringify(req)}`);
}

/** Parses a label selector; an empty or absent selector matches everything. */
export function parseLabelSelector(selector: string | undefined): Selector {
  if (selector === undefined || selector.trim() === '') return () => true;
  const reqs = splitTopLevel(selector).map(labelRequirement);
  return (o) => reqs.every((r) => r(o));
}

/** Parses a field selector (metadata.name and metadata.namespace only). */
export function parseFieldSelector(selector: string | undefined): Selector {
  if (selector === undefined || selector.trim() === '') return () => true;
  const reqs = splitTopLevel(selector).map((req): Selector => {
    const m = /^([a-zA-Z.]+)\s*(==|!=|=)\s*(.*)$/.exec(req);
    if (!m) throw new SelectorError(`invalid field selector: ${JSON.stringify(req)}`);
    const field = m[1]!;
    const value = m[3]!.trim();
    const neg = m[2] === '!=';
    let get: (o: SelectableObject) => string | undefined;
    if (field === 'metadata.name') get = (o) => o.metadata?.name;
    else if (field === 'metadata.namespace') get = (o) => o.metadata?.namespace ?? '';
    else throw new SelectorError(`field label not supported: ${field}`);
    return (o) => (get(o) === value) !== neg;
  });
  return (o) => reqs.every((r) => r(o));
}
