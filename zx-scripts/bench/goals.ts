// What each benchmark sets out to show, and whether a run showed it. A run that measured without errors but missed
// its goal exits with its own code (BENCH_GOAL_MISSED), so a script or CI can tell it from an error and from a pass.
import type { OrdersReport } from './orders.ts';
import type { StackReport } from './stack.ts';

/** npm run bench's exit code for "measured without errors, goal missed". */
export const BENCH_GOAL_MISSED = 3;

export interface GoalVerdict { goal: string; met: boolean; measured: string }

/** bench -- orders: the service reaches 0.7 of pgbench's ceiling of the same work with p95 < 50 ms, PostgreSQL on CPUs of its own. */
export const ORDERS_GOAL = { layout: 'zones', ratio: 0.7 } as const;
/** bench -- stack: orders through the whole lab reach 0.5 of the database's ceiling with p95 < 200 ms, none failed or dropped. */
export const STACK_GOAL_RATIO = 0.5;

export function ordersGoal(report: OrdersReport): GoalVerdict {
  const layout = report.layouts.find((l) => l.layout === ORDERS_GOAL.layout);
  const ratio = layout?.ratio ?? null;
  return {
    goal: `the service at >= ${String(ORDERS_GOAL.ratio)} of pgbench's ceiling with p95 < 50 ms (${ORDERS_GOAL.layout} layout)`,
    met: ratio !== null && ratio >= ORDERS_GOAL.ratio,
    measured: layout === undefined ? `no ${ORDERS_GOAL.layout} layout was run` : ratio === null ? 'no step with p95 < 50 ms without errors' : `${String(ratio)} of the ceiling`,
  };
}

export function stackGoal(report: StackReport): GoalVerdict {
  return {
    goal: `orders at the VIP at >= ${String(STACK_GOAL_RATIO)} of the database's ceiling with p95 < 200 ms, none failed or dropped`,
    met: report.ratio !== null && report.ratio >= STACK_GOAL_RATIO,
    measured: report.ratio === null ? 'no rate held' : `${String(report.ratio)} of the ceiling`,
  };
}

/** The exit code of a run: 1 when a step had errors, BENCH_GOAL_MISSED when it measured cleanly and missed its goal. */
export function benchExit(errors: boolean, verdict?: GoalVerdict): number {
  if (errors) return 1;
  return verdict !== undefined && !verdict.met ? BENCH_GOAL_MISSED : 0;
}
