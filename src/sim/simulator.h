// A fleet of simulated sensors with labelled anomalies. Deterministic for a given seed: the fleet's
// parameters depend only on the seed; the readings on the seed and the start time.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/batch.h"
#include "core/status.h"
#include "sim/rng.h"

namespace iotpipe {

enum class Profile { kBasic, kRealistic };
Result<Profile> ParseProfile(std::string_view s);

// Anomaly types the simulator injects (names are the stored `anomaly_type` values).
enum class AnomalyKind : uint8_t {
  kNone = 0,
  kSpike,
  kDrop,
  kLevelShift,
  kDrift,
  kStuck,
  kNoiseBurst,
  kPatternBreak,
  kCorrelationBreak
};
constexpr int kNumAnomalyKinds = 8;  // the per-sensor kinds (kCorrelationBreak is injected per asset)
std::string_view AnomalyKindName(AnomalyKind k);

struct SimConfig {
  uint32_t sensors = 100;
  Profile profile = Profile::kBasic;
  uint64_t seed = 42;
  int64_t start_us = 0;       // sensor time of step 0
  double interval_s = 1.0;    // each sensor reads about once per interval
  double anomaly_rate = -1;   // basic: P(point anomaly) (default 0.001);
                              // realistic: episodes per sensor-hour (default 1/8)
  double malformed_rate = 0;  // P(a record is replaced by a malformed one)
  // Regime change (the new normal, not labelled): from this sensor time on (0: never), every value v
  // of a sensor with baseline b and noise sd s becomes b + (v - b) * regime_scale + regime_shift * s.
  int64_t regime_from_us = 0;
  double regime_shift = 0, regime_scale = 1;
  // Assets (0: none): sensors i*K .. i*K+K-1 form asset_<i>, read together (same timestamps) and driven by
  // one latent state (daily cycle + AR(1)); each record carries "asset_id". Anomalies are then correlation
  // breaks only (anomaly_rate episodes per asset-hour, default 1/4): for 5-15 minutes one channel follows
  // an independent copy of the latent, so its own distribution is unchanged and only the joint one breaks.
  // Only that channel's readings are labelled (type correlation_break).
  uint32_t asset_size = 0;
};

struct SimReading {
  uint32_t sensor;
  int64_t ts_us;
  double value;
  AnomalyKind kind;  // kNone = normal
};

// Writes exactly what std::to_chars(p, end, v) writes (the shortest round-trip form), quickly when
// v is a multiple of 0.001 with a non-zero fraction (the simulator's values and millisecond
// timestamps): then the shortest form is the fixed-point decimal without trailing zeros. Anything
// else goes to std::to_chars. end - p must be >= 32.
char* ToCharsMilli(char* p, char* end, double v);

class FleetSimulator {
 public:
  explicit FleetSimulator(const SimConfig& cfg);

  const SimConfig& config() const { return cfg_; }
  // The next reading in (approximate) time order; steps through sensors by phase within each interval.
  SimReading Next();
  // Sensor time at which the next reading is due (for real-time pacing).
  int64_t NextDueMicros() const;
  int64_t step() const { return step_; }
  // Appends the wire record for r (or a malformed one, chosen with malformed_rate) to out.
  // Returns true if the record is well-formed.
  bool Encode(const SimReading& r, RawBatch& out);
  // Device-shaped output (flat device JSON, parse/mapping.h format `flat`): the readings of one
  // asset at one time as one record {"device": "asset_<i>", "ts": <epoch ms>, "q0": v, "q1": v, …,
  // "is_anomaly_ground_truth": any reading anomalous}; quantity q<k> is channel k of the asset.
  // `group` holds readings of one asset (config().asset_size > 0), any order.
  void EncodeDevice(const std::vector<SimReading>& group, RawBatch& out) const;
  static std::string SensorName(uint32_t i) { return "sensor_" + std::to_string(i); }
  static std::string AssetName(uint32_t i) { return "asset_" + std::to_string(i); }

  // Reason names of the malformed records the simulator can emit (for tests).
  static const std::vector<std::string_view>& MalformedKinds();

 private:
  struct Sensor {
    // Fleet parameters (seed only).
    double base, amp, phase, sigma, phi, offset_s;
    // Stream state.
    Rng rng;
    double ar = 0;
    AnomalyKind ep = AnomalyKind::kNone;
    int64_t ep_left = 0, ep_len = 0;
    double ep_mag = 0, stuck_value = 0, last_value = 0;
  };
  struct AssetLatent {
    double offset_s, amp, phase, phi;
    Rng rng;
    int64_t step = -1;  // step the latent was last advanced to
    double ar = 0, indep = 0;
    int64_t brk_left = 0;
    uint32_t brk_channel = 0;
  };
  double Generate(Sensor& s, int64_t step, AnomalyKind* kind);
  double GenerateAsset(uint32_t id, int64_t step, AnomalyKind* kind);
  std::vector<AssetLatent> assets_;

  SimConfig cfg_;
  std::vector<Sensor> sensors_;
  std::vector<uint32_t> order_;  // sensors sorted by phase offset
  int64_t step_ = 0;
  uint32_t pos_ = 0;
  Rng mal_rng_;
  std::string scratch_;
};

}  // namespace iotpipe
