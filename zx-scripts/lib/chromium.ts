// Headless Chromium (Debian's chromium, toolchain/apt-packages.txt) for the kit's pictures: a screenshot of a page,
// and the check that a picture the kit draws renders in a real browser engine and holds its data. Chromium runs in a
// network namespace of its own (unshare --net: only a loopback that is down), so it reads local files and sends
// nothing anywhere (no update check, no safe browsing), whatever its defaults; each run gets a profile of its own.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The chromium binary; throws naming the fix when it is missing. */
export function chromiumBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('headless Chromium is not installed: run npm run bootstrap (it installs Debian\'s chromium)');
  return found.stdout.trim();
}

/** Runs chromium headless on a file of `dir`, with a profile in `dir`; its exit status, stdout and last stderr lines. */
function chromium(dir: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('unshare', ['--net', chromiumBinary(), '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run',
    '--disable-background-networking', `--user-data-dir=${join(dir, 'profile')}`, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 2 ** 20 });
  return { status: r.status, stdout: r.stdout, stderr: (r.stderr || '').trim().split('\n').slice(-3).join(' | ') };
}

/** Runs `work` with a temporary folder of its own (the browser's files and profile), removed afterwards. */
function inTempDir<T>(work: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'oms-chromium-'));
  try {
    return work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A PNG's size from its header (signature, then the IHDR chunk); throws when the bytes are not a PNG. */
export function pngSize(bytes: Buffer): { width: number; height: number } {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(signature) || bytes.subarray(12, 16).toString('latin1') !== 'IHDR') {
    throw new Error('not a PNG (no PNG signature and IHDR chunk)');
  }
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** Renders an HTML page (self-contained) in a window of the given size into a PNG at `out`; returns the PNG's size. */
export function screenshotHtml(html: string, out: string, width: number, height: number): { width: number; height: number } {
  return inTempDir((dir) => {
    writeFileSync(join(dir, 'page.html'), html);
    const shot = join(dir, 'shot.png');
    const r = chromium(dir, [`--window-size=${String(width)},${String(height)}`, `--screenshot=${shot}`, `file://${join(dir, 'page.html')}`]);
    if (!existsSync(shot)) throw new Error(`chromium wrote no picture (exit ${String(r.status)}): ${r.stderr}`);
    const bytes = readFileSync(shot);
    const size = pngSize(bytes);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, bytes);
    return size;
  });
}

/** What the browser made of an SVG file: its drawn size (0 x 0 when it did not load), its texts and its content's box. */
export interface SvgRendering {
  width: number;
  height: number;
  /** the file did not parse as XML */
  parseError: boolean;
  texts: string[];
  /** the bounding box of everything drawn (getBBox of the root) */
  box: { width: number; height: number } | null;
}

const RESULT = 'oms-render-result';

/**
 * Loads the SVG as a browser loads a picture (an <img>, which refuses anything that is not a well-formed SVG) and as a
 * document (an <object>, to read its texts and measure what it drew), and reports what it found.
 */
export function renderSvg(svg: string): SvgRendering {
  return inTempDir((dir) => {
    writeFileSync(join(dir, 'picture.svg'), svg);
    writeFileSync(join(dir, 'page.html'), `<!doctype html><html><body>
<img id="img" src="picture.svg"><object id="doc" type="image/svg+xml" data="picture.svg"></object><pre id="${RESULT}">not loaded</pre>
<script>
window.addEventListener('load', () => {
  const img = document.getElementById('img');
  const doc = document.getElementById('doc').contentDocument;
  const root = doc ? doc.documentElement : null;
  const svg = root && root.nodeName === 'svg' ? root : null;
  const box = svg ? svg.getBBox() : null;
  document.getElementById('${RESULT}').textContent = JSON.stringify({
    width: img.naturalWidth, height: img.naturalHeight,
    parseError: !svg || doc.querySelector('parsererror') !== null,
    texts: svg ? [...svg.querySelectorAll('text')].map((t) => t.textContent) : [],
    box: box ? { width: box.width, height: box.height } : null,
  });
});
</script></body></html>`);
    const r = chromium(dir, ['--allow-file-access-from-files', '--dump-dom', `file://${join(dir, 'page.html')}`]);
    const found = new RegExp(`<pre id="${RESULT}">(.*?)</pre>`, 's').exec(r.stdout)?.[1];
    if (found === undefined || found === 'not loaded') throw new Error(`chromium did not report on the picture (exit ${String(r.status)}): ${r.stderr}`);
    // --dump-dom writes the page's text HTML-escaped
    return JSON.parse(found.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as SvgRendering;
  });
}

/**
 * A page's document once its scripts have run (up to 10 s of the page's own time), as HTML: for a report drawn by
 * its scripts (k6's), what a reader would see.
 */
export function renderedDom(file: string): string {
  return inTempDir((dir) => {
    const r = chromium(dir, ['--virtual-time-budget=10000', '--dump-dom', `file://${file}`]);
    if (r.status !== 0 || r.stdout.trim() === '') throw new Error(`chromium did not render ${file} (exit ${String(r.status)}): ${r.stderr}`);
    return r.stdout;
  });
}
