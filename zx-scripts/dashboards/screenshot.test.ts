// The screenshot tool without a lab: its options and the command line's refusals (exit 2, nothing run).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../lib/cli.ts';
import { repoRoot } from '../lab/lab.ts';
import { screenshotOptions } from './screenshot.ts';

const PAGES = ['oms-overview', 'oms-data'];

describe('npm run screenshot', () => {
  it('defaults to the overview into docs/images, and takes the options it names', () => {
    assert.deepEqual(screenshotOptions([], PAGES), { page: 'oms-overview', out: join('docs', 'images', 'oms-overview.png'), underLoad: undefined, width: 1280, height: 1100 });
    assert.deepEqual(screenshotOptions(['--page', 'oms-data', '--out', '/tmp/x.png', '--under-load', '120', '--width', '800'], PAGES),
      { page: 'oms-data', out: '/tmp/x.png', underLoad: 120, width: 800, height: 1100 });
    assert.equal(screenshotOptions(['--help'], PAGES), 'help');
  });

  const refused: [string[], RegExp][] = [
    [['--page', 'nope'], /unknown page 'nope' \(pages: oms-overview, oms-data\)/],
    [['--out', 'picture.jpg'], /--out names a \.png file/],
    [['--under-load', '30'], /--under-load takes a whole number from 90 to 3600, got '30'/],
    [['--width', 'wide'], /--width takes a whole number/],
    [['extra'], /unexpected argument 'extra'/],
  ];
  for (const [args, message] of refused) {
    it(`${args.join(' ')}: a usage error naming the option`, () => {
      assert.throws(() => screenshotOptions(args, PAGES), (e: unknown) => e instanceof UsageError && message.test(e.message));
    });
  }

  it('the command: --help exits 0 with the usage; an unknown page exits 2 before anything runs', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'zx-scripts', 'dashboards', 'screenshot.ts'), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    const help = cli('--help');
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: npm run screenshot -- \[options\]/);
    const bad = cli('--page', 'nope');
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /unknown page 'nope' \(pages: oms-overview, /);
  });
});
