#include "detect/asset.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <type_traits>

#include "core/checksum.h"
#include "detect/detector.h"

namespace iotpipe {

namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

constexpr int64_t kNoTick = std::numeric_limits<int64_t>::min();

}  // namespace

// ---- configuration ----

Result<AssetMap> AssetMap::FromTomlText(const std::string& text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::Error(source + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": " +
                         std::string(e.description()));
  }
  const toml::table* t = &root;
  if (auto* sub = root["assets"].as_table()) t = sub;
  AssetMap m;
  std::set<std::string> seen;
  for (const auto& [k, v] : *t) {
    const std::string key(k.str());
    const std::string where = source + ":" + std::to_string(k.source().begin.line) + ": asset '" + key + "'";
    const toml::array* arr = v.as_array();
    if (!arr) return Status::Error(where + " must be an array of sensor ids");
    if (arr->empty()) return Status::Error(where + " has no sensors");
    std::vector<std::string> sensors;
    for (const auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s || s->empty()) return Status::Error(where + ": every sensor id must be a non-empty string");
      if (!seen.insert(*s).second) return Status::Error(where + ": sensor '" + *s + "' is in two assets");
      sensors.push_back(*s);
    }
    m.assets.emplace_back(key, std::move(sensors));
  }
  if (m.assets.empty()) return Status::Error(source + ": no assets defined (expected `name = [\"sensor\", ...]`)");
  return m;
}

Result<AssetMap> AssetMap::FromTomlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Error("cannot open assets file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return FromTomlText(ss.str(), path);
}

// ---- per-asset state ----

struct AssetScorer::Asset {
  std::string name;
  uint32_t idx = 0;
  std::vector<std::string> chan_names;
  std::unordered_map<uint32_t, uint16_t> chan_of;  // wire assets: sensor id -> channel
  // Open tick.
  int64_t tick = kNoTick;
  bool closed = false;
  std::vector<double> cur, last;
  std::vector<uint8_t> have;
  std::vector<int64_t> last_tick;
  bool gt = false;
  int32_t gt_channel = -1;
  uint16_t type = ReadingBatch::kNoType;
  // Model.
  std::vector<std::vector<double>> window;  // ring of normal complete vectors
  size_t pos = 0, since_fit = 0;
  std::unique_ptr<PcaDetector> pca;
  double smooth = 0;
  std::vector<double> x, attr;

  size_t d() const { return chan_names.size(); }
  uint16_t AddChannel(const std::string& n) {
    chan_names.push_back(n);
    cur.push_back(0);
    last.push_back(0);
    have.push_back(0);
    last_tick.push_back(kNoTick);
    // A new channel changes the vector: learn again from scratch.
    window.clear();
    pos = since_fit = 0;
    pca.reset();
    smooth = 0;
    return static_cast<uint16_t>(chan_names.size() - 1);
  }
};

AssetScorer::AssetScorer(AssetOptions opt, const Interner* sensors, const Interner* wire_assets)
    : opt_(opt), sensors_(sensors), wire_(wire_assets) {
  opt_.tick_us = std::max<int64_t>(opt_.tick_us, 1);
  opt_.max_channels = std::clamp<size_t>(opt_.max_channels, 1, 64);
  opt_.window = std::max(opt_.window, opt_.max_channels + 2);  // PCA needs more rows than channels
  opt_.refit_every = std::max<size_t>(opt_.refit_every, 1);
}

AssetScorer::~AssetScorer() = default;

uint32_t AssetScorer::AddAsset(const std::string& name) {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  auto a = std::make_unique<Asset>();
  a->name = name;
  a->idx = static_cast<uint32_t>(assets_.size());
  assets_.push_back(std::move(a));
  uint32_t idx = static_cast<uint32_t>(assets_.size() - 1);
  by_name_.emplace(name, idx);
  return idx;
}

Status AssetScorer::SetMap(const AssetMap& map) {
  for (const auto& [name, sensors] : map.assets) {
    if (sensors.size() > opt_.max_channels)
      return Status::Error("asset '" + name + "' has " + std::to_string(sensors.size()) + " sensors, at most " +
                           std::to_string(opt_.max_channels) + " are supported");
    uint32_t a = AddAsset(name);
    for (const auto& s : sensors) {
      if (configured_.count(s)) return Status::Error("sensor '" + s + "' is in two assets");
      configured_[s] = {a, assets_[a]->AddChannel(s)};
    }
  }
  sensor_cache_.clear();
  return Status::OK();
}

const std::string& AssetScorer::AssetName(uint32_t a) const { return assets_[a]->name; }
size_t AssetScorer::channels(uint32_t a) const { return assets_[a]->d(); }
const std::string& AssetScorer::ChannelName(uint32_t a, int32_t ch) const {
  static const std::string none;
  const Asset& as = *assets_[a];
  return ch >= 0 && static_cast<size_t>(ch) < as.d() ? as.chan_names[ch] : none;
}
bool AssetScorer::fitted(uint32_t a) const { return assets_[a]->pca != nullptr; }

size_t AssetScorer::state_bytes(uint32_t a) const {
  const Asset& as = *assets_[a];
  const size_t d = as.d();
  size_t b = sizeof(Asset) + d * (3 * sizeof(double) + 1 + sizeof(int64_t) + 2 * sizeof(double));
  b += as.window.size() * (d * sizeof(double) + sizeof(std::vector<double>));
  if (as.pca) b += sizeof(PcaDetector) + as.pca->model_bytes();
  return b;
}

size_t AssetScorer::max_state_bytes(size_t d) const {
  // Window full, model with every component kept.
  return sizeof(Asset) + d * (3 * sizeof(double) + 1 + sizeof(int64_t) + 2 * sizeof(double)) +
         opt_.window * (d * sizeof(double) + sizeof(std::vector<double>)) + sizeof(PcaDetector) +
         (d * (3 + d) + d) * sizeof(double);
}

// ---- checkpoint ----

namespace {
constexpr const char* kAssetCkptMagic = "IOTPAST";
constexpr int kAssetCkptFormat = 1;

nlohmann::json OptionsJson(const AssetOptions& o) {
  return {
      {"tick_us", o.tick_us}, {"window", o.window}, {"max_channels", o.max_channels}, {"t2_weight", o.pca.t2_weight}};
}

// Reads a JSON array of finite numbers of the given length (any length if n < 0).
template <typename T>
bool Numbers(const nlohmann::json& j, long n, std::vector<T>* out) {
  if (!j.is_array() || (n >= 0 && j.size() != static_cast<size_t>(n))) return false;
  out->clear();
  for (const auto& e : j) {
    if (!e.is_number()) return false;
    if constexpr (std::is_floating_point_v<T>) {
      const double v = e.get<double>();
      if (!std::isfinite(v)) return false;
      out->push_back(static_cast<T>(v));
    } else {
      if (!e.is_number_integer()) return false;
      out->push_back(e.get<T>());
    }
  }
  return true;
}
}  // namespace

std::string AssetScorer::Snapshot() const {
  nlohmann::json assets = nlohmann::json::array();
  for (const auto& up : assets_) {
    const Asset& a = *up;
    assets.push_back({{"name", a.name},
                      {"channels", a.chan_names},
                      {"tick", a.tick},
                      {"closed", a.closed},
                      {"cur", a.cur},
                      {"last", a.last},
                      {"have", a.have},
                      {"last_tick", a.last_tick},
                      {"gt", a.gt},
                      {"gt_channel", a.gt_channel},
                      {"window", a.window},
                      {"pos", a.pos},
                      {"since_fit", a.since_fit},
                      {"smooth", a.smooth},
                      {"model", a.pca ? nlohmann::json(a.pca->Export()) : nlohmann::json(nullptr)}});
  }
  const std::string body = nlohmann::json{{"options", OptionsJson(opt_)}, {"assets", assets}}.dump();
  char head[64];
  std::snprintf(head, sizeof head, "%s %d %016llx\n", kAssetCkptMagic, kAssetCkptFormat,
                static_cast<unsigned long long>(Fnv1a64(body)));
  return head + body;
}

Result<size_t> AssetScorer::Restore(std::string_view data) {
  const size_t nl = data.find('\n');
  if (nl == std::string_view::npos || nl > 64 || data.substr(0, std::strlen(kAssetCkptMagic)) != kAssetCkptMagic)
    return Status::Error("not an iotpipe asset checkpoint");
  int format = 0;
  unsigned long long sum = 0;
  const std::string head(data.substr(0, nl));
  if (std::sscanf(head.c_str(), "IOTPAST %d %llx", &format, &sum) != 2) return Status::Error("malformed header");
  if (format != kAssetCkptFormat)
    return Status::Error("format " + std::to_string(format) + ", expected " + std::to_string(kAssetCkptFormat));
  const std::string_view body = data.substr(nl + 1);
  if (Fnv1a64(body) != sum) return Status::Error("corrupt (checksum mismatch)");
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("assets") || !j["assets"].is_array())
    return Status::Error("malformed JSON");
  if (j.value("options", nlohmann::json()) != OptionsJson(opt_))
    return Status::Error("written with other asset options " + j.value("options", nlohmann::json()).dump() + " (now " +
                         OptionsJson(opt_).dump() + ")");
  // Everything is checked into `staged` first; nothing changes unless all of it is sound.
  std::vector<std::unique_ptr<Asset>> staged;
  std::set<std::string> names;
  for (const auto& e : j["assets"]) {
    auto a = std::make_unique<Asset>();
    auto bad = [&](const std::string& what) { return Status::Error("asset '" + a->name + "': " + what); };
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
      return Status::Error("an asset without a name");
    a->name = e["name"].get<std::string>();
    if (a->name.empty() || !names.insert(a->name).second) return bad("empty or repeated name");
    const auto& ch = e.value("channels", nlohmann::json());
    if (!ch.is_array() || ch.empty() || ch.size() > opt_.max_channels) return bad("bad channel list");
    for (const auto& c : ch) {
      if (!c.is_string()) return bad("a channel name is not a string");
      a->AddChannel(c.get<std::string>());
    }
    const long d = static_cast<long>(a->d());
    if (!e.value("tick", nlohmann::json()).is_number_integer() || !e.value("closed", nlohmann::json()).is_boolean() ||
        !e.value("gt", nlohmann::json()).is_boolean() || !e.value("gt_channel", nlohmann::json()).is_number_integer() ||
        !e.value("pos", nlohmann::json()).is_number_unsigned() ||
        !e.value("since_fit", nlohmann::json()).is_number_unsigned() ||
        !e.value("smooth", nlohmann::json()).is_number())
      return bad("a field is missing or of the wrong type");
    a->tick = e["tick"].get<int64_t>();
    a->closed = e["closed"].get<bool>();
    a->gt = e["gt"].get<bool>();
    a->gt_channel = e["gt_channel"].get<int32_t>();
    a->pos = e["pos"].get<size_t>();
    a->since_fit = e["since_fit"].get<size_t>();
    a->smooth = e["smooth"].get<double>();
    if (!std::isfinite(a->smooth) || a->gt_channel < -1 || a->gt_channel >= d) return bad("a value is out of range");
    if (!Numbers(e.value("cur", nlohmann::json()), d, &a->cur) ||
        !Numbers(e.value("last", nlohmann::json()), d, &a->last) ||
        !Numbers(e.value("have", nlohmann::json()), d, &a->have) ||
        !Numbers(e.value("last_tick", nlohmann::json()), d, &a->last_tick))
      return bad("per-channel values of the wrong shape");
    const auto& w = e.value("window", nlohmann::json());
    if (!w.is_array() || w.size() > opt_.window) return bad("learning window of the wrong size");
    for (const auto& row : w) {
      std::vector<double> r;
      if (!Numbers(row, d, &r)) return bad("a learning-window row of the wrong shape");
      a->window.push_back(std::move(r));
    }
    if (a->pos >= std::max<size_t>(a->window.size(), 1) || a->since_fit > opt_.window)
      return bad("window position out of range");
    const auto& m = e.value("model", nlohmann::json());
    if (!m.is_null()) {
      std::vector<double> mv;
      if (!Numbers(m, -1, &mv)) return bad("model is not a list of numbers");
      auto p = std::make_unique<PcaDetector>(opt_.pca);
      Status s = p->Import(mv);
      if (!s.ok()) return bad(s.message());
      if (p->dims() != a->d()) return bad("model dimensions differ from the channel count");
      a->pca = std::move(p);
    }
    a->type = ReadingBatch::kNoType;
    // A configured asset keeps its configured channels.
    auto it = by_name_.find(a->name);
    if (it != by_name_.end() && assets_[it->second]->chan_names != a->chan_names)
      return bad("channels differ from the configuration (the assets file changed?)");
    staged.push_back(std::move(a));
  }
  for (auto& a : staged) {
    auto it = by_name_.find(a->name);
    const uint32_t idx = it != by_name_.end() ? it->second : AddAsset(a->name);
    a->idx = idx;
    a->chan_of = std::move(assets_[idx]->chan_of);  // wire sensor ids of this process, if any
    assets_[idx] = std::move(a);
  }
  return staged.size();
}

// Asset and channel of reading i, or -1 if it belongs to none.
int32_t AssetScorer::Resolve(const ReadingBatch& b, size_t i, uint32_t* asset) {
  const uint32_t sid = b.sensor[i];
  if (!b.asset.empty() && b.asset[i] != ReadingBatch::kNoAsset && wire_) {
    const uint32_t w = b.asset[i];
    if (w >= wire_cache_.size()) wire_cache_.resize(w + 1, 0);
    if (wire_cache_[w] == 0) wire_cache_[w] = AddAsset(wire_->Name(w)) + 1;
    *asset = wire_cache_[w] - 1;
    Asset& a = *assets_[*asset];
    auto it = a.chan_of.find(sid);
    if (it != a.chan_of.end()) return it->second;
    if (a.d() >= opt_.max_channels) {
      c_.extra_channels++;
      return -1;
    }
    // A configured channel of the same name keeps its position.
    const std::string& nm = sensors_->Name(sid);
    for (size_t c = 0; c < a.d(); c++)
      if (a.chan_names[c] == nm) return a.chan_of[sid] = static_cast<uint16_t>(c);
    return a.chan_of[sid] = a.AddChannel(nm);
  }
  if (configured_.empty()) return -1;
  if (sid >= sensor_cache_.size()) sensor_cache_.resize(std::max<size_t>(sid + 1, sensor_cache_.size() * 3 / 2), 0);
  uint64_t& e = sensor_cache_[sid];
  if (e == 0) {
    auto it = configured_.find(sensors_->Name(sid));
    e = it == configured_.end() ? 1 : ((static_cast<uint64_t>(it->second.first) << 16) | it->second.second) + 2;
  }
  if (e == 1) return -1;
  *asset = static_cast<uint32_t>((e - 2) >> 16);
  return static_cast<int32_t>((e - 2) & 0xFFFF);
}

void AssetScorer::OnBatch(const ReadingBatch& b, std::vector<AssetScore>* out) {
  const size_t n = b.size();
  for (size_t i = 0; i < n; i++) {
    uint32_t ai = 0;
    const int32_t ch = Resolve(b, i, &ai);
    if (ch < 0) continue;
    c_.readings++;
    Asset& a = *assets_[ai];
    const int64_t t = FloorDiv(b.ts_us[i], opt_.tick_us);
    if (a.tick != kNoTick && (t < a.tick || (t == a.tick && a.closed))) {
      c_.late++;
      continue;
    }
    if (a.tick != kNoTick && t > a.tick) Close(a, out);
    if (a.tick != t) {
      a.tick = t;
      a.closed = false;
      std::fill(a.have.begin(), a.have.end(), 0);
      a.gt = false;
      a.gt_channel = -1;
      a.type = ReadingBatch::kNoType;
    }
    a.cur[ch] = b.value[i];
    a.have[ch] = 1;
    a.last[ch] = b.value[i];
    a.last_tick[ch] = t;
    if (ReadingBatch::Positive(b.gt[i])) {
      if (!a.gt) a.gt_channel = ch;
      a.gt = true;
      if (a.type == ReadingBatch::kNoType) a.type = b.type[i];
    }
    if (std::all_of(a.have.begin(), a.have.end(), [](uint8_t h) { return h != 0; })) Close(a, out);
  }
}

void AssetScorer::Flush(std::vector<AssetScore>* out) {
  for (auto& a : assets_)
    if (a->tick != kNoTick && !a->closed) Close(*a, out);
}

void AssetScorer::Close(Asset& a, std::vector<AssetScore>* out) {
  if (a.closed) return;
  a.closed = true;
  c_.vectors++;
  const size_t d = a.d();
  size_t present = 0;
  for (size_t c = 0; c < d; c++) present += a.have[c];
  if (present < d) {
    for (size_t c = 0; c < d; c++) {
      if (a.have[c]) continue;
      if (a.last_tick[c] == kNoTick || a.tick - a.last_tick[c] > opt_.max_stale_ticks) {
        c_.incomplete++;
        return;
      }
      a.cur[c] = a.last[c];
    }
  }
  Score(a, a.idx, present == d, out);
}

void AssetScorer::Score(Asset& a, uint32_t idx, bool complete, std::vector<AssetScore>* out) {
  const size_t d = a.d();
  auto learn = [&] {
    if (a.window.size() < opt_.window) {
      a.window.push_back(a.cur);
    } else {
      a.window[a.pos] = a.cur;
      a.pos = (a.pos + 1) % opt_.window;
    }
    a.since_fit++;
    if (a.window.size() >= opt_.window && (!a.pca || a.since_fit >= opt_.refit_every)) {
      auto p = std::make_unique<PcaDetector>(opt_.pca);
      if (p->Fit(a.window).ok()) {
        a.pca = std::move(p);
        c_.refits++;
      } else {
        c_.fit_errors++;
      }
      a.since_fit = 0;
    }
  };
  if (!a.pca) {  // warm-up: learn only from complete vectors, score nothing
    if (complete) {
      c_.warmup++;
      learn();
    }
    return;
  }
  AssetScore s;
  s.asset = idx;
  s.tick_us = a.tick * opt_.tick_us;
  s.channels = static_cast<uint16_t>(d);
  s.present = 0;
  for (size_t c = 0; c < d; c++) s.present += a.have[c];
  a.pca->Stats(a.cur.data(), &s.t2, &s.q);
  const double raw = a.pca->Severity(a.cur.data(), &a.attr);
  a.smooth += opt_.pca.alpha * (raw - a.smooth);
  s.severity = a.smooth;
  s.score = SeverityToScore(a.smooth);
  s.predicted = a.smooth >= 1.0;
  size_t top = 0;
  for (size_t c = 1; c < a.attr.size(); c++)
    if (a.attr[c] > a.attr[top]) top = c;
  s.top_channel = static_cast<int32_t>(top);
  s.top_share = a.attr.empty() ? 0.f : static_cast<float>(a.attr[top]);
  s.gt = a.gt;
  s.gt_channel = a.gt_channel;
  s.type = a.type;
  c_.scored++;
  if (!complete) c_.partial++;
  out->push_back(s);
  // Keep learning from complete vectors whose correlation structure holds (Q within its limit): a fault
  // that breaks the structure is never learnt, while a new operating point along the learnt components
  // (T² high, Q normal) is, so the model follows it instead of flagging it for ever.
  (void)raw;
  if (complete && s.q < a.pca->q_limit()) learn();
}

}  // namespace iotpipe
