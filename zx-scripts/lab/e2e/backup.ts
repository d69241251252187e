// Backups on the lab: pgBackRest's repository on backup1 (the ops zone) holds a full backup and the WAL archive from
// the first site.yml on, ansible/backup.yml adds one on demand, the timers are in place, and nothing in the
// repository is readable without its key. Runs inside lab.e2e.ts, on its lab.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PGBACKREST, psql, repoHost } from '../../drills/backup.ts';
import { leader, sh } from '../../drills/postgres.ts';
import { assertOk, bin, inventory, MINUTES, run, runDrillsTest } from './harness.ts';

const REPO_HOST = repoHost(inventory);
const REPO_PATH = '/var/lib/pgbackrest';

interface BackupInfo {
  label: string;
  type: 'full' | 'diff' | 'incr';
  timestamp: { start: number; stop: number };
  info: { size: number; delta: number; repository: { size: number; delta: number } };
  archive: { start: string; stop: string };
}
interface StanzaInfo {
  name: string;
  status: { code: number; message: string };
  backup: BackupInfo[];
  archive: { id: string; min: string | null; max: string | null }[];
}

async function info(): Promise<StanzaInfo> {
  const stanzas = JSON.parse(await sh(REPO_HOST, `${PGBACKREST} --output=json info`)) as StanzaInfo[];
  const stanza = stanzas.find((s) => s.name === 'oms');
  assert.ok(stanza, `pgbackrest info names no stanza oms: ${JSON.stringify(stanzas)}`);
  return stanza;
}

const mib = (bytes: number): string => `${String(Math.round(bytes / 1024 / 102.4) / 10)} MiB`;
const describeBackup = (b: BackupInfo): string =>
  `${b.type} ${b.label}: ${String(b.timestamp.stop - b.timestamp.start)} s, ${mib(b.info.delta)} of ${mib(b.info.size)} read, ` +
  `${mib(b.info.repository.delta)} stored`;

export function backupTests(): void {
  it('backup: the repository holds a full backup and the WAL archive; backup.yml adds one now, a bad type is refused; the timers are set', async (t) => {
    const before = await info();
    assert.equal(before.status.code, 0, `stanza status: ${before.status.message}`);
    const full = before.backup.find((b) => b.type === 'full');
    assert.ok(full, `site.yml took a first full backup: ${JSON.stringify(before.backup)}`);
    const archive = before.archive[0];
    assert.ok(archive?.min && archive.max, `the WAL archive holds segments: ${JSON.stringify(before.archive)}`);
    t.diagnostic(`first ${describeBackup(full)}; WAL archive ${archive.min} .. ${archive.max}`);

    // the whole archive path, now: a WAL switch on the primary, archived and found in the repository
    await sh(REPO_HOST, `${PGBACKREST} --log-level-console=warn check`);

    const incr = await run(bin('ansible-playbook'), ['ansible/backup.yml', '-e', 'backup_type=incr']);
    assertOk(incr, 'ansible/backup.yml -e backup_type=incr');
    const after = await info();
    const added = after.backup.filter((b) => !before.backup.some((o) => o.label === b.label));
    assert.deepEqual(added.map((b) => b.type), ['incr'], 'backup.yml added one incremental backup');
    const newest = added[0];
    assert.ok(newest);
    assert.ok(newest.archive.start >= archive.max, 'the incremental starts where the archive had got to');
    t.diagnostic(`backup.yml: ${describeBackup(newest)} (playbook ${String(incr.seconds)} s)`);

    const bad = await run(bin('ansible-playbook'), ['ansible/backup.yml', '-e', 'backup_type=weekly']);
    assert.notEqual(bad.code, 0, 'backup.yml refuses an unknown type');
    assert.match(bad.stdout, /backup_type must be full, diff or incr \(got "weekly"\): nothing was backed up/);
    assert.equal((await info()).backup.length, after.backup.length, 'the refused run took no backup');

    // every timer is loaded and due; the next incremental within the hour
    const timers = await sh(REPO_HOST, 'systemctl show -p Id -p ActiveState -p NextElapseUSecRealtime oms-backup-full.timer oms-backup-diff.timer oms-backup-incr.timer oms-backup-verify.timer');
    const units = timers.trim().split('\n\n').map((block) => Object.fromEntries(block.split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2))) as Record<string, string>);
    assert.deepEqual(units.map((u) => `${u.Id ?? '?'} ${u.ActiveState ?? '?'}`).sort(), ['oms-backup-diff.timer active', 'oms-backup-full.timer active', 'oms-backup-incr.timer active', 'oms-backup-verify.timer active']);
    const nextIncr = Date.parse(units.find((u) => u.Id === 'oms-backup-incr.timer')?.NextElapseUSecRealtime ?? '');
    assert.ok(nextIncr - Date.now() <= 3_600_000, `the next incremental is due within the hour: ${JSON.stringify(units)}`);
  });

  it('backup: the repository is encrypted: every file starts with the cipher header, and a marker written to WAL is in pg_wal but nowhere in the repository', async (t) => {
    const primary = await leader(inventory);
    const marker = `oms-backup-marker-${String(Date.now())}`;
    await psql(primary, `SELECT pg_logical_emit_message(true, 'oms-e2e', '${marker}')`);
    // transactional: its commit flushes it to pg_wal, where the search below must find it...
    const inWal = await sh(primary, `grep -rlF '${marker}' /var/lib/postgresql/15/oms/pg_wal || true`);
    assert.notEqual(inWal.trim(), '', 'the marker is in the primary\'s pg_wal');
    // ...and in the repository once its segment is archived: check switches WAL and waits for the archive
    await sh(REPO_HOST, `${PGBACKREST} --log-level-console=warn check`);
    const inRepo = await sh(REPO_HOST, `grep -rlF '${marker}' ${REPO_PATH} || true`);
    assert.equal(inRepo.trim(), '', `the marker is readable in the repository: ${inRepo}`);
    const files = await sh(REPO_HOST, `find ${REPO_PATH} -type f | wc -l`);
    const clear = await sh(REPO_HOST, `find ${REPO_PATH} -type f -print0 | while IFS= read -r -d '' f; do [ "$(head -c 8 "$f")" = Salted__ ] || echo "$f"; done`);
    assert.equal(clear.trim(), '', `files without the cipher header:\n${clear}`);
    t.diagnostic(`${files.trim()} files in the repository, every one encrypted (aes-256-cbc); the marker is in ${primary}'s pg_wal, not in the repository`);
  });

  it('backup: the repository host dies during a backup and while WAL waits for it; writes go on, archiving catches up', { timeout: 15 * MINUTES }, async (t) => {
    await runDrillsTest(t, ['backup-repo-loss'], 15 * MINUTES);
  });
}
