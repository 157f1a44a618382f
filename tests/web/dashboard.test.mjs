// Browser test of the live dashboard: Debian's headless Chromium driven by playwright-core against a
// running `iotpipe run --rate ... --http 127.0.0.1:<free port>`. Charts update, a sensor is picked,
// an injected (labelled) anomaly appears in the table, and a screenshot is saved in the build dir.
//
//   node --test tests/web/dashboard.test.mjs      (env: IOTPIPE_BIN, IOTPIPE_BUILD_DIR, IOTPIPE_SOURCE_DIR)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.IOTPIPE_SOURCE_DIR || path.resolve(here, '../..');
const buildDir = process.env.IOTPIPE_BUILD_DIR || path.join(root, 'build');
const bin = process.env.IOTPIPE_BIN || path.join(buildDir, 'iotpipe');
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const require = createRequire(path.join(root, '.deps/node/package.json'));

let pw = null;
try { pw = require('playwright-core'); } catch { /* reported below */ }
const missing = !pw ? 'playwright-core is not installed (scripts/deps)' :
  !fs.existsSync(chromium) ? `${chromium} is missing (apt-get install chromium)` :
  !fs.existsSync(bin) ? `${bin} is not built` : '';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitFor(what, fn, timeoutMs = 30000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

let proc, browser, tmp, base, logs = '';

before(async () => {
  if (missing) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iotpipe-web-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // 20 sensors, 40 events/s, 5 % point anomalies: anomalies every second or so; bounded by --events.
  proc = spawn(bin, ['run', '--sensors', '20', '--rate', '40', '--events', '6000', '--anomaly-rate', '0.05',
    '--data-dir', path.join(tmp, 'data'), '--http', `127.0.0.1:${port}`, '--no-checkpoint', '--quiet',
    '--web-dir', path.join(root, 'web')], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { logs += d; });
  proc.stderr.on('data', (d) => { logs += d; });
  await waitFor('the server', async () => (await fetch(base + '/api/health')).ok, 20000);
  // A fresh profile directory for this run (playwright passes it as --user-data-dir).
  browser = await pw.chromium.launchPersistentContext(path.join(tmp, 'chrome-profile'), {
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-dev-shm-usage'],
    viewport: { width: 1280, height: 1100 },
    timeout: 60000,
  });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => { const t = setTimeout(() => { proc.kill('SIGKILL'); r(); }, 10000); proc.once('exit', () => { clearTimeout(t); r(); }); });
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('dashboard shows live charts, a picked sensor and injected anomalies', { skip: missing || false, timeout: 120000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + '/', { waitUntil: 'load' });
  assert.equal(await page.title(), 'iotpipe — live');
  assert.equal(await page.evaluate(() => typeof window.uPlot), 'function', 'uPlot is served and loaded');

  // Charts update: the throughput chart receives per-second figures from the event stream.
  const u0 = await page.evaluate(() => window.__iotpipe.updates);
  await page.waitForFunction((n) => window.__iotpipe.updates >= n + 2 && window.__iotpipe.tp[0].length >= 2, u0, { timeout: 30000 });
  assert.match(await page.textContent('#status'), /live/);
  const rate = await page.evaluate(() => Math.max(...window.__iotpipe.tp[1]));
  assert.ok(rate > 0, 'events/s plotted');
  assert.ok(await page.locator('#throughput-chart canvas').count() >= 1);

  // Pick a sensor: its recent readings, scores and threshold are drawn.
  await page.waitForFunction(() => document.querySelectorAll('#sensor-select option').length >= 5, null, { timeout: 30000 });
  const pick = await page.evaluate(() => document.querySelectorAll('#sensor-select option')[3].value);
  await page.selectOption('#sensor-select', pick);
  await page.waitForFunction((id) => window.__iotpipe.sensor === id && window.__iotpipe.sensorPoints > 0, pick, { timeout: 15000 });
  assert.match(await page.textContent('#sensor-info'), /recent readings/);

  // An injected anomaly (labelled by the simulator, flagged by the detector) shows up in the table,
  // with its type and the model version.
  await page.waitForFunction(() => [...document.querySelectorAll('#anomaly-table tbody tr')]
    .some((tr) => tr.cells[4] && tr.cells[4].textContent !== '—'), null, { timeout: 60000 });
  const row = await page.evaluate(() => {
    const tr = [...document.querySelectorAll('#anomaly-table tbody tr')].find((r) => r.cells[4].textContent !== '—');
    return [...tr.cells].map((c) => c.textContent);
  });
  assert.match(row[1], /^sensor_\d+$/);
  assert.notEqual(row[4], '—');
  assert.match(row[5], /baseline/);
  assert.match(await page.textContent('#model-version'), /baseline/);

  const shot = path.join(buildDir, 'dashboard.png');
  fs.mkdirSync(buildDir, { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 10000, 'screenshot written');
  assert.deepEqual(errors, [], 'no page errors');
  await page.close();
});

// The drift panel with a model detector: a small LSTM-AE trained on a few simulated hours scores a
// live run; the panel shows the monitor's PSI/KS, alert rate, rolling F1 and the model versions.
test('drift panel shows the live monitor of a model detector', { skip: missing || false, timeout: 180000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotpipe-drift-'));
  let run = null;
  try {
    const sh = (args) => {
      const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 120000 });
      assert.equal(r.status, 0, `iotpipe ${args[0]} failed: ${r.stderr}`);
    };
    const history = path.join(dir, 'history'), models = path.join(dir, 'models');
    sh(['run', '--sensors', '5', '--rate', 'max', '--duration', '3h', '--anomaly-rate', '0.02', '--data-dir', history,
      '--http', 'off', '--quiet', '--no-checkpoint']);
    sh(['train', '--data-dir', history, '--model-dir', models, '--since', '3h', '--epochs', '1', '--hidden', '16',
      '--window', '8', '--max-windows', '400', '--tod-bins', '0', '--promote', 'production']);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let out = '';
    run = spawn(bin, ['run', '--sensors', '5', '--rate', '200', '--events', '40000', '--anomaly-rate', '0.05',
      '--detector', 'auto', '--model-dir', models, '--data-dir', path.join(dir, 'data'), '--http', `127.0.0.1:${port}`,
      '--no-checkpoint', '--quiet', '--web-dir', path.join(root, 'web')], { stdio: ['ignore', 'pipe', 'pipe'] });
    run.stdout.on('data', (d) => { out += d; });
    run.stderr.on('data', (d) => { out += d; });
    await waitFor('the server', async () => (await fetch(url + '/api/health')).ok, 20000);
    // The API first: the monitor has sampled windows of the production model.
    const d = await waitFor('drift windows', async () => {
      const j = await (await fetch(url + '/api/drift')).json();
      return j.available && j.windows > 0 && j.rows > 0 ? j : null;
    }, 30000);
    assert.equal(d.production, 'lstm-ae-v1', out);
    assert.equal(d.shadow, null);
    for (const k of ['psi', 'ks', 'input_psi', 'input_ks', 'alert_rate', 'f1']) assert.equal(typeof d[k], 'number', k);
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url + '/', { waitUntil: 'load' });
    await page.waitForFunction(() => window.__iotpipe.driftUpdates >= 2, null, { timeout: 30000 });
    await page.waitForFunction(() => /^\d+\.\d{3}$/.test(document.getElementById('drift-psi').textContent) &&
      /^[\d.]+ \(P /.test(document.getElementById('drift-f1').textContent), null, { timeout: 60000 });
    const panel = await page.evaluate(() => Object.fromEntries(['production', 'shadow', 'psi', 'ks', 'input', 'alert-rate', 'f1', 'status']
      .map((k) => [k, document.getElementById('drift-' + k).textContent])));
    assert.match(panel.production, /^lstm-ae-v1$/, JSON.stringify(panel));
    assert.equal(panel.shadow, 'none');
    assert.match(panel.psi, /^\d+\.\d{3}$/);
    assert.match(panel.ks, /^\d\.\d{3}$/);
    assert.match(panel.input, /^\d+\.\d{3} \/ \d\.\d{3}$/);
    assert.match(panel['alert-rate'], /^\d\.\d{4}$/);
    assert.match(panel.status, /no drift|DRIFT for \d+ s|warming up \(\d+ \/ 500 windows\)/);
    await page.screenshot({ path: path.join(buildDir, 'dashboard-drift.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no page errors');
    await page.close();
  } finally {
    if (run && run.exitCode === null) {
      run.kill('SIGTERM');
      await new Promise((r) => { const t = setTimeout(() => { run.kill('SIGKILL'); r(); }, 10000); run.once('exit', () => { clearTimeout(t); r(); }); });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the dependencies for the browser test are present', () => {
  // In CI the packages are installed by scripts/deps; a missing one is a failure, not a silent skip.
  if (process.env.CI) assert.equal(missing, '', missing);
});
