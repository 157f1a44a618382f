#include "detect/baseline.h"
#include "detect/detector.h"

namespace iotpipe {

std::vector<std::string> DetectorNames() { return {"baseline"}; }

Result<std::unique_ptr<Detector>> MakeDetector(std::string_view name) {
  if (name == "baseline") return std::unique_ptr<Detector>(std::make_unique<BaselineDetector>());
  return Status::Error("unknown detector '" + std::string(name) + "'");
}

}  // namespace iotpipe
