#include "pipeline/offset_ledger.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "core/fsutil.h"
#include "pipeline/checkpoint.h"
#include "pipeline/processor.h"

namespace fs = std::filesystem;

namespace iotpipe {

namespace {
// <files>-p<partition>-o<first>-<last>.parquet
const std::regex& PositionedName() {
  static const std::regex re(R"(^(.+)-p(\d+)-o(\d+)-(\d+)\.parquet$)");
  return re;
}
}  // namespace

OffsetLedger::OffsetLedger(std::string data_dir, PositionNames names, Processor* proc, const Dictionaries* dicts,
                           Env* env)
    : data_dir_(std::move(data_dir)),
      names_(std::move(names)),
      env_(env ? env : Env::Default()),
      proc_(proc),
      dicts_(dicts) {
  committed_ = ReadMarkers();
}

std::string OffsetLedger::MarkerPath(const std::string& data_dir, const std::string& markers, int32_t partition) {
  return data_dir + "/_offsets/" + markers + "-p" + std::to_string(partition);
}

std::string OffsetLedger::StatePath(const std::string& data_dir, const std::string& markers, int32_t partition) {
  return data_dir + "/state/" + markers + "-p" + std::to_string(partition) + ".ckpt";
}

OffsetMap OffsetLedger::ReadMarkers() const {
  OffsetMap out;
  std::error_code ec;
  const std::string prefix = names_.markers + "-p";
  for (auto it = fs::directory_iterator(data_dir_ + "/_offsets", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    std::string num = name.substr(prefix.size());
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) continue;
    auto text = env_->ReadFile(it->path().string());
    if (!text.ok()) continue;
    char* end = nullptr;
    long long v = std::strtoll(text.value().c_str(), &end, 10);
    if (end == text.value().c_str()) continue;
    out[std::stoi(num)] = v;
  }
  return out;
}

Result<int64_t> OffsetLedger::Recover(int32_t kpart) {
  int64_t marker = -1;
  const std::string mpath = MarkerPath(data_dir_, names_.markers, kpart);
  auto text = env_->ReadFile(mpath);
  // An unreadable marker is not "no marker": that would delete committed files.
  if (!text.ok() && !text.status().IsNotFound()) return text.status().Prefixed("reading commit marker");
  if (text.ok()) {
    char* end = nullptr;
    long long v = std::strtoll(text.value().c_str(), &end, 10);
    if (end == text.value().c_str()) return Status::Corruption("corrupt commit marker " + mpath);
    marker = v;
  }
  std::error_code ec;
  std::smatch m;
  for (const char* sub : {"/sensor_readings", "/dead_letters"}) {
    std::string dir = data_dir_ + sub;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> doomed;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (!std::regex_match(name, m, PositionedName()) || m[1].str() != names_.files || std::stoi(m[2].str()) != kpart)
        continue;
      int64_t first = std::stoll(m[3].str()), last = std::stoll(m[4].str());
      if (first > marker) {
        doomed.push_back(it->path());
      } else if (last > marker) {
        spdlog::warn("{} straddles the commit marker {} of partition {}; kept", name, marker, kpart);
      }
    }
    for (auto& f : doomed) {
      Status s = env_->RemoveFile(f.string());
      if (!s.ok()) return s.Prefixed("cannot remove uncommitted " + f.string());
      s = env_->SyncPath(f.parent_path().string());
      if (!s.ok()) return s;
    }
  }
  return marker;
}

Status OffsetLedger::Commit(const OffsetMap& durable) {
  for (auto& [p, off] : durable) {
    auto c = committed_.find(p);
    if (off < 0 || (c != committed_.end() && c->second >= off)) continue;
    if (!offsets_dir_made_) {
      Status s = MakeDirs(env_, data_dir_ + "/_offsets");
      if (!s.ok()) return s;
      offsets_dir_made_ = true;
    }
    Status s = WriteFileAtomic(env_, MarkerPath(data_dir_, names_.markers, p), std::to_string(off) + "\n");
    if (!s.ok()) return s;
    committed_[p] = off;
  }
  return Status::OK();
}

void OffsetLedger::Observe(const ProcessedBatch& b) {
  const auto& r = b.readings;
  if (!proc_ || r.origins.size() != r.size()) return;
  std::lock_guard<std::mutex> l(part_mu_);
  for (size_t i = 0; i < r.size(); i++) {
    const uint32_t id = r.sensor[i];
    if (id >= sensor_part_.size()) sensor_part_.resize(std::max<size_t>(id + 1, sensor_part_.size() * 3 / 2), -1);
    sensor_part_[id] = r.origins[i].partition;
  }
}

void OffsetLedger::SaveStates(const std::set<int32_t>& parts) {
  if (!proc_ || parts.empty() || data_dir_.empty()) return;
  const std::string blob = proc_->SnapshotState();
  CheckpointView v;
  if (blob.empty() || !ParseCheckpoint(blob, "snapshot", &v).ok()) return;
  std::map<int32_t, std::pair<std::string, uint64_t>> per;  // partition -> payload, sensors
  for (int32_t p : parts) per[p];
  {
    std::lock_guard<std::mutex> l(part_mu_);
    for (auto& [name, st] : v.entries) {
      int32_t p = -1;
      uint32_t id = dicts_ ? dicts_->sensors.Find(name) : Interner::kNone;
      if (id != Interner::kNone && id < sensor_part_.size()) p = sensor_part_[id];
      if (p < 0) {
        auto it = loaded_part_.find(std::string(name));
        if (it != loaded_part_.end()) p = it->second;
      }
      auto it = per.find(p);
      if (it == per.end()) continue;
      AppendCheckpointEntry(&it->second.first, name, st.data(), v.stride);
      it->second.second++;
    }
  }
  Status s = MakeDirs(env_, data_dir_ + "/state");
  for (auto& [p, pl] : per) {
    if (s.ok())
      s = WriteFileAtomic(env_, StatePath(data_dir_, names_.markers, p),
                          FormatCheckpoint(v.name, v.version, v.stride, pl.first, pl.second));
    if (!s.ok()) {
      spdlog::warn("kafka: cannot save the detector state of partition {}: {}", p, s.message());
      return;
    }
  }
  spdlog::debug("kafka: saved detector state of {} partition(s)", per.size());
}

void OffsetLedger::LoadStates(const std::set<int32_t>& parts, const std::function<bool()>& drain) {
  if (!proc_ || data_dir_.empty()) return;
  bool drained = false;
  for (int32_t p : parts) {
    const std::string path = StatePath(data_dir_, names_.markers, p);
    auto data = ReadCheckpointFile(env_, path, path);
    if (!data.ok()) {
      if (env_->FileExists(path))
        spdlog::warn("kafka: not restoring detector state of partition {}: {}", p, data.status().message());
      continue;  // else: no state saved for this partition yet
    }
    CheckpointView v;
    Status s = ParseCheckpoint(data.value(), path, &v);
    if (!s.ok()) {
      spdlog::warn("kafka: not restoring detector state of partition {}: {} is malformed", p, path);
      continue;
    }
    // The processor owns the state: restore only while the pipeline is idle (everything handed
    // out so far processed and stored), which the drain guarantees.
    if (!drained && drain) drained = drain();
    s = proc_->LoadCheckpoint(path);
    if (!s.ok()) {
      spdlog::warn("kafka: not restoring detector state of partition {}: {}", p, s.message());
      continue;
    }
    {
      std::lock_guard<std::mutex> l(part_mu_);
      for (auto& e : v.entries) loaded_part_[std::string(e.first)] = p;
    }
    spdlog::info("kafka: restored detector state of {} sensor(s) of partition {}", v.entries.size(), p);
  }
}

}  // namespace iotpipe
