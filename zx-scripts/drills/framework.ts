// The drill framework every failover drill uses: a write load with client-made unique ids, a fault, the time without
// successful writes, the heal, and an audit that proves no acknowledged write was lost.
//
//   1. the system must be whole before anything happens (else the drill proves nothing and stops)
//   2. start the load; wait until writes succeed
//   3. inject the fault; wait until writes succeed again; heal; wait until the system is whole again
//   4. stop the load and audit: every acknowledged id must be in the system of record (missing = LOST, must be 0),
//      and the time without writes must be within the drill's goal (the bound it is derived from, in the report);
//      writes whose COMMIT got no answer are UNKNOWN, not failures: the audit says how many of them did commit;
//      writes the load's own end interrupted (no answer waited for) are CUT: neither failed nor acknowledged
// A drill whose recovery gives writes up by design (a restore to a point in time discards what came after it)
// declares that window: writes acknowledged inside it and missing are DISCARDED, reported with the window's reason,
// not LOST; every write acknowledged outside it must still be there, and with `absent` none made wholly inside it may be.
// A drill of one component (a database, a broker) runs under the users' order load too (`underLoad`: k6 at the
// VIP): the stack must be whole before and after, and its acknowledged orders are audited the same way.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { timelineSvg } from './timeline.ts';
import { timeStamp } from '../lib/run-id.ts';
import type { Load, WriteEvent } from '../load/events.ts';

export type { Load, WriteEvent } from '../load/events.ts';

export interface Whole {
  whole: boolean;
  /** what is missing, or a one-line picture of the healthy system */
  detail: string;
}

export interface Audit {
  /** ids of the given list found in the system of record (the list is every attempt of the load, whatever its outcome) */
  present: Set<string>;
  /** what else the audit counted (e.g. emails per acknowledged order), for the report */
  figures?: Record<string, number>;
  /** what it found wrong besides lost writes (e.g. an email missing or sent twice) */
  problems?: string[];
}

/** Writes a drill's recovery gives up on purpose, by the load's clock (ms since the epoch). */
export interface Window {
  from: number;
  to: number;
  /** why they are given up, for the report */
  why: string;
  /** writes made wholly inside the window must be absent (a restore to `from`), not merely may be */
  absent: boolean;
}

export interface DrillTarget {
  /** the system under test: its load, its health and its audit */
  startLoad(runId: string): Promise<Load>;
  whole(): Promise<Whole>;
  audit(runId: string, ids: string[]): Promise<Audit>;
}

export interface Drill<Ctx> {
  name: string;
  description: string;
  /** the goal for the time without writes, in seconds, and what bounds it: asserted (over it, the drill fails) */
  goal: { seconds: number; boundBy: string };
  /** picks the victim etc. before the load starts */
  prepare(): Promise<Ctx>;
  fault(ctx: Ctx): Promise<string>;
  heal(ctx: Ctx): Promise<string>;
  /** extra checks once whole (e.g. the old primary rejoined as a replica); returns problems */
  after?(ctx: Ctx): Promise<string[]>;
  /** the writes the recovery gives up on purpose, known once it has run; none when absent */
  discards?(ctx: Ctx): Window | undefined;
  /** the alerts the fault must raise at the on-call, and their bounds (checked when the run has an alert inbox) */
  alerts?: ExpectedAlert[];
  /**
   * a planned operation that must page no one says why instead of naming alerts: no alert may then reach the
   * on-call from the fault to the end of the audit (checked when the run has an alert inbox)
   */
  quiet?: string;
  /**
   * how long after the heal the system must be whole again, and what bounds it, where the heal restarts something
   * that takes longer than the run's wholeTimeoutSeconds (a JVM that recovers its logs after a SIGKILL); asserted
   */
  wholeWithin?: { seconds: number; boundBy: string };
}

/** An alert a drill's fault must raise: mailed to the on-call as firing within `fires` s of the fault, as resolved within `resolves` s of the heal. */
export interface ExpectedAlert {
  name: string;
  fires: number;
  resolves: number;
}

/** One alert mail that reached the on-call. */
export interface AlertMailSeen {
  at: Date;
  status: 'firing' | 'resolved';
  alertname: string;
}

/** Where the framework finds the alerts that reached the on-call (the lab: the on-call's mailbox at the mail sink). */
export interface AlertInbox {
  /** a mark taken before the fault: the drill's mails are those after it */
  mark(): Promise<number>;
  mails(after: number): Promise<AlertMailSeen[]>;
  /**
   * what the monitoring holds now about these alerts (the rule's state, the alert manager's, the targets that fail):
   * asked when an alert's mail did not come in time, so the problem says where the alert stopped
   */
  explain?(names: readonly string[]): Promise<string>;
  /**
   * alerts this system raises under a drill's load whatever the fault: a planned operation (a drill's `quiet`) is
   * not failed for them, and the report still names them
   */
  underLoad?: readonly string[];
}

/** The expected alerts' outcomes, the other alerts seen, and why the inbox could not be read when it could not. */
export interface AlertsSeen {
  outcomes: AlertOutcome[];
  others: string[];
  error?: string;
  /** the inbox's explanation of the alerts whose mail did not come, asked when the wait ended */
  explained?: string;
}

/**
 * What became of an expected alert: seconds from the fault to its firing mail, from the heal to its resolved mail
 * (negative when it was resolved before the heal: a recovery inside the fault, or an alert that marks a change).
 */
export interface AlertOutcome extends ExpectedAlert {
  firedAfter: number | null;
  resolvedAfter: number | null;
}

/** What a load did during a drill, and what its audit found. */
export interface LoadFigures {
  acknowledged: number;
  failed: number;
  /** failed as the client saw it (an error answer, a timeout), and yet in the system of record */
  failedCommitted: number;
  unknown: number;
  unknownCommitted: number;
  /** interrupted by the end of the load */
  cut: number;
  cutCommitted: number;
  lost: number;
  /** acknowledged, missing, and inside the drill's declared window (not lost) */
  discarded: number;
  /** the seconds the discarded writes' acknowledgments span (what a restore to the newest archived state loses: its RPO) */
  discardedSeconds: number;
  /** the longest time between two successful writes, from just before the fault to the end */
  secondsWithoutWrites: number;
  audit: Record<string, number>;
}

export interface DrillReport {
  drill: string;
  description: string;
  runId: string;
  startedAt: string;
  fault: string;
  heal: string;
  goal: { seconds: number; boundBy: string };
  writes: { acknowledged: number; failed: number; failedCommitted: number; unknown: number; unknownCommitted: number; cut: number; cutCommitted: number };
  /** the longest time between two successful writes, from just before the fault to the end */
  secondsWithoutWrites: number;
  /** from the fault to the first successful write after the last failed one */
  secondsToWritesBack: number | null;
  secondsToWhole: number | null;
  lost: string[];
  /** acknowledged, missing, inside the declared window: given up by design (the window and its reason below) */
  discarded: number;
  /** the seconds their acknowledgments span */
  discardedSeconds: number;
  window?: Window;
  /** the target's own audit figures (empty when it has none) */
  audit: Record<string, number>;
  whole: Whole;
  problems: string[];
  errors: Record<string, number>;
  /** the users' order load the drill ran under, when its own load was another (underLoad) */
  orders?: LoadFigures;
  /** the drill's expected alerts and when they reached the on-call; absent when the run had no alert inbox */
  alerts?: AlertOutcome[];
  /** the other alerts that reached the on-call during the drill (not asserted: one fault may page more than once) */
  otherAlerts?: string[];
  /** the timeline picture (SVG) beside the JSON report */
  timeline?: string;
  passed: boolean;
}

export interface DrillOptions {
  /** before the fault, and after the system is whole again */
  steadySeconds: number;
  /** how long writes may stay away after the fault before the drill gives up */
  recoverTimeoutSeconds: number;
  wholeTimeoutSeconds: number;
  reportDir: string;
  log: (line: string) => void;
  /** the users' order load to run the drill under, when its own target is another system */
  underLoad?: DrillTarget;
  /** where the drill's expected alerts are looked for; without it they are not checked */
  alertInbox?: AlertInbox;
  /**
   * the rest of the stack, which must be whole before the fault as well: a drill never starts while a component an
   * earlier drill struck still heals (a Kafka broker recovering its logs takes both CPUs of the lab for a minute)
   */
  settled?: () => Promise<Whole>;
  /**
   * aborted (Ctrl-C): the drill stops waiting, heals its fault if it injected one, stops its loads and throws
   * DrillInterrupted; it never leaves a fault in place
   */
  signal?: AbortSignal;
  /** how often a line says what the drill waits for (default 10 s): a drill is never silent for longer */
  progressMs?: number;
}

/** A drill stopped by its signal (Ctrl-C), after it healed what it had broken and stopped its loads. */
export class DrillInterrupted extends Error {
  override name = 'DrillInterrupted';
}

/**
 * Waits until every expected alert's firing mail (after the fault) and, once healed, its resolved mail (after the
 * firing one) have reached the inbox, or until the last bound has passed; polls every 2 s. Before the heal (healedAt null)
 * it waits for the firing mails only: a fault must last until its alerts fired, or a drill that heals fast would
 * prove nothing about them. Returns each alert's outcome and the other alerts seen.
 */
export async function awaitAlerts(inbox: AlertInbox, mark: number, expected: readonly ExpectedAlert[], faultAt: number, healedAt: number | null,
  signal?: AbortSignal): Promise<AlertsSeen> {
  const deadline = Math.max(...expected.map((a) => Math.max(faultAt + a.fires * 1000, healedAt === null ? 0 : healedAt + a.resolves * 1000)));
  const outcome = (mails: AlertMailSeen[]): AlertOutcome[] => expected.map((a) => {
    const fired = mails.find((m) => m.alertname === a.name && m.status === 'firing' && m.at.getTime() >= faultAt);
    // the first resolution after the firing mail: before the heal (a negative time) where the fault's own recovery
    // ended it (a restore run inside the fault), or where the alert marks a change rather than a state
    const resolved = healedAt === null || !fired ? undefined
      : mails.find((m) => m.alertname === a.name && m.status === 'resolved' && m.at.getTime() >= fired.at.getTime());
    return { ...a, firedAfter: fired ? round(fired.at.getTime() - faultAt) : null, resolvedAfter: resolved && healedAt !== null ? round(resolved.at.getTime() - healedAt) : null };
  });
  for (;;) {
    const mails = await inbox.mails(mark);
    const outcomes = outcome(mails);
    const done = outcomes.every((o) => o.firedAfter !== null && (healedAt === null || o.resolvedAfter !== null));
    if (done || Date.now() > deadline || signal?.aborted === true) {
      const others = [...new Set(mails.filter((m) => m.status === 'firing' && !expected.some((a) => a.name === m.alertname)).map((m) => m.alertname))].sort();
      const missing = outcomes.filter((o) => o.firedAfter === null || (healedAt !== null && o.resolvedAfter === null)).map((o) => o.name);
      if (missing.length === 0 || !inbox.explain) return { outcomes, others };
      const explained = await inbox.explain(missing).catch((error: unknown) => `the monitoring could not be asked: ${error instanceof Error ? error.message : String(error)}`);
      return { outcomes, others, explained };
    }
    await sleep(2000);
  }
}

/** The problems of the alerts' outcomes: missing or late. */
export function alertProblems(outcomes: readonly AlertOutcome[]): string[] {
  return outcomes.flatMap((o) => [
    ...(o.firedAfter === null ? [`alert ${o.name} never reached the on-call (bound: ${String(o.fires)} s after the fault)`]
      : o.firedAfter > o.fires ? [`alert ${o.name} reached the on-call ${String(o.firedAfter)} s after the fault, over its bound of ${String(o.fires)} s`] : []),
    ...(o.firedAfter !== null && o.resolvedAfter === null ? [`alert ${o.name} was not resolved at the on-call within ${String(o.resolves)} s of the heal`]
      : o.resolvedAfter !== null && o.resolvedAfter > o.resolves ? [`alert ${o.name} was resolved ${String(o.resolvedAfter)} s after the heal, over its bound of ${String(o.resolves)} s`] : []),
  ]);
}

const round = (ms: number): number => Math.round(ms / 100) / 10;

/** Both targets' health as one: whole when both are. */
function together(a: DrillTarget, b: DrillTarget | undefined): DrillTarget {
  if (!b) return a;
  return {
    ...a,
    async whole() {
      const [x, y] = await Promise.all([a.whole(), b.whole()]);
      return { whole: x.whole && y.whole, detail: x.whole && y.whole ? `${x.detail}; ${y.detail}` : [x, y].filter((w) => !w.whole).map((w) => w.detail).join('; ') };
    },
  };
}

async function waitWhole(target: DrillTarget, timeoutMs: number, signal?: AbortSignal): Promise<{ whole: Whole; ms: number | null }> {
  const started = Date.now();
  let whole = await target.whole();
  while (!whole.whole && Date.now() - started < timeoutMs && signal?.aborted !== true) {
    await sleep(500);
    whole = await target.whole();
  }
  return { whole, ms: whole.whole ? Date.now() - started : null };
}

/** The longest gap between consecutive successful writes (by the time each was acknowledged) from `from` to `to`. */
export function longestGap(events: readonly WriteEvent[], from: number, to: number): number {
  const acks = events.filter((e) => e.outcome === 'ok').map((e) => e.end).sort((a, b) => a - b);
  let last = from;
  let longest = 0;
  for (const t of acks) {
    if (t < from) continue;
    if (t > to) break;
    longest = Math.max(longest, t - last);
    last = t;
  }
  return Math.max(longest, to - last);
}

/** The first acknowledgement after the last pause of more than PAUSE_MS between acknowledgements since `from`. */
const PAUSE_MS = 1000;
export function resumedAt(events: readonly WriteEvent[], from: number): number | null {
  const acks = events.filter((e) => e.outcome === 'ok' && e.end >= from).map((e) => e.end).sort((a, b) => a - b);
  let previous = from;
  let resumed: number | null = acks[0] ?? null;
  for (const t of acks) {
    if (t - previous > PAUSE_MS) resumed = t;
    previous = t;
  }
  return resumed;
}

/** How many of the events with an outcome the audit found in the system of record. */
const committed = (events: readonly WriteEvent[], outcome: WriteEvent['outcome'], present: ReadonlySet<string>): number =>
  events.filter((e) => e.outcome === outcome && present.has(e.id)).length;

/**
 * Whether a write was acknowledged inside the window. A write acknowledged before it committed before it, and one
 * acknowledged after it was acknowledged by what came after the recovery: both must be there.
 */
const acknowledgedInside = (e: WriteEvent, w: Window): boolean => e.end > w.from && e.end < w.to;

/**
 * What the audit found against a declared window: acknowledged writes missing outside it (lost) and inside it
 * (discarded), and, for a window that must be empty, writes made wholly inside it that are there all the same.
 */
export function judge(events: readonly WriteEvent[], present: ReadonlySet<string>, window?: Window): { lost: string[]; discarded: string[]; survived: string[] } {
  const missing = events.filter((e) => e.outcome === 'ok' && !present.has(e.id));
  const inside = (e: WriteEvent): boolean => window !== undefined && acknowledgedInside(e, window);
  return {
    lost: missing.filter((e) => !inside(e)).map((e) => e.id),
    discarded: missing.filter(inside).map((e) => e.id),
    survived: window?.absent ? events.filter((e) => present.has(e.id) && e.start > window.from && e.end < window.to).map((e) => e.id) : [],
  };
}

/**
 * A load's events audited on its target. Every attempt is looked up, whatever the client saw: acknowledged ids
 * missing are lost (or discarded, inside the drill's declared window); failed, unknown and cut ones found were placed
 * all the same (and are audited like any other: their emails too); the rest are provably absent.
 */
async function auditEvents(target: DrillTarget, runId: string, events: readonly WriteEvent[], window?: Window): Promise<{ audit: Audit; writes: DrillReport['writes']; lost: string[]; discarded: string[]; discardedSeconds: number; survived: string[] }> {
  const audit = await target.audit(runId, events.map((e) => e.id));
  const acknowledged = events.filter((e) => e.outcome === 'ok').map((e) => e.id);
  const count = (outcome: WriteEvent['outcome']): number => events.filter((e) => e.outcome === outcome).length;
  const judged = judge(events, audit.present, window);
  return {
    audit,
    ...judged,
    discardedSeconds: span(events, judged.discarded),
    writes: {
      acknowledged: acknowledged.length,
      failed: count('failed'), failedCommitted: committed(events, 'failed', audit.present),
      unknown: count('unknown'), unknownCommitted: committed(events, 'unknown', audit.present),
      cut: count('cut'), cutCommitted: committed(events, 'cut', audit.present),
    },
  };
}

/** The seconds between the first and the last acknowledgment of the given writes (0 for none or one). */
export function span(events: readonly WriteEvent[], ids: readonly string[]): number {
  const wanted = new Set(ids);
  const ends = events.filter((e) => wanted.has(e.id)).map((e) => e.end);
  return ends.length === 0 ? 0 : round(Math.max(...ends) - Math.min(...ends));
}

/** The users' load's events audited on its target: LoadFigures. */
async function auditLoad(target: DrillTarget, runId: string, events: readonly WriteEvent[], faultAt: number, endedAt: number, window?: Window): Promise<LoadFigures & { problems: string[] }> {
  const { audit, writes, lost, discarded, discardedSeconds, survived } = await auditEvents(target, runId, events, window);
  return {
    ...writes,
    lost: lost.length,
    discarded: discarded.length,
    discardedSeconds,
    secondsWithoutWrites: round(longestGap(events, faultAt - 1000, endedAt)),
    audit: audit.figures ?? {},
    problems: [...(audit.problems ?? []), ...survivedProblems(survived)],
  };
}

const survivedProblems = (survived: readonly string[]): string[] =>
  survived.length > 0 ? [`${String(survived.length)} writes made wholly inside the discarded window are there all the same (e.g. ${survived.slice(0, 3).join(', ')})`] : [];

/** Counts errors by their first words, so a report shows "connection refused: 12" rather than 12 lines. */
function errorKinds(events: readonly WriteEvent[]): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const e of events) {
    if (e.outcome === 'ok' || !e.error) continue;
    const kind = `${e.outcome}: ${e.error.replace(/[0-9a-f-]{36}/g, 'ID').replace(/\d+(\.\d+)*/g, 'N').slice(0, 80)}`;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

export async function runDrill<Ctx>(drill: Drill<Ctx>, target: DrillTarget, options: DrillOptions): Promise<DrillReport> {
  // what the drill is doing, said again every progressMs while it lasts
  const phase = { what: 'checking that the system is whole', since: Date.now() };
  const ticker = setInterval(() => {
    options.log(`${drill.name}: ${phase.what} (${String(Math.round((Date.now() - phase.since) / 1000))} s)`);
  }, options.progressMs ?? 10_000);
  try {
    return await drillOnce(drill, target, options, (what) => { phase.what = what; phase.since = Date.now(); });
  } finally {
    clearInterval(ticker);
  }
}

async function drillOnce<Ctx>(drill: Drill<Ctx>, target: DrillTarget, options: DrillOptions, doing: (what: string) => void): Promise<DrillReport> {
  const { log } = options;
  const interrupted = (): boolean => options.signal?.aborted === true;
  const runId = `${drill.name}-${timeStamp()}`;
  const startedAt = new Date().toISOString();
  const drillStart = Date.now();
  const system = together(target, options.underLoad);
  const before = await waitWhole(options.settled ? together(system, { ...system, whole: options.settled }) : system, options.wholeTimeoutSeconds * 1000, options.signal);
  if (interrupted()) throw new DrillInterrupted(`${drill.name}: interrupted before the fault; nothing was changed`);
  if (!before.whole.whole) throw new Error(`${drill.name}: the system is not whole before the drill: ${before.whole.detail}`);
  doing('preparing');
  const ctx = await drill.prepare();
  const preparedAt = Date.now();

  doing('starting the loads');
  const ordersRun = `${runId}-orders`;
  // both loads start side by side (each takes seconds: a process in a host's namespace, its TLS logins); one that
  // fails to start stops the other
  const [ordersStarted, loadStarted] = await Promise.allSettled([options.underLoad?.startLoad(ordersRun), target.startLoad(runId)]);
  if (ordersStarted.status === 'rejected' || loadStarted.status === 'rejected') {
    if (ordersStarted.status === 'fulfilled') await ordersStarted.value?.stop().catch(() => undefined);
    if (loadStarted.status === 'fulfilled') await loadStarted.value.stop().catch(() => undefined);
    throw ordersStarted.status === 'rejected' ? ordersStarted.reason : (loadStarted as PromiseRejectedResult).reason;
  }
  const orders = ordersStarted.value;
  const load: Load = loadStarted.value;
  const stopLoads = async (): Promise<void> => { await Promise.all([load.stop().catch(() => undefined), orders?.stop().catch(() => undefined)]); };
  doing('waiting for the first acknowledged write');
  const firstAck = Date.now();
  while (!load.events().some((e) => e.outcome === 'ok') && !interrupted()) {
    if (Date.now() - firstAck > 60_000) {
      await stopLoads();
      throw new Error(`${drill.name}: no write succeeded within 60 s of starting the load`);
    }
    await sleep(100);
  }
  // the users still arriving (their TLS logins, their first orders) load the machine as no steady hour does: a
  // failover measured then measures the ramp (CI saw redis-master-kill at 5.4 s, over its 5 s goal, with the fault
  // 3 s into the users' arrival; 3.3-3.6 s otherwise)
  for (const users of [load, orders]) {
    if (!users?.arrivedBy) continue;
    doing('waiting for every user to arrive');
    const waitFrom = Date.now();
    for (let by = users.arrivedBy(); (by === undefined || Date.now() < by) && !interrupted(); by = users.arrivedBy()) {
      if (Date.now() - waitFrom > 60_000) {
        await stopLoads();
        throw new Error(`${drill.name}: the users' load placed no order within 60 s of starting`);
      }
      await sleep(100);
    }
  }
  const firstAckAt = Date.now();
  await sleep(options.steadySeconds * 1000);
  if (interrupted()) {
    await stopLoads();
    throw new DrillInterrupted(`${drill.name}: interrupted before the fault; nothing was changed, the loads were stopped`);
  }

  const expectedAlerts = options.alertInbox ? drill.alerts ?? [] : [];
  const quiet = options.alertInbox ? drill.quiet : undefined;
  const alertMark = (expectedAlerts.length > 0 || quiet !== undefined) && options.alertInbox ? await options.alertInbox.mark() : 0;
  doing('injecting the fault');
  const faultAt = Date.now();
  let fault: string;
  try {
    fault = await drill.fault(ctx);
  } catch (error) {
    // the drill cannot go on: its loads must not outlive it
    await stopLoads();
    throw error;
  }
  log(`${drill.name}: fault: ${fault}`);
  // a fault may take long itself (a rolling restart): writes get their recovery time from its end
  const faultDone = Date.now();
  // Writes are back when they have succeeded steadily for 2 s (an acknowledgement in every half second, no failure):
  // writes in flight when the fault hit may hang for seconds before they fail, so a quiet moment proves nothing.
  let backAt: number | null = null;
  doing('waiting for writes to come back');
  while (backAt === null && Date.now() - faultDone < options.recoverTimeoutSeconds * 1000 && !interrupted()) {
    const now = Date.now();
    const since = load.events().filter((e) => e.end >= faultAt);
    const lastBad = Math.max(faultAt, ...since.filter((e) => e.outcome !== 'ok').map((e) => e.end));
    const steady = [0, 1, 2, 3].every((slot) => since.some((e) =>
      e.outcome === 'ok' && e.end >= now - 2000 + slot * 500 && e.end < now - 1500 + slot * 500));
    const firstOk = since.find((e) => e.outcome === 'ok' && e.start >= lastBad);
    // writes that hang through the fault and then succeed are no failures, but no write got through meanwhile:
    // writes are back at the first acknowledgement after the last pause of more than a second
    const resumed = resumedAt(since, faultAt);
    if (firstOk && steady && now - lastBad >= 2000) backAt = Math.max(firstOk.end, resumed ?? 0);
    else await sleep(100);
  }
  log(`${drill.name}: ${interrupted() ? 'interrupted: healing the fault, then stopping'
    : backAt === null ? `writes did not come back within ${options.recoverTimeoutSeconds} s of the fault's end` : `writes back ${round(backAt - faultAt)} s after the fault`}`);

  if (expectedAlerts.length > 0 && options.alertInbox && !interrupted()) {
    doing(`holding the fault until ${expectedAlerts.map((a) => a.name).join(', ')} reached the on-call`);
    const fired = await awaitAlerts(options.alertInbox, alertMark, expectedAlerts, faultAt, null, options.signal).catch(() => undefined);
    log(`${drill.name}: alerts before the heal: ${fired?.outcomes.map((o) => `${o.name} ${o.firedAfter === null ? 'not fired' : `fired ${String(o.firedAfter)} s after the fault`}`).join(', ') ?? 'the inbox failed'}`);
    fault += `; held until its alerts fired (heal ${String(round(Date.now() - faultAt))} s after the fault)`;
  }
  doing('healing');
  const heal = await drill.heal(ctx);
  log(`${drill.name}: heal: ${heal}`);
  const healedAt = Date.now();
  if (interrupted()) {
    await stopLoads();
    throw new DrillInterrupted(`${drill.name}: interrupted; the fault (${fault}) was healed (${heal}) and the loads were stopped`);
  }
  // the alerts are awaited while the system comes back whole and the loads are audited: they cost no time of their own
  // unless they are late
  const alertsSeen = expectedAlerts.length > 0 && options.alertInbox
    ? awaitAlerts(options.alertInbox, alertMark, expectedAlerts, faultAt, healedAt)
      .catch((error: unknown): AlertsSeen => ({ outcomes: [], others: [], error: `the alert inbox failed: ${String(error)}` }))
    : undefined;
  const wholeSeconds = drill.wholeWithin?.seconds ?? options.wholeTimeoutSeconds;
  doing('waiting for the system to be whole again');
  const after = await waitWhole(system, wholeSeconds * 1000, options.signal);
  await sleep(options.steadySeconds * 1000);
  doing('stopping the loads and auditing');
  const [events, orderEvents] = await Promise.all([load.stop(), orders?.stop()]);
  const endedAt = Math.max(...events.map((e) => e.end), Date.now());

  const window = drill.discards?.(ctx);
  // the two audits ask different systems (the drill's target, the users' orders and their emails): side by side
  const auditedFrom = Date.now();
  const [{ audit, writes, lost, discarded, discardedSeconds, survived }, ordersAudit] = await Promise.all([
    auditEvents(target, runId, events, window),
    options.underLoad && orderEvents ? auditLoad(options.underLoad, ordersRun, orderEvents, faultAt, endedAt, window) : undefined,
  ]);
  log(`${drill.name}: ${String(round(faultAt - drillStart))} s to the fault (whole and prepared ${String(round(preparedAt - drillStart))} s, first write ${String(round(firstAckAt - preparedAt))} s, steady ${String(options.steadySeconds)} s), ${String(round(endedAt - faultAt))} s from the fault to the loads' end, ${String(round(Date.now() - auditedFrom))} s of audit`);
  const problems: string[] = [];
  if (!after.whole.whole) {
    problems.push(`not whole ${String(wholeSeconds)} s after the heal${drill.wholeWithin ? ` (bound by ${drill.wholeWithin.boundBy})` : ''}: ${after.whole.detail}`);
  }
  if (backAt === null) problems.push('writes never came back');
  if (after.whole.whole && drill.after) problems.push(...(await drill.after(ctx)));
  const secondsWithoutWrites = round(longestGap(events, faultAt - 1000, endedAt));
  if (secondsWithoutWrites > drill.goal.seconds) {
    problems.push(`${String(secondsWithoutWrites)} s without writes, over the goal of ${String(drill.goal.seconds)} s (bound by ${drill.goal.boundBy})`);
  }
  if (lost.length > 0) problems.push(`${lost.length} acknowledged writes LOST`);
  problems.push(...survivedProblems(survived));
  problems.push(...(audit.problems ?? []));
  let orderFigures: LoadFigures | undefined;
  if (ordersAudit) {
    const { problems: orderProblems, ...figures } = ordersAudit;
    orderFigures = figures;
    if (figures.acknowledged === 0) problems.push('orders: none was acknowledged');
    if (figures.lost > 0) problems.push(`orders: ${String(figures.lost)} acknowledged orders LOST`);
    problems.push(...orderProblems.map((p) => `orders: ${p}`));
  }
  // a planned operation: whatever reached the on-call by now (no expected alert, so nothing is waited for)
  const quietSeen = quiet !== undefined && options.alertInbox
    ? await awaitAlerts(options.alertInbox, alertMark, [], faultAt, healedAt)
      .catch((error: unknown): AlertsSeen => ({ outcomes: [], others: [], error: `the alert inbox failed: ${String(error)}` }))
    : undefined;
  const paged = quietSeen?.others.filter((name) => !(options.alertInbox?.underLoad ?? []).includes(name)) ?? [];
  if (paged.length > 0) problems.push(`a planned operation that pages no one (${quiet ?? ''}) paged: ${paged.join(', ')}`);
  const alerts = alertsSeen ? await alertsSeen : quietSeen;
  if (alerts) problems.push(...(alerts.error === undefined ? alertProblems(alerts.outcomes) : [alerts.error]));
  if (alerts?.explained !== undefined) problems.push(`when the wait for the alerts ended: ${alerts.explained}`);

  const timeline = join(options.reportDir, `${runId}.svg`);
  const report: DrillReport = {
    drill: drill.name,
    description: drill.description,
    runId,
    startedAt,
    fault,
    heal,
    goal: drill.goal,
    writes,
    secondsWithoutWrites,
    secondsToWritesBack: backAt === null ? null : round(backAt - faultAt),
    secondsToWhole: after.ms === null ? null : round(healedAt + after.ms - faultAt),
    lost,
    discarded: discarded.length,
    discardedSeconds,
    ...(window ? { window } : {}),
    audit: audit.figures ?? {},
    whole: after.whole,
    problems,
    errors: errorKinds(events),
    ...(orderFigures ? { orders: orderFigures } : {}),
    ...(alerts ? { alerts: alerts.outcomes, otherAlerts: alerts.others } : {}),
    timeline,
    passed: problems.length === 0,
  };
  mkdirSync(options.reportDir, { recursive: true });
  writeFileSync(timeline, timelineSvg({
    drill: drill.name, passed: report.passed, lost: lost.length, writes: events, ...(orderEvents ? { orders: orderEvents } : {}),
    faultAt, backAt, healedAt, wholeAt: after.ms === null ? null : healedAt + after.ms, secondsWithoutWrites, goalSeconds: drill.goal.seconds,
  }));
  writeFileSync(join(options.reportDir, `${runId}.json`), JSON.stringify({ ...report, events: events.length }, null, 2) + '\n');
  return report;
}

const cutText = (cut: number, placed: number): string => (cut > 0 ? `, ${String(cut)} cut by the end of the load (${String(placed)} of them committed)` : '');

/** "events 272, emails 272, ..." */
export const figuresText = (figures: Record<string, number>): string => Object.entries(figures).map(([k, v]) => `${k} ${String(v)}`).join(', ');

export function formatReport(r: DrillReport): string {
  const goal = r.secondsWithoutWrites <= r.goal.seconds ? 'within' : 'OVER';
  return [
    `drill ${r.drill}: ${r.passed ? 'PASSED' : 'FAILED'} (${r.runId})`,
    `  fault: ${r.fault}`,
    `  heal:  ${r.heal}`,
    `  time without writes: ${r.secondsWithoutWrites} s (${goal} the goal of ${r.goal.seconds} s; bound by ${r.goal.boundBy})`,
    `  writes back ${r.secondsToWritesBack ?? 'never'} s after the fault; whole again ${r.secondsToWhole ?? 'never'} s after the fault`,
    `  writes: ${r.writes.acknowledged} acknowledged, ${r.writes.failed} failed (${r.writes.failedCommitted} of them committed all the same), ${r.writes.unknown} unknown (${r.writes.unknownCommitted} of them committed)${cutText(r.writes.cut, r.writes.cutCommitted)}`,
    `  LOST: ${r.lost.length}`,
    ...(r.window ? [`  discarded by design: ${String(r.discarded)} acknowledged writes (their acknowledgments span ${String(r.discardedSeconds)} s)${r.orders ? ` and ${String(r.orders.discarded)} orders (${String(r.orders.discardedSeconds)} s)` : ''} from the ${round(r.window.to - r.window.from)} s between ${new Date(r.window.from).toISOString()} and ${new Date(r.window.to).toISOString()} (${r.window.why})`] : []),
    ...(Object.keys(r.audit).length > 0 ? [`  audit: ${figuresText(r.audit)}`] : []),
    ...(r.orders ? [`  orders (the users' load at the VIP): ${r.orders.acknowledged} acknowledged, ${r.orders.failed} failed (${r.orders.failedCommitted} of them placed all the same), ${r.orders.unknown} unknown (${r.orders.unknownCommitted} of them placed)${cutText(r.orders.cut, r.orders.cutCommitted)}, LOST ${r.orders.lost}, longest time without an order ${r.orders.secondsWithoutWrites} s` +
      (Object.keys(r.orders.audit).length > 0 ? `; ${figuresText(r.orders.audit)}` : '')] : []),
    ...(r.alerts ? [`  alerts at the on-call: ${r.alerts.map((a) => `${a.name} fired ${a.firedAfter === null ? 'never' : `${String(a.firedAfter)} s`} after the fault (bound ${String(a.fires)} s), resolved ${a.resolvedAfter === null ? 'never' : `${String(a.resolvedAfter)} s`} after the heal (bound ${String(a.resolves)} s)`).join('; ')}` +
      ((r.otherAlerts ?? []).length > 0 ? `; also: ${(r.otherAlerts ?? []).join(', ')}` : '')] : []),
    `  whole: ${r.whole.detail}`,
    ...Object.entries(r.errors).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `  ${n} x ${k}`),
    ...r.problems.map((p) => `  PROBLEM: ${p}`),
    ...(r.timeline ? [`  timeline: ${r.timeline}`] : []),
  ].join('\n');
}

/**
 * Every drill of a run in one table: the drill's own writes (its goal for the time without them, that time, the time
 * until they were back, failed, lost), then the orders at the VIP (the drill's own load for the gateway and services drills, else the users' load
 * it ran under) and their emails.
 */
export function formatTable(reports: readonly DrillReport[]): string {
  const rows = reports.map((r) => {
    const orders: LoadFigures | undefined = r.orders ?? (r.audit['emails'] === undefined ? undefined : {
      ...r.writes, lost: r.lost.length, discarded: r.discarded, discardedSeconds: r.discardedSeconds, secondsWithoutWrites: r.secondsWithoutWrites, audit: r.audit,
    });
    const n = (v: number | undefined): string => (v === undefined ? '-' : String(v));
    return [r.drill, r.passed ? 'passed' : 'FAILED', String(r.goal.seconds), String(r.secondsWithoutWrites), n(r.secondsToWritesBack ?? undefined), String(r.writes.failed), String(r.lost.length),
      n(orders?.acknowledged), n(orders?.failed), n(orders?.lost), r.window ? `${String(orders?.discarded ?? r.discarded)} (${String(orders?.discardedSeconds ?? r.discardedSeconds)} s)` : '-', n(orders?.secondsWithoutWrites), n(orders?.audit['missing']), n(orders?.audit['duplicates']),
      // each expected alert: seconds from the fault to its firing mail / from the heal to its resolved mail
      (r.alerts ?? []).map((a) => `${a.name} ${a.firedAfter === null ? 'never' : String(a.firedAfter)}/${a.resolvedAfter === null ? 'never' : String(a.resolvedAfter)}`).join(', ') || '-'];
  });
  const head = ['drill', 'result', 'goal s', 'no writes s', 'back s', 'failed', 'LOST', 'orders ack', 'failed', 'LOST', 'discarded', 'no orders s', 'emails missing', 'dup', 'alert fired/resolved s'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 || i === head.length - 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
