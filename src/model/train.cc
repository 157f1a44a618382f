#include "model/train.h"

#include <duckdb.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <thread>

#include "core/duck.h"
#include "core/timeutil.h"
#include "model/forward.h"
#include "model/torch_api.h"

namespace iotpipe::ml {

namespace {

// Typed streaming of a DuckDB result: columns (int32 sensor idx, int64 epoch µs, double value, bool gt).
struct Row4 {
  std::vector<int32_t> idx;
  std::vector<int64_t> ts;
  std::vector<double> val;
  std::vector<uint8_t> gt;
};

Status FetchRows(Duck& db, const std::string& sql, Row4& out) {
  duckdb_result res;
  if (duckdb_query(db.conn(), sql.c_str(), &res) != DuckDBSuccess) {
    std::string m = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::Error(m);
  }
  while (true) {
    duckdb_data_chunk ch = duckdb_fetch_chunk(res);
    if (!ch) break;
    idx_t n = duckdb_data_chunk_get_size(ch);
    auto* a = static_cast<int32_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 0)));
    auto* b = static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 1)));
    auto* c = static_cast<double*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 2)));
    auto* d = static_cast<bool*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 3)));
    for (idx_t i = 0; i < n; i++) {
      out.idx.push_back(a[i]);
      out.ts.push_back(b[i]);
      out.val.push_back(c[i]);
      out.gt.push_back(d[i] ? 1 : 0);
    }
    duckdb_destroy_data_chunk(&ch);
  }
  duckdb_destroy_result(&res);
  return Status::OK();
}

std::string TsLit(int64_t us) { return "make_timestamp(" + std::to_string(us) + "::BIGINT)"; }

// Predicate on the hive partition columns (date, hour) covering [a, b): lets DuckDB skip every other
// hour's files. Without it each stretch query opened every Parquet file of the span (128 full scans
// of the footers and row groups per training run: most of the run time).
std::string HourPred(int64_t a, int64_t b) {
  std::string p;
  for (int64_t h = HourIndex(a); h <= HourIndex(b - 1); h++) {
    const std::string part = HourPartition(h);  // date=YYYY-MM-DD/hour=HH
    if (!p.empty()) p += " OR ";
    p += "(r.date = DATE '" + part.substr(5, 10) + "' AND r.hour = " + std::to_string(std::atoi(part.c_str() + 21)) +
         ")";
  }
  return "(" + p + ")";
}

}  // namespace

void MakeWindows(const std::vector<float>& v, int window, int stride, int32_t sensor, WindowSet& out) {
  out.window = window;
  if (window <= 0 || stride <= 0 || v.size() < static_cast<size_t>(window)) return;
  for (size_t s = 0; s + static_cast<size_t>(window) <= v.size(); s += static_cast<size_t>(stride)) {
    out.x.insert(out.x.end(), v.begin() + static_cast<std::ptrdiff_t>(s),
                 v.begin() + static_cast<std::ptrdiff_t>(s) + window);
    out.sensor.push_back(sensor);
  }
}

std::string NextVersion(const std::string& model_dir) {
  int best = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(model_dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.size() > 1 && n[0] == 'v' && std::all_of(n.begin() + 1, n.end(), ::isdigit))
      best = std::max(best, std::atoi(n.c_str() + 1));
  }
  return "v" + std::to_string(best + 1);
}

// LibTorch's initialisation of AeNet (model/train_torch.cc) without LibTorch, so that benchmarks and
// tests that only need weights do not load it: torch::manual_seed(seed) seeds a 32-bit Mersenne
// Twister (std::mt19937 with the low 32 bits of the seed), and each uniform_(a, b) on a float tensor
// draws one 32-bit output per element in memory order and maps it to fma((r & (2^24 - 1)) * 2^-24, b - a, a)
// in float (ATen's transformation::uniform_real, fused as in its AVX2 kernels, which CPUs with AVX2 run). Parameters
// are drawn in registration order: the encoder LSTM (weight_ih, weight_hh, bias_ih, bias_hh, all U(-1/sqrt(H),
// 1/sqrt(H))), the decoder LSTM likewise, then Linear(H -> 1) (kaiming_uniform_(a = sqrt 5) weight, bias U(-1/sqrt(H),
// 1/sqrt(H))). The test TorchInitWeightsMatchesLibTorch compares it with LibTorch's, value for value.
LstmAeWeights TorchInitWeights(int window, int hidden, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed & 0xffffffffULL));
  auto uniform = [&rng](size_t n, double lo, double hi) {
    const float from = static_cast<float>(lo), to = static_cast<float>(hi);
    std::vector<float> v(n);
    for (float& x : v) {
      const float u = static_cast<float>(rng() & ((1U << 24) - 1)) * (1.0f / static_cast<float>(1U << 24));
      x = std::fma(u, to - from, from);  // LibTorch's AVX2 kernel build contracts this to an FMA
    }
    return v;
  };
  const size_t H = static_cast<size_t>(hidden), G = 4 * H;
  const double stdv = 1.0 / std::sqrt(static_cast<double>(hidden));
  auto add = [](std::vector<float> a, const std::vector<float>& b) {
    for (size_t i = 0; i < a.size(); i++) a[i] += b[i];
    return a;
  };
  LstmAeWeights w;
  w.window = window;
  w.hidden = hidden;
  w.enc_wih = uniform(G * 1, -stdv, stdv);
  w.enc_whh = uniform(G * H, -stdv, stdv);
  std::vector<float> b_ih = uniform(G, -stdv, stdv);
  w.enc_b = add(std::move(b_ih), uniform(G, -stdv, stdv));
  w.dec_wih = uniform(G * H, -stdv, stdv);
  w.dec_whh = uniform(G * H, -stdv, stdv);
  b_ih = uniform(G, -stdv, stdv);
  w.dec_b = add(std::move(b_ih), uniform(G, -stdv, stdv));
  const double gain = std::sqrt(2.0 / (1 + std::pow(std::sqrt(5.0), 2)));  // torch::nn::init::calculate_gain
  const double bound_w = std::sqrt(3.0) * (gain / std::sqrt(static_cast<double>(hidden)));
  w.out_w = uniform(H, -bound_w, bound_w);
  const double bound_b = 1 / std::sqrt(static_cast<double>(hidden));
  w.out_b = uniform(1, -bound_b, bound_b)[0];
  return w;
}

LstmAeWeights TorchInitWeightsReference(int window, int hidden, uint64_t seed) {
  auto api = LoadTorch();
  if (!api.ok()) {
    LstmAeWeights none;
    none.window = none.hidden = 0;
    return none;
  }
  return (*api)->init_weights(window, hidden, seed);
}

std::vector<float> TorchReconstruct(const LstmAeWeights& w, const std::vector<float>& x, size_t n) {
  auto api = LoadTorch();
  if (!api.ok()) return {};
  return (*api)->reconstruct(w, x, n);
}

Result<LstmAeWeights> FitWeights(const WindowSet& train, const WindowSet& val, const TrainOptions& opt, int* epochs_run,
                                 double* best_val) {
  auto api = LoadTorch();
  if (!api.ok()) return api.status();
  return (*api)->fit_weights(train, val, opt, epochs_run, best_val);
}

// Runs the feature channels (model/features.h) over contiguous stretches of the validation span and
// sets each channel's threshold to max(floor, margin * quantile) of its values on normal readings.
static Result<FeatureConfig> CalibrateFeatures(Duck& db, const Scaler& sc, int64_t from, int64_t split, int64_t to,
                                               const TrainOptions& opt, std::mt19937_64& rng) {
  (void)from;
  FeatureConfig c;
  c.enabled = true;
  const double floor_point = 5.0, floor_level = 4.5, floor_var = 2.5, floor_stuck = 5;
  const int64_t stretch = std::min<int64_t>(opt.cal_stretch_s * 1000000, to - split);
  std::vector<float> vp, vl, vv, vs;
  if (stretch > 0 && opt.cal_segments > 0) {
    const int64_t slice = (to - split) / opt.cal_segments;
    for (int k = 0; k < opt.cal_segments; k++) {
      int64_t lo = split + slice * k, hi = std::max(lo + 1, lo + slice - stretch);
      int64_t st = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo));
      if (st + stretch > to) st = std::max(split, to - stretch);
      Row4 rows;
      Status s = FetchRows(db,
                           "SELECT s.idx, epoch_us(r.timestamp), r.value, coalesce(r.is_anomaly_ground_truth, false) "
                           "FROM sensor_readings r JOIN sensors s USING (sensor_id) WHERE r.timestamp >= " +
                               TsLit(st) + " AND r.timestamp < " + TsLit(st + stretch) + " AND " +
                               HourPred(st, st + stretch) + " ORDER BY 1, 2",
                           rows);
      if (!s.ok()) return Status::Error("feature calibration: " + s.message());
      FeatureState fs;
      int32_t cur = -1;
      int64_t since_gt = 0, seen = 0;
      for (size_t q = 0; q < rows.idx.size(); q++) {
        if (rows.idx[q] != cur) {
          cur = rows.idx[q];
          InitFeatureState(fs);
          since_gt = 1 << 30;
          seen = 0;
        }
        const size_t sid = static_cast<size_t>(cur);
        FeatureChannels ch = UpdateFeatures(c, sc.Phi(sid), fs, sc.Z(sid, rows.ts[q], rows.val[q]), rows.val[q]);
        since_gt = rows.gt[q] ? 0 : since_gt + 1;
        seen++;
        if (rows.gt[q]) continue;
        vp.push_back(static_cast<float>(ch.point));
        vs.push_back(static_cast<float>(ch.stuck));
        if (seen >= 600 && since_gt >= 1000) {
          vl.push_back(static_cast<float>(ch.level));
          vv.push_back(static_cast<float>(ch.var));
        }
      }
      if (opt.progress)
        std::fprintf(stderr, "\r[train] feature calibration: stretch %d/%d, %zu readings   ", k + 1, opt.cal_segments,
                     vp.size());
    }
    if (opt.progress) std::fprintf(stderr, "\n");
  }
  auto thr = [&](std::vector<float>& v, double fl, double* out) -> double {
    double q = Quantile(v, opt.feature_quantile);
    *out = std::max(fl, opt.feature_margin * q);
    return q;
  };
  nlohmann::json cal = {
      {"rule", "threshold = max(floor, margin * quantile(q)) of the channel on normal validation readings"},
      {"quantile", opt.feature_quantile},
      {"margin", opt.feature_margin},
      {"readings", vp.size()},
      {"stretches", opt.cal_segments},
      {"stretch_s", stretch / 1000000}};
  cal["q_point"] = thr(vp, floor_point, &c.thr_point);
  cal["q_level"] = thr(vl, floor_level, &c.thr_level);
  cal["q_var"] = thr(vv, floor_var, &c.thr_var);
  cal["q_stuck"] = thr(vs, floor_stuck, &c.thr_stuck);
  cal["floors"] = {{"point", floor_point}, {"level", floor_level}, {"var", floor_var}, {"stuck", floor_stuck}};
  c.calibration = cal;
  if (opt.progress)
    std::fprintf(stderr,
                 "[train] feature thresholds: point %.2f (q %.2f), level %.2f (q %.2f), var %.2f (q %.2f), stuck %.0f "
                 "(q %.0f)\n",
                 c.thr_point, cal["q_point"].get<double>(), c.thr_level, cal["q_level"].get<double>(), c.thr_var,
                 cal["q_var"].get<double>(), c.thr_stuck, cal["q_stuck"].get<double>());
  return c;
}

void CompleteProfile(const Scaler& prev, const std::vector<uint8_t>& covered, Scaler& sc) {
  const int B = sc.tod_bins;
  if (B <= 0 || prev.tod_bins != B) return;
  for (size_t i = 0; i < sc.size(); i++) {
    const int32_t pi = prev.Find(sc.names[i]);
    if (pi < 0) continue;
    const float* old = prev.profile.data() + static_cast<size_t>(pi) * static_cast<size_t>(B);
    float* cur = sc.profile.data() + i * static_cast<size_t>(B);
    const uint8_t* cov = covered.data() + i * static_cast<size_t>(B);
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int b = 0; b < B; b++)
      if (cov[b]) {
        n += 1;
        sx += old[b];
        sy += cur[b];
        sxx += static_cast<double>(old[b]) * old[b];
        sxy += static_cast<double>(old[b]) * cur[b];
      }
    if (n == 0 || n == B) continue;
    // Least squares y = a + c x; a slope only where the covered bins span enough of the old profile's
    // range (else a level shift alone), clamped to a plausible range.
    double lo = old[0], hi = old[0];
    for (int b = 0; b < B; b++) lo = std::min<double>(lo, old[b]), hi = std::max<double>(hi, old[b]);
    const double vx = sxx / n - (sx / n) * (sx / n);
    double c = 1;
    if (n >= 4 && hi > lo && vx > 0.01 * (hi - lo) * (hi - lo))
      c = std::clamp((sxy / n - sx / n * sy / n) / vx, 0.2, 5.0);
    const double a = sy / n - c * sx / n;
    for (int b = 0; b < B; b++)
      if (!cov[b]) cur[b] = static_cast<float>(a + c * old[b]);
  }
}

Result<TrainReport> Train(const TrainOptions& opt) {
  auto t_start = std::chrono::steady_clock::now();
  TrainReport rep;
  if (opt.window < 4 || opt.window > 256) return Status::Error("--window must be in [4, 256]");
  if (opt.hidden < 16 || opt.hidden > 128 || opt.hidden % 16)
    return Status::Error("--hidden must be a multiple of 16 in [16, 128]");
  if (auto api = LoadTorch(); !api.ok()) return api.status();  // before reading any data
  auto dbr = Duck::Open("", std::max(1, opt.threads));
  if (!dbr.ok()) return dbr.status();
  Duck& db = **dbr;
  Status s = CreateDataViews(db, opt.data_dir);
  if (!s.ok()) return s;
  int64_t from = opt.from_us, to = opt.to_us;
  if (to == 0) {
    auto newest = [&] { return db.Query("SELECT epoch_us(max(timestamp)) FROM sensor_readings"); };
    auto t = newest();
    for (int attempt = 0; opt.snapshot && !t.ok() && attempt < 20; attempt++) {  // see TrainOptions::snapshot
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      t = newest();
    }
    if (!t.ok()) return t.status();
    if (t->rows.empty() || !t->rows[0][0]) return Status::Error("no stored readings under " + opt.data_dir);
    to = t->Int() + 1;
    from = to - opt.since_us;
  }
  if (to <= from) return Status::Error("empty training span");
  if (opt.snapshot) {
    Status ss;
    for (int attempt = 0; attempt < 20; attempt++) {  // a compaction may replace files under the glob
      ss = db.Exec(
          "CREATE OR REPLACE TEMP TABLE readings_snapshot AS SELECT * FROM sensor_readings WHERE timestamp >= " +
          TsLit(from) + " AND timestamp < " + TsLit(to));
      if (ss.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!ss.ok()) return Status::Error("snapshot of the training span: " + ss.message());
    s = db.Exec("DROP VIEW sensor_readings");
    if (s.ok()) s = db.Exec("CREATE TEMP VIEW sensor_readings AS SELECT * FROM readings_snapshot");
    if (!s.ok()) return Status::Error("snapshot view: " + s.message());
  }
  const int64_t split = from + (to - from) * 4 / 5;
  const std::string normal = opt.keep_anomalies ? "true" : "NOT coalesce(is_anomaly_ground_truth, false)";
  s = db.Exec(
      "CREATE TEMP TABLE sensors AS SELECT sensor_id, (row_number() OVER (ORDER BY sensor_id) - 1)::INTEGER AS idx, "
      "count(*) AS n, avg(value) AS mean, stddev_pop(value) AS sd FROM sensor_readings WHERE timestamp >= " +
      TsLit(from) + " AND timestamp < " + TsLit(split) + " AND " + normal + " GROUP BY sensor_id");
  if (!s.ok()) return Status::Error("scaler query: " + s.message());
  auto sens = db.Query("SELECT sensor_id, mean, sd, n FROM sensors ORDER BY idx");
  if (!sens.ok()) return sens.status();
  Model m;
  for (size_t r = 0; r < sens->rows.size(); r++) {
    m.scaler.names.push_back(sens->Str(r, 0));
    double mean = sens->Num(r, 1);
    m.scaler.mean.push_back(mean);
    m.scaler.std.push_back(Scaler::FloorStd(sens->Num(r, 2), mean));
    rep.rows += sens->Int(r, 3);
  }
  m.scaler.Reindex();
  const size_t S = m.scaler.size();
  if (S == 0)
    return Status::Error("no normal readings in the training span " + FormatIsoMicros(from) + " .. " +
                         FormatIsoMicros(split));
  rep.sensors = S;
  if (opt.tod_bins < 0 || opt.tod_bins > 1440 || (opt.tod_bins > 0 && 86400 % opt.tod_bins != 0))
    return Status::Error("--tod-bins must divide 86400 and be in [0, 1440]");
  if (opt.tod_bins > 0) {
    // Seasonal profile: per sensor and time-of-day bin, the mean of the normal training rows; bins
    // with fewer than 10 rows take the sensor's mean. std becomes the sd of the residual.
    const std::string bin =
        "((epoch_us(r.timestamp) % 86400000000) * " + std::to_string(opt.tod_bins) + " // 86400000000)::INTEGER";
    const std::string span =
        "r.timestamp >= " + TsLit(from) + " AND r.timestamp < " + TsLit(split) + " AND " +
        (opt.keep_anomalies ? std::string("true") : "NOT coalesce(r.is_anomaly_ground_truth, false)");
    // Aggregated by sensor_id first and joined to the small sensors table after: joining the readings
    // directly let DuckDB build its hash table on the readings side (a week of 1,000 sensors, 605 M
    // rows, was OOM-killed at 17 GB RSS). var_pop per bin gives the residual sd below without a
    // second pass: sum over bins of n * var_pop = sum of (value - bin mean)^2.
    s = db.Exec("CREATE TEMP TABLE prof AS SELECT s.idx, a.bin, a.mu, a.n, a.v FROM (SELECT r.sensor_id, " + bin +
                " AS bin, avg(r.value) AS mu, count(*) AS n, var_pop(r.value) AS v FROM sensor_readings r WHERE " +
                span + " GROUP BY ALL) a JOIN sensors s USING (sensor_id)");
    if (!s.ok()) return Status::Error("seasonal profile query: " + s.message());
    auto pr = db.Query("SELECT idx, bin, mu, n FROM prof");
    if (!pr.ok()) return pr.status();
    m.scaler.tod_bins = opt.tod_bins;
    m.scaler.profile.assign(S * static_cast<size_t>(opt.tod_bins), 0);
    std::vector<uint8_t> covered(m.scaler.profile.size(), 0);
    for (size_t i = 0; i < S; i++)
      for (int b = 0; b < opt.tod_bins; b++)
        m.scaler.profile[i * static_cast<size_t>(opt.tod_bins) + static_cast<size_t>(b)] =
            static_cast<float>(m.scaler.mean[i]);
    for (size_t r = 0; r < pr->rows.size(); r++) {
      const int64_t i = pr->Int(r, 0), b = pr->Int(r, 1);
      if (i < 0 || static_cast<size_t>(i) >= S || b < 0 || b >= opt.tod_bins || pr->Int(r, 3) < 10) continue;
      m.scaler.profile[static_cast<size_t>(i) * static_cast<size_t>(opt.tod_bins) + static_cast<size_t>(b)] =
          static_cast<float>(pr->Num(r, 2));
      covered[static_cast<size_t>(i) * static_cast<size_t>(opt.tod_bins) + static_cast<size_t>(b)] = 1;
    }
    if (!opt.profile_from.empty()) {
      auto prev = Model::Load(opt.profile_from);
      if (!prev.ok()) return Status::Error("--profile-from: " + prev.status().message());
      CompleteProfile(prev->scaler, covered, m.scaler);
    }
    auto sd = db.Query("SELECT idx, sqrt(sum(n * v) / sum(n)) FROM prof GROUP BY 1");
    if (!sd.ok()) return Status::Error("seasonal residual query: " + sd.status().message());
    for (size_t r = 0; r < sd->rows.size(); r++) {
      const int64_t i = sd->Int(r, 0);
      if (i >= 0 && static_cast<size_t>(i) < S && sd->rows[r][1])
        m.scaler.std[static_cast<size_t>(i)] = Scaler::FloorStd(sd->Num(r, 1), m.scaler.mean[static_cast<size_t>(i)]);
    }
    m.scaler.phi.assign(S, 0.0);
  }
  // Lag-1 autocorrelation of z per sensor, accumulated over the training stretches (normal pairs).
  std::vector<double> zz1(S, 0), zz0(S, 0);
  auto fp =
      db.Query("SELECT count(*), bit_xor(hash(sensor_id, timestamp, value)) FROM sensor_readings WHERE timestamp >= " +
               TsLit(from) + " AND timestamp < " + TsLit(to));
  if (!fp.ok()) return fp.status();
  const std::string fingerprint = Sha256Hex(fp->Str(0, 0) + ":" + fp->Str(0, 1)).substr(0, 16);

  // Stretches: one random stretch of 4 windows (at one reading/s: 4*window seconds + margin) per slice.
  std::mt19937_64 rng(opt.seed * 0x9E3779B97F4A7C15ULL + 7);
  const int64_t stretch_us = static_cast<int64_t>(opt.window) * 4 * 1000000 + 2000000;
  auto read_stretches = [&](int64_t a, int64_t b, int count, int stride, bool train, WindowSet& out) -> Status {
    out.window = opt.window;
    if (b - a <= stretch_us || count <= 0) return Status::OK();
    const int64_t slice = (b - a) / count;
    size_t per_stretch_cap =
        train ? std::max<size_t>(1, opt.max_windows / (static_cast<size_t>(count) * S) + 1) : SIZE_MAX;
    for (int k = 0; k < count; k++) {
      int64_t lo = a + slice * k, hi = std::max(lo + 1, lo + slice - stretch_us);
      int64_t st = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo));
      Row4 rows;
      Status s2 = FetchRows(db,
                            "SELECT s.idx, epoch_us(r.timestamp), r.value, coalesce(r.is_anomaly_ground_truth, false) "
                            "FROM sensor_readings r JOIN sensors s USING (sensor_id) WHERE r.timestamp >= " +
                                TsLit(st) + " AND r.timestamp < " + TsLit(st + stretch_us) + " AND " +
                                HourPred(st, st + stretch_us) + " ORDER BY 1, 2",
                            rows);
      if (!s2.ok()) return Status::Error("reading windows: " + s2.message());
      size_t i = 0;
      while (i < rows.idx.size()) {
        size_t j = i;
        while (j < rows.idx.size() && rows.idx[j] == rows.idx[i]) j++;
        const int32_t sid = rows.idx[i];
        std::vector<float> v;
        std::vector<uint8_t> g;
        for (size_t q = i; q < j; q++) {
          v.push_back(static_cast<float>(m.scaler.Z(static_cast<size_t>(sid), rows.ts[q], rows.val[q])));
          g.push_back(rows.gt[q]);
          if (train && q > i && !rows.gt[q] && !rows.gt[q - 1]) {
            zz1[static_cast<size_t>(sid)] += static_cast<double>(v[v.size() - 1]) * v[v.size() - 2];
            zz0[static_cast<size_t>(sid)] += static_cast<double>(v[v.size() - 2]) * v[v.size() - 2];
          }
        }
        // Window starts: all (every `stride`) for validation, a few random ones for training.
        std::vector<size_t> starts;
        if (v.size() >= static_cast<size_t>(opt.window)) {
          size_t last = v.size() - static_cast<size_t>(opt.window);
          for (size_t st2 = 0; st2 <= last; st2 += static_cast<size_t>(stride)) starts.push_back(st2);
          if (train) {
            std::shuffle(starts.begin(), starts.end(), rng);
            if (starts.size() > per_stretch_cap) starts.resize(per_stretch_cap);
          }
        }
        for (size_t st2 : starts) {
          bool anomalous = false;
          for (int t = 0; t < opt.window; t++) anomalous |= g[st2 + static_cast<size_t>(t)] != 0;
          if (anomalous && !opt.keep_anomalies) continue;
          out.x.insert(out.x.end(), v.begin() + static_cast<std::ptrdiff_t>(st2),
                       v.begin() + static_cast<std::ptrdiff_t>(st2) + opt.window);
          out.sensor.push_back(sid);
        }
        i = j;
      }
      if (opt.progress)
        std::fprintf(stderr, "\r[train] reading %s windows: stretch %d/%d, %zu windows   ",
                     train ? "training" : "validation", k + 1, count, out.size());
    }
    if (opt.progress) std::fprintf(stderr, "\n");
    return Status::OK();
  };
  WindowSet train, val;
  s = read_stretches(from, split, opt.segments, 1, true, train);
  if (!s.ok()) return s;
  if (m.scaler.seasonal())
    for (size_t i = 0; i < S; i++) m.scaler.phi[i] = zz0[i] > 0 ? std::clamp(zz1[i] / zz0[i], 0.0, 0.98) : 0.0;
  s = read_stretches(split, to, opt.val_segments, 4, false, val);
  if (!s.ok()) return s;
  if (train.size() > opt.max_windows) {  // deterministic cap
    train.x.resize(opt.max_windows * static_cast<size_t>(opt.window));
    train.sensor.resize(opt.max_windows);
  }
  if (train.size() < 16)
    return Status::Error("too few training windows (" + std::to_string(train.size()) + "); need more data");
  if (val.size() == 0) return Status::Error("no validation windows in the last 20 % of the span");
  rep.train_windows = train.size();
  rep.val_windows = val.size();
  // Validation windows are shuffled deterministically so the early-stopping subset covers all sensors.
  {
    std::vector<size_t> order(val.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    WindowSet v2;
    v2.window = val.window;
    for (size_t o : order) {
      v2.x.insert(v2.x.end(), val.x.begin() + static_cast<std::ptrdiff_t>(o * static_cast<size_t>(opt.window)),
                  val.x.begin() + static_cast<std::ptrdiff_t>((o + 1) * static_cast<size_t>(opt.window)));
      v2.sensor.push_back(val.sensor[o]);
    }
    val = std::move(v2);
  }
  if (opt.progress)
    std::fprintf(stderr, "[train] %zu sensors, %zu training windows, %zu validation windows (window %d, hidden %d)\n",
                 S, train.size(), val.size(), opt.window, opt.hidden);
  auto w = FitWeights(train, val, opt, &rep.epochs_run, &rep.best_val_loss);
  if (!w.ok()) return w.status();
  m.weights = std::move(w.value());

  // Calibrate on every validation window with the fast forward pass (the one that will score).
  LstmAeForward fwd(m.weights);
  std::vector<float> ew(val.size()), el(val.size());
  fwd.Errors(val.x.data(), val.size(), ew.data(), el.data(), opt.threads);
  std::vector<std::vector<float>> by_w(S), by_l(S);
  for (size_t i = 0; i < val.size(); i++) {
    by_w[static_cast<size_t>(val.sensor[i])].push_back(ew[i]);
    by_l[static_cast<size_t>(val.sensor[i])].push_back(el[i]);
  }
  m.thresholds = Calibrate(by_w, by_l, opt.quantile, opt.margin, opt.min_windows);
  auto sample = [&](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    if (v.size() > 20000) {
      std::vector<float> s2;
      for (size_t i = 0; i < 20000; i++) s2.push_back(v[i * v.size() / 20000]);
      v = std::move(s2);
    }
    return v;
  };
  if (m.scaler.seasonal()) {
    auto f = CalibrateFeatures(db, m.scaler, from, split, to, opt, rng);
    if (!f.ok()) return f.status();
    m.thresholds.features = std::move(f.value());
  }
  m.val_errors = sample(ew);
  m.val_last = sample(el);
  std::vector<float> sorted = m.val_errors;

  m.version = opt.version.empty() ? NextVersion(opt.model_dir) : opt.version;
  m.config = {{"window", opt.window},
              {"hidden", opt.hidden},
              {"epochs", opt.epochs},
              {"patience", opt.patience},
              {"batch", opt.batch},
              {"lr", opt.lr},
              {"seed", opt.seed},
              {"threads", opt.threads},
              {"torch_threads", opt.torch_threads},
              {"max_windows", opt.max_windows},
              {"segments", opt.segments},
              {"val_segments", opt.val_segments},
              {"keep_anomalies", opt.keep_anomalies},
              {"tod_bins", opt.tod_bins},
              {"feature_quantile", opt.feature_quantile},
              {"feature_margin", opt.feature_margin},
              {"cal_segments", opt.cal_segments},
              {"cal_stretch_s", opt.cal_stretch_s},
              {"architecture", "lstm-ae: LSTM(1->H) encoder, last h repeated, LSTM(H->H) decoder, Linear(H->1)"}};
  auto q = [&](double p) { return Quantile(sorted, p); };
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  m.card = {{"version", m.version},
            {"created", FormatIsoMicros(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count())},
            {"code_version", IOTPIPE_VERSION},
            {"training_window",
             {{"from", FormatIsoMicros(from)}, {"to", FormatIsoMicros(to)}, {"split", FormatIsoMicros(split)}}},
            {"data_dir", opt.data_dir},
            {"rows", rep.rows},
            {"data_fingerprint", fingerprint},
            {"sensors", S},
            {"train_windows", train.size()},
            {"val_windows", val.size()},
            {"subsampling", "one random stretch of 4 windows per slice of the span (" + std::to_string(opt.segments) +
                                " slices), a few random windows per sensor and stretch, capped at " +
                                std::to_string(opt.max_windows)},
            {"epochs_run", rep.epochs_run},
            {"best_val_loss", rep.best_val_loss},
            {"train_seconds", rep.seconds},
            {"params", m.weights.NumParams()},
            {"flops_per_window", m.weights.FlopsPerWindow()},
            {"validation_error",
             {{"mean", std::accumulate(ew.begin(), ew.end(), 0.0) / static_cast<double>(ew.size())},
              {"p50", q(0.5)},
              {"p90", q(0.9)},
              {"p99", q(0.99)},
              {"p999", q(0.999)},
              {"max", sorted.back()}}},
            {"thresholds",
             {{"rule", m.thresholds.ToJson()["rule"]},
              {"global_win", m.thresholds.global_win},
              {"global_last", m.thresholds.global_last},
              {"quantile", opt.quantile},
              {"margin", opt.margin}}},
            {"seasonal_scaler",
             m.scaler.seasonal() ? nlohmann::json{{"tod_bins", m.scaler.tod_bins}} : nlohmann::json(nullptr)},
            {"features", m.thresholds.features.ToJson()},
            {"evaluation", nlohmann::json::object()}};
  s = m.Save(opt.model_dir);
  if (!s.ok()) return s;
  rep.version = m.version;
  rep.dir = opt.model_dir + "/" + m.version;
  return rep;
}

}  // namespace iotpipe::ml
