// The drill framework's judgement, with a simulated system: writes that hang and fail after a fault, a lost
// acknowledged write, a commit whose outcome is unknown, and a system that never comes back whole.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { alertProblems, awaitAlerts, DrillInterrupted, formatReport, formatTable, judge, longestGap, resumedAt, runDrill, span, type AlertInbox, type AlertMailSeen, type Drill, type DrillTarget, type WriteEvent } from './framework.ts';

interface Sim {
  /** ms after the fault during which writes hang (then fail), and until which they keep failing */
  hangMs: number;
  downMs: number;
  /** ids the audit will not find although they were acknowledged */
  lose?: number;
  /** the first write after the outage gets no answer to its COMMIT (and did commit) */
  unknownCommitted?: boolean;
  /** the first write that fails in the outage had committed all the same (a 503 after the commit, a timeout) */
  failedCommitted?: boolean;
  wholeAfterHeal?: boolean;
  /** ms after the heal before the system is whole again (a member that takes its time to restart) */
  wholeAfterHealMs?: number;
}

function simulated(sim: Sim): { target: DrillTarget; drill: Drill<null> } {
  let faultAt = Number.POSITIVE_INFINITY;
  let healed = false;
  let healedAt = Number.POSITIVE_INFINITY;
  const stored = new Set<string>();
  let seq = 0;
  const target: DrillTarget = {
    startLoad() {
      const events: WriteEvent[] = [];
      let stopped = false;
      let unknownDone = false;
      let failedStored = false;
      const writer = async (): Promise<void> => {
        while (!stopped) {
          const start = Date.now();
          const id = `w${seq++}`;
          // the fault takes 50 ms to bite: writes that start just after it still succeed
          const since = start - faultAt - 50;
          if (since >= 0 && since < sim.hangMs) {
            await new Promise((r) => setTimeout(r, faultAt + 50 + sim.hangMs - start));
            events.push({ id, start, end: Date.now(), outcome: 'failed', error: 'Query read timeout' });
          } else if (since >= 0 && since < sim.downMs) {
            await new Promise((r) => setTimeout(r, 20));
            if (sim.failedCommitted && !failedStored) { failedStored = true; stored.add(id); }
            events.push({ id, start, end: Date.now(), outcome: 'failed', error: 'Connection terminated unexpectedly' });
          } else {
            await new Promise((r) => setTimeout(r, 10));
            stored.add(id);
            if (since >= sim.downMs && sim.unknownCommitted && !unknownDone) {
              unknownDone = true;
              events.push({ id, start, end: Date.now(), outcome: 'unknown', error: 'COMMIT sent but not acknowledged' });
            } else {
              events.push({ id, start, end: Date.now(), outcome: 'ok' });
            }
          }
        }
      };
      const running = Promise.all([writer(), writer()]);
      return Promise.resolve({
        events: () => events,
        async stop() { stopped = true; await running; return events; },
      });
    },
    whole: () => Promise.resolve(faultAt === Number.POSITIVE_INFINITY || (healed && sim.wholeAfterHeal !== false && Date.now() - healedAt >= (sim.wholeAfterHealMs ?? 0))
      ? { whole: true, detail: 'all well' } : { whole: false, detail: 'a member is missing' }),
    audit(_run, ids) {
      const present = new Set(ids.filter((id) => stored.has(id)));
      for (const id of [...present].slice(0, sim.lose ?? 0)) present.delete(id);
      return Promise.resolve({ present });
    },
  };
  const drill: Drill<null> = {
    name: 'sim',
    description: 'simulated',
    goal: { seconds: 5, boundBy: 'the simulation' },
    prepare: () => Promise.resolve(null),
    fault: () => { faultAt = Date.now(); return Promise.resolve('simulated fault'); },
    heal: () => { healed = true; healedAt = Date.now(); return Promise.resolve('simulated heal'); },
  };
  return { target, drill };
}

/** The target, with a note of whether its load was stopped. */
function stopsCounted(target: DrillTarget): { target: DrillTarget; stopped: () => boolean } {
  let stopped = false;
  return {
    target: {
      ...target,
      async startLoad(runId) {
        const load = await target.startLoad(runId);
        return { events: () => load.events(), async stop() { stopped = true; return load.stop(); } };
      },
    },
    stopped: () => stopped,
  };
}

const options = { steadySeconds: 0.3, recoverTimeoutSeconds: 10, wholeTimeoutSeconds: 2, reportDir: mkdtempSync(join(tmpdir(), 'drill-')), log: () => undefined };

describe('the drill framework', () => {
  // a quiet moment after the fault (writes hanging, nothing failed yet) is not a recovery (seen in the lab's
  // partition drill before this was fixed: "writes back after 0 s")
  it('waits out writes that hang after the fault, and measures the time without writes', async () => {
    const { target, drill } = simulated({ hangMs: 2600, downMs: 3200 });
    const report = await runDrill(drill, target, options);
    assert.equal(report.passed, true, report.problems.join('; '));
    assert.ok(report.secondsWithoutWrites >= 3.1 && report.secondsWithoutWrites < 4, `without writes: ${report.secondsWithoutWrites}`);
    assert.ok((report.secondsToWritesBack ?? 0) >= 3.1, `writes back: ${String(report.secondsToWritesBack)}`);
    assert.equal(report.lost.length, 0);
    assert.ok(report.writes.failed > 0 && report.writes.acknowledged > 0);
  });

  it('fails a drill whose time without writes is over its goal, naming the bound', async () => {
    const { target, drill } = simulated({ hangMs: 2600, downMs: 3200 });
    const report = await runDrill({ ...drill, goal: { seconds: 2, boundBy: 'the simulated failover' } }, target, options);
    assert.equal(report.passed, false);
    assert.equal(report.lost.length, 0);
    assert.match(report.problems.join(';'), /s without writes, over the goal of 2 s \(bound by the simulated failover\)/);
  });

  it('reports acknowledged writes missing from the audit as LOST, and fails', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300, lose: 3 });
    const report = await runDrill(drill, target, options);
    assert.equal(report.lost.length, 3);
    assert.equal(report.passed, false);
    assert.match(report.problems.join(';'), /3 acknowledged writes LOST/);
  });

  it('counts a commit without an answer as unknown, not failed, and says whether it committed', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300, unknownCommitted: true });
    const report = await runDrill(drill, target, options);
    assert.equal(report.writes.unknown, 1);
    assert.equal(report.writes.unknownCommitted, 1);
    assert.equal(report.passed, true, report.problems.join('; '));
  });

  it('audits every attempt: a write the client saw fail that committed all the same is counted as committed', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300, failedCommitted: true });
    const asked: string[][] = [];
    const report = await runDrill(drill, { ...target, audit: (run, ids) => { asked.push(ids); return target.audit(run, ids); } }, options);
    assert.ok(report.writes.failed > 1);
    assert.equal(report.writes.failedCommitted, 1);
    assert.equal(asked[0]?.length, report.writes.acknowledged + report.writes.failed + report.writes.unknown + report.writes.cut, 'every attempt looked up');
    assert.equal(report.passed, true, report.problems.join('; '));
  });

  it('fails when the system is not whole after the heal', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300, wholeAfterHeal: false });
    const report = await runDrill(drill, target, options);
    assert.equal(report.passed, false);
    assert.match(report.problems.join(';'), /not whole 2 s after the heal: a member is missing/);
  });

  it('a drill whose heal takes longer is judged by its own wholeWithin bound, named when it is missed', async () => {
    const slow = simulated({ hangMs: 0, downMs: 300, wholeAfterHealMs: 2500 });
    const byDefault = await runDrill(slow.drill, slow.target, options);
    assert.match(byDefault.problems.join(';'), /not whole 2 s after the heal: a member is missing/);
    const own = simulated({ hangMs: 0, downMs: 300, wholeAfterHealMs: 2500 });
    const report = await runDrill({ ...own.drill, wholeWithin: { seconds: 4, boundBy: 'the member\'s restart' } }, own.target, options);
    assert.equal(report.passed, true, report.problems.join('; '));
    const never = simulated({ hangMs: 0, downMs: 300, wholeAfterHeal: false });
    const missed = await runDrill({ ...never.drill, wholeWithin: { seconds: 3, boundBy: 'the member\'s restart' } }, never.target, options);
    assert.match(missed.problems.join(';'), /not whole 3 s after the heal \(bound by the member's restart\): a member is missing/);
  });

  it('does not start while the rest of the stack (settled) is not whole, and starts once it is', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300 });
    let faulted = false;
    const watched = { ...drill, fault: (ctx: null) => { faulted = true; return drill.fault(ctx); } };
    const healing = { whole: false, detail: 'a broker recovers its logs' };
    await assert.rejects(runDrill(watched, target, { ...options, settled: () => Promise.resolve(healing) }), /not whole before the drill: a broker recovers its logs/);
    assert.equal(faulted, false, 'the fault ran on a stack that was not whole');
    const soon = Date.now() + 1000;
    const report = await runDrill(watched, target, { ...options, settled: () => Promise.resolve(Date.now() > soon ? { whole: true, detail: 'in sync' } : healing) });
    assert.equal(report.passed, true, report.problems.join('; '));
  });

  it('says what it waits for at least every progressMs', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300, wholeAfterHealMs: 400 });
    const lines: string[] = [];
    const report = await runDrill(drill, target, { ...options, log: (l) => lines.push(l), progressMs: 100 });
    assert.equal(report.passed, true, report.problems.join('; '));
    assert.ok(lines.some((l) => /^sim: waiting for the system to be whole again \(\d+ s\)$/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^sim: waiting for writes to come back/.test(l)), lines.join('\n'));
  });

  it('interrupted after its fault: heals it, stops the loads, and says so', async () => {
    const sim = simulated({ hangMs: 0, downMs: 60_000 });
    const { target, stopped } = stopsCounted(sim.target);
    const interrupt = new AbortController();
    let healed = false;
    const drill = {
      ...sim.drill,
      fault: (ctx: null) => { setTimeout(() => { interrupt.abort(); }, 200); return sim.drill.fault(ctx); },
      heal: (ctx: null) => { healed = true; return sim.drill.heal(ctx); },
    };
    const started = Date.now();
    await assert.rejects(runDrill(drill, target, { ...options, signal: interrupt.signal }),
      (error: unknown) => error instanceof DrillInterrupted && /interrupted; the fault \(simulated fault\) was healed \(simulated heal\) and the loads were stopped/.test(error.message));
    assert.ok(healed, 'the fault was left in place');
    assert.ok(stopped(), 'the load outlived the drill');
    assert.ok(Date.now() - started < 5000, 'it waited out the recovery timeout instead of stopping');
  });

  it('interrupted before its fault: injects nothing, stops the loads', async () => {
    const sim = simulated({ hangMs: 0, downMs: 300 });
    const { target, stopped } = stopsCounted(sim.target);
    const interrupt = new AbortController();
    let faulted = false;
    const drill = {
      ...sim.drill,
      prepare: () => { interrupt.abort(); return Promise.resolve(null); },
      fault: (ctx: null) => { faulted = true; return sim.drill.fault(ctx); },
    };
    await assert.rejects(runDrill(drill, target, { ...options, signal: interrupt.signal }), /interrupted before the fault; nothing was changed/);
    assert.equal(faulted, false);
    assert.ok(stopped(), 'the load outlived the drill');
  });

  it('a fault that fails stops the load before the drill fails (no load outlives its drill)', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 0 });
    const counted = stopsCounted(target);
    await assert.rejects(runDrill({ ...drill, fault: () => Promise.reject(new Error('the playbook failed')) }, counted.target, options), /the playbook failed/);
    assert.equal(counted.stopped(), true);
  });

  it('under the users\' load: its orders are audited too, and one lost fails the drill', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300 });
    const fine = await runDrill(drill, target, { ...options, underLoad: simulated({ hangMs: 0, downMs: 0 }).target });
    assert.equal(fine.passed, true, fine.problems.join('; '));
    assert.ok((fine.orders?.acknowledged ?? 0) > 0 && fine.orders?.lost === 0, JSON.stringify(fine.orders));
    const table = formatTable([fine]).split('\n');
    assert.match(table[0] ?? '', /^drill\s+result\s+goal s\s+no writes s.*orders ack/);
    assert.match(table[1] ?? '', new RegExp(`^sim\\s+passed\\s+5\\s.*\\s${String(fine.orders.acknowledged)}\\s`));

    const second = simulated({ hangMs: 0, downMs: 300 });
    const lost = await runDrill(second.drill, second.target, { ...options, underLoad: simulated({ hangMs: 0, downMs: 0, lose: 2 }).target });
    assert.equal(lost.passed, false);
    assert.equal(lost.lost.length, 0, 'the drill\'s own writes are all there');
    assert.equal(lost.orders?.lost, 2);
    assert.match(lost.problems.join(';'), /orders: 2 acknowledged orders LOST/);
  });

  it('the fault waits until every user of the users\' load has arrived, then the steady time', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300 });
    const users = simulated({ hangMs: 0, downMs: 0 }).target;
    let startedAt = 0;
    let faultAt = 0;
    // the users' load says, once it has its first order, that its last user arrives 1.5 s after its start
    const arriving: DrillTarget = {
      ...users,
      async startLoad(runId) {
        const load = await users.startLoad(runId);
        startedAt = Date.now();
        return { ...load, events: () => load.events(), stop: () => load.stop(), arrivedBy: () => (load.events().length > 0 ? startedAt + 1500 : undefined) };
      },
    };
    const report = await runDrill({ ...drill, fault: async (ctx) => { faultAt = Date.now(); return drill.fault(ctx); } }, target, { ...options, underLoad: arriving });
    assert.equal(report.passed, true, report.problems.join('; '));
    assert.ok(faultAt - startedAt >= 1500 + options.steadySeconds * 1000, `the fault came ${String(faultAt - startedAt)} ms after the users' load started`);
  });

  it('a fault that fails stops the users\' load too', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 0 });
    const users = stopsCounted(simulated({ hangMs: 0, downMs: 0 }).target);
    await assert.rejects(runDrill({ ...drill, fault: () => Promise.reject(new Error('the playbook failed')) }, target, { ...options, underLoad: users.target }), /the playbook failed/);
    assert.equal(users.stopped(), true);
  });

  it('resumedAt: the first acknowledgement after the last pause of more than a second', () => {
    const ev = (end: number): WriteEvent => ({ id: String(end), start: end - 5, end, outcome: 'ok' });
    // writes hung through the fault (no failure) and resumed at 7 200 ms
    assert.equal(resumedAt([ev(100), ev(200), ev(7200), ev(7250), ev(7300)], 0), 7200);
    assert.equal(resumedAt([ev(100), ev(300), ev(600)], 0), 100, 'no pause: the first acknowledgement');
    assert.equal(resumedAt([ev(1500), ev(1600)], 0), 1500, 'a pause right from the start');
    assert.equal(resumedAt([], 0), null);
  });

  it('judge: acknowledged writes missing that were acknowledged inside the declared window are discarded, the others lost', () => {
    const ev = (id: string, start: number, end: number, outcome: WriteEvent['outcome'] = 'ok'): WriteEvent => ({ id, start, end, outcome });
    const events = [ev('before', 100, 150), ev('across-start', 990, 1010), ev('inside', 1100, 1150), ev('inside-failed', 1200, 1250, 'failed'),
      ev('across-end', 1990, 2010), ev('after', 2100, 2150)];
    const window = { from: 1000, to: 2000, why: 'restored to 1000', absent: false };
    // nothing found: what was acknowledged inside the window is discarded (a failed write never counts), the rest
    // lost: acknowledged after the window's end is acknowledged by what came after the recovery
    assert.deepEqual(judge(events, new Set(), window), { lost: ['before', 'across-end', 'after'], discarded: ['across-start', 'inside'], survived: [] });
    assert.deepEqual(judge(events, new Set(), undefined).lost, ['before', 'across-start', 'inside', 'across-end', 'after'], 'no window: every missing one is lost');
    // a window that must be empty: a write made wholly inside it and found there is named, a write across its edge is not
    const present = new Set(['before', 'across-start', 'inside', 'inside-failed', 'across-end', 'after']);
    assert.deepEqual(judge(events, present, { ...window, absent: true }), { lost: [], discarded: [], survived: ['inside', 'inside-failed'] });
    assert.deepEqual(judge(events, present, window).survived, [], 'a window that may keep writes names none');
  });

  it('span: the seconds between the first and the last acknowledgment of the writes named (the RPO of those discarded)', () => {
    const ev = (id: string, end: number): WriteEvent => ({ id, start: end - 20, end, outcome: 'ok' });
    const events = [ev('a', 1000), ev('b', 4200), ev('c', 13_400), ev('d', 20_000)];
    assert.equal(span(events, ['b', 'a', 'c']), 12.4);
    assert.equal(span(events, ['d']), 0, 'one write spans nothing');
    assert.equal(span(events, []), 0);
    assert.equal(span(events, ['unknown']), 0, 'an id of no event');
  });

  it('a drill with a declared window: writes missing from it are reported as discarded, not LOST; one kept in an empty window fails', async () => {
    const { target, drill } = simulated({ hangMs: 0, downMs: 300, lose: 3 });
    // the window covers every write: the three the audit does not find are discarded
    const all = { from: 0, to: Date.now() + 3_600_000, why: 'the simulated restore', absent: false };
    const report = await runDrill({ ...drill, discards: () => all }, target, options);
    assert.equal(report.lost.length, 0);
    assert.equal(report.discarded, 3);
    assert.equal(report.passed, true, report.problems.join('; '));
    assert.match(formatReport(report), /discarded by design: 3 acknowledged writes \(their acknowledgments span \d+(\.\d)? s\) .*\(the simulated restore\)/);
    const strict = simulated({ hangMs: 0, downMs: 300 });
    const kept = await runDrill({ ...strict.drill, discards: () => ({ ...all, absent: true }) }, strict.target, options);
    assert.equal(kept.passed, false);
    assert.match(kept.problems.join(';'), /writes made wholly inside the discarded window are there all the same/);
  });

  it('longestGap: the longest time between acknowledgements, including up to the end', () => {
    const ev = (end: number, outcome: WriteEvent['outcome'] = 'ok'): WriteEvent => ({ id: String(end), start: end - 1, end, outcome });
    assert.equal(longestGap([ev(100), ev(200), ev(900), ev(950)], 0, 1000), 700);
    assert.equal(longestGap([ev(100), ev(500, 'failed')], 0, 1000), 900);
    assert.equal(longestGap([], 0, 1000), 1000);
  });

  describe('alerts a drill expects', () => {
    /** An inbox whose mails arrive at given ms after the call that creates it; mails before the mark are old ones. */
    function inbox(schedule: { afterMs: number; status: AlertMailSeen['status']; alertname: string }[]): AlertInbox {
      const t0 = Date.now();
      const all = [{ afterMs: -60_000, status: 'firing' as const, alertname: 'Old' }, ...schedule];
      return {
        mark: () => Promise.resolve(1),
        mails: (after) => Promise.resolve(all.slice(after).filter((m) => Date.now() >= t0 + m.afterMs).map((m) => ({ at: new Date(t0 + m.afterMs), status: m.status, alertname: m.alertname }))),
      };
    }

    it('times each alert from the fault to its firing mail and from the heal to its resolved mail; reports the others', async () => {
      const t0 = Date.now();
      const box = inbox([{ afterMs: 300, status: 'firing', alertname: 'HostDown' }, { afterMs: 400, status: 'firing', alertname: 'ExporterDown' },
        { afterMs: 1200, status: 'resolved', alertname: 'HostDown' }]);
      const seen = await awaitAlerts(box, 1, [{ name: 'HostDown', fires: 5, resolves: 5 }], t0, t0 + 1000);
      assert.equal(seen.outcomes.length, 1);
      const [o] = seen.outcomes;
      assert.ok(o && o.firedAfter !== null && o.firedAfter >= 0.2 && o.firedAfter <= 0.5, `fired after ${String(o?.firedAfter)}`);
      assert.ok(o.resolvedAfter !== null && o.resolvedAfter >= 0.1 && o.resolvedAfter <= 0.4, `resolved after ${String(o.resolvedAfter)}`);
      assert.deepEqual(seen.others, ['ExporterDown'], 'the old mail before the mark is not counted');
      assert.deepEqual(alertProblems(seen.outcomes), []);
    });

    it('an alert resolved before the heal (a recovery inside the fault) counts, its time negative; a resolution before the firing does not', async () => {
      const t0 = Date.now();
      const box = inbox([{ afterMs: 50, status: 'resolved', alertname: 'PostgresNoLeader' }, { afterMs: 100, status: 'firing', alertname: 'PostgresNoLeader' },
        { afterMs: 300, status: 'resolved', alertname: 'PostgresNoLeader' }]);
      const seen = await awaitAlerts(box, 1, [{ name: 'PostgresNoLeader', fires: 5, resolves: 5 }], t0, t0 + 600);
      const [o] = seen.outcomes;
      assert.ok(o && o.resolvedAfter !== null && o.resolvedAfter >= -0.4 && o.resolvedAfter <= -0.2, `resolved after ${String(o?.resolvedAfter)}`);
      assert.deepEqual(alertProblems(seen.outcomes), []);
      const early = await awaitAlerts(inbox([{ afterMs: 50, status: 'resolved', alertname: 'HostDown' }, { afterMs: 100, status: 'firing', alertname: 'HostDown' }]),
        1, [{ name: 'HostDown', fires: 1, resolves: 0.5 }], t0, t0 + 200);
      assert.equal(early.outcomes[0]?.resolvedAfter, null, 'the resolution of an earlier alert is not this one\'s');
    });

    it('an alert that never comes, comes late or never resolves is a problem naming its bound', async () => {
      const t0 = Date.now();
      const box = inbox([{ afterMs: 1500, status: 'firing', alertname: 'PostgresLeaderChanged' }]);
      const seen = await awaitAlerts(box, 1, [
        { name: 'PostgresNoLeader', fires: 1, resolves: 1 },
        { name: 'PostgresLeaderChanged', fires: 1, resolves: 1 },
      ], t0, t0 + 500);
      const problems = alertProblems(seen.outcomes).join('; ');
      assert.match(problems, /alert PostgresNoLeader never reached the on-call \(bound: 1 s after the fault\)/);
      assert.match(problems, /alert PostgresLeaderChanged reached the on-call 1\.5 s after the fault, over its bound of 1 s/);
      assert.match(problems, /alert PostgresLeaderChanged was not resolved at the on-call within 1 s of the heal/);
    });

    it('asks the inbox where an alert stopped when its mail did not come, and only then', async () => {
      const t0 = Date.now();
      const asked: string[][] = [];
      const box: AlertInbox = {
        ...inbox([{ afterMs: 100, status: 'firing', alertname: 'HostDown' }, { afterMs: 150, status: 'firing', alertname: 'RedisDown' },
          { afterMs: 700, status: 'resolved', alertname: 'RedisDown' }]),
        explain: (names) => { asked.push([...names]); return Promise.resolve('Prometheus: HostDown firing for db2'); },
      };
      const missing = await awaitAlerts(box, 1, [{ name: 'HostDown', fires: 1, resolves: 1 }, { name: 'RedisDown', fires: 1, resolves: 1 }], t0, t0 + 500);
      assert.deepEqual(asked, [['HostDown']], 'asked about the unresolved alert alone');
      assert.equal(missing.explained, 'Prometheus: HostDown firing for db2');
      const whole = await awaitAlerts(box, 1, [{ name: 'RedisDown', fires: 1, resolves: 1 }], t0, t0 + 500);
      assert.equal(whole.explained, undefined);
      assert.equal(asked.length, 1, 'not asked when every mail came');
      const failing: AlertInbox = { ...box, explain: () => Promise.reject(new Error('connection refused')) };
      const unasked = await awaitAlerts(failing, 1, [{ name: 'HostDown', fires: 1, resolves: 1 }], t0, t0 + 500);
      assert.equal(unasked.explained, 'the monitoring could not be asked: connection refused');
    });

    it('before the heal it waits for the firing mails only', async () => {
      const t0 = Date.now();
      const box = inbox([{ afterMs: 600, status: 'firing', alertname: 'HostDown' }]);
      const seen = await awaitAlerts(box, 1, [{ name: 'HostDown', fires: 5, resolves: 5 }], t0, null);
      const took = Date.now() - t0;
      assert.ok(took >= 600 && took < 3500, `returned ${String(took)} ms after the fault, once the firing mail was in`);
      assert.equal(seen.outcomes[0]?.resolvedAfter, null);
    });

    it('runDrill holds the fault until the alert fired, then times its resolution after the heal', async () => {
      const { target, drill } = simulated({ hangMs: 0, downMs: 300 });
      let healedAt = 0;
      const expecting = { ...drill, alerts: [{ name: 'SimDown', fires: 6, resolves: 6 }], heal: async () => { healedAt = Date.now(); return drill.heal(null); } };
      const t0 = Date.now();
      // the simulated writes are back within a second of the fault; the alert comes later, and resolves after the heal
      const box: AlertInbox = {
        mark: () => Promise.resolve(0),
        mails: () => {
          const firing = Date.now() >= t0 + 2500 ? [{ at: new Date(t0 + 2500), status: 'firing' as const, alertname: 'SimDown' }] : [];
          const resolved = healedAt > 0 && Date.now() >= healedAt + 500 ? [{ at: new Date(healedAt + 500), status: 'resolved' as const, alertname: 'SimDown' }] : [];
          return Promise.resolve([...firing, ...resolved]);
        },
      };
      const report = await runDrill(expecting, target, { ...options, alertInbox: box });
      assert.equal(report.passed, true, report.problems.join('; '));
      assert.ok(healedAt >= t0 + 2500, 'the heal came after the alert fired');
      assert.equal(report.alerts?.[0]?.resolvedAfter, 0.5);
      const [head, row] = formatTable([report]).split('\n');
      assert.match(head ?? '', /alert fired\/resolved s$/);
      assert.match(row ?? '', new RegExp(`SimDown ${String(report.alerts[0].firedAfter)}/0\\.5$`), 'the table gives each alert\'s delays');
    });

    it('runDrill checks the drill\'s alerts when it has an inbox, and fails the drill when one is missing', async () => {
      const { target, drill } = simulated({ hangMs: 0, downMs: 300 });
      const expecting = { ...drill, alerts: [{ name: 'SimDown', fires: 2, resolves: 2 }] };
      const quiet = await runDrill(expecting, target, { ...options, alertInbox: inbox([]) });
      assert.equal(quiet.passed, false);
      assert.match(quiet.problems.join('; '), /alert SimDown never reached the on-call/);
      assert.match(formatReport(quiet), /alerts at the on-call: SimDown fired never after the fault \(bound 2 s\)/);
      assert.match(formatTable([quiet]).split('\n')[1] ?? '', /SimDown never\/never$/);
      const sim = simulated({ hangMs: 0, downMs: 300 });
      const without = await runDrill({ ...sim.drill, alerts: expecting.alerts }, sim.target, options);
      assert.equal(without.passed, true, 'without an inbox the alerts are not checked');
      assert.equal(without.alerts, undefined);
    });

    it('a planned operation (quiet) fails when any alert reached the on-call during it, and passes when none did', async () => {
      const planned = (): ReturnType<typeof simulated> => simulated({ hangMs: 0, downMs: 300 });
      const silent = planned();
      const passed = await runDrill({ ...silent.drill, quiet: 'a planned restart' }, silent.target, { ...options, alertInbox: inbox([]) });
      assert.equal(passed.passed, true, passed.problems.join('; '));
      assert.deepEqual(passed.otherAlerts, []);
      const paging = planned();
      const paged = await runDrill({ ...paging.drill, quiet: 'a planned restart' }, paging.target,
        { ...options, alertInbox: inbox([{ afterMs: 200, status: 'firing', alertname: 'KafkaUnderReplicatedPartitions' }]) });
      assert.equal(paged.passed, false);
      assert.match(paged.problems.join('; '), /a planned operation that pages no one \(a planned restart\) paged: KafkaUnderReplicatedPartitions/);
      const loaded = planned();
      const busy = await runDrill({ ...loaded.drill, quiet: 'a planned restart' }, loaded.target, {
        ...options,
        alertInbox: { ...inbox([{ afterMs: 200, status: 'firing', alertname: 'OrderSLOSlowBurn' }]), underLoad: ['OrderSLOSlowBurn'] },
      });
      assert.equal(busy.passed, true, `an alert the system raises under load alone fails no planned operation: ${busy.problems.join('; ')}`);
      assert.deepEqual(busy.otherAlerts, ['OrderSLOSlowBurn'], 'and the report still names it');
    });
  });
});

