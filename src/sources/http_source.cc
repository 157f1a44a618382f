#include "sources/http_source.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "core/clock.h"

namespace iotpipe {

namespace {

constexpr uint16_t kOriginalMapping = 1;  // JSON bodies when the pipeline's mapping is not a JSON shape
constexpr uint16_t kLineProtocol0 = 2;    // line protocol: 2 + TimeUnit (kAuto .. kNanos)

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

void SplitLines(std::string_view body, bool comments, RawBatch* out) {
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (IsBlank(line)) continue;
    if (comments && line[line.find_first_not_of(" \t")] == '#') continue;
    out->Add(line);
  }
}

bool SplitJsonArray(std::string_view body, RawBatch* out, std::string* error) {
  simdjson::dom::parser parser;
  simdjson::dom::array arr;
  auto err = parser.parse(body.data(), body.size()).get_array().get(arr);
  if (err) {
    *error = std::string("body is not a JSON array: ") + simdjson::error_message(err);
    return false;
  }
  for (simdjson::dom::element el : arr) out->Add(simdjson::minify(el));
  return true;
}

bool ValidName(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

// One request: its records until handed out, then its positions and counts until answered.
struct HttpSource::Pending {
  RawBatch recs;
  uint16_t mapping = 0;
  size_t bytes = 0;  // counted in queued_bytes_ until wholly handed out
  size_t next = 0;   // next record to hand out
  int64_t first = -1, last = -1;
  int64_t records = 0, readings = 0, dead = 0, need = -1;  // need: highest position that produced a row
  bool observed = false, done = false;
  IngestReply reply;
};

class HttpSource::Observer final : public Sink {
 public:
  explicit Observer(HttpSource* s) : s_(s) {}
  Status Write(const ProcessedBatch& b) override {
    s_->Observe(b);
    return Status::OK();
  }

 private:
  HttpSource* s_;
};

HttpSource::HttpSource(HttpSourceOptions opt) : opt_(std::move(opt)), observer_(std::make_unique<Observer>(this)) {
  const InputFormat f = opt_.mapping.format;
  json_is_pipelines_ =
      f == InputFormat::kOriginal || f == InputFormat::kJson || f == InputFormat::kTelegraf || f == InputFormat::kFlat;
}

HttpSource::~HttpSource() { (void)Stop(); }

Sink* HttpSource::observer() { return observer_.get(); }

std::vector<std::pair<uint16_t, InputMapping>> HttpSource::mappings() const {
  std::vector<std::pair<uint16_t, InputMapping>> out;
  if (!json_is_pipelines_) out.emplace_back(kOriginalMapping, InputMapping{});
  InputMapping lp = opt_.mapping.format == InputFormat::kInflux ? opt_.mapping : InputMapping{};
  lp.format = InputFormat::kInflux;
  lp.separator = opt_.mapping.separator;
  lp.arrival_time = true;  // a line without a timestamp is stamped on arrival, as InfluxDB does
  for (TimeUnit u : {TimeUnit::kAuto, TimeUnit::kSeconds, TimeUnit::kMillis, TimeUnit::kMicros, TimeUnit::kNanos}) {
    lp.time_unit = std::string(TimeUnitName(u));
    out.emplace_back(static_cast<uint16_t>(kLineProtocol0 + static_cast<int>(u)), lp);
  }
  return out;
}

uint16_t HttpSource::MappingFor(BodyFormat f, TimeUnit precision) const {
  if (f == BodyFormat::kLineProtocol) return static_cast<uint16_t>(kLineProtocol0 + static_cast<int>(precision));
  return json_is_pipelines_ ? 0 : kOriginalMapping;
}

PositionNames HttpSource::position_names() const {
  return PositionNames{"http-" + opt_.name, "http-" + opt_.name, "http:" + opt_.name};
}

std::map<std::string, int64_t> HttpSource::Counters() const {
  return {
      {"http_requests", requests_.load()}, {"http_records", records_.load()}, {"http_queue_full", queue_full_.load()}};
}

bool HttpSource::SplitBody(std::string_view body, BodyFormat format, RawBatch* out, std::string* error) {
  const size_t lead = body.find_first_not_of(" \t\r\n");
  if (lead == std::string_view::npos) return true;
  if (format == BodyFormat::kJson && body[lead] == '[') return SplitJsonArray(body, out, error);
  SplitLines(body, format == BodyFormat::kLineProtocol, out);
  return true;
}

Status HttpSource::Start() {
  if (!ValidName(opt_.name)) return Status::InvalidArgument("http ingest name '" + opt_.name + "': [A-Za-z0-9_.-]");
  std::lock_guard<std::mutex> l(mu_);
  last_activity_us_ = MonoMicros();
  return Status::OK();
}

IngestReply HttpSource::Ingest(std::string_view body, BodyFormat format, TimeUnit precision) {
  auto p = std::make_shared<Pending>();
  if (!SplitBody(body, format, &p->recs, &p->reply.error)) {
    p->reply.code = IngestReply::kBadBody;
    return p->reply;
  }
  p->mapping = MappingFor(format, precision);
  p->records = static_cast<int64_t>(p->recs.size());
  p->bytes = p->recs.data.size() + p->recs.offsets.size() * sizeof(uint32_t);
  p->reply.records = p->records;
  requests_++;
  if (p->records == 0) return p->reply;  // nothing to store: durable at once
  std::unique_lock<std::mutex> l(mu_);
  if (stopped_) return IngestReply{IngestReply::kUnavailable, p->records, 0, 0, "shutting down"};
  if (queued_bytes_ > 0 && queued_bytes_ + p->bytes > opt_.max_queue_bytes) {
    queue_full_++;
    return IngestReply{IngestReply::kQueueFull, p->records, 0, 0, "ingest queue full"};
  }
  queued_bytes_ += p->bytes;
  queued_records_ += p->records;
  queue_.push_back(p);
  queued_cv_.notify_one();
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(opt_.request_timeout_s * 1000));
  if (!done_cv_.wait_for(l, timeout, [&] { return p->done; }))
    return IngestReply{IngestReply::kTimeout, p->records, 0, 0, "not durable in time; the records may still be stored"};
  return p->reply;
}

bool HttpSource::Recover() {
  // Partition 0: files past the commit marker are removed (never answered), numbering resumes after it.
  auto marker = listener_ ? listener_->Recover(0) : Result<int64_t>(int64_t{-1});
  if (!marker.ok()) {
    spdlog::error("http ingest: {}", marker.status().message());
    return false;
  }
  if (listener_) listener_->Assigned({0});
  std::lock_guard<std::mutex> l(mu_);
  next_pos_ = marker.value() + 1;
  acked_ = marker.value();
  recovered_ = true;
  return true;
}

PollResult HttpSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (!recovered_ && !Recover()) return PollResult::kEnd;
  std::unique_lock<std::mutex> l(mu_);
  if (stopped_) return PollResult::kEnd;
  if (queue_.empty()) {
    queued_cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return !queue_.empty() || stopped_; });
    if (queue_.empty()) return IdleEnd(MonoMicros()) ? PollResult::kEnd : PollResult::kIdle;
  }
  HandOut(out, max);
  last_activity_us_ = MonoMicros();
  l.unlock();
  out.sent = static_cast<int64_t>(out.size());
  out.Seal();
  return PollResult::kData;
}

bool HttpSource::IdleEnd(int64_t now_us) {
  if (opt_.exit_when_idle_s <= 0) return false;
  if (!inflight_.empty()) last_activity_us_ = now_us;
  return static_cast<double>(now_us - last_activity_us_) / 1e6 >= opt_.exit_when_idle_s;
}

void HttpSource::HandOut(RawBatch& out, size_t max) {
  out.mapping = queue_.front()->mapping;
  while (out.size() < max && !queue_.empty() && queue_.front()->mapping == out.mapping) {
    Pending& p = *queue_.front();
    if (p.next == 0) {
      p.first = next_pos_;
      inflight_.push_back(queue_.front());
    }
    const size_t n = std::min(p.recs.size() - p.next, max - out.size());
    for (size_t i = 0; i < n; i++) {
      out.Add(p.recs.record(p.next + i));
      out.origins.push_back(Origin{0, next_pos_++});
    }
    p.next += n;
    queued_records_ -= static_cast<int64_t>(n);
    if (p.next < p.recs.size()) break;
    p.last = next_pos_ - 1;
    queued_bytes_ -= p.bytes;
    p.recs = RawBatch();
    queue_.pop_front();
  }
  records_ += static_cast<int64_t>(out.size());
  batch_last_.push_back(next_pos_ - 1);
}

HttpSource::Pending* HttpSource::Find(int64_t position) {
  auto it = std::upper_bound(inflight_.begin(), inflight_.end(), position,
                             [](int64_t pos, const std::shared_ptr<Pending>& p) { return pos < p->first; });
  return it == inflight_.begin() ? nullptr : (it - 1)->get();
}

void HttpSource::Observe(const ProcessedBatch& b) {
  std::lock_guard<std::mutex> l(mu_);
  auto count = [this](const std::vector<Origin>& origins, int64_t Pending::*field) {
    for (const Origin& o : origins) {
      Pending* p = o.partition == 0 ? Find(o.offset) : nullptr;
      if (!p) continue;
      p->*field += 1;
      p->need = std::max(p->need, o.offset);
    }
  };
  count(b.readings.origins, &Pending::readings);
  count(b.dead.origins, &Pending::dead);
  if (batch_last_.empty()) return;
  const int64_t written = batch_last_.front();  // every position up to it is in the store now
  batch_last_.pop_front();
  for (auto& p : inflight_)
    if (p->last >= 0 && p->last <= written) p->observed = true;
  Complete();
}

void HttpSource::Ack(const OffsetMap& durable) {
  auto it = durable.find(0);
  if (it == durable.end()) return;
  std::lock_guard<std::mutex> l(mu_);
  acked_ = std::max(acked_, it->second);
  Complete();
}

void HttpSource::Complete() {
  bool any = false;
  for (auto& p : inflight_) {
    if (p->done || !p->observed || p->need > acked_) continue;
    p->reply.code = IngestReply::kDurable;
    p->reply.readings = p->readings;
    p->reply.dead_letters = p->dead;
    p->done = any = true;
  }
  while (!inflight_.empty() && inflight_.front()->done) inflight_.pop_front();
  if (any) done_cv_.notify_all();
}

Status HttpSource::Stop() {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return Status::OK();
  stopped_ = true;
  for (auto* d : {&queue_, &inflight_}) {
    for (auto& p : *d) {
      if (p->done) continue;
      p->done = true;
      p->reply.code = IngestReply::kUnavailable;
      p->reply.error = "shutting down before the records were durable";
    }
    d->clear();
  }
  queued_bytes_ = 0;
  queued_records_ = 0;
  queued_cv_.notify_all();
  done_cv_.notify_all();
  return Status::OK();
}

}  // namespace iotpipe
