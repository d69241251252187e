import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Inventory, InventoryHost } from './inventory.ts';
import { portSetting, setting, SettingError } from './settings.ts';

const roles = mkdtempSync(join(tmpdir(), 'oms-settings-'));
after(() => { rmSync(roles, { recursive: true, force: true }); });
mkdirSync(join(roles, 'demo', 'defaults'), { recursive: true });
writeFileSync(join(roles, 'demo', 'defaults', 'main.yml'), [
  '---', 'demo_port: 9094', 'demo_name: oms-cache', 'demo_templated: "{{ other_port | default(1) }}"', 'demo_list: [1, 2]', 'demo_big: 70000', '',
].join('\n'));

describe('settings', () => {
  it('the role\'s default, unless the inventory\'s all group or the host sets it', () => {
    assert.equal(setting('demo', 'demo_port', { rolesDir: roles }), 9094);
    const inventory = { vars: { demo_port: 19094 } } as unknown as Inventory;
    assert.equal(setting('demo', 'demo_port', { rolesDir: roles, inventory }), 19094);
    const host = { vars: { demo_port: 29094 } } as unknown as InventoryHost;
    assert.equal(portSetting('demo', 'demo_port', { rolesDir: roles, inventory, host }), 29094);
    assert.equal(setting('demo', 'demo_name', { rolesDir: roles }), 'oms-cache');
  });

  it('refuses what only Ansible can resolve, a missing name, a list and a port out of range, naming the setting', () => {
    assert.throws(() => setting('demo', 'demo_templated', { rolesDir: roles }), (e: Error) => e instanceof SettingError && /demo_templated: .* is a Jinja expression/.test(e.message));
    assert.throws(() => setting('demo', 'demo_nothing', { rolesDir: roles }), /demo_nothing: neither the inventory nor roles\/demo\/defaults\/main.yml sets it/);
    assert.throws(() => setting('demo', 'demo_list', { rolesDir: roles }), /demo_list: not a single value/);
    assert.throws(() => portSetting('demo', 'demo_big', { rolesDir: roles }), /demo_big: not a TCP port \(70000\)/);
  });

  it('the kit\'s roles give the ports the drills use', () => {
    assert.equal(portSetting('kafka', 'kafka_client_port'), 9094);
    assert.equal(portSetting('redis_sentinel', 'redis_sentinel_port'), 26379);
    assert.equal(portSetting('haproxy', 'haproxy_rw_port'), 5000);
    assert.equal(portSetting('prometheus', 'prometheus_alertmanager_port'), 9093);
  });
});
