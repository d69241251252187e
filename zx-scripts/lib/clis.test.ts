// Every command line of the kit answers --help with its usage (exit 0) and refuses an option it does not know with
// the usage (exit 2), before it touches anything (lib/cli.ts). Each tool's own tests cover its commands and inputs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const zx = join(repo, 'zx-scripts');
const CLIS = [
  // lib/cli.ts is what they share, not a command
  ...readdirSync(zx).filter((d) => d !== 'lib' && existsSync(join(zx, d, 'cli.ts'))).map((d) => `zx-scripts/${d}/cli.ts`),
  'zx-scripts/dashboards/screenshot.ts',
  'certs/src/cli.ts',
].sort();

interface Outcome { code: number; stdout: string; stderr: string }
async function cli(file: string, ...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file, ...args], { cwd: repo, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('the command lines', () => {
  it('are all found (every zx-scripts/*/cli.ts, the screenshot tool, the PKI)', () => {
    assert.ok(CLIS.length >= 10, CLIS.join(', '));
    for (const expected of ['zx-scripts/lab/cli.ts', 'zx-scripts/drills/cli.ts', 'zx-scripts/bench/cli.ts', 'zx-scripts/load/cli.ts', 'certs/src/cli.ts']) assert.ok(CLIS.includes(expected), expected);
  });

  it('--help prints the usage and exits 0; an unknown option prints it and exits 2', async () => {
    const outcomes = await Promise.all(CLIS.map(async (file) => ({ file, help: await cli(file, '--help'), bad: await cli(file, '--no-such-option') })));
    for (const { file, help, bad } of outcomes) {
      assert.equal(help.code, 0, `${file} --help: exit ${String(help.code)}: ${help.stderr}`);
      assert.match(help.stdout, /^usage: /m, `${file} --help prints its usage`);
      assert.equal(bad.code, 2, `${file} --no-such-option: exit ${String(bad.code)}: ${bad.stderr}`);
      assert.match(bad.stderr, /no-such-option[\s\S]*usage: /, `${file} --no-such-option names the option and prints the usage`);
    }
  });
});
