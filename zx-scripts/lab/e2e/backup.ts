// Backups on the lab: pgBackRest's repository on backup1 (the ops zone) holds a full backup and the WAL archive from
// the first site.yml on, ansible/backup.yml adds one on demand, the timers are in place, and nothing in the
// repository is readable without its key. Runs inside lab.e2e.ts, on its lab.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DATA_DIR, PGBACKREST, psql, repoHost } from '../../drills/backup.ts';
import { instantQuery } from '../../drills/monitoring.ts';
import { leader, sh } from '../../drills/postgres.ts';
import { assertOk, bin, FULL_SUITE_ONLY, inventory, it, MINUTES, run, runDrillsTest } from './harness.ts';
import { timeStamp } from '../../lib/run-id.ts';

const REPO_HOST = repoHost(inventory);
const REPO_PATH = '/var/lib/pgbackrest';
const LEDGER = '/var/lib/pgbackrest-ledger/restore-points.tsv';
const ETCD_SNAPSHOTS = '/var/lib/oms-etcd-snapshots';

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

    // the figures the backup alerts read (oms-backup-metrics), against the repository and PostgreSQL themselves
    const primary = await leader(inventory);
    const archivedAt = async (): Promise<number> => Number(await psql(primary, 'SELECT coalesce(extract(epoch FROM last_archived_time), 0)::bigint FROM pg_stat_archiver'));
    const archivedBefore = await archivedAt();
    await sh(REPO_HOST, 'systemctl start oms-backup-metrics.service');
    await sh(primary, 'systemctl start oms-backup-metrics.service');
    const want = new Map([
      [`oms_backup_last_completion_seconds{instance="${REPO_HOST}",type="incr"}`, newest.timestamp.stop],
      [`oms_backup_last_completion_seconds{instance="${REPO_HOST}",type="full"}`, Math.max(...after.backup.filter((b) => b.type === 'full').map((b) => b.timestamp.stop))],
      [`oms_backup_count{instance="${REPO_HOST}"}`, after.backup.length],
      [`oms_backup_stanza_ok{instance="${REPO_HOST}"}`, 1],
      [`oms_pg_in_recovery{instance="${primary}"}`, 0],
    ]);
    const archivedQuery = `oms_pg_archiver_last_archived_seconds{instance="${primary}"}`;
    const got = async (): Promise<Map<string, number | undefined>> => new Map(await Promise.all([...want.keys()].map(async (q) => [q, (await instantQuery(inventory, q))[0]?.value] as const)));
    let figures = await got();
    let archived = (await instantQuery(inventory, archivedQuery))[0]?.value ?? 0;
    // a scrape and a few seconds: the textfile collector reads the files at each scrape (every 5 s on the lab)
    for (let i = 0; i < 10 && ([...want].some(([q, v]) => figures.get(q) !== v) || archived < archivedBefore); i++) {
      await sleep(3000);
      figures = await got();
      archived = (await instantQuery(inventory, archivedQuery))[0]?.value ?? 0;
    }
    assert.deepEqual(figures, want, 'Prometheus has the backup figures the repository states');
    // WAL is archived every 30 s or so while the lab writes: the figure is the archiver's between the two readings
    const archivedAfter = await archivedAt();
    assert.ok(archived >= archivedBefore && archived <= archivedAfter, `the primary's last archived WAL in Prometheus (${String(archived)}) is PostgreSQL's (${String(archivedBefore)} .. ${String(archivedAfter)})`);
    const failing = await instantQuery(inventory, 'oms_pg_archiver_last_failed_seconds > oms_pg_archiver_last_archived_seconds');
    assert.deepEqual(failing.map((x) => x.metric['instance']), [], 'no database host reports a WAL archive failure newer than its last success');
    t.diagnostic(`backup figures in Prometheus as the repository and ${primary} state them: ${[...want].map(([q, v]) => `${q.split('{')[0] ?? q} ${String(v)}`).join(', ')}, last archived WAL at ${String(archived)}`);
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

  it('backup: restore-point.yml records a named restore point; restore.yml refuses a bad request before anything changes', async (t) => {
    const name = `e2e-${timeStamp()}`;
    const point = await run(bin('ansible-playbook'), ['ansible/restore-point.yml', '-e', `restore_point=${name}`]);
    assertOk(point, `ansible/restore-point.yml -e restore_point=${name}`);
    const ledger = await sh(REPO_HOST, `cat ${LEDGER}`);
    assert.match(ledger, new RegExp(`^${name}\t[0-9A-F]+/[0-9A-F]+\t\\d{4}-`, 'm'), `the ledger names the point with its LSN:\n${ledger}`);
    const refusedPoint = async (value: string, why: RegExp): Promise<void> => {
      const r = await run(bin('ansible-playbook'), ['ansible/restore-point.yml', '-e', `restore_point=${value}`]);
      assert.notEqual(r.code, 0, `restore-point.yml ${value} was refused`);
      assert.match(r.stdout.replace(/\s+/g, ' '), why);
    };
    await refusedPoint(name, /no restore point was created: e2e-\d+ exists already/);
    await refusedPoint('Not A Name', /restore_point must be 1 to 63 lower-case letters/);

    const primary = await leader(inventory);
    const timeline = await psql(primary, 'SELECT timeline_id FROM pg_control_checkpoint()');
    const wrongKey = JSON.stringify({ pgbackrest_cipher_pass: 'x'.repeat(64) });
    const requests: [string, string[], RegExp][] = [
      ['no confirmation', ['-e', 'restore_type=latest'], /restore_confirm=oms, the cluster.+ name, to confirm/],
      ['an unknown restore point', ['-e', 'restore_type=name', '-e', 'restore_target=no-such-point', '-e', 'restore_confirm=oms'], /there is no restore point named no-such-point/],
      ['a time in the future', ['-e', 'restore_type=time', '-e', 'restore_target=2999-01-01T00:00:00Z', '-e', 'restore_confirm=oms'], /is in the future/],
      ['a time before the oldest backup', ['-e', 'restore_type=time', '-e', 'restore_target=2020-01-01T00:00:00Z', '-e', 'restore_confirm=oms'], /is before the end of the oldest backup/],
      ['an LSN before the oldest backup', ['-e', 'restore_type=lsn', '-e', 'restore_target=0/1', '-e', 'restore_confirm=oms'], /is before the end of the oldest backup/],
      ['a key that does not decrypt the repository', ['-e', 'restore_type=latest', '-e', 'restore_confirm=oms', '-e', wrongKey], /cannot be read with the inventory.+ pgbackrest_cipher_pass/],
    ];
    for (const [what, args, why] of requests) {
      const r = await run(bin('ansible-playbook'), ['ansible/restore.yml', ...args]);
      assert.notEqual(r.code, 0, `restore.yml with ${what} was refused`);
      // Ansible folds long messages over lines: matched with the folds undone
      const said = r.stdout.replace(/\s+/g, ' ');
      assert.match(said, /restore refused, nothing was changed/, what);
      assert.match(said, why, what);
      assert.doesNotMatch(r.stdout, /Stop Patroni/, `${what}: no host was touched`);
    }
    assert.equal(await leader(inventory), primary, 'the same leader');
    assert.equal(await psql(primary, 'SELECT timeline_id FROM pg_control_checkpoint()'), timeline, 'on the same timeline');
    for (const host of inventory.hosts.filter((h) => h.groups.includes('postgres'))) {
      assert.equal((await sh(host.name, `ls -d ${DATA_DIR}.before-restore-* 2>/dev/null || true`)).trim(), '', `${host.name}: no data folder moved`);
    }
    t.diagnostic(`restore point ${name} recorded (restore-point.yml ${String(point.seconds)} s); ${String(requests.length)} bad restore requests refused, the cluster untouched`);
  });

  it('backup: the repository host dies during a backup and while WAL waits for it; writes go on, archiving catches up', { timeout: 15 * MINUTES, skip: FULL_SUITE_ONLY }, async (t) => {
    await runDrillsTest(t, ['backup-repo-loss'], 15 * MINUTES);
  });

  it("backup: an operator's DELETE of every order is undone by restore.yml to just before it, under the users' load", { timeout: 20 * MINUTES, skip: FULL_SUITE_ONLY }, async (t) => {
    await runDrillsTest(t, ['pg-pitr-restore'], 20 * MINUTES);
  });

  it('etcd snapshots: the backup host keeps checked snapshots on a timer; etcd-restore.yml refuses a bad request before anything changes', async (t) => {
    const listed = async (): Promise<string[]> => (await sh(REPO_HOST, `ls ${ETCD_SNAPSHOTS}`)).trim().split('\n').filter(Boolean);
    const timer = await sh(REPO_HOST, 'systemctl show -p ActiveState -p NextElapseUSecRealtime oms-etcd-snapshot.timer');
    assert.match(timer, /ActiveState=active/);
    const next = Date.parse(/NextElapseUSecRealtime=(.*)/.exec(timer)?.[1] ?? '');
    assert.ok(next - Date.now() <= 3_600_000, `the next snapshot is due within the hour: ${timer}`);
    const before = await listed();
    await sh(REPO_HOST, 'systemctl start oms-etcd-snapshot.service');
    const after = await listed();
    const added = after.filter((f) => !before.includes(f));
    assert.equal(added.length, 2, `one snapshot and its checksum added: ${added.join(', ')}`);
    const snapshot = added.find((f) => f.endsWith('.db'));
    assert.match(snapshot ?? '', /^etcd-\d{8}T\d{6}Z-rev\d+\.db$/);
    assert.equal((await sh(REPO_HOST, `stat -c %a ${ETCD_SNAPSHOTS} ${ETCD_SNAPSHOTS}/${snapshot ?? ''}`)).trim(), '700\n600');
    await sh(REPO_HOST, `cd ${ETCD_SNAPSHOTS} && sha256sum --check --quiet ${snapshot ?? ''}.sha256`);
    const status = JSON.parse(await sh(REPO_HOST, `ETCDCTL_API=3 etcdctl snapshot status ${ETCD_SNAPSHOTS}/${snapshot ?? ''} -w json`)) as { totalKey: number };
    assert.ok(status.totalKey > 0, 'the snapshot holds keys');
    // it holds Patroni's cluster: its settings, its identity
    const strings = await sh(REPO_HOST, `grep -ac '/service/oms/' ${ETCD_SNAPSHOTS}/${snapshot ?? ''} || true`);
    assert.ok(Number(strings.trim()) > 0, "the snapshot holds Patroni's keys (/service/oms/...)");

    const primary = await leader(inventory);
    const requests: [string, string[], RegExp][] = [
      ['no confirmation', [], /etcd_restore_confirm=oms-etcd, the cluster.s token/],
      ['a wrong confirmation', ['-e', 'etcd_restore_confirm=oms'], /etcd_restore_confirm=oms-etcd/],
      ['a badly formed snapshot name', ['-e', 'etcd_restore_confirm=oms-etcd', '-e', 'etcd_restore_snapshot=../etc/passwd'], /names a snapshot like etcd-/],
      ['a snapshot that is not there', ['-e', 'etcd_restore_confirm=oms-etcd', '-e', 'etcd_restore_snapshot=etcd-20200101T000000Z-rev1.db'], /holds no snapshot etcd-20200101T000000Z-rev1\.db/],
    ];
    for (const [what, args, why] of requests) {
      const r = await run(bin('ansible-playbook'), ['ansible/etcd-restore.yml', ...args]);
      assert.notEqual(r.code, 0, `etcd-restore.yml with ${what} was refused`);
      const said = r.stdout.replace(/\s+/g, ' ');
      assert.match(said, /etcd restore refused, nothing was changed/, what);
      assert.match(said, why, what);
      assert.doesNotMatch(r.stdout, /Stop etcd/, `${what}: no member was touched`);
    }
    assert.equal(await leader(inventory), primary, 'the same leader');
    t.diagnostic(`${String(after.filter((f) => f.endsWith('.db')).length)} snapshots on ${REPO_HOST}, the newest ${snapshot ?? '?'} (${String(status.totalKey)} keys); ${String(requests.length)} bad etcd restore requests refused`);
  });

  it("backup: two etcd members lose their disks under the users' load; etcd-restore.yml brings the quorum back from a snapshot, the primary keeps leading", { timeout: 10 * MINUTES, skip: FULL_SUITE_ONLY }, async (t) => {
    await runDrillsTest(t, ['etcd-quorum-loss'], 10 * MINUTES);
  });

  it("backup: every database host loses its disk under the users' load; restore.yml rebuilds the cluster from the repository (RTO, RPO)", { timeout: 20 * MINUTES }, async (t) => {
    await runDrillsTest(t, ['pg-cluster-loss'], 20 * MINUTES);
  });
}
