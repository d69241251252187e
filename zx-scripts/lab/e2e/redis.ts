// Redis and Sentinel on the lab: TLS only, clients refused without a certificate or with a wrong ACL login, each
// service user kept to its commands and keys; the drills (master killed, paused, a replica killed) heal the
// topology; a re-run after a failover changes nothing and keeps the master Sentinel chose. Runs inside lab.e2e.ts.
import assert from 'node:assert/strict';
import { labSecret, REDIS_AGENT, REDIS_SENTINEL_PORT, runAgent } from '../../drills/agent.ts';
import { spawn } from 'node:child_process';
import { redisMaster, redisTarget } from '../../drills/redis.ts';
import { repoRoot } from '../lab.ts';
import { assertOk, bin, FULL_SUITE_ONLY, inHost, inventory, it, MINUTES, recap, run, runDrillsTest } from './harness.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { secondsSince } from '../../lib/stats.ts';

interface Probe {
  ok: boolean;
  reply?: unknown;
  error?: string;
}

const probe = (...args: string[]): Promise<Probe> => runAgent<Probe>(REDIS_AGENT, inventory, 'app1', ['probe', ...args]);
const as = (user: string): string[] => ['--user', user, '--password', labSecret(`redis-${user}`)];
const cacheHosts = inventory.hosts.filter((h) => h.groups.includes('redis'));
const address = (host: string): string => inventory.hosts.find((h) => h.name === host)?.address ?? '?';

async function refused(what: string, args: string[], error: RegExp): Promise<void> {
  const result = await probe(...args);
  assert.equal(result.ok, false, `${what} was allowed: ${JSON.stringify(result)}`);
  assert.match(result.error ?? '', error, `${what}: ${JSON.stringify(result)}`);
}

export function redisTests(): void {
  it('redis: clients need a certificate and their own ACL login; each service user keeps to its commands and keys', async () => {
    const master = address(await redisMaster(inventory));
    const direct = ['--host', master, '--port', '6379'];
    const sentinel = ['--host', address('cache2'), '--port', String(REDIS_SENTINEL_PORT)];

    // allowed: each service through the Sentinels (ioredis in Sentinel mode), on its own keys
    assert.deepEqual(await probe('--command', 'SET drill:e2e ok'), { ok: true, reply: 'OK' });
    assert.deepEqual(await probe(...as('order-service'), '--command', 'SET oms:e2e ok'), { ok: true, reply: 'OK' });
    assert.deepEqual(await probe(...as('order-service'), '--command', 'GET oms:e2e'), { ok: true, reply: 'ok' });

    // no certificate: the TLS handshake fails, at Redis and at Sentinel
    await refused('Redis without a client certificate', ['--no-cert', ...direct], /certificate|handshake|socket|ECONNRESET|closed/i);
    await refused('Sentinel without a client certificate', ['--no-cert', ...sentinel, '--command', `SENTINEL get-master-addr-by-name oms-cache`], /certificate|handshake|socket|ECONNRESET|closed/i);
    await refused('Sentinel-mode client without a certificate', ['--no-cert'], /certificate|handshake|socket|ECONNRESET|closed|connect|sentinel/i);
    // a valid certificate but a wrong login: refused by the ACLs (the default user is off)
    await refused('a wrong password', [...direct, '--user', 'order-service', '--password', 'not-the-password-0123456789'], /WRONGPASS/);
    await refused('an unknown user', [...direct, '--user', 'intruder', '--password', 'not-the-password-0123456789'], /WRONGPASS/);
    await refused('the default user', [...direct, '--user', 'default', '--password', 'x'], /WRONGPASS/);
    await refused('a wrong password at Sentinel', [...sentinel, '--user', 'order-service', '--password', 'not-the-password-0123456789', '--command', 'PING'], /WRONGPASS/);

    // service users: their own keys, read/write commands only
    const order = [...direct, ...as('order-service')];
    await refused('order-service on the drills\' keys', [...order, '--command', 'SET drill:e2e x'], /NOPERM.*key/i);
    await refused('drill-agent on order-service\'s keys', [...direct, '--command', 'GET oms:e2e'], /NOPERM.*key/i);
    for (const command of ['FLUSHALL', 'KEYS *', 'CONFIG GET maxmemory', 'CONFIG SET maxmemory 1mb', 'BGSAVE', 'CLIENT KILL TYPE normal', 'REPLICAOF NO ONE', 'ACL LIST', 'SHUTDOWN', 'SCRIPT FLUSH']) {
      await refused(`order-service running ${command}`, [...order, '--command', command], /NOPERM/);
    }
    // at Sentinel, a service may ask where the master is, and change nothing
    const asked = await probe(...sentinel, ...as('order-service'), '--command', 'SENTINEL get-master-addr-by-name oms-cache');
    assert.deepEqual(asked, { ok: true, reply: [master, '6379'] });
    for (const command of ['SENTINEL SET oms-cache quorum 1', 'SENTINEL FAILOVER oms-cache', 'SENTINEL REMOVE oms-cache', 'ACL LIST', 'SHUTDOWN']) {
      await refused(`order-service running ${command} at Sentinel`, [...sentinel, ...as('order-service'), '--command', command], /NOPERM/);
    }
  });

  it('redis: Redis and Sentinel listen on their TLS ports only; a plain-text client gets nothing', async () => {
    for (const host of cacheHosts) {
      const listening = await inHost(host.name, 'sh', '-c', "ss -Htlnp | grep -E '\"redis-(server|sentinel)\"' | awk '{print $4}' | sort -u");
      assertOk(listening, `ss on ${host.name}`);
      const sockets = listening.stdout.split('\n').filter(Boolean).sort();
      assert.deepEqual(sockets, [`${host.address}:26379`, `${host.address}:6379`, '127.0.0.1:26379', '127.0.0.1:6379'].sort(), `${host.name} listens on ${sockets.join(', ')}`);
      for (const port of [6379, 26379]) {
        const plain = await inHost(host.name, 'sh', '-c', `exec 3<>/dev/tcp/${host.address}/${port}; printf 'PING\\r\\n' >&3; timeout 3 cat <&3 || true`);
        assert.doesNotMatch(plain.stdout, /PONG|NOAUTH|ERR/, `${host.name}:${port} answered a plain-text client`);
      }
    }
  });

  it('redis: drills fail over and heal the topology (master killed, master paused, replica killed)', { timeout: 20 * MINUTES }, async (t) => {
    const drills = ['redis-master-kill', 'redis-master-pause', 'redis-replica-kill'];
    await runDrillsTest(t, drills, 20 * MINUTES, ['redis-master-pause', 'redis-replica-kill']);
  });

  // Ctrl-C during a drill, with its fault in place: the fault is healed and the loads stopped before the command exits
  it('drill: Ctrl-C with the fault in place heals it, stops the loads, exits 130, and leaves the topology whole', { timeout: 5 * MINUTES, skip: FULL_SUITE_ONLY }, async (t) => {
    const started = performance.now();
    const drill = spawn(process.execPath, ['--import', 'tsx', 'zx-scripts/drills/cli.ts', 'redis-replica-kill', '--json'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => drill.once('close', resolve));
    const faulted = new Promise<void>((resolve) => {
      drill.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/redis-replica-kill: fault: /.test(stderr)) resolve();
      });
    });
    drill.stdout.resume();
    const outcome = await Promise.race([faulted.then(() => 'fault' as const), exited.then(() => 'exited' as const), sleep(3 * MINUTES).then(() => 'late' as const)]);
    if (outcome !== 'fault') drill.kill('SIGKILL');
    assert.equal(outcome, 'fault', `the drill did not reach its fault: ${stderr.slice(-2000)}`);
    const fault = /redis-replica-kill: fault: (.*)/.exec(stderr)?.[1] ?? '';
    drill.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130, `exit ${String(code)}: ${stderr.slice(-2000)}`);
    assert.match(stderr, /drill: interrupted: healing the fault and stopping the loads/);
    assert.match(stderr, /redis-replica-kill: interrupted; the fault \(.+\) was healed \(.+\) and the loads were stopped/);
    // nothing of the drill's load runs on (its agents run in app1's namespace, k6 in the client's)
    const left = await run('pgrep', ['-af', 'redis-agent.ts|k6 run']);
    assert.equal(left.stdout.trim(), '', 'the drill left loads running');
    // the healed replica rejoins: the same check the drills make before they start
    const target = redisTarget(inventory);
    let whole = await target.whole();
    for (const until = performance.now() + 60_000; !whole.whole && performance.now() < until; whole = await target.whole()) await sleep(1000);
    assert.ok(whole.whole, `after Ctrl-C: ${whole.detail}`);
    t.diagnostic(`Ctrl-C after '${fault}': exit 130, the fault healed, the loads stopped, whole (${whole.detail}) ${String(secondsSince(started))} s after the drill started`);
  });

  it('redis: a re-run after a failover puts drifted settings back, changes nothing else, and keeps the current master', { timeout: 10 * MINUTES }, async (t) => {
    // the proof needs a master other than the inventory's initial one: the drills may have moved it back there
    const initial = cacheHosts.map((h) => h.name).at(0) ?? 'cache1';
    let master = await redisMaster(inventory);
    if (master === initial) {
      assertOk(await inHost(master, 'oms-redis-cli', '--sentinel', 'SENTINEL', 'FAILOVER', 'oms-cache'), 'SENTINEL FAILOVER');
      const deadline = Date.now() + 60_000;
      while (master === initial && Date.now() < deadline) {
        await sleep(1000);
        master = await redisMaster(inventory).catch(() => initial);
      }
    }
    assert.notEqual(master, initial, 'the master did not move away from the initial master');
    t.diagnostic(`master before the re-run: ${master} (the inventory's initial master is ${initial})`);
    // drift by hand: a replica's maxmemory, a Sentinel's down-after
    const replica = cacheHosts.map((h) => h.name).find((h) => h !== master) ?? 'cache1';
    assertOk(await inHost(replica, 'oms-redis-cli', 'CONFIG', 'SET', 'maxmemory', '64mb'), 'CONFIG SET by hand');
    assertOk(await inHost('cache3', 'oms-redis-cli', '--sentinel', 'SENTINEL', 'SET', 'oms-cache', 'down-after-milliseconds', '7000'), 'SENTINEL SET by hand');
    const fix = await run(bin('ansible-playbook'), ['ansible/site.yml', '--limit', 'redis,redis_sentinel', '--skip-tags', 'firewall']);
    assertOk(fix, 'site.yml --limit redis,redis_sentinel --skip-tags firewall');
    // exactly the two drifted settings changed: one task on the replica, one on cache3
    for (const [host, c] of recap(fix.stdout)) {
      assert.equal(c.changed, (host === replica ? 1 : 0) + (host === 'cache3' ? 1 : 0), `${host}: changed ${c.changed}`);
    }
    const maxmemory = await inHost(replica, 'oms-redis-cli', 'CONFIG', 'GET', 'maxmemory');
    assert.equal(maxmemory.stdout.split('\n')[1], String(128 * 1024 * 1024));
    const downAfter = await inHost('cache3', 'sh', '-c', 'oms-redis-cli --sentinel SENTINEL MASTER oms-cache | grep -A1 -x down-after-milliseconds | tail -1');
    assert.equal(downAfter.stdout.trim(), '2000');

    assert.equal(await redisMaster(inventory), master, 'site.yml moved the Redis master');
    t.diagnostic(`site.yml --limit redis,redis_sentinel: ${fix.seconds} s, the two drifted settings put back; ${master} still the master`);
  });
}
