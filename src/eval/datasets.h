// Where the public benchmark data lives: <repo>/../shared/datasets (CI clones the repo with shared/ beside it),
// else /work/shared/datasets. IOTPIPE_DATASETS overrides both. For tests only (IOTPIPE_SOURCE_DIR is defined
// for the test binary alone): the commands take the data directory as a flag (nab/skab --data).
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace iotpipe {

inline std::string SharedDatasetsDir() {
  if (const char* env = std::getenv("IOTPIPE_DATASETS"); env && *env) return env;
  std::error_code ec;
#ifdef IOTPIPE_SOURCE_DIR
  std::string beside = std::string(IOTPIPE_SOURCE_DIR) + "/../shared/datasets";
  if (std::filesystem::is_directory(beside, ec)) return beside;
#endif
  return "/work/shared/datasets";
}

}  // namespace iotpipe
