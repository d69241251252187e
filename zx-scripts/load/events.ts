// What every load of the kit reports, whoever runs it (a drill, npm run load, a benchmark): one event per write, with
// the client-made id the audit looks for afterwards. The drills read these; nothing here knows of drills.

export interface WriteEvent {
  id: string;
  start: number;
  end: number;
  /** cut: interrupted by the load's own end (stop()), not by the system: it says nothing of the drill */
  outcome: 'ok' | 'failed' | 'unknown' | 'cut';
  error?: string;
}

/** A running load: its events so far, and stop() which ends it and returns them all. */
export interface Load {
  events(): readonly WriteEvent[];
  stop(): Promise<readonly WriteEvent[]>;
  /**
   * a load whose users arrive over a while (k6's shoppers, over their first pace): epoch ms by which every one has,
   * once known; the fault waits for it, so it strikes a steady system and not the users' logins
   */
  arrivedBy?(): number | undefined;
}

/** A load's JSON line as a write event (a line without a kind is one), or undefined for any other line. */
export function writeEventOf(line: unknown): WriteEvent | undefined {
  const l = line as WriteEvent & { kind?: string };
  if (l.kind !== undefined && l.kind !== 'write') return undefined;
  return { id: l.id, start: l.start, end: l.end, outcome: l.outcome, ...(l.error ? { error: l.error } : {}) };
}
