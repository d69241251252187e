// npm run drill -- <drill>... | all | list   [--json]
// Failover drills on the lab under a write load; each writes a JSON report to reports/drills/ and prints a summary.
// Exit 0 when every drill passed (LOST = 0, writes came back, the system whole again), 1 otherwise, 2 for a bad
// command line, 130 when interrupted (Ctrl-C: the fault is healed first).
import { join } from 'node:path';
import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { loadInventory } from '../lib/inventory.ts';
import { defaultInventory, repoRoot, status } from '../lab/lab.ts';
import { DrillInterrupted, formatReport, formatTable, runDrill, type Drill, type DrillReport, type DrillTarget } from './framework.ts';
import { gatewayDrills, gatewayTarget } from './gateway.ts';
import { kafkaDrills, kafkaTarget } from './kafka.ts';
import { onCallInbox } from './monitoring.ts';
import { backupDrills, backupTarget } from './backup.ts';
import { postgresDrills, postgresTarget } from './postgres.ts';
import { redisDrills, redisTarget } from './redis.ts';
import { servicesDrills, servicesTarget } from './services.ts';

const USAGE = `usage: npm run drill -- <drill>... | all | list [--json]

Runs failover drills on the lab (npm run lab -- up first) under a write load with unique ids, and audits:
acknowledged writes missing afterwards = LOST (must be 0). Reports: reports/drills/<run>.json

  list        the drills, a line each, with the alerts each fault must raise
  all         every drill, one after the other
  --json      the reports (with list: the drills) as JSON on stdout (the progress lines go to stderr)
  -h, --help  this text

A line says what the drill waits for at least every 10 s. Ctrl-C heals the fault the drill injected, stops its
loads and exits 130; a second Ctrl-C exits at once and leaves the fault as it is.

exit: 0 every drill passed, 1 a drill failed or could not run, 2 a bad command line, 130 interrupted`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals: names } = parseCommandLine(argv, { json: { type: 'boolean', default: false } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const json = values.json;
  const inventory = loadInventory(defaultInventory);
  // each drill with the system it runs against (its load, health and audit); a component's drills run under the
  // users' order load at the VIP as well, whose orders and emails are audited too
  const users = (): DrillTarget => servicesTarget(inventory);
  const drills: (Drill<unknown> & { target: () => DrillTarget; underLoad?: () => DrillTarget })[] = [
    ...postgresDrills(inventory).map((d) => ({ ...(d as Drill<unknown>), target: () => postgresTarget(inventory), underLoad: users })),
    ...backupDrills(inventory).map((d) => ({ ...d, target: () => backupTarget(inventory), underLoad: users })),
    ...kafkaDrills(inventory).map((d) => ({ ...(d as Drill<unknown>), target: () => kafkaTarget(inventory), underLoad: users })),
    ...redisDrills(inventory).map((d) => ({ ...(d as Drill<unknown>), target: () => redisTarget(inventory), underLoad: users })),
    ...gatewayDrills(inventory).map((d) => ({ ...(d as Drill<unknown>), target: () => gatewayTarget(inventory) })),
    ...servicesDrills(inventory).map((d) => ({ ...(d as Drill<unknown>), target: () => servicesTarget(inventory) })),
  ];
  if (names.length === 0) throw new UsageError('name a drill, all, or list');
  if (names[0] === 'list') {
    // each drill with what its fault must raise at the on-call, or why a planned operation pages no one
    const alertNames = (d: Drill<unknown>): string[] => (d.alerts ?? []).map((a) => a.name);
    const pages = (d: Drill<unknown>): string => (d.quiet !== undefined ? `pages no one: ${d.quiet}` : `alerts: ${alertNames(d).join(', ') || 'none named'}`);
    if (json) console.log(JSON.stringify(drills.map((d) => ({ name: d.name, description: d.description, alerts: alertNames(d), ...(d.quiet !== undefined ? { quiet: d.quiet } : {}) })), null, 2));
    else for (const d of drills) console.log(`${d.name.padEnd(30)} ${d.description} [${pages(d)}]`);
    return 0;
  }
  const chosen = names[0] === 'all' ? drills : names.map((n) => {
    const d = drills.find((x) => x.name === n);
    if (!d) throw new UsageError(`unknown drill '${n}' (drills: ${drills.map((x) => x.name).join(', ')})`);
    return d;
  });
  if (!(await status(defaultInventory)).up) throw new Error('the lab is not up (npm run lab -- up)');
  const reports: DrillReport[] = [];
  // the alerts each drill expects are looked for in the on-call's mailbox at the lab's mail sink
  const alertInbox = onCallInbox(inventory);
  // Kafka is on every order's path (outbox, events, emails) and the slowest member to heal: every drill waits for it
  const kafka = kafkaTarget(inventory);
  // Ctrl-C: the running drill heals its fault and stops its loads; a second one leaves at once
  const interrupt = new AbortController();
  const onInterrupt = (): void => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
    console.error('drill: interrupted: healing the fault and stopping the loads (Ctrl-C again leaves them as they are)');
  };
  process.on('SIGINT', onInterrupt);
  for (const drill of chosen) {
    let report: DrillReport;
    try {
      report = await runDrill(drill, drill.target(), {
        steadySeconds: 3,
        recoverTimeoutSeconds: 90,
        wholeTimeoutSeconds: 120,
        reportDir: join(repoRoot, 'reports', 'drills'),
        log: (line) => { if (json) console.error(line); else console.log(line); },
        ...(drill.underLoad ? { underLoad: drill.underLoad() } : {}),
        ...(alertInbox ? { alertInbox } : {}),
        settled: () => kafka.whole(),
        signal: interrupt.signal,
      });
    } catch (error) {
      if (!(error instanceof DrillInterrupted)) throw error;
      console.error(`drill: ${error.message}`);
      return 130;
    }
    reports.push(report);
    if (!json) console.log(formatReport(report));
  }
  if (json) console.log(JSON.stringify(reports, null, 2));
  else if (reports.length > 1) console.log(`\n${formatTable(reports)}`);
  return reports.every((r) => r.passed) ? 0 : 1;
}

runCli('drill', USAGE, main);
