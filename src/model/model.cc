#include "model/model.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/fsutil.h"

namespace iotpipe::ml {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), small and dependency-free: used for model checksums and data fingerprints.
namespace {
constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
void Block(uint32_t h[8], const unsigned char* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
    uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}
}  // namespace

std::string Sha256Hex(std::string_view data) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  size_t n = data.size(), i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  for (; i + 64 <= n; i += 64) Block(h, p + i);
  unsigned char tail[128] = {};
  size_t rest = n - i;
  std::memcpy(tail, p + i, rest);
  tail[rest] = 0x80;
  size_t tl = rest + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = static_cast<uint64_t>(n) * 8;
  for (int k = 0; k < 8; k++) tail[tl - 1 - k] = static_cast<unsigned char>(bits >> (8 * k));
  Block(h, tail);
  if (tl == 128) Block(h, tail + 64);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint32_t v : h)
    for (int s = 28; s >= 0; s -= 4) out += hex[(v >> s) & 15];
  return out;
}

// ---------------------------------------------------------------------------------------------
void LstmAeWeights::Resize() {
  const size_t H = static_cast<size_t>(hidden), G = 4 * H;
  enc_wih.assign(G, 0);
  enc_whh.assign(G * H, 0);
  enc_b.assign(G, 0);
  dec_wih.assign(G * H, 0);
  dec_whh.assign(G * H, 0);
  dec_b.assign(G, 0);
  out_w.assign(H, 0);
  out_b = 0;
}

Status LstmAeWeights::Validate() const {
  if (window < 2 || window > 1024) return Status::Error("window " + std::to_string(window) + " out of range [2, 1024]");
  if (hidden < 8 || hidden > 256 || hidden % 8 != 0)
    return Status::Error("hidden " + std::to_string(hidden) + " must be a multiple of 8 in [8, 256]");
  const size_t H = static_cast<size_t>(hidden), G = 4 * H;
  auto chk = [&](const std::vector<float>& v, size_t n, const char* what) -> Status {
    if (v.size() != n)
      return Status::Error(std::string(what) + " has " + std::to_string(v.size()) + " values, expected " +
                           std::to_string(n));
    for (float f : v)
      if (!std::isfinite(f)) return Status::Error(std::string(what) + " holds a non-finite value");
    return Status::OK();
  };
  for (Status s :
       {chk(enc_wih, G, "enc_wih"), chk(enc_whh, G * H, "enc_whh"), chk(enc_b, G, "enc_b"),
        chk(dec_wih, G * H, "dec_wih"), chk(dec_whh, G * H, "dec_whh"), chk(dec_b, G, "dec_b"), chk(out_w, H, "out_w")})
    if (!s.ok()) return s;
  if (!std::isfinite(out_b)) return Status::Error("out_b is not finite");
  return Status::OK();
}

size_t LstmAeWeights::NumParams() const {
  return enc_wih.size() + enc_whh.size() + enc_b.size() + dec_wih.size() + dec_whh.size() + dec_b.size() +
         out_w.size() + 1;
}

double LstmAeWeights::FlopsPerWindow() const {
  const double H = hidden, T = window, G = 4 * H;
  double enc = T * (G * H + G);          // h W_hh^T + x w_ih per step
  double dec = G * H + T * (G * H + H);  // z W_ih^T once, h W_hh^T and the output layer per step
  return 2 * (enc + dec);
}

std::string LstmAeWeights::Serialize() const {
  std::string out = "IOTPLSTM";
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  u32(1);
  u32(static_cast<uint32_t>(window));
  u32(static_cast<uint32_t>(hidden));
  for (const auto* v : {&enc_wih, &enc_whh, &enc_b, &dec_wih, &dec_whh, &dec_b, &out_w}) {
    u32(static_cast<uint32_t>(v->size()));
    out.append(reinterpret_cast<const char*>(v->data()), v->size() * sizeof(float));
  }
  out.append(reinterpret_cast<const char*>(&out_b), sizeof(float));
  return out;
}

Result<LstmAeWeights> LstmAeWeights::Deserialize(const std::string& d) {
  size_t pos = 8;
  if (d.size() < 20 || d.compare(0, 8, "IOTPLSTM") != 0) return Status::Error("not an iotpipe LSTM weights file");
  auto u32 = [&](uint32_t* v) {
    if (pos + 4 > d.size()) return false;
    std::memcpy(v, d.data() + pos, 4);
    pos += 4;
    return true;
  };
  uint32_t fmt, w, h;
  if (!u32(&fmt) || fmt != 1) return Status::Error("unsupported weights format version");
  if (!u32(&w) || !u32(&h) || w > 1024 || h > 256) return Status::Error("weights header is corrupt");
  LstmAeWeights m;
  m.window = static_cast<int>(w);
  m.hidden = static_cast<int>(h);
  for (auto* v : {&m.enc_wih, &m.enc_whh, &m.enc_b, &m.dec_wih, &m.dec_whh, &m.dec_b, &m.out_w}) {
    uint32_t n;
    if (!u32(&n) || n > (1u << 24) || pos + n * sizeof(float) > d.size())
      return Status::Error("weights file is truncated");
    v->resize(n);
    std::memcpy(v->data(), d.data() + pos, n * sizeof(float));
    pos += n * sizeof(float);
  }
  if (pos + sizeof(float) != d.size()) return Status::Error("weights file has the wrong length");
  std::memcpy(&m.out_b, d.data() + pos, sizeof(float));
  Status s = m.Validate();
  if (!s.ok()) return Status::Error("weights: " + s.message());
  return m;
}

// ---------------------------------------------------------------------------------------------
void Scaler::Reindex() {
  index.clear();
  index.reserve(names.size());
  for (size_t i = 0; i < names.size(); i++) index.emplace(names[i], static_cast<int32_t>(i));
}

double Scaler::FloorStd(double sd, double mean) {
  return std::max({std::isfinite(sd) ? sd : 0.0, 1e-3, 1e-6 * std::fabs(mean)});
}

double Scaler::Expected(size_t s, int64_t ts_us) const {
  if (tod_bins <= 0) return mean[s];
  const int64_t day_us = 86400LL * 1000000;
  int64_t tod = ts_us % day_us;
  if (tod < 0) tod += day_us;
  // Position in bins relative to bin centres: bin b's centre is at (b + 0.5) * width.
  const double pos = static_cast<double>(tod) / static_cast<double>(day_us) * tod_bins - 0.5;
  double fl = std::floor(pos);
  const double frac = pos - fl;
  const int b0 = (static_cast<int>(fl) + tod_bins) % tod_bins, b1 = (b0 + 1) % tod_bins;
  const float* p = profile.data() + s * static_cast<size_t>(tod_bins);
  return p[b0] + (p[b1] - p[b0]) * frac;
}

nlohmann::json Scaler::ToJson() const {
  nlohmann::json j = {{"sensors", names}, {"mean", mean}, {"std", std}};
  if (seasonal()) {
    j["tod_bins"] = tod_bins;
    j["profile"] = profile;
    j["phi"] = phi;
  }
  return j;
}

Result<Scaler> Scaler::FromJson(const nlohmann::json& j) {
  Scaler s;
  try {
    s.names = j.at("sensors").get<std::vector<std::string>>();
    s.mean = j.at("mean").get<std::vector<double>>();
    s.std = j.at("std").get<std::vector<double>>();
    if (j.contains("tod_bins")) {
      s.tod_bins = j.at("tod_bins").get<int>();
      s.profile = j.at("profile").get<std::vector<float>>();
      s.phi = j.at("phi").get<std::vector<double>>();
    }
  } catch (const std::exception& e) {
    return Status::Error(std::string("scaler: ") + e.what());
  }
  if (s.mean.size() != s.names.size() || s.std.size() != s.names.size())
    return Status::Error("scaler: sensors, mean and std differ in length");
  for (size_t i = 0; i < s.std.size(); i++)
    if (!(s.std[i] > 0) || !std::isfinite(s.mean[i]))
      return Status::Error("scaler: invalid mean/std for " + s.names[i]);
  if (s.tod_bins < 0 || s.tod_bins > 1440) return Status::Error("scaler: tod_bins out of range [0, 1440]");
  if (s.seasonal()) {
    if (s.profile.size() != s.names.size() * static_cast<size_t>(s.tod_bins) || s.phi.size() != s.names.size())
      return Status::Error("scaler: seasonal profile or phi does not match sensors x tod_bins");
    for (float v : s.profile)
      if (!std::isfinite(v)) return Status::Error("scaler: non-finite seasonal profile value");
    for (double v : s.phi)
      if (!(v > -1 && v < 1)) return Status::Error("scaler: phi must be in (-1, 1)");
  }
  s.Reindex();
  if (s.index.size() != s.names.size()) return Status::Error("scaler: duplicate sensor names");
  return s;
}

nlohmann::json Thresholds::ToJson() const {
  return {{"rule",
           "threshold = margin * quantile(q) of normal validation errors; per sensor with >= min_windows "
           "validation windows, else global; severity = max(e_win/thr_win, e_last/thr_last); "
           "score = r/(1+r)"},
          {"quantile", quantile},
          {"margin", margin},
          {"min_windows", min_windows},
          {"global_win", global_win},
          {"global_last", global_last},
          {"win", win},
          {"last", last},
          {"features", features.ToJson()}};
}

Result<Thresholds> Thresholds::FromJson(const nlohmann::json& j) {
  Thresholds t;
  try {
    t.quantile = j.at("quantile").get<double>();
    t.margin = j.at("margin").get<double>();
    t.min_windows = j.at("min_windows").get<int>();
    t.global_win = j.at("global_win").get<float>();
    t.global_last = j.at("global_last").get<float>();
    t.win = j.at("win").get<std::vector<float>>();
    t.last = j.at("last").get<std::vector<float>>();
    if (j.contains("features")) {
      auto f = FeatureConfig::FromJson(j["features"]);
      if (!f.ok()) return f.status();
      t.features = std::move(f.value());
    }
  } catch (const std::exception& e) {
    return Status::Error(std::string("thresholds: ") + e.what());
  }
  auto pos = [](float v) { return v > 0 && std::isfinite(v); };
  if (!pos(t.global_win) || !pos(t.global_last)) return Status::Error("thresholds: global thresholds must be > 0");
  if (t.win.size() != t.last.size()) return Status::Error("thresholds: win and last differ in length");
  for (size_t i = 0; i < t.win.size(); i++)
    if (!pos(t.win[i]) || !pos(t.last[i])) return Status::Error("thresholds: non-positive threshold");
  return t;
}

double Quantile(std::vector<float>& v, double q) {
  if (v.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return a + (b - a) * (pos - static_cast<double>(lo));
}

Thresholds Calibrate(const std::vector<std::vector<float>>& val_win, const std::vector<std::vector<float>>& val_last,
                     double quantile, double margin, int min_windows) {
  Thresholds t;
  t.quantile = quantile;
  t.margin = margin;
  t.min_windows = min_windows;
  std::vector<float> all_w, all_l;
  for (auto& v : val_win) all_w.insert(all_w.end(), v.begin(), v.end());
  for (auto& v : val_last) all_l.insert(all_l.end(), v.begin(), v.end());
  auto floor = [](double v) { return static_cast<float>(std::max(v, 1e-6)); };
  t.global_win = floor(margin * Quantile(all_w, quantile));
  t.global_last = floor(margin * Quantile(all_l, quantile));
  const size_t n = std::max(val_win.size(), val_last.size());
  t.win.assign(n, t.global_win);
  t.last.assign(n, t.global_last);
  for (size_t i = 0; i < n; i++) {
    if (i < val_win.size() && static_cast<int>(val_win[i].size()) >= min_windows) {
      std::vector<float> w = val_win[i];
      t.win[i] = floor(margin * Quantile(w, quantile));
    }
    if (i < val_last.size() && static_cast<int>(val_last[i].size()) >= min_windows) {
      std::vector<float> l = val_last[i];
      t.last[i] = floor(margin * Quantile(l, quantile));
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
static std::string FloatsBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

Status Model::Save(const std::string& models_dir) const {
  if (version.empty() || version.find('/') != std::string::npos || version[0] == '.')
    return Status::Error("invalid model version '" + version + "'");
  Status s = weights.Validate();
  if (!s.ok()) return s;
  s = MakeDirs(models_dir);
  if (!s.ok()) return s;
  const std::string final_dir = models_dir + "/" + version;
  std::error_code ec;
  if (fs::exists(final_dir, ec)) return Status::Error("model " + final_dir + " already exists");
  const std::string tmp = models_dir + "/.tmp-" + version + "-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  s = MakeDirs(tmp);
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, std::string>> files = {
      {"weights.bin", weights.Serialize()},
      {"scaler.json", scaler.ToJson().dump()},
      {"thresholds.json", thresholds.ToJson().dump(1)},
      {"config.json", config.dump(2)},
      {"model_card.json", card.dump(2)},
      {"validation_errors.bin", FloatsBytes(val_errors)},
      {"validation_last.bin", FloatsBytes(val_last)},
  };
  nlohmann::json sums = nlohmann::json::object();
  for (auto& [name, data] : files) {
    sums[name] = Sha256Hex(data);
    s = WriteFileAtomic(tmp + "/" + name, data);
    if (!s.ok()) return s;
  }
  s = WriteFileAtomic(tmp + "/checksums.json", sums.dump(2));
  if (!s.ok()) return s;
  return CommitFile(tmp, final_dir);
}

static Result<std::vector<float>> FloatsFrom(const std::string& d, const std::string& what) {
  if (d.size() % sizeof(float)) return Status::Error(what + " has a partial value");
  std::vector<float> v(d.size() / sizeof(float));
  std::memcpy(v.data(), d.data(), d.size());
  return v;
}

Result<Model> Model::Load(const std::string& dir) {
  Model m;
  m.version = fs::path(dir).filename().string();
  if (m.version.empty()) m.version = fs::path(dir).parent_path().filename().string();
  auto sums_r = ReadFile(dir + "/checksums.json");
  if (!sums_r.ok()) return Status::Error("model " + dir + " has no checksums.json (incomplete or not a model)");
  nlohmann::json sums = nlohmann::json::parse(sums_r.value(), nullptr, false);
  if (sums.is_discarded() || !sums.is_object()) return Status::Error("model " + dir + ": checksums.json is corrupt");
  std::unordered_map<std::string, std::string> data;
  for (const char* name : {"weights.bin", "scaler.json", "thresholds.json", "config.json", "model_card.json",
                           "validation_errors.bin", "validation_last.bin"}) {
    auto r = ReadFile(dir + "/" + name);
    if (!r.ok()) return Status::Error("model " + dir + ": missing " + name);
    if (!sums.contains(name) || !sums[name].is_string() || sums[name].get<std::string>() != Sha256Hex(r.value()))
      return Status::Error("model " + dir + ": checksum mismatch for " + name + " (corrupt model refused)");
    data[name] = std::move(r.value());
  }
  auto w = LstmAeWeights::Deserialize(data["weights.bin"]);
  if (!w.ok()) return Status::Error("model " + dir + ": " + w.status().message());
  m.weights = std::move(w.value());
  auto parse = [&](const char* name, nlohmann::json* out) -> Status {
    *out = nlohmann::json::parse(data[name], nullptr, false);
    if (out->is_discarded()) return Status::Error("model " + dir + ": " + name + " is not valid JSON");
    return Status::OK();
  };
  nlohmann::json sj, tj;
  for (Status s : {parse("scaler.json", &sj), parse("thresholds.json", &tj), parse("config.json", &m.config),
                   parse("model_card.json", &m.card)})
    if (!s.ok()) return s;
  auto sc = Scaler::FromJson(sj);
  if (!sc.ok()) return Status::Error("model " + dir + ": " + sc.status().message());
  m.scaler = std::move(sc.value());
  auto th = Thresholds::FromJson(tj);
  if (!th.ok()) return Status::Error("model " + dir + ": " + th.status().message());
  m.thresholds = std::move(th.value());
  if (m.thresholds.win.size() != m.scaler.size())
    return Status::Error("model " + dir + ": thresholds cover " + std::to_string(m.thresholds.win.size()) +
                         " sensors but the scaler " + std::to_string(m.scaler.size()));
  if (m.thresholds.features.enabled && !m.scaler.seasonal())
    return Status::Error("model " + dir + ": feature channels need a seasonal scaler (tod_bins > 0)");
  auto ve = FloatsFrom(data["validation_errors.bin"], "validation_errors.bin");
  auto vl = FloatsFrom(data["validation_last.bin"], "validation_last.bin");
  if (!ve.ok()) return ve.status();
  if (!vl.ok()) return vl.status();
  m.val_errors = std::move(ve.value());
  m.val_last = std::move(vl.value());
  return m;
}

}  // namespace iotpipe::ml
