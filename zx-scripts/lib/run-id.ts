// The time part of a run's name (reports/<kind>/<name>-<stamp>.*, runs of k6, drills): UTC, to the second.

/** yyyymmddhhmmss in UTC, of the given time (an ISO string or a Date; now by default). */
export const timeStamp = (at: string | Date = new Date()): string => (typeof at === 'string' ? at : at.toISOString()).replace(/[-:.TZ]/g, '').slice(0, 14);
