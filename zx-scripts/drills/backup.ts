// The backup drills: the pgBackRest repository (the backup group's host) fails while PostgreSQL takes the users'
// writes. The target is the PostgreSQL cluster's, with one more condition for whole: WAL archiving works again
// (`pgbackrest check` on the repository host: a WAL switch on the primary, archived and found in the repository).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { defaultInventory, killHost, startHost } from '../lab/lab.ts';
import type { Drill, DrillTarget } from './framework.ts';
import { leader, postgresTarget, running, sh } from './postgres.ts';

/** pgBackRest on the repository host, as its user, for stanza oms */
export const PGBACKREST = 'runuser -u pgbackrest -- pgbackrest --stanza=oms';
/** how long the repository stays dead: long enough for several WAL segments to wait for it under the load */
const OUTAGE_SECONDS = 20;

export const repoHost = (inventory: Inventory): string => {
  const host = inventory.hosts.find((h) => h.groups.includes('backup'))?.name;
  if (!host) throw new Error('the inventory has no host in group backup (the pgBackRest repository)');
  return host;
};

/** SQL as postgres on a database host, over its socket; the answer's first row, unaligned. */
export const psql = async (host: string, statement: string): Promise<string> =>
  (await sh(host, `runuser -u postgres -- psql -X -At -h /var/run/postgresql -d postgres -c "${statement}"`)).trim();

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

interface RepoLoss {
  primary: string;
  /** the primary's WAL segment when the repository came back: the archive must reach it */
  segmentAtHeal?: string;
}

/** WAL segments the primary holds for the archive (archive_status/*.ready) and the spool's size, in a line. */
async function waiting(primary: string): Promise<{ ready: number; spoolKiB: number }> {
  const out = await sh(primary, 'ls /var/lib/postgresql/15/oms/pg_wal/archive_status | grep -c "\\.ready$" || true; du -sk /var/spool/pgbackrest | cut -f1');
  const [ready, spool] = out.trim().split('\n');
  return { ready: Number(ready ?? 0), spoolKiB: Number(spool ?? 0) };
}

export function backupDrills(inventory: Inventory, inventoryDir = defaultInventory): Drill<RepoLoss>[] {
  const repo = (): string => repoHost(inventory);
  return [
    {
      name: 'backup-repo-loss',
      description: 'the backup repository host loses power during a full backup, with WAL waiting to be archived; it boots again',
      goal: { seconds: 2, boundBy: 'nothing on the write path waits for the repository: archive-push is asynchronous, the backup reads a standby' },
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
    },
  ];
}
