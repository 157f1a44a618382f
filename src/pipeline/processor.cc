#include "pipeline/processor.h"

#include <cstring>

#include "core/fsutil.h"

namespace iotpipe {

Processor::Processor(Dictionaries* dicts, std::shared_ptr<const Detector> det, PipelineMetrics* m, Clock* clock)
    : dicts_(dicts), parser_(&dicts->sensors, &dicts->types), m_(m), clock_(clock) {
  det_ = std::move(det);
  state_ = StateStore(det_->state_bytes());
  model_id_ = static_cast<uint16_t>(dicts_->models.Intern(det_->version()));
  det_->Bind(&dicts_->sensors, &dicts_->models);
}

void Processor::SetDetector(std::shared_ptr<const Detector> det) {
  std::lock_guard<std::mutex> g(det_mu_);
  pending_ = std::move(det);
}

std::shared_ptr<const Detector> Processor::detector() const {
  std::lock_guard<std::mutex> g(det_mu_);
  return pending_ ? pending_ : det_;
}

void Processor::Process(const RawBatch& raw, ProcessedBatch& out) {
  {
    std::lock_guard<std::mutex> g(det_mu_);
    if (pending_) {
      if (pending_->state_bytes() != det_->state_bytes() || pending_->name() != det_->name())
        state_ = StateStore(pending_->state_bytes());
      det_ = std::move(pending_);
      pending_.reset();
      model_id_ = static_cast<uint16_t>(dicts_->models.Intern(det_->version()));
      det_->Bind(&dicts_->sensors, &dicts_->models);
    }
  }
  int64_t t0 = MonoMicros();
  out.readings.Clear();
  out.dead.Clear();
  out.sent = raw.sent;
  out.readings.processing_ts_us = clock_->NowMicros();
  out.dead.received_ts_us = out.readings.processing_ts_us;
  parser_.Parse(raw, out);
  ReadingBatch& b = out.readings;
  std::fill(b.model.begin(), b.model.end(), model_id_);
  det_->ScoreBatch(b, state_);
  int64_t pred = 0, truth = 0, tp = 0;
  for (size_t i = 0, n = b.size(); i < n; i++) {
    pred += b.predicted[i];
    truth += b.gt[i];
    tp += b.predicted[i] & b.gt[i];
  }
  m_->received_bytes += static_cast<int64_t>(raw.data.size());
  m_->parsed += static_cast<int64_t>(b.size());
  m_->dead_letter += static_cast<int64_t>(out.dead.size());
  m_->predicted += pred;
  m_->truth += truth;
  m_->tp += tp;
  m_->sensors = dicts_->sensors.size();
  for (int r = 1; r < static_cast<int>(Reject::kCount) && r < 16; r++)
    m_->rejected_by_reason[r] = static_cast<int64_t>(parser_.rejected(static_cast<Reject>(r)));
  m_->batch_seconds.Observe(static_cast<double>(MonoMicros() - t0) / 1e6);
}

// Checkpoint layout: magic, detector name, version, stride, count, then per sensor: name, state bytes.
Status Processor::SaveCheckpoint(const std::string& path) {
  std::string out = "IOTPCKP1\n";
  out += std::string(det_->name()) + "\n" + std::string(det_->version()) + "\n";
  const size_t stride = state_.stride();
  uint64_t n = 0;
  for (uint32_t i = 0; i < state_.size() && i < dicts_->sensors.size(); i++) n += state_.Has(i);
  out += std::to_string(stride) + " " + std::to_string(n) + "\n";
  for (uint32_t i = 0; i < state_.size() && i < dicts_->sensors.size(); i++) {
    if (!state_.Has(i)) continue;
    const std::string& name = dicts_->sensors.Name(i);
    uint32_t len = static_cast<uint32_t>(name.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out.append(name);
    out.append(reinterpret_cast<const char*>(state_.Peek(i)), stride);
  }
  Status s = MakeDirs(ParentDir(path));
  if (!s.ok()) return s;
  return WriteFileAtomic(path, out);
}

Status Processor::LoadCheckpoint(const std::string& path) {
  auto data = ReadFile(path);
  if (!data.ok()) return data.status();
  const std::string& d = data.value();
  size_t pos = 0;
  auto line = [&](std::string* out) {
    size_t e = d.find('\n', pos);
    if (e == std::string::npos) return false;
    *out = d.substr(pos, e - pos);
    pos = e + 1;
    return true;
  };
  std::string magic, name, version, dims;
  if (!line(&magic) || magic != "IOTPCKP1" || !line(&name) || !line(&version) || !line(&dims))
    return Status::Error("checkpoint " + path + " is not an iotpipe checkpoint");
  // Detectors with the same name share a state layout (the rule SetDetector uses), so a checkpoint
  // written by another version of the same detector (e.g. before a model promotion) is restored.
  if (name != det_->name())
    return Status::Error("checkpoint " + path + " was written by " + name + " " + version + ", not " +
                         std::string(det_->name()));
  size_t stride = 0;
  uint64_t n = 0;
  if (std::sscanf(dims.c_str(), "%zu %lu", &stride, &n) != 2 || stride != state_.stride())
    return Status::Error("checkpoint " + path + " has an incompatible state layout");
  for (uint64_t k = 0; k < n; k++) {
    uint32_t len;
    if (pos + 4 > d.size()) return Status::Error("checkpoint " + path + " is truncated");
    std::memcpy(&len, d.data() + pos, 4);
    pos += 4;
    if (len > 4096 || pos + len + stride > d.size()) return Status::Error("checkpoint " + path + " is truncated");
    uint32_t id = dicts_->sensors.Intern(std::string_view(d.data() + pos, len));
    pos += len;
    if (id == Interner::kNone) return Status::Error("checkpoint has more sensors than the sensor table holds");
    bool fresh;
    std::byte* st = state_.Get(id, &fresh);
    std::memcpy(st, d.data() + pos, stride);
    pos += stride;
  }
  return Status::OK();
}

}  // namespace iotpipe
