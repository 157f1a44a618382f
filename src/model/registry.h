// The model registry on disk: models_dir/<version>/ (see model/model.h) plus aliases.
// An alias (production, shadow, ...) is a one-line file models_dir/aliases/<alias> holding a version,
// replaced atomically (temp + fsync + rename); models_dir/aliases/<alias>.history lists every version
// it pointed to, oldest first, for rollback. Promotion validates the model first: a corrupt or
// incompatible model is refused and the alias keeps pointing where it did.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"

namespace iotpipe::ml {

struct ModelInfo {
  std::string version, created;
  std::vector<std::string> aliases;
  bool valid = false;
  std::string error;  // why it is not valid
  nlohmann::json card;
};

class Registry {
 public:
  // Every write and the clock go through env (tests: core/fault_env.h).
  explicit Registry(std::string dir, Env* env = Env::Default()) : dir_(std::move(dir)), env_(env) {}
  const std::string& dir() const { return dir_; }
  // Versions sorted by number (v1, v2, ... v10), each validated unless quick.
  std::vector<ModelInfo> List(bool validate = true) const;
  // Version an alias points to; empty if unset.
  std::string Alias(const std::string& alias) const;
  std::vector<std::string> History(const std::string& alias) const;
  // Resolves an alias name or a version to a model directory.
  Result<std::string> Resolve(const std::string& spec) const;
  // Promoting the version under `shadow` to production also clears `shadow`.
  Status Promote(const std::string& version, const std::string& alias = "production");
  // Whether `version` may replace what `alias` points at: PermissionDenied, with both figures, when its
  // validation loss is more than 10 % above the current version's, or its latest recorded comparison
  // (a shadow run) found it worse. `models promote --force` skips it.
  Status CheckPromotion(const std::string& version, const std::string& alias = "production") const;
  // Unsets an alias (atomically: its file becomes empty); the history stays.
  Status ClearAlias(const std::string& alias);
  // Evaluation results recorded after training (shadow comparisons, backfill evaluations): a JSON
  // array in <version>/evaluations.json, outside the checksummed files (the model stays immutable);
  // `models show` prints them with the card.
  Status AddEvaluation(const std::string& version, nlohmann::json entry);
  nlohmann::json Evaluations(const std::string& version) const;
  // Points alias back at the version it held before the current one; returns that version.
  Result<std::string> Rollback(const std::string& alias = "production");

 private:
  Status WriteAlias(const std::string& alias, const std::string& version, bool record);
  std::string dir_;
  Env* env_;
};

// Compares versions "v2" < "v10" numerically, others lexicographically.
bool VersionLess(const std::string& a, const std::string& b);

}  // namespace iotpipe::ml
