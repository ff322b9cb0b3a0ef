import { it } from 'vitest';
import { computeDelta, Planner, plannerConfigFrom } from '../../core/planner/planner.js';
import { createTopology } from '../support/netns-topology.js';
import { createBackend, proxyConfigFromFlags } from './backend-loader.js';
import { BEHAVIOUR_TOPOLOGY, flagsFor, behaviourClusterState } from './behaviour-table.js';
it('scratch3', async () => {
  const t = await createTopology(BEHAVIOUR_TOPOLOGY);
  try {
    const config = proxyConfigFromFlags(flagsFor('default'));
    const b = await createBackend('nftables', config, t.executor);
    const { snapshot } = new Planner().plan(behaviourClusterState(), plannerConfigFrom(config));
    await b.sync(snapshot, computeDelta(undefined, snapshot, true));
    console.log(JSON.stringify(await t.probe('pod-b', 'udp', '10.96.0.120', 53)));
    console.log((await t.exec('node', ['nft', 'list', 'table', 'ip', 'switchyard'])).stdout.split('\n').filter(l => /dnat|chain ep|10.96.0.120/.test(l)).join('\n'));
    console.log((await t.exec('node', ['nft', '--debug=netlink', 'list', 'chain', 'ip', 'switchyard', 'ep-ip-1'])).stdout);
  } finally { await t.destroy(); }
}, 60000);
