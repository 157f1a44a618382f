#include "pipeline/processor.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/checksum.h"
#include "core/fsutil.h"
#include "pipeline/checkpoint.h"

namespace iotpipe {

Processor::Processor(Dictionaries* dicts, std::shared_ptr<const Detector> det, PipelineMetrics* m, Clock* clock)
    : dicts_(dicts), parser_(&dicts->sensors, &dicts->types), m_(m), clock_(clock) {
  parser_.SetAssets(&dicts->assets);
  if (clock) parser_.SetClock(clock);
  det_ = std::move(det);
  state_ = StateStore(det_->state_bytes());
  model_id_ = static_cast<uint16_t>(dicts_->models.Intern(det_->version()));
  det_->Bind(&dicts_->sensors, &dicts_->models);
}

Status Processor::SetInputMapping(const InputMapping& m, uint16_t id) {
  if (id == 0) return parser_.SetMapping(m);
  auto p = std::make_unique<Parser>(&dicts_->sensors, &dicts_->types);
  p->SetAssets(&dicts_->assets);
  if (clock_) p->SetClock(clock_);
  Status s = p->SetMapping(m);
  if (s.ok()) alt_parsers_[id] = std::move(p);
  return s;
}

Parser& Processor::ParserFor(uint16_t id) {
  auto it = id == 0 ? alt_parsers_.end() : alt_parsers_.find(id);
  return it == alt_parsers_.end() ? parser_ : *it->second;
}

void Processor::CountParsed() {
  int64_t skipped = static_cast<int64_t>(parser_.skipped()), expanded = static_cast<int64_t>(parser_.expanded());
  for (auto& [id, p] : alt_parsers_) {
    skipped += static_cast<int64_t>(p->skipped());
    expanded += static_cast<int64_t>(p->expanded());
  }
  m_->skipped = skipped;
  m_->expanded = expanded;
  for (int r = 1; r < static_cast<int>(Reject::kCount) && r < 16; r++) {
    uint64_t n = parser_.rejected(static_cast<Reject>(r));
    for (auto& [id, p] : alt_parsers_) n += p->rejected(static_cast<Reject>(r));
    m_->rejected_by_reason[r] = static_cast<int64_t>(n);
  }
}

void Processor::SetDetector(std::shared_ptr<const Detector> det) {
  std::lock_guard<std::mutex> g(det_mu_);
  pending_ = std::move(det);
}

std::shared_ptr<const Detector> Processor::detector() const {
  std::lock_guard<std::mutex> g(det_mu_);
  return pending_ ? pending_ : det_;
}

void Processor::SetShadow(std::shared_ptr<const Detector> det) {
  std::lock_guard<std::mutex> g(det_mu_);
  shadow_pending_ = std::move(det);
  shadow_change_ = true;
}

std::shared_ptr<const Detector> Processor::shadow() const {
  std::lock_guard<std::mutex> g(det_mu_);
  return shadow_change_ ? shadow_pending_ : shadow_;
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
    if (shadow_change_) {
      if (!shadow_pending_) {
        shadow_state_ = StateStore();
      } else if (shadow_pending_->state_bytes() != shadow_state_.stride() ||
                 (shadow_ && shadow_pending_->name() != shadow_->name())) {
        shadow_state_ = StateStore(shadow_pending_->state_bytes());
      }
      shadow_ = std::move(shadow_pending_);
      shadow_pending_.reset();
      shadow_change_ = false;
      if (shadow_) {
        shadow_model_id_ = static_cast<uint16_t>(dicts_->models.Intern(shadow_->version()));
        shadow_->Bind(&dicts_->sensors, &dicts_->models);
      }
    }
  }
  int64_t t0 = MonoMicros();
  out.readings.Clear();
  out.dead.Clear();
  out.sensor_meta.clear();
  out.sent = raw.sent;
  out.readings.processing_ts_us = clock_->NowMicros();
  out.dead.received_ts_us = out.readings.processing_ts_us;
  ParserFor(raw.mapping).Parse(raw, out);
  ReadingBatch& b = out.readings;
  std::fill(b.model.begin(), b.model.end(), model_id_);
  det_->ScoreBatch(b, state_);
  out.shadow_score.clear();
  out.shadow_predicted.clear();
  out.shadow_model.clear();
  if (shadow_) {
    // The shadow scores the same rows into the batch's score columns with its own state; the
    // production results are parked in the shadow vectors meanwhile, then the two are swapped.
    const size_t n = b.size();
    std::swap(b.score, out.shadow_score);
    std::swap(b.predicted, out.shadow_predicted);
    std::swap(b.model, out.shadow_model);
    b.score.assign(n, 0.f);
    b.predicted.assign(n, 0);
    b.model.assign(n, shadow_model_id_);
    shadow_->ScoreBatch(b, shadow_state_);
    std::swap(b.score, out.shadow_score);
    std::swap(b.predicted, out.shadow_predicted);
    std::swap(b.model, out.shadow_model);
  }
  int64_t pred = 0, truth = 0, tp = 0, unl = 0, unl_pred = 0;
  for (size_t i = 0, n = b.size(); i < n; i++) {
    pred += b.predicted[i];
    if (!ReadingBatch::Labelled(b.gt[i])) unl++, unl_pred += b.predicted[i];
    const bool pos = ReadingBatch::Positive(b.gt[i]);  // unlabelled rows count as neither
    truth += pos;
    tp += b.predicted[i] & pos;
  }
  m_->received_bytes += static_cast<int64_t>(raw.data.size());
  m_->parsed += static_cast<int64_t>(b.size());
  m_->dead_letter += static_cast<int64_t>(out.dead.size());
  m_->predicted += pred;
  m_->truth += truth;
  m_->unlabelled += unl;
  m_->unlabelled_predicted += unl_pred;
  CountParsed();
  m_->tp += tp;
  m_->sensors = dicts_->sensors.size();
  m_->batch_seconds.Observe(static_cast<double>(MonoMicros() - t0) / 1e6);
}

std::string Processor::SnapshotState(bool shadow) {
  std::shared_ptr<const Detector> det;
  {
    std::lock_guard<std::mutex> g(det_mu_);
    det = shadow ? shadow_ : det_;
  }
  if (!det) return {};
  const StateStore& st = shadow ? shadow_state_ : state_;
  const size_t stride = st.stride();
  std::string payload;
  uint64_t n = 0;
  const uint32_t lim = std::min<uint32_t>(static_cast<uint32_t>(st.size()), dicts_->sensors.size());
  for (uint32_t i = 0; i < lim; i++) {
    if (!st.Has(i)) continue;
    AppendCheckpointEntry(&payload, dicts_->sensors.Name(i), st.Peek(i), stride);
    n++;
  }
  return FormatCheckpoint(det->name(), det->version(), stride, payload, n);
}

Status Processor::SaveCheckpoint(const std::string& path, bool shadow, Env* env) {
  std::string out = SnapshotState(shadow);
  if (out.empty()) return Status::OK();
  if (!env) env = Env::Default();
  Status s = MakeDirs(env, ParentDir(path));
  if (!s.ok()) return s;
  return WriteFileAtomic(env, path, out);
}

Status Processor::LoadCheckpoint(const std::string& path, bool shadow) {
  std::shared_ptr<const Detector> det;
  {
    std::lock_guard<std::mutex> g(det_mu_);
    det = shadow ? (shadow_change_ ? shadow_pending_ : shadow_) : (pending_ ? pending_ : det_);
  }
  if (!det) return Status::Error("no " + std::string(shadow ? "shadow " : "") + "detector to restore into");
  const std::string what = "checkpoint " + path;
  auto data = ReadCheckpointFile(Env::Default(), path, what);
  if (!data.ok()) return data.status();
  CheckpointView v;
  Status ps = ParseCheckpoint(data.value(), what, &v);  // everything is validated before touching the state
  if (!ps.ok()) return ps;
  // Detectors with the same name share a state layout (the rule SetDetector uses), so a checkpoint
  // written by another version of the same detector (e.g. before a model promotion) is restored.
  if (v.name != det->name())
    return Status::Error(what + " was written by " + std::string(v.name) + " " + std::string(v.version) + ", not " +
                         std::string(det->name()));
  const size_t stride = v.stride;
  if (stride != det->state_bytes())
    return Status::Error(what + " holds " + std::to_string(stride) + "-byte states, the detector uses " +
                         std::to_string(det->state_bytes()));
  StateStore& st = shadow ? shadow_state_ : state_;
  if (st.stride() != stride) st = StateStore(stride);
  for (auto& [nm, bytes] : v.entries) {
    uint32_t id = dicts_->sensors.Intern(nm);
    if (id == Interner::kNone) return Status::Error("checkpoint has more sensors than the sensor table holds");
    bool fresh;
    std::memcpy(st.Get(id, &fresh), bytes.data(), stride);
  }
  return Status::OK();
}

}  // namespace iotpipe
