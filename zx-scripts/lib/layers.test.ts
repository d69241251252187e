// zx-scripts/ imports in one direction: each folder is a layer and imports from its own layer and those below it,
// never from above. Command lines (cli.ts), tests and the lab's end-to-end suite sit on top and may import anything.
//   lib <- lab <- load <- drills <- bench, controller, dashboards <- testkit, measurements <- release
// (the drills run loads; a load knows nothing of drills; the services' test kit reuses the drills' agents and the
// dashboards' queries; the release bundles what the test kit checks)
// Between workspaces (package.json's workspaces), imports go through the other package's exports
// (@oms/order-service/test/harness), never by a relative path out of one's own folder.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const LAYERS: Readonly<Record<string, number>> = {
  lib: 0, lab: 1, load: 2, drills: 3, bench: 4, controller: 4, dashboards: 4, testkit: 5, measurements: 5, release: 6,
};

/** The relative specifiers of a module's static imports and re-exports ('./x.ts', '../lab/y.ts'). */
const relativeImports = (source: string): string[] =>
  [...source.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1] ?? '');

/** Files that may import from any layer: command lines, tests, the end-to-end suite. */
const onTop = (file: string): boolean => /(^|\/)cli\.ts$/.test(file) || file.endsWith('.test.ts') || file.includes('/e2e/');

/** The imports of `source` (a file at `file`, relative to zx-scripts/) that reach a higher layer, or a folder with none. */
export function layerViolations(file: string, source: string): string[] {
  if (onTop(file)) return [];
  const own = file.split('/')[0] ?? '';
  const ownLayer = LAYERS[own];
  if (ownLayer === undefined) return [`${file}: its folder ${own}/ has no layer in lib/layers.test.ts`];
  const found: string[] = [];
  for (const spec of relativeImports(source)) {
    const target = relative('.', join(dirname(file), spec));
    if (target.startsWith('..')) continue; // outside zx-scripts/: another workspace
    const folder = target.split('/')[0] ?? '';
    const layer = LAYERS[folder];
    if (layer === undefined) found.push(`${file} imports ${target}: ${folder}/ has no layer`);
    else if (layer > ownLayer) found.push(`${file} (${own}, layer ${String(ownLayer)}) imports ${target} (${folder}, layer ${String(layer)})`);
    else if (layer === ownLayer && folder !== own) found.push(`${file} (${own}) imports ${target} (${folder}) from the same layer: make one of them lower`);
  }
  return found;
}

function sources(dir: string, root = ROOT): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(path, root);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** The relative imports of `source` (a file at `file`, relative to its workspace) that leave the workspace. */
export function outOfWorkspace(file: string, source: string): string[] {
  return relativeImports(source).filter((spec) => relative('.', join(dirname(file), spec)).startsWith('..'))
    .map((spec) => `${file} imports ${spec}: out of its workspace (import the other package by name)`);
}

describe('zx-scripts layers', () => {
  it('no module imports from a layer above its own', () => {
    const folders = readdirSync(ROOT, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'node_modules').map((e) => e.name);
    assert.deepEqual(folders.filter((f) => LAYERS[f] === undefined), [], 'every folder of zx-scripts/ has a layer');
    const files = folders.flatMap((f) => sources(f));
    assert.ok(files.length > 50, `found ${String(files.length)} modules`);
    assert.deepEqual(files.flatMap((f) => layerViolations(f, readFileSync(join(ROOT, f), 'utf8'))), []);
  });

  it('workspaces import each other by package name, not by a path out of their folder', () => {
    const repo = resolve(ROOT, '..');
    const { workspaces } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { workspaces: string[] };
    assert.ok(workspaces.includes('zx-scripts') && workspaces.includes('services/order-service'), JSON.stringify(workspaces));
    const found = [...workspaces, 'vagrant'].flatMap((w) => sources('.', join(repo, w))
      .flatMap((f) => outOfWorkspace(f, readFileSync(join(repo, w, f), 'utf8')).map((v) => `${w}/${v}`)));
    assert.deepEqual(found, []);
    assert.deepEqual(outOfWorkspace('test/harness.ts', "import { a } from '../../../zx-scripts/testkit/stack.ts';\nimport { b } from '../src/service.ts';"),
      ["test/harness.ts imports ../../../zx-scripts/testkit/stack.ts: out of its workspace (import the other package by name)"]);
  });

  it('the check catches an upward, a sideways and an unknown import, and lets the top import anything', () => {
    assert.deepEqual(layerViolations('load/k6.ts', "import type { Load } from '../drills/framework.ts';"), ['load/k6.ts (load, layer 2) imports drills/framework.ts (drills, layer 3)']);
    assert.deepEqual(layerViolations('bench/db.ts', "import { x } from '../dashboards/dashboards.ts';"), ['bench/db.ts (bench) imports dashboards/dashboards.ts (dashboards) from the same layer: make one of them lower']);
    assert.deepEqual(layerViolations('lib/x.ts', "export { y } from '../nowhere/y.ts';"), ['lib/x.ts imports nowhere/y.ts: nowhere/ has no layer']);
    assert.deepEqual(layerViolations('drills/agent.ts', "import { a } from '../load/events.ts';\nimport { b } from './framework.ts';\nimport { c } from '../../services/x.ts';"), []);
    assert.deepEqual(layerViolations('lab/cli.ts', "import { a } from '../drills/agent.ts';"), []);
    assert.deepEqual(layerViolations('lab/e2e/redis.ts', "import { a } from '../../drills/redis.ts';"), []);
  });
});
