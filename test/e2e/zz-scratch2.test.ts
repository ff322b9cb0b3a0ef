import { it } from 'vitest';
import { computeDelta, Planner, plannerConfigFrom } from '../../core/planner/planner.js';
import { makeState } from '../support/fixtures.js';
import { createTopology } from '../support/netns-topology.js';
import { createBackend, proxyConfigFromFlags } from './backend-loader.js';
import { BEHAVIOUR_TOPOLOGY, flagsFor } from './behaviour-table.js';
import { scenarioCluster, UDP_VIP, kernelProxyState } from './scenarios.js';
it('scratch2', async () => {
  const t = await createTopology(BEHAVIOUR_TOPOLOGY);
  try {
    const name = process.env.B ?? 'nftables';
    const config = proxyConfigFromFlags(flagsFor('default'));
    const b = await createBackend(name, config, t.executor);
    const planner = new Planner();
    let last;
    const before = await kernelProxyState(t.executor);
    for (const o of [scenarioCluster({ tcp: ['pod-a'], udp: ['pod-a'] })]) {
      const { snapshot } = planner.plan(makeState({ services: [...o.services], slices: [...o.slices], node: o.node }), plannerConfigFrom(config));
      const d = computeDelta(last, snapshot, false);
      console.log('delta', d.full, [...d.changed], [...d.removed]);
      await b.sync(snapshot, d); last = snapshot;
    }
    console.log(JSON.stringify(await t.probe('pod-b', 'udp', UDP_VIP, 53)));
    console.log(JSON.stringify(await t.probe('pod-b', 'udp', '10.244.1.10', 5353)));
    console.log(JSON.stringify(await t.probe('pod-b', 'tcp', '10.96.1.20', 80)));
    console.log((await t.exec('node', ['conntrack', '-L'])).stdout);
    if (process.env.DUMP) console.log((await t.exec('node', ['nft', 'list', 'ruleset'])).stdout);
    await (await createBackend(name, config, t.executor)).cleanup();
    const after = await kernelProxyState(t.executor);
    if (before !== after) console.log('AFTER CLEANUP DIFF\n', after.split('\n').filter(l => !before.split('\n').includes(l)).join('\n'));
  } finally { await t.destroy(); }
}, 60000);
