#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

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
    fd_ = STDIN_FILENO;
  } else {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::Error("cannot open input " + path_ + ": " + std::strerror(errno));
    own_ = true;
  }
  struct stat st;
  if (fstat(fd_, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::InvalidArgument("input " + path_ + " is a directory");
    if (S_ISREG(st.st_mode) && st.st_size > 0) size_ = st.st_size, done_.store(0);
  }
  return Status::OK();
}

FileSource::~FileSource() {
  if (own_ && fd_ >= 0) ::close(fd_);
}

// Moves complete lines from pending_ to out; a line growing past max_line_ is cut (kept prefix in cut_,
// the rest counted, not held) and handed out at its newline.
void FileSource::TakeLines(RawBatch& out, size_t max) {
  while (out.size() < max && pending_pos_ < pending_.size()) {
    size_t nl = pending_.find('\n', pending_pos_);
    const bool last = nl == std::string::npos;
    if (last) nl = pending_.size();
    std::string_view piece(pending_.data() + pending_pos_, nl - pending_pos_);
    if (cut_len_ > 0 || piece.size() > max_line_) {  // a line too long to hold
      if (cut_len_ == 0) cut_.assign(piece.substr(0, kKeptOfCutLine));
      cut_len_ += piece.size();
      pending_pos_ = std::min(nl + 1, pending_.size());
      if (last && !eof_) break;  // more of it to come
      out.cut.emplace_back(static_cast<uint32_t>(out.size()), cut_len_);
      out.Add(cut_);
      cut_len_ = 0;
      continue;
    }
    if (last && !eof_) break;  // an incomplete line: wait for the rest
    pending_pos_ = std::min(nl + 1, pending_.size());
    while (!piece.empty() && (piece.back() == '\n' || piece.back() == '\r')) piece.remove_suffix(1);
    if (!piece.empty()) out.Add(piece);  // blank lines separate nothing and are not records
  }
  if (pending_pos_ > 0 && (pending_pos_ >= pending_.size() || pending_pos_ > (1u << 20))) {
    pending_.erase(0, pending_pos_);
    pending_pos_ = 0;
  }
}

PollResult FileSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (fd_ < 0) return PollResult::kEnd;
  TakeLines(out, max);
  if (out.size() < max && !eof_) {
    struct pollfd p {
      fd_, POLLIN, 0
    };
    if (poll(&p, 1, out.size() > 0 ? 0 : 100) > 0) {  // with lines in hand, only what is there already
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
        read_ += n;
        if (static_cast<size_t>(n) < sizeof buf) break;
        struct pollfd q {
          fd_, POLLIN, 0
        };
        if (poll(&q, 1, 0) <= 0) break;
      }
      if (size_ > 0) done_.store(std::min(1.0, static_cast<double>(read_) / static_cast<double>(size_)));
      TakeLines(out, max);
    }
  }
  out.sent = static_cast<int64_t>(out.size());
  out.Seal();
  if (out.size()) return PollResult::kData;
  if (eof_ && pending_pos_ >= pending_.size()) {
    if (own_) ::close(fd_);
    fd_ = -1;
    if (size_ > 0) done_.store(1.0);
    return PollResult::kEnd;
  }
  return PollResult::kIdle;
}

}  // namespace iotpipe
