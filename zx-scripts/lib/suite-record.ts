// What a run of the lab's end-to-end suite keeps of itself (reports/suite/lab-<time>.json): each test with its time and
// outcome, so what the suite costs is read from a record and not from memory (docs/measurements.md is made from it).

export interface SuiteTest {
  name: string;
  seconds: number;
  passed: boolean;
}

export interface SuiteRecord {
  /** "lab", or "lab (every drill)" for npm run test:lab:all */
  suite: string;
  startedAt: string;
  /** from the suite's start to the record, which its last test writes */
  seconds: number;
  tests: SuiteTest[];
}
