// Page weight and refresh cost of the dashboard against a running `iotpipe run --http ...` (docs/OPERATIONS.md):
//  - bytes transferred by the page (Chromium's encoded lengths, headers included): the first load, then
//    per fleet refresh (the page refreshes every 5 s) over `seconds`;
//  - the time per request of the fleet endpoints, from a client on loopback (median and max of `n`).
//
//   node tests/web/measure.mjs http://127.0.0.1:8080 [seconds=30] [n=20]
import { createRequire } from 'node:module';
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.IOTPIPE_SOURCE_DIR || path.resolve(here, '../..');
const pw = createRequire(path.join(root, '.deps/node/package.json'))('playwright-core');
const [base, seconds = '30', n = '20'] = process.argv.slice(2);
if (!base) { console.error('usage: node tests/web/measure.mjs URL [seconds] [n]'); process.exit(2); }

async function timeRequests(url, count) {
  const ms = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const r = await fetch(url);
    bytes = (await r.arrayBuffer()).byteLength;
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { median_ms: +ms[Math.floor(ms.length / 2)].toFixed(1), max_ms: +ms[ms.length - 1].toFixed(1), body_bytes: bytes };
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'iotpipe-measure-'));
const browser = await pw.chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], viewport: { width: 1280, height: 900 },
});
try {
  const page = await browser.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0, requests = 0;
  const streams = new Set();  // the event stream never finishes: its bytes are counted as they arrive
  cdp.on('Network.requestWillBeSent', (e) => { if (e.request.url.includes('/api/stream')) streams.add(e.requestId); });
  cdp.on('Network.dataReceived', (e) => { if (streams.has(e.requestId)) bytes += e.encodedDataLength; });
  cdp.on('Network.loadingFinished', (e) => { if (!streams.has(e.requestId)) { bytes += e.encodedDataLength; requests++; } });
  await page.goto(base + '/', { waitUntil: 'load' });
  await page.waitForFunction(() => window.__iotpipe && window.__iotpipe.ready, null, { timeout: 60000 });
  const first = { bytes, requests };
  bytes = 0; requests = 0;
  await page.waitForTimeout(Number(seconds) * 1000);
  const rows = await page.evaluate(() => window.__iotpipe.heat.rows.length);
  const out = {
    sensors: (await (await fetch(base + '/api/fleet/summary')).json()).sensors,
    first_load: first,
    refresh: { seconds: Number(seconds), bytes, requests, bytes_per_s: Math.round(bytes / Number(seconds)) },
    heatmap_rows: rows,
    requests_ms: {},
  };
  for (const p of ['/api/fleet/summary', '/api/fleet/heatmap?mode=top&top=40&buckets=60', '/api/fleet/heatmap?mode=fleet&top=100&buckets=60',
    '/api/fleet/top?range=600&limit=15', '/api/fleet/top?limit=15', '/api/fleet/top?source=store&limit=15'])
    out.requests_ms[p] = await timeRequests(base + p, Number(n));
  console.log(JSON.stringify(out, null, 2));
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
