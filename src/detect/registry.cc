#include "model/registry.h"

#include "detect/adaptive.h"
#include "detect/artime.h"
#include "detect/artimelik.h"
#include "detect/baseline.h"
#include "detect/cadose.h"
#include "detect/detector.h"
#include "detect/likelihood.h"
#include "detect/lstm.h"

namespace iotpipe {

std::vector<std::string> DetectorNames() {
  return {"baseline", "adaptive", "likelihood", "cadose", "artime", "artimelik", "lstm", "auto", "ensemble"};
}

Result<std::unique_ptr<Detector>> MakeDetector(std::string_view name) { return MakeDetector(name, DetectorOptions{}); }

Result<std::unique_ptr<Detector>> MakeDetector(std::string_view name, const DetectorOptions& opt) {
  if (name == "baseline") return std::unique_ptr<Detector>(std::make_unique<BaselineDetector>());
  if (name == "adaptive") return std::unique_ptr<Detector>(std::make_unique<AdaptiveDetector>());
  if (name == "likelihood") return std::unique_ptr<Detector>(std::make_unique<LikelihoodDetector>());
  if (name == "cadose") return std::unique_ptr<Detector>(std::make_unique<CadOseDetector>());
  if (name == "artime") return std::unique_ptr<Detector>(std::make_unique<ArtimeDetector>());
  if (name == "artimelik") return std::unique_ptr<Detector>(std::make_unique<ArtimeLikDetector>());
  auto mode = ParseLstmMode(name);
  if (mode.ok()) {
    auto dir = ml::Registry(opt.model_dir).Resolve(opt.model);
    if (!dir.ok()) return Status::Error("detector " + std::string(name) + ": " + dir.status().message());
    auto d = LstmDetector::Load(dir.value(), mode.value(), opt.threads);
    if (!d.ok()) return d.status();
    return std::unique_ptr<Detector>(std::move(d.value()));
  }
  return Status::Error("unknown detector '" + std::string(name) + "'");
}

}  // namespace iotpipe
