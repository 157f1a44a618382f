#include "eval/skab.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/timeutil.h"
#include "detect/asset.h"
#include "detect/detector.h"
#include "detect/pca.h"

namespace iotpipe::skab {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t s = 0;
  while (true) {
    size_t e = line.find(sep, s);
    out.push_back(line.substr(s, e == std::string::npos ? std::string::npos : e - s));
    if (e == std::string::npos) break;
    s = e + 1;
  }
  return out;
}

bool ParseNum(const std::string& s, double* v) {
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return !s.empty() && end && *end == '\0' && std::isfinite(*v);
}

}  // namespace

Result<Experiment> ReadExperiment(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Error("cannot open " + path);
  std::string line;
  if (!std::getline(in, line)) return Status::Error(path + ": empty file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  auto head = Split(line, ';');
  int ai = -1;
  std::vector<int> chan;
  Experiment e;
  e.name = fs::path(path).filename().string();
  for (size_t i = 0; i < head.size(); i++) {
    if (head[i] == "anomaly")
      ai = static_cast<int>(i);
    else if (i > 0 && head[i] != "changepoint") {
      chan.push_back(static_cast<int>(i));
      e.channels.push_back(head[i]);
    }
  }
  if (head.empty() || head[0] != "datetime") return Status::Error(path + ": first column is not 'datetime'");
  if (ai < 0) return Status::Error(path + ": no 'anomaly' column");
  if (chan.empty()) return Status::Error(path + ": no sensor columns");
  int64_t lineno = 1;
  while (std::getline(in, line)) {
    lineno++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto cols = Split(line, ';');
    const std::string where = path + ":" + std::to_string(lineno);
    if (cols.size() != head.size())
      return Status::Error(where + ": expected " + std::to_string(head.size()) + " fields");
    auto t = ParseTimeMicros(cols[0]);
    if (!t.ok()) return Status::Error(where + ": " + t.status().message());
    std::vector<double> row(chan.size());
    for (size_t c = 0; c < chan.size(); c++)
      if (!ParseNum(cols[chan[c]], &row[c])) return Status::Error(where + ": '" + cols[chan[c]] + "' is not a number");
    double a;
    if (!ParseNum(cols[ai], &a) || (a != 0 && a != 1)) return Status::Error(where + ": anomaly must be 0 or 1");
    e.ts_us.push_back(*t);
    e.rows.push_back(std::move(row));
    e.anomaly.push_back(a == 1);
  }
  if (e.rows.size() <= kTrainRows)
    return Status::Error(path + ": needs more than " + std::to_string(kTrainRows) + " rows");
  return e;
}

Result<std::vector<std::string>> ListExperiments(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::Error("not a directory: " + dir);
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file() || it->path().extension() != ".csv") continue;
    std::ifstream in(it->path());
    std::string head;
    std::getline(in, head);
    if (head.find(";anomaly") == std::string::npos) continue;  // anomaly-free.csv: training data only
    out.push_back(it->path().string());
  }
  if (ec) return Status::Error("listing " + dir + ": " + ec.message());
  // Numeric file names (0.csv, 1.csv, ... 10.csv) sort by number within a directory.
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    fs::path pa(a), pb(b);
    if (pa.parent_path() != pb.parent_path()) return pa.parent_path() < pb.parent_path();
    std::string sa = pa.stem().string(), sb = pb.stem().string();
    if (sa.size() != sb.size()) return sa.size() < sb.size();
    return sa < sb;
  });
  return out;
}

// MSET-like similarity scoring (auto-associative kernel regression): each row is estimated as the
// kernel-weighted mean of the standardised training rows (the memory); the statistic is the squared
// residual, its limit the training quantile computed leave-one-out; EWMA-smoothed like pca.
static std::vector<uint8_t> PredictAakr(const Experiment& e, double bandwidth, double quantile, double alpha) {
  const size_t n = e.rows.size(), d = e.channels.size(), m = kTrainRows;
  std::vector<double> mean(d, 0), sd(d, 0);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < d; j++) mean[j] += e.rows[i][j] / m;
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < d; j++) sd[j] += (e.rows[i][j] - mean[j]) * (e.rows[i][j] - mean[j]) / (m - 1);
  for (size_t j = 0; j < d; j++) sd[j] = std::sqrt(std::max(sd[j], 1e-12 + 1e-8 * mean[j] * mean[j]));
  std::vector<double> mem(m * d);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < d; j++) mem[i * d + j] = (e.rows[i][j] - mean[j]) / sd[j];
  std::vector<double> d2(m), z(d), est(d);
  const double h2 = 2 * bandwidth * bandwidth;
  auto stat = [&](const double* zr, size_t skip) {
    double lo = INFINITY;
    for (size_t i = 0; i < m; i++) {
      double s = 0;
      for (size_t j = 0; j < d; j++) s += (zr[j] - mem[i * d + j]) * (zr[j] - mem[i * d + j]);
      d2[i] = s;
      if (i != skip) lo = std::min(lo, s);
    }
    std::fill(est.begin(), est.end(), 0.0);
    double wsum = 0;
    for (size_t i = 0; i < m; i++) {
      if (i == skip) continue;
      const double w = std::exp(-(d2[i] - lo) / h2);  // shifted: no underflow far from the memory
      wsum += w;
      for (size_t j = 0; j < d; j++) est[j] += w * mem[i * d + j];
    }
    double r = 0;
    for (size_t j = 0; j < d; j++) r += (zr[j] - est[j] / wsum) * (zr[j] - est[j] / wsum);
    return r;
  };
  std::vector<double> train(m);
  for (size_t i = 0; i < m; i++) train[i] = stat(&mem[i * d], i);
  const size_t qi = std::min(m - 1, static_cast<size_t>(quantile * (m - 1)));
  std::nth_element(train.begin(), train.begin() + qi, train.end());
  const double lim = std::max(train[qi], 1e-9);
  std::vector<uint8_t> pred;
  double state = 0;
  for (size_t i = m; i < n; i++) {
    for (size_t j = 0; j < d; j++) z[j] = (e.rows[i][j] - mean[j]) / sd[j];
    state += alpha * (stat(z.data(), m) / lim - state);
    pred.push_back(state >= 1.0);
  }
  return pred;
}

// The live pipeline's asset detector (detect/asset.h) on the experiment: one asset of every channel,
// one vector per row; its sliding window (400 = the training rows) is the warm-up, then it keeps learning
// from rows it judges normal.
static std::vector<uint8_t> PredictAsset(const Experiment& e) {
  Interner sensors(256);
  AssetOptions opt;
  opt.window = kTrainRows;
  AssetScorer sc(opt, &sensors, nullptr);
  AssetMap map;
  map.assets.push_back({"skab", e.channels});
  (void)sc.SetMap(map);
  std::vector<uint32_t> ids;
  for (const auto& c : e.channels) ids.push_back(sensors.Intern(c));
  std::vector<uint8_t> pred(e.rows.size() - kTrainRows, 0);
  std::vector<AssetScore> out;
  ReadingBatch b;
  for (size_t i = 0; i < e.rows.size(); i++) {
    b.Clear();
    for (size_t c = 0; c < ids.size(); c++)
      b.Push(ids[c], static_cast<int64_t>(i) * opt.tick_us, e.rows[i][c], false, ReadingBatch::kNoType);
    out.clear();
    sc.OnBatch(b, &out);
    for (const auto& s : out) {
      const size_t row = static_cast<size_t>(s.tick_us / opt.tick_us);
      if (row >= kTrainRows) pred[row - kTrainRows] = s.predicted;
    }
  }
  return pred;
}

std::vector<std::string> DetectorNames() {
  std::vector<std::string> out{"pca", "asset-pca", "aakr"};
  for (const auto& n : iotpipe::DetectorNames()) {
    auto d = MakeDetector(n);
    if (d.ok() && dynamic_cast<const PointDetector*>(d->get())) out.push_back(n);
  }
  return out;
}

Result<std::vector<uint8_t>> Predict(const std::string& detector, const Experiment& e) {
  const size_t n = e.rows.size(), d = e.channels.size();
  std::vector<uint8_t> pred;
  pred.reserve(n - kTrainRows);
  if (detector == "pca") {
    PcaDetector pca;
    std::vector<std::vector<double>> train(e.rows.begin(), e.rows.begin() + kTrainRows);
    Status st = pca.Fit(train);
    if (!st.ok()) return st;
    double state = 0;
    for (size_t i = kTrainRows; i < n; i++) pred.push_back(pca.Update(&state, e.rows[i].data(), nullptr) >= 1.0);
    return pred;
  }
  if (detector == "aakr") return PredictAakr(e, 1.0, 0.99, 0.1);
  if (detector == "asset-pca") return PredictAsset(e);
  auto det = MakeDetector(detector);
  if (!det.ok()) return det.status();
  // One sensor per channel, streamed through the pipeline's ScoreBatch: the training rows warm it up.
  StateStore store((*det)->state_bytes());
  ReadingBatch b;
  for (size_t i = 0; i < n; i++) {
    b.Clear();
    for (size_t c = 0; c < d; c++)
      b.Push(static_cast<uint32_t>(c), e.ts_us[i], e.rows[i][c], false, ReadingBatch::kNoType);
    (*det)->ScoreBatch(b, store);
    if (i < kTrainRows) continue;
    bool any = false;
    for (size_t c = 0; c < d; c++) any |= b.predicted[c] != 0;
    pred.push_back(any);
  }
  return pred;
}

nlohmann::json Report::ToJson() const {
  return {
      {"detector", detector},   {"files", files},   {"rows", rows}, {"tp", tp},   {"fp", fp},  {"fn", fn}, {"tn", tn},
      {"precision", precision}, {"recall", recall}, {"f1", f1},     {"far", far}, {"mar", mar}};
}

Result<Report> Run(const std::string& dir, const std::string& detector, size_t max_files) {
  const auto names = DetectorNames();
  if (std::find(names.begin(), names.end(), detector) == names.end()) {
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("unknown SKAB detector '" + detector + "' (one of: " + all + ")");
  }
  auto files = ListExperiments(dir);
  if (!files.ok()) return files.status();
  if (files->empty()) return Status::Error("no labelled SKAB experiments under " + dir);
  if (max_files > 0 && files->size() > max_files) files->resize(max_files);
  Report r;
  r.detector = detector;
  for (const auto& f : *files) {
    auto e = ReadExperiment(f);
    if (!e.ok()) return e.status();
    auto p = Predict(detector, *e);
    if (!p.ok()) return p.status();
    for (size_t i = 0; i < p->size(); i++) {
      const bool y = e->anomaly[kTrainRows + i], yh = (*p)[i];
      r.tp += y && yh;
      r.fp += !y && yh;
      r.fn += y && !yh;
      r.tn += !y && !yh;
    }
    r.rows += static_cast<int64_t>(p->size());
    r.files++;
  }
  r.precision = r.tp + r.fp > 0 ? static_cast<double>(r.tp) / (r.tp + r.fp) : 0.0;
  r.recall = r.tp + r.fn > 0 ? static_cast<double>(r.tp) / (r.tp + r.fn) : 0.0;
  r.f1 = r.precision + r.recall > 0 ? 2 * r.precision * r.recall / (r.precision + r.recall) : 0.0;
  r.far = r.fp + r.tn > 0 ? static_cast<double>(r.fp) / static_cast<double>(r.fp + r.tn) : 0.0;
  r.mar = r.fn + r.tp > 0 ? static_cast<double>(r.fn) / static_cast<double>(r.fn + r.tp) : 0.0;
  return r;
}

}  // namespace iotpipe::skab
