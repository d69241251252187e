// The backup drills: the pgBackRest repository (the backup group's host) fails while PostgreSQL takes the users'
// writes, and an operator's destructive statement is undone by a restore to just before it (ansible/restore.yml).
// The target is the PostgreSQL cluster's, with one more condition for whole: WAL archiving works again
// (`pgbackrest check` on the repository host: a WAL switch on the primary, archived and found in the repository).
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { defaultInventory, killHost, repoRoot, runPlaybook, startHost, wipeHostPaths } from '../lab/lab.ts';
import type { Drill, DrillTarget } from './framework.ts';
import { ETCDCTL, leader, postgresTarget, running, sh } from './postgres.ts';
import { ETCD_NO_QUORUM, HOST_DOWN, POSTGRES_LEADER_CHANGED, WAL_ARCHIVING_FAILING } from './monitoring.ts';

/** pgBackRest on the repository host, as its user, for stanza oms */
export const PGBACKREST = 'runuser -u pgbackrest -- pgbackrest --stanza=oms';
/** how long the repository stays dead: long enough for several WAL segments to wait for it under the load */
const OUTAGE_SECONDS = 20;

export const repoHost = (inventory: Inventory): string => {
  const host = inventory.hosts.find((h) => h.groups.includes('backup'))?.name;
  if (!host) throw new Error('the inventory has no host in group backup (the pgBackRest repository)');
  return host;
};

/** SQL as postgres on a database host, over its socket, in a database (postgres unless named); the answer, unaligned. */
export const psql = async (host: string, statement: string, database = 'postgres'): Promise<string> =>
  (await sh(host, `runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -h /var/run/postgresql -d ${database} -c "${statement}"`)).trim();

/** Where Patroni keeps each member's data; a restore moves the replaced one aside next to it (.before-restore-STAMP). */
export const DATA_DIR = '/var/lib/postgresql/15/oms';

/** pgBackRest's spool on the database hosts (roles/pgbackrest): WAL waiting for the repository */
const SPOOL_DIR = '/var/spool/pgbackrest';

/** The PostgreSQL cluster's target, whole only once WAL reaches the repository again. */
export function backupTarget(inventory: Inventory): DrillTarget {
  const postgres = postgresTarget(inventory);
  const repo = repoHost(inventory);
  return {
    ...postgres,
    async whole() {
      const cluster = await postgres.whole();
      if (!running(repo)) return { whole: false, detail: `${cluster.detail}; ${repo} (the repository) is not running` };
      try {
        await sh(repo, `${PGBACKREST} --log-level-console=warn --archive-timeout=20 check`);
        return { whole: cluster.whole, detail: `${cluster.detail}; WAL archiving to ${repo} works (pgbackrest check)` };
      } catch (error) {
        return { whole: false, detail: `${cluster.detail}; pgbackrest check: ${error instanceof Error ? error.message : String(error)}` };
      }
    },
  };
}

interface Pitr {
  /** the restore's target: just before the operator's statement (ms since the epoch) */
  target?: number;
  /** when the restored leader's PostgreSQL started: every write acknowledged after it is the restored cluster's */
  restoredAt?: number;
}

/** How long the damage goes on before the operator notices and restores: orders placed meanwhile are discarded. */
const NOTICED_AFTER_SECONDS = 5;

/** The bound on what losing every database disk loses: archive_timeout (30 s) plus the asynchronous push, with room. */
const RPO_GOAL_SECONDS = 60;
/** What a database host loses with its disk: PostgreSQL's data and the WAL pgBackRest had not sent yet (its spool). */
const DATABASE_DISK = [DATA_DIR, SPOOL_DIR];

interface ClusterLoss {
  /** when every database host lost power */
  lostAt?: number;
  restoredAt?: number;
}

/** etcd's data folder on its members (roles/etcd); a restore moves the replaced one aside next to it */
const ETCD_DATA_DIR = '/var/lib/etcd/oms';

interface QuorumLoss {
  primary: string;
  /** the etcd members whose disks are lost */
  lost: string[];
  clusterIdBefore?: string;
}

/** The etcd cluster's ID, as a member answers it (a restore makes a new cluster: a new ID). */
async function etcdClusterId(inventory: Inventory, host: string): Promise<string> {
  const address = inventory.hosts.find((h) => h.name === host)?.address;
  const out = await sh(host, `${ETCDCTL} --endpoints https://${address ?? host}:2379 endpoint status -w json`);
  const status = JSON.parse(out) as { Status: { header: { cluster_id: number | string } } }[];
  return String(status[0]?.Status.header.cluster_id ?? '');
}

interface RepoLoss {
  primary: string;
  /** the primary's WAL segment when the repository came back: the archive must reach it */
  segmentAtHeal?: string;
}

/** WAL segments the primary holds for the archive (archive_status/*.ready) and the spool's size, in a line. */
async function waiting(primary: string): Promise<{ ready: number; spoolKiB: number }> {
  const out = await sh(primary, `ls ${DATA_DIR}/pg_wal/archive_status | grep -c "\\.ready$" || true; du -sk ${SPOOL_DIR} | cut -f1`);
  const [ready, spool] = out.trim().split('\n');
  return { ready: Number(ready ?? 0), spoolKiB: Number(spool ?? 0) };
}

/** ansible/restore.yml with the given request; the restored leader and when its PostgreSQL started (ms since the epoch). */
async function restore(inventory: Inventory, inventoryDir: string, request: string[], what: string): Promise<{ leader: string; startedAt: number; seconds: number }> {
  const started = Date.now();
  const code = await runPlaybook(inventoryDir, join(repoRoot, 'ansible/restore.yml'), [...request.flatMap((r) => ['-e', r]), '-e', 'restore_confirm=oms'], true);
  if (code !== 0) throw new Error(`ansible/restore.yml to ${what} failed (exit ${String(code)})`);
  const restored = await leader(inventory);
  const startedAt = Number(await psql(restored, 'SELECT (extract(epoch FROM pg_postmaster_start_time()) * 1000)::bigint'));
  return { leader: restored, startedAt, seconds: Math.round((Date.now() - started) / 1000) };
}

/** Each drill with its own context type, in one list. */
const typed = <C>(drill: Drill<C>): Drill<unknown> => drill;

export function backupDrills(inventory: Inventory, inventoryDir = defaultInventory): Drill<unknown>[] {
  const repo = (): string => repoHost(inventory);
  const postgresHosts = inventory.hosts.filter((h) => h.groups.includes('postgres')).map((h) => h.name);
  const etcdHosts = inventory.hosts.filter((h) => h.groups.includes('etcd')).map((h) => h.name);
  return [
    typed<Pitr>({
      name: 'pg-pitr-restore',
      description: "an operator's DELETE of every order under the users' load; ansible/restore.yml brings the cluster back to just before it",
      // the DELETE itself raises nothing (it is a valid statement); the restored cluster starts on a new timeline, up
      // to the goal's 180 s after the fault (PostgresNoLeader is not sure to fire: 30 s without a leader on the lab)
      alerts: [{ ...POSTGRES_LEADER_CHANGED, fires: POSTGRES_LEADER_CHANGED.fires + 180 }],
      goal: {
        seconds: 180,
        boundBy: "restore.yml's checks, the restore of the newest backup before the target from the repository, WAL replayed up to the target, Patroni started on the restored member, then a standby restored from the same backup streaming (strict synchronous mode commits nothing before) and HAProxy's check",
      },
      prepare: () => Promise.resolve({}),
      async fault(ctx) {
        const primary = await leader(inventory);
        const target = Date.now();
        ctx.target = target;
        const deleted = await psql(primary, 'WITH gone AS (DELETE FROM oms.orders RETURNING 1) SELECT count(*) FROM gone', 'orders');
        await sleep(NOTICED_AFTER_SECONDS * 1000);
        const at = new Date(target).toISOString();
        const restored = await restore(inventory, inventoryDir, ['restore_type=time', `restore_target=${at}`], at);
        ctx.restoredAt = restored.startedAt;
        return `DELETE FROM oms.orders on ${primary} (${deleted} orders with their items and history) at ${at}; ` +
          `${String(NOTICED_AFTER_SECONDS)} s later restore.yml to that time: ${restored.leader} restored and serving ` +
          `${String(Math.round((ctx.restoredAt - target) / 100) / 10)} s after the statement, the playbook done in ${String(restored.seconds)} s`;
      },
      heal: () => Promise.resolve('nothing to heal: the restore was the recovery'),
      discards: (ctx) => (ctx.target === undefined || ctx.restoredAt === undefined ? undefined : {
        from: ctx.target,
        to: ctx.restoredAt,
        why: 'restored to just before the DELETE: what the old cluster acknowledged after it is not in the restored one',
        absent: true,
      }),
      // every member's replaced data folder was kept aside; the drill removes them (the operator's last step)
      async after() {
        const problems: string[] = [];
        for (const host of postgresHosts) {
          const kept = (await sh(host, `ls -d ${DATA_DIR}.before-restore-* 2>/dev/null || true`)).trim().split('\n').filter(Boolean);
          if (kept.length === 0) problems.push(`${host} kept no data folder aside (${DATA_DIR}.before-restore-*)`);
          await sh(host, `rm -rf ${DATA_DIR}.before-restore-*`);
        }
        return problems;
      },
    }),
    typed<ClusterLoss>({
      name: 'pg-cluster-loss',
      description: 'every database host loses power and its PostgreSQL disk under the users\' load; ansible/restore.yml rebuilds the cluster from the repository alone',
      // the hosts boot again within seconds (HostDown does not fire) and the restore serves within a minute on the lab
      // (PostgresNoLeader is not sure to fire); the restored cluster starts on a new timeline, up to the goal's 600 s
      alerts: [{ ...POSTGRES_LEADER_CHANGED, fires: POSTGRES_LEADER_CHANGED.fires + 600 }],
      goal: {
        seconds: 600,
        boundBy: 'the hosts booting on empty disks, restore.yml\'s checks, the newest backup restored and the archive replayed to its end on one member, Patroni started on it, a standby restored from the same backup streaming (strict synchronous mode commits nothing before) and HAProxy\'s check',
      },
      prepare: () => Promise.resolve({}),
      async fault(ctx) {
        ctx.lostAt = Date.now();
        await Promise.all(postgresHosts.map((host) => killHost(inventoryDir, host)));
        for (const host of postgresHosts) wipeHostPaths(inventoryDir, host, DATABASE_DISK);
        const boots = await Promise.all(postgresHosts.map((host) => startHost(inventoryDir, host)));
        const restored = await restore(inventory, inventoryDir, ['restore_type=latest'], 'the newest archived state');
        ctx.restoredAt = restored.startedAt;
        return `power cut of ${postgresHosts.join(', ')}, each booted again without ${DATABASE_DISK.join(' and ')} ` +
          `(at most ${String(Math.max(...boots.map((b) => b.seconds)))} s); restore.yml to the newest archived state: ${restored.leader} ` +
          `restored and serving ${String(Math.round((ctx.restoredAt - ctx.lostAt) / 100) / 10)} s after the loss, the playbook done in ` +
          `${String(restored.seconds)} s`;
      },
      heal: () => Promise.resolve('nothing to heal: the restore was the recovery'),
      // what was acknowledged but not archived yet is gone with the disks: the declared RPO before the loss, up to
      // the restored cluster's start; what the load acknowledged earlier must be there (else LOST)
      discards: (ctx) => (ctx.lostAt === undefined || ctx.restoredAt === undefined ? undefined : {
        from: ctx.lostAt - RPO_GOAL_SECONDS * 1000,
        to: ctx.restoredAt,
        why: `acknowledged in the last ${String(RPO_GOAL_SECONDS)} s before every database disk was lost (the RPO goal): WAL not in the repository yet`,
        absent: false,
      }),
      async after() {
        for (const host of postgresHosts) await sh(host, `rm -rf ${DATA_DIR}.before-restore-*`);
        return [];
      },
    }),
    typed<QuorumLoss>({
      name: 'etcd-quorum-loss',
      description: "two of the three etcd members lose their disks under the users' load (the quorum is gone); ansible/etcd-restore.yml brings the cluster back from the backup host's newest snapshot",
      goal: { seconds: 5, boundBy: "nothing on the write path waits for etcd: Patroni's failsafe mode keeps the primary, which reaches every member, a primary while etcd is away and while it is restored" },
      alerts: [ETCD_NO_QUORUM],
      async prepare() {
        const primary = await leader(inventory);
        // the primary's own member among the lost ones: the worst case for Patroni's view of etcd
        const lost = [primary, ...etcdHosts.filter((h) => h !== primary)].slice(0, 2);
        return { primary, lost, clusterIdBefore: await etcdClusterId(inventory, lost[0] ?? primary) };
      },
      async fault(ctx) {
        for (const host of ctx.lost) await sh(host, `systemctl kill --signal=KILL etcd; systemctl stop etcd; rm -rf ${ETCD_DATA_DIR}`);
        // past Patroni's ttl: the primary runs on failsafe
        await sleep(25_000);
        const started = Date.now();
        const code = await runPlaybook(inventoryDir, join(repoRoot, 'ansible/etcd-restore.yml'), ['-e', 'etcd_restore_confirm=oms-etcd'], true);
        if (code !== 0) throw new Error(`ansible/etcd-restore.yml failed (exit ${String(code)})`);
        return `etcd stopped and its data folder removed on ${ctx.lost.join(' and ')} (the quorum lost), 25 s on failsafe; ` +
          `etcd-restore.yml from the newest snapshot in ${String(Math.round((Date.now() - started) / 1000))} s`;
      },
      heal: () => Promise.resolve('nothing to heal: the restore was the recovery'),
      async after(ctx) {
        const problems: string[] = [];
        const now = await leader(inventory);
        if (now !== ctx.primary) problems.push(`the leader changed from ${ctx.primary} to ${now}: the primary should have kept leading`);
        const id = await etcdClusterId(inventory, ctx.lost[0] ?? ctx.primary);
        if (id === ctx.clusterIdBefore) problems.push(`etcd's cluster ID is still ${id}: the cluster was not restored from the snapshot`);
        for (const host of etcdHosts) {
          const kept = (await sh(host, `ls -d ${ETCD_DATA_DIR}.before-restore-* 2>/dev/null || true`)).trim().split('\n').filter(Boolean);
          if (!ctx.lost.includes(host) && kept.length === 0) problems.push(`${host} kept no data folder aside (${ETCD_DATA_DIR}.before-restore-*)`);
          await sh(host, `rm -rf ${ETCD_DATA_DIR}.before-restore-*`);
        }
        return problems;
      },
    }),
    typed<RepoLoss>({
      name: 'backup-repo-loss',
      description: 'the backup repository host loses power during a full backup, with WAL waiting to be archived; it boots again',
      goal: { seconds: 2, boundBy: 'nothing on the write path waits for the repository: archive-push is asynchronous, the backup reads a standby' },
      // nothing on the write path notices, so the on-call must: the host is gone, and the WAL does not reach the
      // repository (the fault is held until both fired: about 3 minutes of WAL waiting on the primary)
      alerts: [HOST_DOWN, WAL_ARCHIVING_FAILING],
      async prepare() {
        return { primary: await leader(inventory) };
      },
      async fault(ctx) {
        // a full backup under way (read from a standby), then the power cut
        await sh(repo(), 'systemctl start --no-block oms-backup@full.service');
        const started = Date.now();
        while ((await sh(repo(), 'systemctl is-active oms-backup@full.service || true')).trim() !== 'activating') {
          if (Date.now() - started > 15_000) throw new Error('the full backup did not start within 15 s');
          await sleep(250);
        }
        await sleep(2000);
        await killHost(inventoryDir, repo());
        // the primary goes on writing; each switched segment waits in pg_wal for the archive
        await psql(ctx.primary, 'SELECT pg_switch_wal()');
        let most = { ready: 0, spoolKiB: 0 };
        for (let i = 0; i < OUTAGE_SECONDS / 5; i += 1) {
          await sleep(5000);
          await psql(ctx.primary, 'SELECT pg_switch_wal()');
          const now = await waiting(ctx.primary);
          most = { ready: Math.max(most.ready, now.ready), spoolKiB: Math.max(most.spoolKiB, now.spoolKiB) };
        }
        return `power cut of ${repo()} during a full backup, kept down ${String(OUTAGE_SECONDS)} s with a WAL switch every 5 s: ` +
          `at most ${String(most.ready)} segments waited in ${ctx.primary}'s pg_wal, the spool at most ${String(most.spoolKiB)} KiB`;
      },
      async heal(ctx) {
        ctx.segmentAtHeal = await psql(ctx.primary, 'SELECT pg_walfile_name(pg_current_wal_lsn())');
        const { seconds } = await startHost(inventoryDir, repo());
        return `${repo()} booted again (${String(seconds)} s); the primary was writing segment ${ctx.segmentAtHeal}`;
      },
      // the archive caught up past where the primary was at the heal, and a backup works after the broken one
      async after(ctx) {
        const problems: string[] = [];
        const info = JSON.parse(await sh(repo(), `${PGBACKREST} --output=json info`)) as { archive: { max: string | null }[] }[];
        const max = info[0]?.archive[0]?.max ?? '';
        if (!ctx.segmentAtHeal || max.slice(8) < ctx.segmentAtHeal.slice(8)) {
          problems.push(`the archive reaches ${max || 'nothing'}, not the segment the primary wrote at the heal (${ctx.segmentAtHeal ?? '?'})`);
        }
        const left = await waiting(ctx.primary);
        if (left.ready > 1) problems.push(`${String(left.ready)} segments still wait in ${ctx.primary}'s pg_wal for the archive`);
        try {
          await sh(repo(), 'systemctl start oms-backup@incr.service');
        } catch (error) {
          problems.push(`an incremental backup after the broken full one failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        return problems;
      },
    }),
  ];
}
