import { it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { planSync } from '../../../backends/nftables/render.js';
import { endpoint, servicePort, snapshotOf, fullDelta } from '../../support/snapshot-gen.js';
it('dump', () => {
  const s = snapshotOf([servicePort({ name: 'dns', protocol: 'UDP', clusterIP: '10.96.0.53', port: 53, clusterEndpoints: [endpoint('10.244.1.10', 5353)] })]);
  writeFileSync('/tmp/sy/udp.nft', planSync(s, fullDelta(s), undefined).script);
});
