#include "sim/simulator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <numbers>

namespace iotpipe {

Result<Profile> ParseProfile(std::string_view s) {
  if (s == "basic") return Profile::kBasic;
  if (s == "realistic") return Profile::kRealistic;
  return Status::Error("unknown profile '" + std::string(s) + "' (basic|realistic)");
}

std::string_view AnomalyKindName(AnomalyKind k) {
  switch (k) {
    case AnomalyKind::kNone:
      return "none";
    case AnomalyKind::kSpike:
      return "spike";
    case AnomalyKind::kDrop:
      return "drop";
    case AnomalyKind::kLevelShift:
      return "level_shift";
    case AnomalyKind::kDrift:
      return "drift";
    case AnomalyKind::kStuck:
      return "stuck";
    case AnomalyKind::kNoiseBurst:
      return "noise_burst";
    case AnomalyKind::kPatternBreak:
      return "pattern_break";
    case AnomalyKind::kCorrelationBreak:
      return "correlation_break";
  }
  return "none";
}

const std::vector<std::string_view>& FleetSimulator::MalformedKinds() {
  static const std::vector<std::string_view> k = {"invalid_json",     "missing_field",      "wrong_type",
                                                  "non_finite_value", "value_out_of_range", "not_an_object",
                                                  "oversize",         "invalid_sensor_id",  "timestamp_out_of_range"};
  return k;
}

FleetSimulator::FleetSimulator(const SimConfig& cfg) : cfg_(cfg) {
  if (cfg_.anomaly_rate < 0)
    cfg_.anomaly_rate = cfg_.asset_size > 0 ? 0.25 : cfg_.profile == Profile::kBasic ? 0.001 : 1.0 / 8.0;
  sensors_.resize(cfg_.sensors);
  Rng fleet(Mix(cfg_.seed, 0xF1EE7));
  for (uint32_t i = 0; i < cfg_.sensors; i++) {
    Sensor& s = sensors_[i];
    s.offset_s = fleet.Uniform() * cfg_.interval_s;
    s.sigma = fleet.Uniform(0.2, 1.0);
    s.base = fleet.Uniform(10, 40);
    s.amp = fleet.Uniform(3, 8) * s.sigma;
    s.phase = fleet.Uniform(0, 2 * std::numbers::pi);
    s.phi = fleet.Uniform(0.5, 0.9);
    s.rng.Seed(Mix(Mix(cfg_.seed, i + 1), static_cast<uint64_t>(cfg_.start_us)));
    s.last_value = s.base;
  }
  if (cfg_.asset_size > 0) {
    Rng af(Mix(cfg_.seed, 0xA55E7));
    assets_.resize((cfg_.sensors + cfg_.asset_size - 1) / cfg_.asset_size);
    for (size_t a = 0; a < assets_.size(); a++) {
      AssetLatent& L = assets_[a];
      L.offset_s = af.Uniform(0.1, 0.9) * cfg_.interval_s;
      L.amp = af.Uniform(1, 3);
      L.phase = af.Uniform(0, 2 * std::numbers::pi);
      L.phi = af.Uniform(0.95, 0.99);
      L.rng.Seed(Mix(Mix(cfg_.seed, 0xA55E7 + a), static_cast<uint64_t>(cfg_.start_us)));
    }
    for (uint32_t i = 0; i < cfg_.sensors; i++) sensors_[i].offset_s = assets_[i / cfg_.asset_size].offset_s;
  }
  order_.resize(cfg_.sensors);
  for (uint32_t i = 0; i < cfg_.sensors; i++) order_[i] = i;
  std::sort(order_.begin(), order_.end(),
            [&](uint32_t a, uint32_t b) { return sensors_[a].offset_s < sensors_[b].offset_s; });
  mal_rng_.Seed(Mix(cfg_.seed, 0xBAD));
}

int64_t FleetSimulator::NextDueMicros() const {
  if (sensors_.empty()) return cfg_.start_us;
  const Sensor& s = sensors_[order_[pos_]];
  return cfg_.start_us + static_cast<int64_t>(std::llround((step_ * cfg_.interval_s + s.offset_s) * 1e6));
}

SimReading FleetSimulator::Next() {
  uint32_t id = order_[pos_];
  Sensor& s = sensors_[id];
  SimReading r;
  r.sensor = id;
  double jitter = cfg_.asset_size > 0 ? 0.0 : (s.rng.Uniform() - 0.5) * 0.1 * cfg_.interval_s;
  double t = (step_ * cfg_.interval_s + s.offset_s + jitter);
  // Millisecond resolution, as devices report.
  r.ts_us = cfg_.start_us + static_cast<int64_t>(std::llround(t * 1e3)) * 1000;
  r.value = cfg_.asset_size > 0 ? GenerateAsset(id, step_, &r.kind) : Generate(s, step_, &r.kind);
  if (cfg_.regime_from_us > 0 && r.ts_us >= cfg_.regime_from_us)
    r.value = std::round((s.base + (r.value - s.base) * cfg_.regime_scale + cfg_.regime_shift * s.sigma) * 1000) / 1000;
  if (++pos_ == cfg_.sensors) {
    pos_ = 0;
    step_++;
  }
  return r;
}

double FleetSimulator::Generate(Sensor& s, int64_t step, AnomalyKind* kind) {
  Rng& g = s.rng;
  if (cfg_.profile == Profile::kBasic) {
    // The original design's model exactly: N(25, 5); with p = 0.001 an anomaly drawn uniform(50, 100).
    if (g.Bernoulli(cfg_.anomaly_rate)) {
      *kind = AnomalyKind::kSpike;
      return std::round(g.Uniform(50, 100) * 1000) / 1000;
    }
    *kind = AnomalyKind::kNone;
    return std::round(g.Normal(25, 5) * 1000) / 1000;
  }
  // Realistic: baseline + daily cycle + AR(1) noise, with labelled anomaly episodes.
  const double day = 86400.0;
  double t_s = static_cast<double>(cfg_.start_us) / 1e6 + step * cfg_.interval_s + s.offset_s;
  double w = 2 * std::numbers::pi * t_s / day;
  double innov = std::sqrt(1 - s.phi * s.phi) * s.sigma;
  double noise_mult = 1.0;
  if (s.ep_left == 0) {
    s.ep = AnomalyKind::kNone;
    double p_start = cfg_.anomaly_rate * cfg_.interval_s / 3600.0;
    if (g.Bernoulli(p_start)) {
      s.ep = static_cast<AnomalyKind>(1 + g.Below(kNumAnomalyKinds - 1));
      double per_step = 1.0 / cfg_.interval_s;
      auto len = [&](double lo_s, double hi_s) {
        return std::max<int64_t>(1, static_cast<int64_t>(g.Uniform(lo_s, hi_s) * per_step));
      };
      double sign = g.Bernoulli(0.5) ? 1 : -1;
      switch (s.ep) {
        case AnomalyKind::kSpike:
          s.ep_len = 1;
          s.ep_mag = g.Uniform(6, 12) * s.sigma;
          break;
        case AnomalyKind::kDrop:
          s.ep_len = 1;
          s.ep_mag = -g.Uniform(6, 12) * s.sigma;
          break;
        case AnomalyKind::kLevelShift:
          s.ep_len = len(120, 900);
          s.ep_mag = sign * g.Uniform(3, 6) * s.sigma;
          break;
        case AnomalyKind::kDrift:
          s.ep_len = len(600, 3600);
          s.ep_mag = sign * g.Uniform(4, 8) * s.sigma;
          break;
        case AnomalyKind::kStuck:
          s.ep_len = len(120, 900);
          s.stuck_value = s.last_value;
          break;
        case AnomalyKind::kNoiseBurst:
          s.ep_len = len(60, 600);
          s.ep_mag = g.Uniform(4, 8);
          break;
        case AnomalyKind::kPatternBreak:
          s.ep_len = len(600, 3600);
          s.ep_mag = g.Uniform(0.6, 1.0) * std::numbers::pi;
          break;
        default:
          break;
      }
      s.ep_left = s.ep_len;
    }
  }
  double cycle_phase = s.phase;
  double offset = 0;
  AnomalyKind k = s.ep_left > 0 ? s.ep : AnomalyKind::kNone;
  int64_t done = s.ep_len - s.ep_left;  // steps into the episode
  switch (k) {
    case AnomalyKind::kSpike:
    case AnomalyKind::kDrop:
    case AnomalyKind::kLevelShift:
      offset = s.ep_mag;
      break;
    case AnomalyKind::kDrift:
      offset = s.ep_mag * static_cast<double>(done + 1) / static_cast<double>(s.ep_len);
      break;
    case AnomalyKind::kNoiseBurst:
      noise_mult = s.ep_mag;
      break;
    case AnomalyKind::kPatternBreak:
      cycle_phase += s.ep_mag;
      break;
    default:
      break;
  }
  s.ar = s.phi * s.ar + innov * g.Normal();
  double v = s.base + s.amp * std::sin(w + cycle_phase) + s.ar * noise_mult + offset;
  if (k == AnomalyKind::kStuck) v = s.stuck_value;
  if (s.ep_left > 0) s.ep_left--;
  v = std::round(v * 1000) / 1000;
  if (k != AnomalyKind::kStuck) s.last_value = v;
  *kind = k;
  return v;
}

// One channel of a correlated asset: base + gain * (cycle + AR(1) latent) + small own noise.
double FleetSimulator::GenerateAsset(uint32_t id, int64_t step, AnomalyKind* kind) {
  Sensor& s = sensors_[id];
  AssetLatent& L = assets_[id / cfg_.asset_size];
  const uint32_t first = id / cfg_.asset_size * cfg_.asset_size;
  const uint32_t size = std::min(cfg_.asset_size, cfg_.sensors - first);
  if (L.step < step) {  // advance the shared latent once per step
    L.step = step;
    const double innov = std::sqrt(1 - L.phi * L.phi);
    L.ar = L.phi * L.ar + innov * L.rng.Normal();
    if (L.brk_left > 0) {
      L.indep = L.phi * L.indep + innov * L.rng.Normal();
      L.brk_left--;
    } else if (size > 1 && L.rng.Bernoulli(cfg_.anomaly_rate * cfg_.interval_s / 3600.0)) {
      L.brk_left = std::max<int64_t>(1, static_cast<int64_t>(L.rng.Uniform(300, 900) / cfg_.interval_s));
      L.brk_channel = static_cast<uint32_t>(L.rng.Below(size));
      L.indep = L.ar;  // starts where the latent is: no jump, it only wanders off
    }
  }
  const double day = 86400.0;
  const double t_s = static_cast<double>(cfg_.start_us) / 1e6 + step * cfg_.interval_s + s.offset_s;
  const double cycle = L.amp * std::sin(2 * std::numbers::pi * t_s / day + L.phase);
  const bool broken = L.brk_left > 0 && id - first == L.brk_channel;
  const double gain = s.amp;  // 3..8 sigma: a per-channel gain
  const double v = s.base + gain * (cycle + (broken ? L.indep : L.ar)) + 0.1 * s.sigma * s.rng.Normal();
  *kind = broken ? AnomalyKind::kCorrelationBreak : AnomalyKind::kNone;
  return std::round(v * 1000) / 1000;
}

char* ToCharsMilli(char* p, char* end, double v) {
  // m / 1000 == v exactly as doubles: v is the correctly rounded value of the decimal m / 1000,
  // so that decimal (trailing zeros dropped) round-trips and no shorter decimal does (with a
  // non-zero fraction, dropping a digit moves the value by >= 0.001, far beyond half an ulp at
  // |m| < 10^15). With a fraction, fixed notation is never longer than scientific, and on a tie
  // (0.001 vs 1e-03) to_chars prefers fixed.
  if (!(std::fabs(v) < 1e12)) return std::to_chars(p, end, v).ptr;
  const int64_t m = std::llround(v * 1000);
  if (m % 1000 == 0 || static_cast<double>(m) / 1000 != v) return std::to_chars(p, end, v).ptr;
  uint64_t a = m < 0 ? static_cast<uint64_t>(-m) : static_cast<uint64_t>(m);
  if (m < 0) *p++ = '-';
  p = std::to_chars(p, end, a / 1000).ptr;
  unsigned f = static_cast<unsigned>(a % 1000);
  char d[3] = {static_cast<char>('0' + f / 100), static_cast<char>('0' + f / 10 % 10), static_cast<char>('0' + f % 10)};
  int n = d[2] != '0' ? 3 : d[1] != '0' ? 2 : 1;
  *p++ = '.';
  for (int i = 0; i < n; i++) *p++ = d[i];
  return p;
}

static void AppendDouble(std::string& out, double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void FleetSimulator::EncodeDevice(const std::vector<SimReading>& group, RawBatch& out) const {
  if (group.empty() || cfg_.asset_size == 0) return;
  std::string s = "{\"device\": \"asset_" + std::to_string(group[0].sensor / cfg_.asset_size) + "\", \"ts\": ";
  char buf[32];
  s.append(buf, std::to_chars(buf, buf + sizeof buf, (group[0].ts_us + 500) / 1000).ptr);
  bool any = false;
  for (const SimReading& r : group) {
    s += ", \"q" + std::to_string(r.sensor % cfg_.asset_size) + "\": ";
    s.append(buf, ToCharsMilli(buf, buf + sizeof buf, r.value));
    any |= r.kind != AnomalyKind::kNone;
  }
  s += any ? ", \"is_anomaly_ground_truth\": true}" : ", \"is_anomaly_ground_truth\": false}";
  out.Add(s);
}

bool FleetSimulator::Encode(const SimReading& r, RawBatch& out) {
  std::string& s = scratch_;
  s.clear();
  bool malformed = cfg_.malformed_rate > 0 && mal_rng_.Bernoulli(cfg_.malformed_rate);
  double ts = static_cast<double>(r.ts_us) / 1e6;
  if (!malformed) {
    // Hot path: one fixed buffer, no allocation (a record is < 160 bytes).
    char buf[256];
    char* p = buf;
    char* const end = buf + sizeof buf;
    auto put = [&p](std::string_view v) {
      std::memcpy(p, v.data(), v.size());
      p += v.size();
    };
    put("{\"sensor_id\": \"sensor_");
    p = std::to_chars(p, end, r.sensor).ptr;
    put("\", \"timestamp\": ");
    p = ToCharsMilli(p, end, ts);
    put(", \"value\": ");
    p = ToCharsMilli(p, end, r.value);
    if (cfg_.asset_size > 0) {
      put(", \"asset_id\": \"asset_");
      p = std::to_chars(p, end, r.sensor / cfg_.asset_size).ptr;
      put("\"");
    }
    if (r.kind == AnomalyKind::kNone) {
      put(", \"is_anomaly_ground_truth\": false}");
    } else {
      put(", \"is_anomaly_ground_truth\": true, \"anomaly_type\": \"");
      put(AnomalyKindName(r.kind));
      put("\"}");
    }
    out.Add(std::string_view(buf, static_cast<size_t>(p - buf)));
    return true;
  }
  std::string id = SensorName(r.sensor);
  std::string tss;
  AppendDouble(tss, ts);
  switch (mal_rng_.Below(MalformedKinds().size())) {
    case 0:
      s = "{\"sensor_id\": \"" + id + "\", \"timestamp\": " + tss + ", \"val";
      break;  // truncated
    case 1:
      s = "{\"sensor_id\": \"" + id + "\", \"timestamp\": " + tss + ", \"is_anomaly_ground_truth\": false}";
      break;
    case 2:
      s = "{\"sensor_id\": \"" + id + "\", \"timestamp\": " + tss +
          ", \"value\": \"25.1\", \"is_anomaly_ground_truth\": false}";
      break;
    case 3:
      s = "{\"sensor_id\": \"" + id + "\", \"timestamp\": " + tss +
          ", \"value\": NaN, \"is_anomaly_ground_truth\": false}";
      break;
    case 4:
      s = "{\"sensor_id\": \"" + id + "\", \"timestamp\": " + tss +
          ", \"value\": 1e400, \"is_anomaly_ground_truth\": false}";
      break;
    case 5:
      s = "[\"" + id + "\", " + tss + ", 25.0, false]";
      break;
    case 6:
      s = "{\"sensor_id\": \"" + id + "\", \"timestamp\": " + tss +
          ", \"value\": 25.0, \"is_anomaly_ground_truth\": false, \"pad\": \"" + std::string(70000, 'x') + "\"}";
      break;
    case 7:
      s = "{\"sensor_id\": \"\", \"timestamp\": " + tss + ", \"value\": 25.0, \"is_anomaly_ground_truth\": false}";
      break;
    default:
      s = "{\"sensor_id\": \"" + id + "\", \"timestamp\": -5, \"value\": 25.0, \"is_anomaly_ground_truth\": false}";
      break;
  }
  out.Add(s);
  return false;
}

}  // namespace iotpipe
