// The documentation's links hold: every relative link in the repository's Markdown files names a file or folder that
// exists, and every #anchor names a heading of its page (GitHub's slugs). A page moved or a heading renamed breaks a
// link somewhere; this finds it before a reader does.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** GitHub's anchor for a heading: lower case, punctuation but hyphens and underscores dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
}

/** The headings' anchors of a Markdown text (outside code fences); a repeated heading gets -1, -2 as on GitHub. */
export function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    const heading = fence ? undefined : /^#{1,6} (.*)$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    found.add(n === 0 ? base : `${base}-${String(n)}`);
  }
  return found;
}

/** The links of a Markdown text outside code fences and inline code: [text](target). */
export function links(markdown: string): string[] {
  const out: string[] = [];
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    if (fence) continue;
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) if (m[1]) out.push(m[1]);
  }
  return out;
}

describe('documentation links', () => {
  it('slug and anchors follow GitHub', () => {
    assert.equal(slug('Drills: running one, reading its report'), 'drills-running-one-reading-its-report');
    assert.equal(slug('`npm run load`: k6\'s shoppers at the VIP'), 'npm-run-load-k6s-shoppers-at-the-vip');
    assert.deepEqual([...anchors('# A\n```\n# not a heading\n```\n## A\n')], ['a', 'a-1']);
    assert.deepEqual(links('[x](a.md) `[y](b.md)`\n```\n[z](c.md)\n```\n[w](#top)'), ['a.md', '#top']);
  });

  it('every relative link of every Markdown file names a file that exists, and a heading of it', () => {
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: root, encoding: 'utf8' })
      .split('\n').filter((f) => f && !f.includes('node_modules/') && existsSync(join(root, f)));
    assert.ok(files.includes('README.md'), 'the README is among the files read');
    const broken: string[] = [];
    for (const file of files) {
      const path = join(root, file);
      for (const target of links(readFileSync(path, 'utf8'))) {
        if (/^[a-z]+:/i.test(target)) continue;
        const [page = '', anchor] = target.split('#');
        const to = page === '' ? path : join(dirname(path), decodeURIComponent(page));
        if (!existsSync(to)) {
          broken.push(`${file}: ${target} (no ${relative(root, to)})`);
          continue;
        }
        if (anchor && !statSync(to).isDirectory() && to.endsWith('.md') && !anchors(readFileSync(to, 'utf8')).has(anchor)) {
          broken.push(`${file}: ${target} (no heading #${anchor} in ${relative(root, to)})`);
        }
      }
    }
    assert.deepEqual(broken, [], 'broken links');
  });
});
