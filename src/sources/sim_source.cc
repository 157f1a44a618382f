#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "sources/source.h"

namespace iotpipe {

SimSource::SimSource(const SimSourceOptions& opt, Clock* clock) : opt_(opt), clock_(clock), sim_(opt.sim) {}

std::string SimSource::Describe() const { return "simulator(" + std::to_string(opt_.sim.sensors) + " sensors)"; }

// When the next reading is due on the clock: its sensor time, or with a speedup, the first poll's
// clock time plus the sensor time elapsed since the start divided by the speedup.
int64_t SimSource::Due() {
  const int64_t d = sim_.NextDueMicros();
  if (opt_.speedup <= 0) return d;
  if (pace0_ < 0) pace0_ = clock_->NowMicros();
  return pace0_ + static_cast<int64_t>(static_cast<double>(d - opt_.sim.start_us) / opt_.speedup);
}

PollResult SimSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (opt_.max_events >= 0) max = static_cast<size_t>(std::min<int64_t>(max, opt_.max_events - sent_));
  if (opt_.max_steps >= 0 && sim_.step() >= opt_.max_steps) max = 0;
  if (max == 0) return PollResult::kEnd;
  int64_t now = opt_.realtime ? clock_->NowMicros() : 0;
  if (opt_.realtime && Due() > now) {
    // Sleep until the next reading is due, but wake often enough to stay responsive.
    clock_->SleepUntil(std::min(Due(), now + 50000));
    now = clock_->NowMicros();
    if (Due() > now) return PollResult::kIdle;
  }
  out.data.reserve(max * 128);  // batches are recycled: this allocates once
  out.offsets.reserve(max + 1);
  for (size_t i = 0; i < max; i++) {
    if (opt_.max_steps >= 0 && sim_.step() >= opt_.max_steps) break;
    if (opt_.realtime && Due() > now) break;
    SimReading r = sim_.Next();
    if (!sim_.Encode(r, out)) malformed_++;
  }
  sent_ += static_cast<int64_t>(out.size());
  if (opt_.max_events > 0)
    done_.store(static_cast<double>(sent_) / static_cast<double>(opt_.max_events), std::memory_order_relaxed);
  else if (opt_.max_steps > 0)
    done_.store(static_cast<double>(sim_.step()) / static_cast<double>(opt_.max_steps), std::memory_order_relaxed);
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
  struct stat st;
  const bool known = fstat(fileno(f_), &st) == 0;
  if (known && S_ISDIR(st.st_mode)) return Status::InvalidArgument("input " + path_ + " is a directory");
  if (known && !S_ISREG(st.st_mode)) fd_ = fileno(f_);  // a stream: read as it arrives
  if (known && fd_ < 0 && st.st_size > 0) size_ = st.st_size, done_.store(0);
  return Status::OK();
}

FileSource::~FileSource() {
  if (own_ && f_) std::fclose(f_);
  std::free(line_);
}

PollResult FileSource::PollStream(RawBatch& out, size_t max) {
  auto take_lines = [&] {
    while (out.size() < max) {
      size_t nl = pending_.find('\n', pending_pos_);
      if (nl == std::string::npos) {
        if (!eof_) break;
        nl = pending_.size();  // end of input: the last line needs no newline
        if (pending_pos_ >= nl) break;
      }
      std::string_view rec(pending_.data() + pending_pos_, nl - pending_pos_);
      pending_pos_ = std::min(nl + 1, pending_.size());
      while (!rec.empty() && (rec.back() == '\n' || rec.back() == '\r')) rec.remove_suffix(1);
      if (!rec.empty()) out.Add(rec);  // blank lines separate nothing and are not records
    }
    if (pending_pos_ > 0 && (pending_pos_ >= pending_.size() || pending_pos_ > (1u << 20))) {
      pending_.erase(0, pending_pos_);
      pending_pos_ = 0;
    }
  };
  take_lines();
  if (out.size() == 0 && !eof_) {
    struct pollfd p {
      fd_, POLLIN, 0
    };
    int r = poll(&p, 1, 100);
    if (r > 0) {
      // What is there now (up to 1 MiB), without waiting for more.
      char buf[1 << 16];
      for (int i = 0; i < 16; i++) {
        ssize_t n = read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          if (n == 0 || errno != EAGAIN) eof_ = true;
          break;
        }
        pending_.append(buf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof buf) break;
        struct pollfd q {
          fd_, POLLIN, 0
        };
        if (poll(&q, 1, 0) <= 0) break;
      }
      take_lines();
    }
  }
  out.sent = static_cast<int64_t>(out.size());
  out.Seal();
  if (out.size()) return PollResult::kData;
  if (eof_ && pending_pos_ >= pending_.size()) {
    if (own_ && f_) std::fclose(f_);
    f_ = nullptr;
    return PollResult::kEnd;
  }
  return PollResult::kIdle;
}

PollResult FileSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (!f_) return PollResult::kEnd;
  if (fd_ >= 0) return PollStream(out, max);
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
  if (size_ > 0) done_.store(f_ ? static_cast<double>(ftello(f_)) / static_cast<double>(size_) : 1.0);
  out.sent = static_cast<int64_t>(out.size());
  out.Seal();
  return out.size() ? PollResult::kData : PollResult::kEnd;
}

}  // namespace iotpipe
