// iotpipe dashboard, fleet first: headline figures, a sensor x time heat map and a ranking aggregated by
// the server (GET /api/fleet/*), the chart of one sensor, the model registry, drift and the live stream.
// No build step: plain script, uPlot loaded from /vendor (installed from npm by scripts/deps).
// One time zone everywhere: UTC (charts through uPlot.tzDate, tables as ISO 8601).
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  token: '',
  tp: [[], [], [], []],          // t, events/s, stored/s, lag
  sensor: '',
  sensorPoints: 0,
  sensorFlagged: 0,
  anomalies: 0,                  // rows added to the table
  updates: 0,                    // stats events received
  driftUpdates: 0,               // drift snapshots shown
  lastSeq: 0,
  summary: null,                 // last /api/fleet/summary
  heat: null,                    // last /api/fleet/heatmap
  rank: null,                    // last /api/fleet/top
  registry: null,
  bytes: 0,                      // API bytes received (page weight of the refreshes)
};
window.__iotpipe = state;         // read by the browser test

// ---- API access (Bearer token when the server asks for one) ----------------------------------
function loadToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) localStorage.setItem('iotpipe-token', decodeURIComponent(m[1]));
  state.token = localStorage.getItem('iotpipe-token') || '';
  $('token').value = state.token;
  $('token').addEventListener('change', () => {
    state.token = $('token').value.trim();
    localStorage.setItem('iotpipe-token', state.token);
    connectStream();
  });
}
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  if (res.status === 401) $('token-box').hidden = false;
  const text = await res.text();
  state.bytes += text.length;
  let body = {};
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}
const post = (path, body) => api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}) });

// ---- formatting (UTC) ------------------------------------------------------------------------
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
const isoTime = (t) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19);
const isoText = (s) => (s ? s.replace('T', ' ').slice(0, 19) : '–');
const utcDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');
const timeSeries = { label: 'time (UTC)', value: (u, v) => (v == null ? '–' : isoTime(v) + ' UTC') };
const timeAxis = { values: (u, splits) => splits.map((v) => isoTime(v).slice(11)), label: 'UTC', labelSize: 16 };
function row(cells, onClick) {
  const tr = document.createElement('tr');
  for (const v of cells) {
    const td = document.createElement('td');
    td.textContent = v;
    tr.appendChild(td);
  }
  if (onClick) { tr.className = 'link'; tr.addEventListener('click', onClick); }
  return tr;
}
function fillTable(id, rows) {
  const tb = $(id).tBodies[0];
  tb.replaceChildren(...rows);
}

// ---- charts ----------------------------------------------------------------------------------
function chartWidth(el) { return Math.max(300, el.clientWidth - 4); }

const tpChart = new uPlot({
  width: chartWidth($('throughput-chart')), height: 180, tzDate: utcDate,
  scales: { x: { time: true }, lag: { auto: true } },
  series: [
    timeSeries,
    { label: 'events/s', stroke: '#2f6fde', width: 2 },
    { label: 'stored/s', stroke: '#1f8a4c', width: 1, dash: [4, 3] },
    { label: 'lag (records)', stroke: '#d98e04', scale: 'lag', width: 1 },
  ],
  axes: [timeAxis, { label: 'records/s', size: 60 }, { side: 1, scale: 'lag', label: 'lag', grid: { show: false }, size: 60 }],
}, state.tp, $('throughput-chart'));

const flagged = {
  label: 'flagged', stroke: '#d7263d', fill: '#d7263d', width: 0,
  paths: () => null, points: { show: true, size: 8, stroke: '#d7263d', fill: '#d7263d' },
};
const sensorChart = new uPlot({
  width: chartWidth($('sensor-chart')), height: 260, tzDate: utcDate,
  scales: { x: { time: true }, score: { range: [0, 1] } },
  series: [
    timeSeries,
    { label: 'value', stroke: '#2f6fde', width: 1.5 },
    flagged,
    { label: 'anomaly score', stroke: '#8a5cd1', scale: 'score', width: 1 },
    { label: 'threshold', stroke: '#d7263d', scale: 'score', dash: [6, 4], width: 1 },
  ],
  axes: [timeAxis, { label: 'value', size: 60 }, { side: 1, scale: 'score', label: 'score', grid: { show: false }, size: 50 }],
}, [[], [], [], [], []], $('sensor-chart'));

state.charts = { sensor: sensorChart, throughput: tpChart };

window.addEventListener('resize', () => {
  tpChart.setSize({ width: chartWidth($('throughput-chart')), height: 180 });
  sensorChart.setSize({ width: chartWidth($('sensor-chart')), height: 260 });
  if (state.heat) drawHeat(state.heat);
});

function pushStats(s) {
  state.updates++;
  const tp = state.tp;
  tp[0].push(s.t); tp[1].push(s.events_per_s); tp[2].push(s.stored_per_s); tp[3].push(s.lag >= 0 ? s.lag : null);
  if (tp[0].length > 900) tp.forEach((a) => a.shift());
  tpChart.setData(tp);
  $('f-rate').textContent = fmt(s.events_per_s);
}

async function loadHistory() {
  const h = await api('/api/stats/history');
  state.tp = [h.t, h.events_per_s, h.stored_per_s, h.lag.map((v) => (v >= 0 ? v : null))];
  tpChart.setData(state.tp);
}

// ---- headline figures (GET /api/fleet/summary) -----------------------------------------------
async function loadSummary() {
  const s = await api('/api/fleet/summary');
  state.summary = s;
  $('f-alerting').textContent = String(s.sensors_alerting);
  $('f-alerting').parentElement.classList.toggle('bad', s.sensors_alerting > 0);
  $('f-open').textContent = String(s.open_alerts);
  $('f-arate').textContent = s.anomaly_rate !== undefined ? (100 * s.anomaly_rate).toFixed(3) + ' %' : '–';
  $('f-window').textContent = s.window_s ? '(last ' + Math.round(s.window_s / 60) + ' min)' : '';
  $('f-sensors').textContent = fmt(s.sensors);
  const h = s.health;
  $('f-lag').textContent = h.lag >= 0 ? fmt(h.lag) : 'n/a';
  $('f-dead').textContent = fmt(h.dead_letters_per_s) + ' (' + (100 * h.dead_letter_fraction).toFixed(2) + ' %)';
  $('f-drops').textContent = fmt(h.drops);
  if (h.pipeline === 'done') setStatus('pipeline finished', 'done');
  // Device and asset panels of the heat map, when the fleet has them.
  document.querySelector('#heat-mode option[value=device]').hidden = !s.has_devices;
  document.querySelector('#heat-mode option[value=asset]').hidden = !s.has_assets;
}

// ---- heat map (GET /api/fleet/heatmap): rows are DOM labels, cells one canvas -----------------
const CELL_H = 12;
function heatColor(pct) {
  const x = Math.min(1, pct / 100);      // white → yellow → red
  const g = Math.round(255 * (1 - Math.max(0, x - 0.5) * 2));
  const b = Math.round(255 * Math.max(0, 1 - x * 2));
  return `rgb(255,${g},${b})`;
}
function drawHeat(h) {
  const cv = $('heat-canvas');
  const width = Math.max(200, cv.parentElement.clientWidth - $('heat-labels').offsetWidth - 8);
  const cw = width / Math.max(1, h.cols);
  cv.width = Math.round(width);
  cv.height = Math.max(CELL_H, h.rows.length * CELL_H) + 16;
  const ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  for (let r = 0; r < h.rows.length; r++) {
    for (let c = 0; c < h.cols; c++) {
      const s = h.score[r][c];
      ctx.fillStyle = heatColor(s);
      ctx.fillRect(c * cw, r * CELL_H, Math.ceil(cw), CELL_H - 1);
      if (h.flagged[r][c] > 0) {
        ctx.strokeStyle = '#5a0010';
        ctx.lineWidth = 1.5;
        ctx.strokeRect(c * cw + 1, r * CELL_H + 1, Math.max(1, cw - 2), CELL_H - 3);
      }
    }
  }
  ctx.fillStyle = '#6b7585';
  ctx.font = '10px system-ui, sans-serif';
  const y = h.rows.length * CELL_H + 12;
  const every = Math.max(1, Math.ceil(h.cols / 6));
  for (let c = 0; c < h.cols; c += every) ctx.fillText(isoTime(h.t0 + c * h.bucket_s).slice(11), c * cw, y);
}
function showHeat(h) {
  state.heat = h;
  const labels = h.rows.map((name, r) => {
    const li = document.createElement('li');
    li.textContent = name;
    li.title = name + ': ' + h.row_flagged[r] + ' flagged in the window';
    li.dataset.sensor = name;
    if (h.score[r].some((s) => s >= h.threshold) || h.flagged[r].some((f) => f > 0)) li.className = 'marked';
    if (h.mode === 'top') li.addEventListener('click', () => openSensor(name));
    return li;
  });
  $('heat-labels').replaceChildren(...labels);
  $('heat-labels').style.setProperty('--row', CELL_H + 'px');
  drawHeat(h);
  const what = h.mode === 'fleet' ? h.rows.length + ' bands of the fleet' : `${h.rows.length} ${h.mode === 'top' ? 'sensor' : h.mode}s with flagged readings, most first`;
  $('heat-info').textContent = `${what} · ${fmt(h.sensors)} sensors · ${h.cols} × ${h.bucket_s} s from ${isoTime(h.t0)} UTC`;
}
async function loadHeat() {
  const mode = $('heat-mode').value, rows = $('heat-rows').value;
  showHeat(await api(`/api/fleet/heatmap?mode=${mode}&top=${rows}&buckets=60`));
}
$('heat-canvas').addEventListener('click', (ev) => {
  const h = state.heat;
  if (!h || h.mode !== 'top') return;
  const r = Math.floor(ev.offsetY / CELL_H);
  if (r >= 0 && r < h.rows.length) openSensor(h.rows[r]);
});

// ---- ranking (GET /api/fleet/top) --------------------------------------------------------------
async function loadRank() {
  const range = $('rank-range').value, source = $('rank-source').value;
  const q = (range === 'all' ? '' : 'range=' + range + '&') + 'source=' + source + '&limit=15';
  const r = await api('/api/fleet/top?' + q);
  state.rank = r;
  fillTable('rank-table', r.sensors.map((s, i) => row([i + 1, s.sensor_id, s.flagged, s.max_score.toFixed(3), isoText(s.last_flagged)], () => openSensor(s.sensor_id))));
  $('rank-info').textContent = (source === 'store' ? 'From the stored Parquet data' : 'From memory') +
    (r.from ? `, ${isoText(r.from)} – ${isoText(r.to) === '–' ? 'now' : isoText(r.to)} UTC` : ', since the start') + '. Click a sensor to open its chart.';
}

// ---- one sensor ------------------------------------------------------------------------------
function openSensor(id) {
  state.sensor = id;
  $('sensor-input').value = id;
  refreshSensor();
  $('sensor-card').scrollIntoView({ behavior: 'instant', block: 'nearest' });
}
async function refreshSensor() {
  if (!state.sensor) return;
  const id = state.sensor;
  const r = await api('/api/sensors/' + encodeURIComponent(id) + '/readings');
  if (id !== state.sensor) return;
  const flags = r.value.map((v, i) => (r.predicted[i] ? v : null));
  const thr = r.t.map(() => r.threshold);
  sensorChart.setData([r.t, r.value, flags, r.score, thr]);
  state.sensorPoints = r.t.length;
  state.sensorFlagged = r.predicted.reduce((a, b) => a + b, 0);
  const versions = r.model_versions.length ? r.model_versions.join(', ') : '–';
  $('sensor-info').textContent = `${r.t.length} readings (${r.from_disk} stored), ${state.sensorFlagged} flagged · threshold ${r.threshold} · model ${versions}`;
}
$('sensor-input').addEventListener('change', () => { if ($('sensor-input').value.trim()) openSensor($('sensor-input').value.trim()); });

// ---- anomalies and alerts --------------------------------------------------------------------
function addAnomaly(a, flash) {
  const tb = $('anomaly-table').tBodies[0];
  const tr = row([isoTime(a.t), a.sensor_id, a.value.toFixed(3), a.score.toFixed(3), a.anomaly_type || '—', a.model_version], () => openSensor(a.sensor_id));
  if (flash) tr.classList.add('new');
  tb.insertBefore(tr, tb.firstChild);
  while (tb.rows.length > 200) tb.deleteRow(tb.rows.length - 1);
  state.anomalies++;
  state.lastSeq = Math.max(state.lastSeq, a.seq);
}
async function loadAnomalies() {
  const r = await api('/api/anomalies?limit=100');
  for (const a of r.anomalies) addAnomaly(a, false);
}
async function loadAlerts() {
  const r = await api('/api/alerts?state=open&limit=15');
  fillTable('alert-table', r.alerts.map((e) => row([e.sensor_id, isoText(e.opened), e.severity || '–', e.points, e.anomaly_type || '—'], () => openSensor(e.trigger_sensor || e.sensor_id))));
  $('alerts-count').textContent = r.open > 15 ? `(15 newest of ${r.open})` : `(${r.open})`;
}

// ---- models: the registry's versions and aliases (GET /api/registry) ---------------------------
function evaluationText(v) {
  const e = v.evaluations && v.evaluations.length ? v.evaluations[v.evaluations.length - 1] : null;
  if (!e) return '–';
  const f1 = typeof e.f1 === 'number' ? 'F1 ' + e.f1.toFixed(3) : '';
  return [e.kind || e.type || '', f1, e.verdict || ''].filter(Boolean).join(' ') || JSON.stringify(e).slice(0, 40);
}
async function loadRegistry() {
  const r = await api('/api/registry');
  state.registry = r;
  $('model-in-use').textContent = r.in_use ? 'in use: ' + r.in_use : '';
  if (!r.available) {
    fillTable('registry-table', [row(['no model registry', '', '', '', ''])]);
  } else {
    fillTable('registry-table', r.versions.slice().reverse().map((v) => {
      const tr = row([v.version, v.aliases.join(', ') || '–', typeof v.best_val_loss === 'number' ? v.best_val_loss.toFixed(4) : '–', evaluationText(v)]);
      const td = document.createElement('td');
      for (const [label, alias] of [['promote', 'production'], ['shadow', 'shadow']]) {
        const b = document.createElement('button');
        b.textContent = label;
        b.disabled = !v.valid || v.aliases.includes(alias);
        b.addEventListener('click', () => registryAction('/api/registry/promote', { version: v.version, alias, force: $('force').checked }));
        td.appendChild(b);
      }
      tr.appendChild(td);
      return tr;
    }));
  }
  $('rollback').disabled = !r.available || !r.history || r.history.length < 2;
  $('clear-shadow').disabled = !r.available || !r.aliases || !r.aliases.shadow;
  if (r.token_required) $('token-box').hidden = false;
}
async function registryAction(path, body) {
  try {
    const r = await post(path, body);
    $('model-msg').textContent = `${r.alias} → ${r.version || '(unset)'}; the run picks it up on its next check`;
  } catch (e) {
    $('model-msg').textContent = 'refused: ' + e.message;
  }
  loadRegistry();
}
$('rollback').addEventListener('click', () => registryAction('/api/registry/rollback', { alias: 'production' }));
$('clear-shadow').addEventListener('click', () => registryAction('/api/registry/clear', { alias: 'shadow' }));

// ---- drift panel (GET /api/drift, SSE "drift") -------------------------------------------------
const num = (v, d) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');
function showDrift(d) {
  $('drift-production').textContent = d.production || '–';
  $('drift-shadow').textContent = d.shadow || 'none';
  if (!d.available) {
    $('drift-status').textContent = 'no model detector';
    $('drift-status').className = 'pill';
    $('drift-info').textContent = 'Drift is monitored for model detectors (--detector lstm|auto).';
    state.driftUpdates++;
    return;
  }
  $('drift-psi').textContent = num(d.psi, 3);
  $('drift-ks').textContent = num(d.ks, 3);
  $('drift-input').textContent = num(d.input_psi, 3) + ' / ' + num(d.input_ks, 3);
  $('drift-alert-rate').textContent = num(d.alert_rate, 4);
  $('drift-f1').textContent = d.labelled > 0 ? num(d.f1, 3) + ' (P ' + num(d.precision, 2) + ', R ' + num(d.recall, 2) + ')' : 'no labels';
  const judged = d.windows > 0 && d.windows >= (d.min_windows || 0);
  $('drift-status').textContent = !judged ? 'warming up (' + d.windows + ' / ' + d.min_windows + ' windows)' : d.drifted ? 'DRIFT for ' + Math.round(d.drifted_for_s) + ' s' : 'no drift';
  $('drift-status').className = 'pill ' + (d.drifted ? 'err' : judged ? 'ok' : '');
  $('drift-info').textContent = fmt(d.windows) + ' windows of ' + (d.version || '–') + ' vs its validation errors; ' + fmt(d.rows) + ' rows for the rates';
  state.driftUpdates++;
}
async function loadDrift() { showDrift(await api('/api/drift')); }

// ---- live stream -----------------------------------------------------------------------------
let es = null;
function setStatus(text, cls) { const s = $('status'); s.textContent = text; s.className = 'pill ' + (cls || ''); }
function connectStream() {
  if (es) es.close();
  es = new EventSource('/api/stream' + (state.token ? '?token=' + encodeURIComponent(state.token) : ''));
  es.onopen = () => setStatus('live', 'ok');
  es.onerror = () => setStatus('disconnected — retrying', 'err');
  es.addEventListener('stats', (ev) => pushStats(JSON.parse(ev.data)));
  es.addEventListener('anomaly', (ev) => {
    const a = JSON.parse(ev.data);
    if (a.seq > state.lastSeq) addAnomaly(a, true);
  });
  es.addEventListener('drift', (ev) => showDrift(JSON.parse(ev.data)));
}

// ---- refresh: the fleet figures every few seconds, the open sensor every second ----------------
// The stored ranking is a query over the Parquet data (seconds at tens of millions of rows): it runs when
// asked for (a change of range or source), not on every refresh.
const liveRank = () => ($('rank-source').value === 'memory' ? loadRank() : null);
function fleetRefresh() { return Promise.all([loadSummary(), loadHeat(), liveRank(), loadAlerts()]); }
for (const id of ['heat-mode', 'heat-rows']) $(id).addEventListener('change', () => loadHeat());
for (const id of ['rank-range', 'rank-source']) $(id).addEventListener('change', () => loadRank());

(async function main() {
  loadToken();
  connectStream();
  const safe = (f) => () => f().catch((e) => console.warn(e));
  await Promise.all([loadHistory(), loadSummary(), loadHeat(), loadRank(), loadAlerts(), loadAnomalies(), loadRegistry(), loadDrift()].map((p) => p.catch((e) => console.warn(e))));
  if (!state.sensor && state.rank && state.rank.sensors.length) openSensor(state.rank.sensors[0].sensor_id);
  state.ready = true;
  // The open sensor's chart refreshes while the run goes on (600 points: ~30 kB).
  setInterval(safe(async () => { if (!state.summary || state.summary.health.pipeline !== 'done') await refreshSensor(); }), 5000);
  setInterval(safe(fleetRefresh), 5000);
  setInterval(safe(loadRegistry), 10000);
})();
