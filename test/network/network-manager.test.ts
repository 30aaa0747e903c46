// The network records: the three predefined networks, user networks with subnets of their
// own, docker's lookups and refusals, and a networks file that is not JSON refused at start.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Conflict, Forbidden, InvalidArgument, NotFound, Unavailable } from '../../src/errors/errors.js';
import { NetworkManager } from '../../src/network/network-manager.js';
import { overlaps, parseSubnet } from '../../src/network/subnets.js';

const scratch = mkdtempSync(join(tmpdir(), 'berth-networks-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const roots = () => ({ dataRoot: join(scratch, `data-${n}`), execRoot: join(scratch, `run-${n++}`), bridgeName: 'bt-unit' });

describe('network manager', () => {
  it('has bridge, host and none; user networks get subnets of their own; ids, names and prefixes find them', async () => {
    const opts = roots();
    const networks = await NetworkManager.open(opts);
    assert.deepEqual(networks.list().map((x) => `${x.name}:${x.driver}`).sort(), ['bridge:bridge', 'host:host', 'none:null']);
    const bridge = networks.get('bridge');
    assert.equal(bridge.bridge, 'bt-unit');
    const mine = await networks.create({ Name: 'mine', Labels: { a: 'b' } });
    assert.ok(!overlaps(parseSubnet(mine.subnet!), parseSubnet(bridge.subnet!)));
    assert.equal(mine.bridge, `br-${mine.id.slice(0, 12)}`);
    assert.equal(networks.get(mine.id.slice(0, 6)).name, 'mine');
    await assert.rejects(networks.create({ Name: 'mine' }), Conflict);
    await assert.rejects(networks.create({ Name: 'other', IPAM: { Config: [{ Subnet: mine.subnet! }] } }), (e: Error) => e instanceof Forbidden && /Pool overlaps/.test(e.message));
    await assert.rejects(networks.create({ Name: 'gw', IPAM: { Config: [{ Subnet: '10.99.0.0/24', Gateway: '10.98.0.1' }] } }), InvalidArgument);
    await assert.rejects(networks.create({ Name: 'x', Driver: 'overlay' }), NotFound);
    await assert.rejects(networks.remove('bridge', []), (e: Error) => e instanceof Forbidden && /pre-defined network/.test(e.message));
    await assert.rejects(networks.remove('mine', ['c1']), (e: Error) => e instanceof Forbidden && /has active endpoints/.test(e.message));
    // The same records after a restart.
    const again = await NetworkManager.open(opts);
    assert.equal(again.get('mine').subnet, mine.subnet);
    assert.equal(again.get('bridge').id, bridge.id);
    await again.remove('mine', []);
    assert.equal(again.find('mine'), undefined);
  });

  it('a networks file that is not JSON is refused, not replaced', async () => {
    const opts = roots();
    await NetworkManager.open(opts);
    writeFileSync(join(opts.dataRoot, 'network', 'networks.json'), '[{"broken"');
    await assert.rejects(NetworkManager.open(opts), (e: Error) => e instanceof Unavailable && /networks\.json is not valid JSON/.test(e.message));
  });
});
