#include <cstdio>

#include "sources/source.h"

namespace iotpipe {

SimSource::SimSource(const SimSourceOptions& opt, Clock* clock) : opt_(opt), clock_(clock), sim_(opt.sim) {}

std::string SimSource::Describe() const {
  return "simulator(" + std::to_string(opt_.sim.sensors) + " sensors)";
}

PollResult SimSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (opt_.max_events >= 0) max = static_cast<size_t>(std::min<int64_t>(max, opt_.max_events - sent_));
  if (opt_.max_steps >= 0 && sim_.step() >= opt_.max_steps) max = 0;
  if (max == 0) return PollResult::kEnd;
  int64_t now = opt_.realtime ? clock_->NowMicros() : 0;
  if (opt_.realtime && sim_.NextDueMicros() > now) {
    // Sleep until the next reading is due, but wake often enough to stay responsive.
    clock_->SleepUntil(std::min(sim_.NextDueMicros(), now + 50000));
    now = clock_->NowMicros();
    if (sim_.NextDueMicros() > now) return PollResult::kIdle;
  }
  out.data.reserve(max * 128);  // batches are recycled: this allocates once
  out.offsets.reserve(max + 1);
  for (size_t i = 0; i < max; i++) {
    if (opt_.max_steps >= 0 && sim_.step() >= opt_.max_steps) break;
    if (opt_.realtime && sim_.NextDueMicros() > now) break;
    SimReading r = sim_.Next();
    if (!sim_.Encode(r, out)) malformed_++;
  }
  sent_ += static_cast<int64_t>(out.size());
  out.sent = static_cast<int64_t>(out.size());
  out.Seal();
  return out.size() ? PollResult::kData : PollResult::kEnd;
}

Status FileSource::Start() {
  if (path_ == "-") {
    f_ = stdin;
  } else {
    f_ = std::fopen(path_.c_str(), "rb");
    if (!f_) return Status::Error("cannot open input " + path_);
    own_ = true;
  }
  return Status::OK();
}

FileSource::~FileSource() {
  if (own_ && f_) std::fclose(f_);
  std::free(line_);
}

PollResult FileSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (!f_) return PollResult::kEnd;
  while (out.size() < max) {
    ssize_t n = getline(&line_, &cap_, f_);
    if (n < 0) {
      if (own_) std::fclose(f_);
      f_ = nullptr;
      break;
    }
    std::string_view rec(line_, static_cast<size_t>(n));
    while (!rec.empty() && (rec.back() == '\n' || rec.back() == '\r')) rec.remove_suffix(1);
    if (rec.empty()) continue;  // blank lines separate nothing and are not records
    out.Add(rec);
  }
  out.sent = static_cast<int64_t>(out.size());
  out.Seal();
  return out.size() ? PollResult::kData : PollResult::kEnd;
}

}  // namespace iotpipe
