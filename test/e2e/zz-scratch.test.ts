import { it } from 'vitest';
import { createTopology } from '../support/netns-topology.js';
import { BEHAVIOUR_TOPOLOGY, BEHAVIOUR_CASES } from './behaviour-table.js';
import { runCase } from './behaviour-runner.js';
it('scratch: no rules -> table fails', async () => {
  const t = await createTopology(BEHAVIOUR_TOPOLOGY);
  try {
    const res = await Promise.all(BEHAVIOUR_CASES.filter(c => c.protocol !== 'SCTP').map(async (c) => [c.name, (await runCase(t, c)).ok] as const));
    console.log('passing without rules:', res.filter(r => r[1]).map(r => r[0]));
    for (const n of ['itp-local-no-local-endpoint-dropped']) { const c = BEHAVIOUR_CASES.find(x => x.name === n)!; console.log(JSON.stringify(await runCase(t, c))); }
    console.log('failing:', res.filter(r => !r[1]).length, 'of', res.length);
  } finally { await t.destroy(); }
}, 120000);
