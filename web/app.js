// iotpipe dashboard: uPlot charts fed by the pipeline's HTTP API and its Server-Sent Events.
// No build step: plain script, uPlot loaded from /vendor (installed from npm by scripts/deps).
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  token: '',
  tp: [[], [], [], []],          // t, events/s, stored/s, lag
  sensor: '',
  sensorPoints: 0,
  anomalies: 0,                  // rows added to the table
  updates: 0,                    // stats events received
  driftUpdates: 0,               // drift snapshots shown
  lastSeq: 0,
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
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

// ---- formatting ------------------------------------------------------------------------------
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
const isoTime = (t) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19);

// ---- charts ----------------------------------------------------------------------------------
function chartWidth(el) { return Math.max(300, el.clientWidth - 4); }

const tpChart = new uPlot({
  width: chartWidth($('throughput-chart')), height: 240,
  scales: { x: { time: true }, lag: { auto: true } },
  series: [
    {},
    { label: 'events/s', stroke: '#2f6fde', width: 2 },
    { label: 'stored/s', stroke: '#1f8a4c', width: 1, dash: [4, 3] },
    { label: 'lag (records)', stroke: '#d98e04', scale: 'lag', width: 1 },
  ],
  axes: [{}, { label: 'records/s', size: 60 }, { side: 1, scale: 'lag', label: 'lag', grid: { show: false }, size: 60 }],
}, state.tp, $('throughput-chart'));

const flagged = {
  label: 'flagged', stroke: '#d7263d', fill: '#d7263d', width: 0,
  paths: () => null, points: { show: true, size: 8, stroke: '#d7263d', fill: '#d7263d' },
};
const sensorChart = new uPlot({
  width: chartWidth($('sensor-chart')), height: 260,
  scales: { x: { time: true }, score: { range: [0, 1] } },
  series: [
    {},
    { label: 'value', stroke: '#2f6fde', width: 1.5 },
    flagged,
    { label: 'anomaly score', stroke: '#8a5cd1', scale: 'score', width: 1 },
    { label: 'threshold', stroke: '#d7263d', scale: 'score', dash: [6, 4], width: 1 },
  ],
  axes: [{}, { label: 'value', size: 60 }, { side: 1, scale: 'score', label: 'score', grid: { show: false }, size: 50 }],
}, [[], [], [], [], []], $('sensor-chart'));

window.addEventListener('resize', () => {
  tpChart.setSize({ width: chartWidth($('throughput-chart')), height: 240 });
  sensorChart.setSize({ width: chartWidth($('sensor-chart')), height: 260 });
});

function pushStats(s) {
  state.updates++;
  const tp = state.tp;
  tp[0].push(s.t); tp[1].push(s.events_per_s); tp[2].push(s.stored_per_s); tp[3].push(s.lag >= 0 ? s.lag : null);
  if (tp[0].length > 900) tp.forEach((a) => a.shift());
  tpChart.setData(tp);
  $('f-rate').textContent = fmt(s.events_per_s);
  $('f-sent').textContent = fmt(s.sent);
  $('f-stored').textContent = fmt(s.stored);
  $('f-dead').textContent = fmt(s.dead_letters);
  $('f-anom').textContent = fmt(s.anomalies);
  $('f-sensors').textContent = fmt(s.sensors);
  $('f-lag').textContent = s.lag >= 0 ? fmt(s.lag) : 'n/a';
}

async function loadHistory() {
  const h = await api('/api/stats/history');
  state.tp = [h.t, h.events_per_s, h.stored_per_s, h.lag.map((v) => (v >= 0 ? v : null))];
  tpChart.setData(state.tp);
}

// ---- sensors ---------------------------------------------------------------------------------
async function loadSensors() {
  const r = await api('/api/sensors');
  const sel = $('sensor-select');
  const have = new Set([...sel.options].map((o) => o.value));
  r.sensors.sort((a, b) => a.sensor_id.localeCompare(b.sensor_id, undefined, { numeric: true }));
  for (const s of r.sensors) {
    if (have.has(s.sensor_id)) continue;
    const o = document.createElement('option');
    o.value = o.textContent = s.sensor_id;
    sel.appendChild(o);
  }
  if (!state.sensor && sel.options.length) { state.sensor = sel.value; refreshSensor(); }
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
  const n = r.predicted.reduce((a, b) => a + b, 0);
  $('sensor-info').textContent = `${r.t.length} recent readings, ${n} flagged`;
}

// ---- anomalies and alerts --------------------------------------------------------------------
function addAnomaly(a, flash) {
  const tb = $('anomaly-table').tBodies[0];
  const tr = document.createElement('tr');
  if (flash) tr.className = 'new';
  tr.dataset.sensor = a.sensor_id;
  for (const v of [isoTime(a.t), a.sensor_id, a.value.toFixed(3), a.score.toFixed(3), a.anomaly_type || '—', a.model_version]) {
    const td = document.createElement('td');
    td.textContent = v;
    tr.appendChild(td);
  }
  tr.addEventListener('click', () => { $('sensor-select').value = a.sensor_id; state.sensor = a.sensor_id; refreshSensor(); });
  tb.insertBefore(tr, tb.firstChild);
  while (tb.rows.length > 200) tb.deleteRow(tb.rows.length - 1);
  state.anomalies++;
  state.lastSeq = Math.max(state.lastSeq, a.seq);
}

function addAlert(e) {
  const tb = $('alert-table').tBodies[0];
  const tr = document.createElement('tr');
  for (const v of [e.event, e.sensor_id, e.opened.slice(0, 19).replace('T', ' '), e.points, e.anomaly_type || '—']) {
    const td = document.createElement('td');
    td.textContent = v;
    tr.appendChild(td);
  }
  tb.insertBefore(tr, tb.firstChild);
  while (tb.rows.length > 50) tb.deleteRow(tb.rows.length - 1);
}

async function loadAnomalies() {
  const r = await api('/api/anomalies?limit=100');
  for (const a of r.anomalies) addAnomaly(a, false);
  const al = await api('/api/alerts');
  for (const e of al.alerts) addAlert(e);
}

// ---- model -----------------------------------------------------------------------------------
async function loadModel() {
  const m = await api('/api/models');
  $('model-version').textContent = m.in_use ? m.in_use.version : '–';
  $('model-previous').textContent = m.previous ? m.previous.version : '–';
  $('model-threshold').textContent = m.threshold;
  const sel = $('model-select');
  if (!sel.options.length) for (const n of m.available) {
    const o = document.createElement('option');
    o.value = o.textContent = n;
    sel.appendChild(o);
  }
  $('promote').disabled = !m.can_promote;
  $('rollback').disabled = !m.can_rollback;
  if (m.token_required) $('token-box').hidden = false;
}
async function modelAction(path, body) {
  try {
    const r = await api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}) });
    $('model-msg').textContent = 'now using ' + r.in_use.version;
  } catch (e) {
    $('model-msg').textContent = 'failed: ' + e.message;
  }
  loadModel();
}
$('promote').addEventListener('click', () => modelAction('/api/models/promote', { detector: $('model-select').value }));
$('rollback').addEventListener('click', () => modelAction('/api/models/rollback'));

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
  es.addEventListener('alert', (ev) => addAlert(JSON.parse(ev.data)));
  es.addEventListener('drift', (ev) => showDrift(JSON.parse(ev.data)));
}

$('sensor-select').addEventListener('change', () => { state.sensor = $('sensor-select').value; refreshSensor(); });

async function health() {
  try {
    const h = await api('/api/health');
    if (h.pipeline === 'done') setStatus('pipeline finished', 'done');
  } catch (e) { /* shown by the stream status */ }
}

(async function main() {
  loadToken();
  connectStream();
  const safe = (f) => () => f().catch((e) => console.warn(e));
  await Promise.all([loadHistory(), loadSensors(), loadAnomalies(), loadModel(), loadDrift()].map((p) => p.catch((e) => console.warn(e))));
  setInterval(safe(refreshSensor), 1000);
  setInterval(safe(loadSensors), 5000);
  setInterval(safe(loadModel), 10000);
  setInterval(safe(health), 3000);
})();
