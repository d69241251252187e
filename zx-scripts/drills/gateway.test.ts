// How the gateway drills judge the gateway pair: exactly one holder of the VIP, both gateways running Nginx and
// Keepalived and passing their health check; the states a failover passes through are not whole.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayProblems, type GatewayState } from './gateway.ts';

const up = (host: string, vip: boolean): GatewayState =>
  ({ host, running: true, vip, nginx: 'active', keepalived: 'active', healthy: true, transitions: 2 });

describe('gateway pair', () => {
  it('whole: one holder, both gateways up and healthy', () => {
    assert.deepEqual(gatewayProblems([up('gw1', false), up('gw2', true)]), { problems: [], holder: 'gw2' });
  });

  it('a powered-off gateway: not whole even though the other holds the VIP', () => {
    const { problems, holder } = gatewayProblems([{ ...up('gw1', false), running: false }, up('gw2', true)]);
    assert.equal(holder, 'gw2');
    assert.deepEqual(problems, ['gw1 is not running']);
  });

  it('Nginx down on a gateway (systemd restarting it), and a failing health check', () => {
    assert.deepEqual(gatewayProblems([{ ...up('gw1', false), nginx: 'activating' }, up('gw2', true)]).problems, ['gw1: nginx activating, keepalived active']);
    assert.deepEqual(gatewayProblems([up('gw1', true), { ...up('gw2', false), healthy: false }]).problems, ['gw2: health check fails']);
  });

  it('split brain and no holder at all', () => {
    const both = gatewayProblems([up('gw1', true), up('gw2', true)]);
    assert.equal(both.holder, undefined);
    assert.deepEqual(both.problems, ['2 gateways hold the VIP (gw1, gw2)']);
    assert.deepEqual(gatewayProblems([up('gw1', false), up('gw2', false)]).problems, ['0 gateways hold the VIP']);
  });
});
