// Headless Chromium for the kit's pictures: the PNG check, and what a real browser makes of a good and a broken SVG.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pngSize, renderedDom, renderSvg } from './chromium.ts';

/** The first 24 bytes of a PNG of the given size: the signature and the start of its IHDR chunk. */
function pngHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(24);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  return b;
}

describe('headless Chromium', () => {
  it('reads a PNG\'s size from its header and refuses what is not a PNG', () => {
    assert.deepEqual(pngSize(pngHeader(1280, 1100)), { width: 1280, height: 1100 });
    assert.throws(() => pngSize(Buffer.from('<html>an error page</html>............')), /not a PNG/);
    assert.throws(() => pngSize(pngHeader(1, 1).subarray(0, 20)), /not a PNG/);
  });

  it('an SVG renders at its size, with its texts and what it drew', () => {
    const r = renderSvg('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="120"><rect x="10" y="10" width="100" height="50"/><text x="20" y="100">fault &amp; heal</text></svg>\n');
    assert.equal(r.parseError, false);
    assert.deepEqual([r.width, r.height], [300, 120]);
    assert.deepEqual(r.texts, ['fault & heal']);
    assert.ok(r.box && r.box.width >= 100 && r.box.height >= 50, JSON.stringify(r.box));
  });

  it('a page drawn by its script is read as the reader sees it, after a timer of its own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oms-chromium-test-'));
    try {
      const file = join(dir, 'report.html');
      writeFileSync(file, '<!doctype html><body><table id="t"></table><script>setTimeout(() => { document.getElementById("t").innerHTML = "<tr><td>order_ms</td></tr>"; }, 3000);</script></body>');
      assert.match(renderedDom(file), /<td>order_ms<\/td>/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a broken SVG does not render: no size, a parse error', () => {
    const r = renderSvg('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="120"><rect x="10"><text>unclosed</svg>');
    assert.deepEqual([r.width, r.height, r.parseError], [0, 0, true]);
  });
});
