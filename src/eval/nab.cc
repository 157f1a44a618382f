#include "eval/nab.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/fsutil.h"
#include "core/timeutil.h"

namespace iotpipe::nab {

namespace fs = std::filesystem;

const std::vector<Profile>& Profiles() {
  static const std::vector<Profile> kProfiles = {
      {"standard", {1.0, 0.11, 1.0}},
      {"reward_low_FP_rate", {1.0, 0.22, 1.0}},
      {"reward_low_FN_rate", {1.0, 0.11, 2.0}},
  };
  return kProfiles;
}

double ScaledSigmoid(double y) {
  if (y >= 3.0) return -1.0;
  return 2.0 / (1.0 + std::exp(5.0 * y)) - 1.0;
}

int64_t ProbationLength(int64_t rows, double percent) {
  double a = std::floor(percent * static_cast<double>(rows));
  double b = percent * 5000.0;
  return static_cast<int64_t>(std::ceil(std::min(a, b)));
}

Result<std::vector<AnomalyPoint>> CalcSweepScore(const FileScores& f, const CostMatrix& cost, int32_t first_window_id,
                                                 int32_t* next_window_id) {
  const size_t n = f.ts_us.size();
  if (f.scores.size() != n) return Status::Error(f.rel_path + ": timestamps and scores differ in length");
  std::vector<AnomalyPoint> out;
  out.reserve(n);
  const double max_tp = ScaledSigmoid(-1.0);
  const double probation = std::min(std::floor(kProbationPercent * static_cast<double>(n)), kProbationPercent * 5000);
  auto index_of = [&](int64_t t) -> int64_t {
    auto it = std::find(f.ts_us.begin(), f.ts_us.end(), t);
    return it == f.ts_us.end() ? -1 : it - f.ts_us.begin();
  };
  size_t next = 0;  // next window to enter
  int32_t id = first_window_id;
  bool in_window = false;
  int32_t cur_id = AnomalyPoint::kNoWindow;
  int64_t cur_end = 0, cur_right = 0;
  double cur_width = 0;
  bool have_prev = false;
  int64_t prev_right = 0;
  double prev_width = 0;
  for (size_t i = 0; i < n; i++) {
    const int64_t t = f.ts_us[i];
    if (next < f.windows.size() && t == f.windows[next].start_us) {
      const Window& w = f.windows[next++];
      int64_t r = index_of(w.end_us), l = index_of(w.start_us);
      if (r < 0) return Status::Error(f.rel_path + ": window end " + FormatNabTime(w.end_us) + " is not a row");
      in_window = true;
      cur_id = id++;
      cur_end = w.end_us;
      cur_right = r;
      cur_width = static_cast<double>(r - l + 1);
    }
    double sweep;
    if (in_window) {
      double pos = -static_cast<double>(cur_right - static_cast<int64_t>(i) + 1) / cur_width;
      sweep = ScaledSigmoid(pos) * cost.tp / max_tp;
    } else {
      double pos =
          have_prev ? std::fabs(static_cast<double>(prev_right - static_cast<int64_t>(i))) / (prev_width - 1) : 3.0;
      if (std::isnan(pos)) pos = 3.0;
      sweep = ScaledSigmoid(pos) * cost.fp;
    }
    int32_t wname =
        static_cast<double>(i) >= probation ? (in_window ? cur_id : AnomalyPoint::kNoWindow) : AnomalyPoint::kProbation;
    out.push_back({f.scores[i], sweep, wname});
    if (in_window && t == cur_end) {
      have_prev = true;
      prev_right = static_cast<int64_t>(i);
      prev_width = cur_width;
      in_window = false;
      cur_id = AnomalyPoint::kNoWindow;
    }
  }
  if (next_window_id) *next_window_id = id;
  return out;
}

std::vector<ThresholdScore> CalcScoreByThreshold(std::vector<AnomalyPoint> points, const CostMatrix& cost) {
  std::erase_if(points, [](const AnomalyPoint& p) { return p.window == AnomalyPoint::kProbation; });
  std::stable_sort(points.begin(), points.end(),
                   [](const AnomalyPoint& a, const AnomalyPoint& b) { return a.score > b.score; });
  // Score parts: the false-positive sum and one part per window (-fnWeight until detected).
  int32_t max_id = -1;
  for (const auto& p : points) max_id = std::max(max_id, p.window);
  std::vector<double> part(static_cast<size_t>(max_id + 1), 0.0);
  std::vector<uint8_t> present(part.size(), 0);
  double total = 0;
  ThresholdScore cur;
  for (const auto& p : points) {
    if (p.window >= 0) {
      cur.fn++;
      if (!present[p.window]) {
        present[p.window] = 1;
        part[p.window] = -cost.fn;
        total -= cost.fn;
      }
    } else {
      cur.tn++;
    }
  }
  std::vector<ThresholdScore> out;
  cur.threshold = 1.1;
  for (const auto& p : points) {
    if (p.score != cur.threshold) {
      cur.score = total;
      out.push_back(cur);
      cur.threshold = p.score;
    }
    if (p.window >= 0) {
      cur.tp++;
      cur.fn--;
      if (p.sweep > part[p.window]) {
        total += p.sweep - part[p.window];
        part[p.window] = p.sweep;
      }
    } else {
      cur.fp++;
      cur.tn--;
      total += p.sweep;
    }
  }
  cur.score = total;
  out.push_back(cur);
  return out;
}

namespace {

// Per file at a fixed threshold: the rows whose score is >= threshold are detections (scoreDataSet's match).
struct FileTotals {
  double raw = 0, null_raw = 0;
  int64_t windows = 0, tp = 0, fp = 0, fn = 0, tn = 0;
};

Result<FileTotals> ScoreFile(const FileScores& f, const CostMatrix& cost, double threshold) {
  int32_t next = 0;
  auto pts = CalcSweepScore(f, cost, 0, &next);
  if (!pts.ok()) return pts.status();
  FileTotals t;
  t.windows = static_cast<int64_t>(f.windows.size());
  std::vector<double> part(static_cast<size_t>(next), 0.0);
  std::vector<uint8_t> present(part.size(), 0);
  for (const auto& p : *pts) {
    if (p.window == AnomalyPoint::kProbation) continue;
    const bool det = p.score >= threshold;
    if (p.window >= 0) {
      if (!present[p.window]) {
        present[p.window] = 1;
        part[p.window] = -cost.fn;
        t.null_raw -= cost.fn;
      }
      if (det) {
        t.tp++;
        part[p.window] = std::max(part[p.window], p.sweep);
      } else {
        t.fn++;
      }
    } else if (det) {
      t.fp++;
      t.raw += p.sweep;
    } else {
      t.tn++;
    }
  }
  for (size_t w = 0; w < part.size(); w++) t.raw += part[w];
  return t;
}

}  // namespace

Result<CorpusScore> ScoreCorpus(const std::vector<FileScores>& files, const CostMatrix& cost, double threshold) {
  CorpusScore c;
  c.threshold = threshold;
  int64_t windows = 0;
  for (const auto& f : files) {
    auto t = ScoreFile(f, cost, threshold);
    if (!t.ok()) return t.status();
    c.raw += t->raw;
    c.null_raw += t->null_raw;
    windows += t->windows;
    c.tp += t->tp;
    c.fp += t->fp;
    c.fn += t->fn;
    c.tn += t->tn;
  }
  c.perfect_raw = static_cast<double>(windows) * cost.tp;
  const double span = c.perfect_raw - c.null_raw;
  c.normalized = span > 0 ? 100.0 * (c.raw - c.null_raw) / span : 0.0;
  return c;
}

Result<CorpusScore> OptimizeAndScore(const std::vector<FileScores>& files, const CostMatrix& cost) {
  std::vector<AnomalyPoint> all;
  int32_t id = 0;
  for (const auto& f : files) {
    auto pts = CalcSweepScore(f, cost, id, &id);
    if (!pts.ok()) return pts.status();
    all.insert(all.end(), pts->begin(), pts->end());
  }
  auto by = CalcScoreByThreshold(std::move(all), cost);
  // The first best in threshold order (highest threshold among ties), as NAB's stable sort picks it.
  const ThresholdScore* best = &by.front();
  for (const auto& s : by)
    if (s.score > best->score) best = &s;
  return ScoreCorpus(files, cost, best->threshold);
}

// ---------------------------------------------------------------------------------------------------------
// I/O

std::string FormatNabTime(int64_t us) {
  int64_t secs = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t sod = secs - days * 86400;
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d", y, m, d, static_cast<int>(sod / 3600),
                static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60));
  return buf;
}

Result<WindowMap> LoadWindows(const std::string& labels_json) {
  auto text = ReadFile(labels_json);
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Error(labels_json + ": not a JSON object");
  WindowMap out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_array()) return Status::Error(labels_json + ": windows of '" + it.key() + "' are not a list");
    auto& ws = out[it.key()];
    for (const auto& w : it.value()) {
      if (!w.is_array() || w.size() != 2 || !w[0].is_string() || !w[1].is_string())
        return Status::Error(labels_json + ": a window of '" + it.key() + "' is not [start, end]");
      auto a = ParseTimeMicros(w[0].get<std::string>());
      auto b = ParseTimeMicros(w[1].get<std::string>());
      if (!a.ok()) return Status::Error(labels_json + ": " + a.status().message());
      if (!b.ok()) return Status::Error(labels_json + ": " + b.status().message());
      ws.push_back({*a, *b});
    }
  }
  return out;
}

Result<std::vector<std::string>> ListCorpus(const std::string& data_dir) {
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) return Status::Error("not a directory: " + data_dir);
  std::vector<std::string> out;
  for (const auto& cat : fs::directory_iterator(data_dir, ec)) {
    if (!cat.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(cat.path(), ec)) {
      if (f.is_regular_file() && f.path().extension() == ".csv")
        out.push_back(cat.path().filename().string() + "/" + f.path().filename().string());
    }
  }
  if (ec) return Status::Error("listing " + data_dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

std::vector<std::string_view> SplitComma(std::string_view line) {
  std::vector<std::string_view> out;
  size_t s = 0;
  while (true) {
    size_t e = line.find(',', s);
    out.push_back(line.substr(s, e == std::string_view::npos ? std::string_view::npos : e - s));
    if (e == std::string_view::npos) break;
    s = e + 1;
  }
  return out;
}

bool ParseNumber(std::string_view s, double* v) {
  std::string t(s);
  char* end = nullptr;
  *v = std::strtod(t.c_str(), &end);
  return !t.empty() && end && *end == '\0';
}

// Reads a CSV with a header; returns the named columns' (timestamp + one numeric column).
Status ReadTwoColumns(const std::string& path, const std::string& value_col, std::vector<int64_t>* ts,
                      std::vector<double>* vals) {
  std::ifstream in(path);
  if (!in) return Status::Error("cannot open " + path);
  std::string line;
  if (!std::getline(in, line)) return Status::Error(path + ": empty file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  auto head = SplitComma(line);
  int ti = -1, vi = -1;
  for (size_t i = 0; i < head.size(); i++) {
    if (head[i] == "timestamp") ti = static_cast<int>(i);
    if (head[i] == value_col) vi = static_cast<int>(i);
  }
  if (ti < 0 || vi < 0) return Status::Error(path + ": header lacks 'timestamp' or '" + value_col + "'");
  int64_t lineno = 1;
  while (std::getline(in, line)) {
    lineno++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto cols = SplitComma(line);
    if (static_cast<int>(cols.size()) <= std::max(ti, vi))
      return Status::Error(path + ":" + std::to_string(lineno) + ": too few columns");
    auto t = ParseTimeMicros(cols[ti]);
    if (!t.ok()) return Status::Error(path + ":" + std::to_string(lineno) + ": " + t.status().message());
    double v;
    if (!ParseNumber(cols[vi], &v))
      return Status::Error(path + ":" + std::to_string(lineno) + ": '" + std::string(cols[vi]) + "' is not a number");
    ts->push_back(*t);
    vals->push_back(v);
  }
  return Status::OK();
}

}  // namespace

Result<Series> ReadSeries(const std::string& data_dir, const std::string& rel_path) {
  Series s;
  s.rel_path = rel_path;
  Status st = ReadTwoColumns(data_dir + "/" + rel_path, "value", &s.ts_us, &s.values);
  if (!st.ok()) return st;
  return s;
}

Result<FileScores> ReadResultsFile(const std::string& path, const std::string& rel_path) {
  FileScores f;
  f.rel_path = rel_path;
  Status st = ReadTwoColumns(path, "anomaly_score", &f.ts_us, &f.scores);
  if (!st.ok()) return st;
  return f;
}

Result<std::vector<FileScores>> ReadResultsDir(const std::string& detector_dir, const WindowMap& windows) {
  std::error_code ec;
  if (!fs::is_directory(detector_dir, ec)) return Status::Error("not a directory: " + detector_dir);
  std::vector<std::pair<std::string, std::string>> found;  // rel path, file path
  for (const auto& cat : fs::directory_iterator(detector_dir, ec)) {
    if (!cat.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(cat.path(), ec)) {
      std::string name = f.path().filename().string();
      if (!f.is_regular_file() || f.path().extension() != ".csv" || name.starts_with(".")) continue;
      size_t u = name.find('_');
      if (u == std::string::npos) continue;
      found.emplace_back(cat.path().filename().string() + "/" + name.substr(u + 1), f.path().string());
    }
  }
  if (ec) return Status::Error("listing " + detector_dir + ": " + ec.message());
  std::sort(found.begin(), found.end());
  std::vector<FileScores> out;
  for (const auto& [rel, path] : found) {
    auto it = windows.find(rel);
    if (it == windows.end()) return Status::Error(path + ": '" + rel + "' is not in the labels");
    auto f = ReadResultsFile(path, rel);
    if (!f.ok()) return f.status();
    f->windows = it->second;
    out.push_back(std::move(*f));
  }
  if (out.empty()) return Status::Error("no result files under " + detector_dir);
  return out;
}

Status WriteResultsFile(const std::string& path, const Series& s, const std::vector<double>& scores) {
  std::string out = "timestamp,value,anomaly_score\n";
  out.reserve(s.ts_us.size() * 48);
  char buf[64];
  for (size_t i = 0; i < s.ts_us.size(); i++) {
    out += FormatNabTime(s.ts_us[i]);
    std::snprintf(buf, sizeof buf, ",%.10g,%.9g\n", s.values[i], scores[i]);
    out += buf;
  }
  Status st = MakeDirs(ParentDir(path));
  if (!st.ok()) return st;
  return WriteFileAtomic(path, out);
}

}  // namespace iotpipe::nab
