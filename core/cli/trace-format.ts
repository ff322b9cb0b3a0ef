/** How `switchyard trace` prints a TraceReport: text for humans, or JSON (`-o json`). */
import type { TraceReport } from './trace-report.js';

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function formatTraceText(r: TraceReport): string {
  const p = r.packet;
  const out: string[] = [];
  out.push(
    `Packet:      ${p.protocol} ${p.source} -> ${hostPort(p.destination, p.port)} (${p.family}), seen by node ${r.node}`,
  );
  out.push(`Source:      ${r.sourceKind} (${r.sourceWhy})`);
  if (r.match) {
    const m = r.match;
    const portName = m.portName === '' ? '' : ` port "${m.portName}"`;
    out.push(`Service:     ${m.service}${portName} (${m.servicePortId})`);
    out.push(`Matched:     ${m.how}`);
    out.push(`Path:        ${m.path}: ${m.pathWhy}`);
    if (m.sessionAffinitySeconds !== undefined)
      out.push(`Affinity:    ClientIP, ${m.sessionAffinitySeconds} s`);
    const eligible = r.endpoints.filter((e) => e.eligible).length;
    out.push(`Endpoints:   ${eligible} of ${r.endpoints.length} eligible`);
    for (const e of r.endpoints) {
      const who = e.targetName ? ` ${e.targetName}` : '';
      out.push(`  ${e.eligible ? '+' : '-'} ${e.address}${who}: ${e.why}`);
    }
  } else {
    out.push('Service:     none');
  }
  out.push(`Verdict:     ${r.verdict}: ${r.verdictWhy}`);
  if (r.dnatTo.length > 0) out.push(`DNAT to:     ${r.dnatTo.join(', ')}`);
  if (r.samplePick !== undefined) out.push(`Sample pick: ${r.samplePick} (through the matcher)`);
  if (r.masquerade) out.push(`Masquerade:  ${r.masquerade.masqueraded ? 'yes' : 'no'}: ${r.masquerade.why}`);
  for (const n of r.notes) out.push(`Note:        ${n}`);
  return `${out.join('\n')}\n`;
}

export function formatTraceJson(r: TraceReport): string {
  return `${JSON.stringify(r, undefined, 2)}\n`;
}
