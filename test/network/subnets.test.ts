// Subnets: parsing, overlap, the host's routes, and docker's choice of a free pool.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgument } from '../../src/errors/errors.js';
import { contains, firstHost, freeSubnet, hostRoutes, overlaps, parseAddress, parseSubnet, subnetString } from '../../src/network/subnets.js';

describe('subnets', () => {
  it('parses CIDRs to their network, refuses what is not one', () => {
    assert.equal(subnetString(parseSubnet('172.18.3.4/16')), '172.18.0.0/16');
    assert.equal(firstHost(parseSubnet('10.1.2.0/24')), '10.1.2.1');
    assert.throws(() => parseSubnet('172.18.0.0'), InvalidArgument);
    assert.throws(() => parseSubnet('300.1.1.1/8'), InvalidArgument);
    assert.throws(() => parseSubnet('1.2.3.4/33'), InvalidArgument);
    assert.equal(parseAddress('1.2.3'), undefined);
  });

  it('overlap and containment', () => {
    assert.ok(overlaps(parseSubnet('172.16.0.0/12'), parseSubnet('172.18.0.0/16')));
    assert.ok(!overlaps(parseSubnet('172.18.0.0/16'), parseSubnet('172.19.0.0/16')));
    assert.ok(contains(parseSubnet('192.168.16.0/20'), parseAddress('192.168.31.255')!));
    assert.ok(!contains(parseSubnet('192.168.16.0/20'), parseAddress('192.168.32.0')!));
  });

  it('picks the first default pool that overlaps nothing taken, as docker', () => {
    assert.equal(subnetString(freeSubnet([])), '172.17.0.0/16');
    assert.equal(subnetString(freeSubnet([parseSubnet('172.17.5.0/24'), parseSubnet('172.18.0.0/16')])), '172.19.0.0/16');
    assert.equal(subnetString(freeSubnet([parseSubnet('172.16.0.0/12')])), '192.168.0.0/20');
    assert.throws(() => freeSubnet([parseSubnet('172.16.0.0/12'), parseSubnet('192.168.0.0/16')]), /could not find an available, non-overlapping IPv4 address pool/);
  });

  it('reads the host\'s routes (not the default one)', async () => {
    const routes = await hostRoutes();
    assert.ok(routes.every((r) => r.prefix > 0));
    assert.ok(routes.length > 0, 'this host has at least the route of its own network');
  });
});
