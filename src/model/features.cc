#include "model/features.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace iotpipe::ml {

nlohmann::json FeatureConfig::ToJson() const {
  return {{"enabled", enabled},     {"rule", rule},           {"alpha_level", alpha_level},
          {"alpha_var", alpha_var}, {"winsor", winsor},       {"max_impute", max_impute},
          {"thr_point", thr_point}, {"thr_level", thr_level}, {"thr_var", thr_var},
          {"thr_stuck", thr_stuck}, {"release", release},     {"calibration", calibration}};
}

Result<FeatureConfig> FeatureConfig::FromJson(const nlohmann::json& j) {
  FeatureConfig c;
  try {
    c.enabled = j.at("enabled").get<bool>();
    c.rule = j.value("rule", 1);  // absent: a model from before rule 2
    c.alpha_level = j.at("alpha_level").get<double>();
    c.alpha_var = j.at("alpha_var").get<double>();
    c.winsor = j.at("winsor").get<double>();
    c.max_impute = j.at("max_impute").get<int>();
    c.thr_point = j.at("thr_point").get<double>();
    c.thr_level = j.at("thr_level").get<double>();
    c.thr_var = j.at("thr_var").get<double>();
    c.thr_stuck = j.at("thr_stuck").get<double>();
    c.release = j.at("release").get<double>();
    if (j.contains("calibration")) c.calibration = j["calibration"];
  } catch (const std::exception& e) {
    return Status::Error(std::string("features: ") + e.what());
  }
  auto pos = [](double v) { return v > 0 && std::isfinite(v); };
  if (!(c.alpha_level > 0 && c.alpha_level <= 1) || !(c.alpha_var > 0 && c.alpha_var <= 1))
    return Status::Error("features: alpha_level and alpha_var must be in (0, 1]");
  if (!pos(c.winsor) || !pos(c.thr_point) || !pos(c.thr_level) || !pos(c.thr_var) || !pos(c.thr_stuck))
    return Status::Error("features: thresholds and winsor must be > 0");
  if (!(c.release > 0 && c.release <= 1)) return Status::Error("features: release must be in (0, 1]");
  if (c.max_impute < 0) return Status::Error("features: max_impute must be >= 0");
  if (c.rule != 1 && c.rule != 2)
    return Status::Error("features: unknown rule " + std::to_string(c.rule) + " (this build knows 1 and 2)");
  return c;
}

void InitFeatureState(FeatureState& s) {
  s = FeatureState{};
  s.var = 1.0;  // the normal level of the winsorised innovation^2: no warm-up alarm
}

double EwmaSd(double alpha, double phi) {
  const double b = (1 - alpha) * std::clamp(phi, -0.99, 0.99);
  return std::sqrt(alpha / (2 - alpha) * (1 + b) / (1 - b));
}

FeatureChannels UpdateFeatures(const FeatureConfig& c, double phi, FeatureState& s, double z, double raw) {
  phi = std::clamp(phi, 0.0, 0.98);
  FeatureChannels ch;
  const double inn = s.n == 0 ? z : (z - phi * s.last_z) / std::sqrt(1 - phi * phi);
  ch.point = std::fabs(inn);
  bool outlier = false;
  if (ch.point >= c.thr_point && s.imputed < static_cast<uint32_t>(c.max_impute) && s.n > 0) {
    s.last_z = phi * s.last_z;  // an outlier is not the base of the next prediction
    s.imputed++;
    outlier = c.rule >= 2;
  } else {
    s.last_z = z;
    s.imputed = 0;
  }
  if (!outlier) {  // rule 2: an imputed outlier enters neither long EWMA
    s.level += c.alpha_level * (z - s.level);
    const double w2 = c.winsor * c.winsor;
    s.var += c.alpha_var * (std::min(inn * inn, w2) - s.var);
  }
  ch.level = std::fabs(s.level) / EwmaSd(c.alpha_level, phi);
  ch.var = s.var;
  if (s.n > 0 && raw == s.last_raw) {
    if (s.run < UINT32_MAX) s.run++;
  } else {
    s.run = 0;
  }
  s.last_raw = raw;
  ch.stuck = s.run;
  if (s.n < UINT32_MAX) s.n++;
  return ch;
}

double CombineSeverity(const FeatureConfig& c, const FeatureChannels& ch, double ae_win, double ae_last,
                       uint8_t& alarm) {
  const double rp = std::max(ch.point / c.thr_point, ae_last);
  const double rc = std::max({ch.level / c.thr_level, ch.var / c.thr_var, ch.stuck / c.thr_stuck, ae_win});
  const bool on = alarm ? rc >= c.release : rc >= 1.0;
  alarm = on ? 1 : 0;
  return std::max(rp, on ? std::max(rc, 1.0) : rc);
}

}  // namespace iotpipe::ml
