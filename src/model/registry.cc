#include "model/registry.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/clock.h"
#include "core/fsutil.h"
#include "core/timeutil.h"
#include "model/model.h"

namespace iotpipe::ml {

namespace fs = std::filesystem;

static bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool VersionLess(const std::string& a, const std::string& b) {
  auto num = [](const std::string& s) -> long {
    if (s.size() < 2 || s[0] != 'v' || !std::all_of(s.begin() + 1, s.end(), ::isdigit)) return -1;
    return std::atol(s.c_str() + 1);
  };
  long x = num(a), y = num(b);
  if (x >= 0 && y >= 0) return x < y;
  if ((x >= 0) != (y >= 0)) return x >= 0;
  return a < b;
}

std::vector<ModelInfo> Registry::List(bool validate) const {
  std::vector<ModelInfo> out;
  std::error_code ec;
  std::vector<std::pair<std::string, std::string>> aliases;  // alias -> version
  for (auto it = fs::directory_iterator(dir_ + "/aliases", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.find('.') != std::string::npos) continue;
    aliases.emplace_back(n, Alias(n));
  }
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (!it->is_directory() || n == "aliases" || n[0] == '.') continue;
    ModelInfo mi;
    mi.version = n;
    for (auto& [a, v] : aliases)
      if (v == n) mi.aliases.push_back(a);
    std::sort(mi.aliases.begin(), mi.aliases.end());
    auto card = ReadFile(it->path().string() + "/model_card.json");
    if (card.ok()) {
      mi.card = nlohmann::json::parse(card.value(), nullptr, false);
      if (mi.card.is_object() && mi.card.contains("created") && mi.card["created"].is_string())
        mi.created = mi.card["created"].get<std::string>();
      if (mi.card.is_discarded()) mi.card = nlohmann::json::object();
    }
    if (validate) {
      auto m = Model::Load(it->path().string());
      mi.valid = m.ok();
      if (!m.ok()) mi.error = m.status().message();
    } else {
      mi.valid = card.ok();
    }
    out.push_back(std::move(mi));
  }
  std::sort(out.begin(), out.end(),
            [](const ModelInfo& a, const ModelInfo& b) { return VersionLess(a.version, b.version); });
  return out;
}

std::string Registry::Alias(const std::string& alias) const {
  auto r = ReadFile(dir_ + "/aliases/" + alias);
  if (!r.ok()) return "";
  std::string v = r.value();
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return ValidName(v) ? v : "";
}

std::vector<std::string> Registry::History(const std::string& alias) const {
  std::vector<std::string> h;
  auto r = ReadFile(dir_ + "/aliases/" + alias + ".history");
  if (!r.ok()) return h;
  std::istringstream in(r.value());
  std::string line;
  while (std::getline(in, line))
    if (ValidName(line)) h.push_back(line);
  return h;
}

Result<std::string> Registry::Resolve(const std::string& spec) const {
  if (!ValidName(spec)) return Status::Error("invalid model name '" + spec + "'");
  std::string v = spec;
  std::error_code ec;
  if (!fs::is_directory(dir_ + "/" + spec, ec)) {
    v = Alias(spec);
    if (v.empty()) return Status::Error("no model version or alias '" + spec + "' in " + dir_);
  }
  return dir_ + "/" + v;
}

Status Registry::WriteAlias(const std::string& alias, const std::string& version, bool record) {
  Status s = MakeDirs(dir_ + "/aliases");
  if (!s.ok()) return s;
  if (record) {
    auto h = History(alias);
    h.push_back(version);
    std::string text;
    for (auto& v : h) text += v + "\n";
    s = WriteFileAtomic(env_, dir_ + "/aliases/" + alias + ".history", text);
    if (!s.ok()) return s;
  }
  return WriteFileAtomic(env_, dir_ + "/aliases/" + alias, version + "\n");
}

Status Registry::Promote(const std::string& version, const std::string& alias) {
  if (!ValidName(alias)) return Status::Error("invalid alias '" + alias + "'");
  if (!ValidName(version)) return Status::Error("invalid version '" + version + "'");
  auto m = Model::Load(dir_ + "/" + version);
  if (!m.ok()) return Status::Error("refusing to promote " + version + ": " + m.status().message());
  if (Alias(alias) != version) {
    Status s = WriteAlias(alias, version, true);
    if (!s.ok()) return s;
  }
  // The version promoted to production leaves `shadow`: it would otherwise be scored twice.
  if (alias == "production" && Alias("shadow") == version) return ClearAlias("shadow");
  return Status::OK();
}

Status Registry::ClearAlias(const std::string& alias) {
  if (!ValidName(alias)) return Status::Error("invalid alias '" + alias + "'");
  if (Alias(alias).empty()) return Status::OK();
  return WriteFileAtomic(env_, dir_ + "/aliases/" + alias, "");  // an empty alias file reads as unset
}

Status Registry::CheckPromotion(const std::string& version, const std::string& alias) const {
  if (!ValidName(version)) return Status::InvalidArgument("invalid version '" + version + "'");
  const std::string cur = Alias(alias);
  auto loss = [&](const std::string& v) {
    auto r = ReadFile(dir_ + "/" + v + "/model_card.json");
    auto j = r.ok() ? nlohmann::json::parse(r.value(), nullptr, false) : nlohmann::json();
    return j.is_object() && j.contains("best_val_loss") && j["best_val_loss"].is_number()
               ? j["best_val_loss"].get<double>()
               : -1.0;
  };
  if (!cur.empty() && cur != version) {
    const double mine = loss(version), theirs = loss(cur);
    if (mine >= 0 && theirs >= 0 && mine > theirs * 1.1) {
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "refusing to point %s at %s: its validation loss %.4g is worse than %s's %.4g "
                    "(--force to promote anyway)",
                    alias.c_str(), version.c_str(), mine, cur.c_str(), theirs);
      return Status::PermissionDenied(buf);
    }
  }
  const nlohmann::json ev = Evaluations(version);
  for (auto it = ev.rbegin(); it != ev.rend(); ++it) {
    if (!it->is_object() || !it->contains("shadow_at_least_as_good")) continue;
    if (!(*it)["shadow_at_least_as_good"].get<bool>())
      return Status::PermissionDenied("refusing to point " + alias + " at " + version +
                                      ": its latest shadow comparison found it worse than production (" + it->dump() +
                                      "; --force to promote anyway)");
    break;
  }
  return Status::OK();
}

nlohmann::json Registry::Evaluations(const std::string& version) const {
  auto r = ReadFile(dir_ + "/" + version + "/evaluations.json");
  if (!r.ok()) return nlohmann::json::array();
  auto j = nlohmann::json::parse(r.value(), nullptr, false);
  return j.is_array() ? j : nlohmann::json::array();
}

Status Registry::AddEvaluation(const std::string& version, nlohmann::json entry) {
  if (!ValidName(version)) return Status::Error("invalid version '" + version + "'");
  std::error_code ec;
  if (!fs::is_directory(dir_ + "/" + version, ec))
    return Status::Error("no model version '" + version + "' in " + dir_);
  nlohmann::json all = Evaluations(version);
  entry["recorded"] = FormatIsoMicros(env_->clock()->NowMicros());
  all.push_back(std::move(entry));
  while (all.size() > 100) all.erase(all.begin());
  return WriteFileAtomic(env_, dir_ + "/" + version + "/evaluations.json", all.dump(2));
}

Result<std::string> Registry::Rollback(const std::string& alias) {
  const std::string cur = Alias(alias);
  auto h = History(alias);
  // Walk back past the current version to the newest earlier one that still loads.
  while (!h.empty() && h.back() == cur) h.pop_back();
  while (!h.empty()) {
    std::string prev = h.back();
    auto m = Model::Load(dir_ + "/" + prev);
    if (m.ok()) {
      // Rewrite the history without the versions rolled back over, then the alias.
      std::string text;
      for (auto& v : h) text += v + "\n";
      Status s = MakeDirs(dir_ + "/aliases");
      if (s.ok()) s = WriteFileAtomic(env_, dir_ + "/aliases/" + alias + ".history", text);
      if (s.ok()) s = WriteAlias(alias, prev, false);
      if (!s.ok()) return s;
      return prev;
    }
    h.pop_back();
  }
  return Status::Error("nothing to roll back to: alias '" + alias + "' has no earlier valid version");
}

}  // namespace iotpipe::ml
