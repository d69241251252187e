// Redis 7 (Debian's package) and one Sentinel on loopback for the services' tests, with what roles/redis and
// roles/redis_sentinel give a service in the lab: TLS only (client certificates required), the default user off,
// the service's ACL user with the lab's rules and key pattern, and the same user allowed to ask Sentinel for the
// master. The rules are read from the kit's own variables, so the tests grant exactly what the lab grants.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { parse } from 'yaml';
import { Daemon, freePort } from './daemon.ts';
import type { LocalPki } from './pki.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const yaml = (path: string): Record<string, unknown> => parse(readFileSync(join(ROOT, path), 'utf8')) as Record<string, unknown>;

export interface RedisUser {
  name: string;
  password: string;
}

export interface LocalRedis {
  port: number;
  sentinelPort: number;
  masterName: string;
  /** a service user: rules as in the lab inventory, keys `<prefix>*` */
  user: RedisUser;
  admin: RedisUser;
  redis: Daemon;
  sentinel: Daemon;
  stop(): Promise<void>;
}

/** One PING over TLS with the admin user: true when Redis (or Sentinel) answers PONG. */
function pings(port: number, pki: LocalPki, admin: RedisUser): Promise<boolean> {
  const tls = pki.client('admin');
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), servername: 'localhost' }, () => {
      socket.write(`AUTH ${admin.name} ${admin.password}\r\nPING\r\n`);
    });
    let seen = '';
    socket.setTimeout(1000, () => { socket.destroy(); resolve(false); });
    socket.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('PONG')) { socket.end(); resolve(true); }
      if (seen.includes('-')) { socket.destroy(); resolve(false); }
    });
    socket.on('error', () => { resolve(false); });
  });
}

const secret = (): string => randomBytes(18).toString('base64url');

export async function startRedis(dir: string, pki: LocalPki, service: { name: string; keyPrefix: string }): Promise<LocalRedis> {
  const lab = yaml('inventories/lab/group_vars/all/redis.yml');
  const systemUsers = (yaml('roles/redis/defaults/main.yml').redis_system_users ?? {}) as Record<string, { rules: string }>;
  const sentinelDefaults = yaml('roles/redis_sentinel/defaults/main.yml');
  const serviceRules = String(lab.redis_service_rules);
  const sentinelRules = systemUsers.sentinel?.rules;
  if (!sentinelRules) throw new Error('roles/redis/defaults/main.yml: no redis_system_users.sentinel.rules');

  const admin = { name: 'oms-admin', password: secret() };
  const user = { name: service.name, password: secret() };
  const sentinelUser = { name: 'sentinel', password: secret() };
  const [port, sentinelPort] = [await freePort(), await freePort()];
  const tls = [
    `tls-cert-file ${pki.server.cert}`, `tls-key-file ${pki.server.key}`, `tls-ca-cert-file ${pki.ca}`,
    'tls-auth-clients yes', 'tls-replication yes', 'tls-protocols "TLSv1.3"', 'bind 127.0.0.1', 'port 0',
  ];
  writeFileSync(join(dir, 'users.acl'), [
    'user default off resetpass -@all',
    `user ${admin.name} on >${admin.password} ~* &* +@all`,
    `user ${sentinelUser.name} on >${sentinelUser.password} ${sentinelRules.trim()}`,
    `user ${user.name} on >${user.password} resetkeys ~${service.keyPrefix}* resetchannels ${serviceRules}`,
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'redis.conf'), [...tls, `tls-port ${String(port)}`, `aclfile ${join(dir, 'users.acl')}`, `dir ${dir}`,
    'save ""', 'appendonly no', 'daemonize no', 'maxmemory 64mb', 'maxmemory-policy allkeys-lru', ''].join('\n'));
  writeFileSync(join(dir, 'sentinel-users.acl'), [
    'user default off resetpass -@all',
    `user ${admin.name} on >${admin.password} allchannels +@all`,
    `user ${user.name} on >${user.password} ${String(sentinelDefaults.redis_sentinel_client_rules).trim()}`,
    '',
  ].join('\n'));
  const masterName = 'oms-cache';
  writeFileSync(join(dir, 'sentinel.conf'), [...tls, `tls-port ${String(sentinelPort)}`, `aclfile ${join(dir, 'sentinel-users.acl')}`, `dir ${dir}`,
    'daemonize no', `sentinel monitor ${masterName} 127.0.0.1 ${String(port)} 1`,
    `sentinel auth-user ${masterName} ${sentinelUser.name}`, `sentinel auth-pass ${masterName} ${sentinelUser.password}`,
    `sentinel down-after-milliseconds ${masterName} 2000`, ''].join('\n'));

  const redis = new Daemon({ name: 'redis', command: 'redis-server', args: [join(dir, 'redis.conf')], logFile: join(dir, 'redis.log') });
  const sentinel = new Daemon({ name: 'redis-sentinel', command: 'redis-server', args: [join(dir, 'sentinel.conf'), '--sentinel'], logFile: join(dir, 'sentinel.log') });
  await redis.start(() => pings(port, pki, admin), 20_000);
  await sentinel.start(() => pings(sentinelPort, pki, admin), 20_000);
  return {
    port, sentinelPort, masterName, user, admin, redis, sentinel,
    stop: async () => { await sentinel.stop(); await redis.stop(); },
  };
}
