#include "sources/mqtt_source.h"

#include <MQTTAsync.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/clock.h"

namespace iotpipe {

namespace {

constexpr uint64_t kSegmentBytes = 16u << 20;  // a WAL segment is rolled past this size
constexpr size_t kEntryHeader = 8;             // u32 body length, u32 check
constexpr size_t kBodyHeader = 16;             // u64 sequence, u64 digest

uint64_t Fnv(uint64_t h, const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 14695981039346656037ull;

void PutU32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::string SegmentName(int64_t first) {
  char b[48];
  std::snprintf(b, sizeof b, "wal-%020lld.log", static_cast<long long>(first));
  return b;
}

// Parses one entry at p (n bytes available). Returns its size, 0 if incomplete or damaged.
size_t ParseEntry(const char* p, size_t n, int64_t* seq, uint64_t* digest, std::string_view* rec) {
  if (n < kEntryHeader) return 0;
  const uint32_t len = GetU32(p), check = GetU32(p + 4);
  if (len < kBodyHeader || len > (64u << 20) || n < kEntryHeader + len) return 0;
  const char* body = p + kEntryHeader;
  if (static_cast<uint32_t>(Fnv(kFnvBasis, body, len)) != check) return 0;
  *seq = static_cast<int64_t>(GetU64(body));
  *digest = GetU64(body + 8);
  *rec = std::string_view(body + kBodyHeader, len - kBodyHeader);
  return kEntryHeader + len;
}

bool ReadFile(const std::string& path, std::string* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  out->clear();
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  std::fclose(f);
  return true;
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

void JsonEscape(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += b;
    } else {
      out += c;
    }
  }
}

// A plain number payload ("21.3", " -4e2\n"): the trimmed text, else empty.
std::string_view PlainNumber(std::string_view p) {
  while (!p.empty() && std::isspace(static_cast<unsigned char>(p.front()))) p.remove_prefix(1);
  while (!p.empty() && std::isspace(static_cast<unsigned char>(p.back()))) p.remove_suffix(1);
  if (p.empty() || p.size() > 64) return {};
  char buf[72];
  std::memcpy(buf, p.data(), p.size());
  buf[p.size()] = 0;
  char* end = nullptr;
  double v = std::strtod(buf, &end);
  if (end != buf + p.size() || !std::isfinite(v)) return {};
  if (p.find_first_of("xXnN") != std::string_view::npos) return {};  // hex, nan, inf: not JSON numbers
  if (p.front() == '+' || p.front() == '.' || p.back() == '.') return {};
  return p;
}

std::vector<std::string_view> SplitTopic(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (true) {
    size_t slash = s.find('/', pos);
    parts.push_back(s.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return parts;
}

std::string Sanitize(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return o.empty() ? "client" : o;
}

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

MqttSource::MqttSource(MqttSourceOptions opt) : opt_(std::move(opt)) {
  if (const char* h = std::getenv("IOTPIPE_MQTT_TEST_HOLD_AT"); h && *h) hold_at_ = std::atoll(h);
}

MqttSource::~MqttSource() {
  listener_ = nullptr;
  (void)Stop();
}

std::string MqttSource::Describe() const {
  std::string t;
  for (auto& f : opt_.topics) t += (t.empty() ? "" : ",") + f;
  return "mqtt:" + opt_.url + " " + t + " as " + opt_.client_id;
}

PositionNames MqttSource::position_names() const {
  const std::string c = Sanitize(opt_.client_id);
  return PositionNames{"mqtt-" + c, "mqtt-" + c, "mqtt:" + opt_.client_id};
}

std::set<int32_t> MqttSource::assigned() const { return {0}; }

int64_t MqttSource::Lag() const { return std::max<int64_t>(0, written_seq_.load() - read_seq_a_.load()); }

std::map<int32_t, int64_t> MqttSource::LagByPartition() const { return {{0, Lag()}}; }

std::map<std::string, int64_t> MqttSource::Counters() const {
  return {{"mqtt_connected", connected_.load() ? 1 : 0},
          {"mqtt_reconnects", reconnects_.load()},
          {"mqtt_received", received_.load()},
          {"mqtt_duplicates", duplicates_.load()},
          {"mqtt_wal_errors", wal_errors_.load()}};
}

std::string MqttSource::Transform(const MqttSourceOptions& o, std::string_view topic, std::string_view payload,
                                  int64_t arrival_us) {
  if (o.topic_template.empty()) return std::string(payload);
  auto want = SplitTopic(o.topic_template), got = SplitTopic(topic);
  if (want.size() != got.size()) return std::string(payload);
  std::string_view device, quantity, sensor;
  for (size_t i = 0; i < want.size(); i++) {
    std::string_view w = want[i];
    if (w.size() > 2 && w.front() == '{' && w.back() == '}') {
      std::string_view name = w.substr(1, w.size() - 2);
      if (got[i].empty()) return std::string(payload);
      if (name == "device") device = got[i];
      if (name == "quantity") quantity = got[i];
      if (name == "sensor") sensor = got[i];
    } else if (w != "+" && w != got[i]) {
      return std::string(payload);
    }
  }
  std::string id;
  if (!sensor.empty()) {
    id = sensor;
  } else if (!device.empty()) {
    id = device;
    if (!quantity.empty()) id += o.separator + std::string(quantity);
  } else {
    return std::string(payload);
  }
  std::string out;
  out.reserve(payload.size() + id.size() + 64);
  if (auto num = PlainNumber(payload); !num.empty()) {
    char ts[40];
    std::snprintf(ts, sizeof ts, "%lld.%06lld", static_cast<long long>(arrival_us / 1000000),
                  static_cast<long long>(arrival_us % 1000000));
    out += "{\"sensor_id\":\"";
    JsonEscape(out, id);
    out += "\",\"timestamp\":";
    out += ts;
    out += ",\"value\":";
    out += num;
    out += '}';
    return out;
  }
  size_t lead = 0;
  while (lead < payload.size() && std::isspace(static_cast<unsigned char>(payload[lead]))) lead++;
  if (lead == payload.size() || payload[lead] != '{') return std::string(payload);
  size_t next = lead + 1;
  while (next < payload.size() && std::isspace(static_cast<unsigned char>(payload[next]))) next++;
  out += "{\"";
  JsonEscape(out, o.id_key);
  out += "\":\"";
  JsonEscape(out, id);
  out += '"';
  if (next < payload.size() && payload[next] != '}') out += ',';
  out.append(payload.substr(lead + 1));
  return out;
}

// ---- WAL ----

Status MqttSource::OpenWal() {
  namespace fs = std::filesystem;
  if (opt_.wal_dir.empty()) return Status::InvalidArgument("mqtt: no WAL directory");
  std::error_code ec;
  fs::create_directories(opt_.wal_dir, ec);
  if (ec) return Status::IOError("mqtt: cannot create " + opt_.wal_dir + ": " + ec.message());
  const std::string lock = opt_.wal_dir + "/LOCK";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    return Status::Unavailable("mqtt: " + opt_.wal_dir + " is in use by another processor with client id " +
                               opt_.client_id + " (each processor needs its own --mqtt-client-id)");
  std::vector<std::pair<int64_t, std::string>> files;
  for (auto& e : fs::directory_iterator(opt_.wal_dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.size() == 28 && n.starts_with("wal-") && n.ends_with(".log"))
      files.emplace_back(std::strtoll(n.c_str() + 4, nullptr, 10), e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::string data;
  std::vector<uint64_t> digests;
  for (auto& [first, path] : files) {
    if (!ReadFile(path, &data)) return Status::IOError("mqtt: cannot read " + path);
    Segment s;
    s.first = first;
    s.last = first - 1;
    s.path = path;
    size_t off = 0;
    std::vector<uint64_t> seg_digests;
    while (off < data.size()) {
      int64_t seq;
      uint64_t dg;
      std::string_view rec;
      size_t n = ParseEntry(data.data() + off, data.size() - off, &seq, &dg, &rec);
      if (n == 0) break;
      s.last = seq;
      seg_digests.push_back(dg);
      off += n;
    }
    if (off < data.size()) {
      // A torn or damaged tail: never acknowledged to the broker (the callback had not returned).
      spdlog::warn("mqtt: WAL {}: {} damaged bytes at the end dropped", path, data.size() - off);
      if (::truncate(path.c_str(), static_cast<off_t>(off)) != 0)
        return Status::IOError("mqtt: cannot truncate " + path + ": " + std::strerror(errno));
    }
    s.bytes = off;
    if (s.last < s.first) {
      fs::remove(path, ec);
      continue;
    }
    digests.insert(digests.end(), seg_digests.begin(), seg_digests.end());
    next_seq_ = std::max(next_seq_, s.last + 1);
    segs_.push_back(std::move(s));
  }
  for (size_t i = digests.size() > kDedupWindow ? digests.size() - kDedupWindow : 0; i < digests.size(); i++)
    Remember(digests[i]);
  written_seq_ = next_seq_ - 1;
  std::lock_guard<std::mutex> l(mu_);
  Status s = RollSegment();
  if (s.ok() && !segs_.empty())
    spdlog::info("mqtt: WAL {}: {} segment(s), next position {}", opt_.wal_dir, segs_.size(), next_seq_);
  return s;
}

Status MqttSource::RollSegment() {
  if (wfd_ >= 0) {
    (void)::fdatasync(wfd_);
    ::close(wfd_);
    wfd_ = -1;
  }
  Segment s;
  s.first = next_seq_;
  s.last = next_seq_ - 1;
  s.path = opt_.wal_dir + "/" + SegmentName(next_seq_);
  wfd_ = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (wfd_ < 0) return Status::IOError("mqtt: cannot create " + s.path + ": " + std::strerror(errno));
  SyncDir(opt_.wal_dir);
  segs_.push_back(std::move(s));
  return Status::OK();
}

bool MqttSource::Recent(uint64_t digest) {
  std::lock_guard<std::mutex> l(mu_);
  return window_set_.count(digest) > 0;
}

void MqttSource::Remember(uint64_t digest) {
  window_.push_back(digest);
  window_set_.insert(digest);
  if (window_.size() > kDedupWindow) {
    window_set_.erase(window_set_.find(window_.front()));
    window_.pop_front();
  }
}

bool MqttSource::Append(uint64_t digest, std::string_view rec) {
  std::lock_guard<std::mutex> l(mu_);
  if (wfd_ < 0) return false;
  std::string e;
  e.reserve(kEntryHeader + kBodyHeader + rec.size());
  const uint32_t len = static_cast<uint32_t>(kBodyHeader + rec.size());
  PutU32(e, len);
  PutU32(e, 0);
  PutU64(e, static_cast<uint64_t>(next_seq_));
  PutU64(e, digest);
  e.append(rec);
  const uint32_t check = static_cast<uint32_t>(Fnv(kFnvBasis, e.data() + kEntryHeader, len));
  std::memcpy(e.data() + 4, &check, 4);
  size_t done = 0;
  while (done < e.size()) {
    ssize_t w = ::write(wfd_, e.data() + done, e.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      // A partial entry is dropped as a damaged tail on the next start; cut it now if possible.
      if (done > 0 && ::ftruncate(wfd_, static_cast<off_t>(segs_.back().bytes)) != 0) {
      }
      spdlog::error("mqtt: WAL write failed: {}", std::strerror(errno));
      return false;
    }
    done += static_cast<size_t>(w);
  }
  if (opt_.fsync_each && ::fdatasync(wfd_) != 0) {
    spdlog::error("mqtt: WAL fdatasync failed: {}", std::strerror(errno));
    return false;
  }
  Segment& s = segs_.back();
  s.last = next_seq_;
  s.bytes += e.size();
  written_seq_ = next_seq_;
  next_seq_++;
  dirty_ = !opt_.fsync_each;
  Remember(digest);
  if (waiting_) appended_.notify_one();
  if (s.bytes >= kSegmentBytes && !RollSegment().ok()) return true;  // the entry is written; the next one fails
  return true;
}

// ---- Paho ----

int MqttSource::OnMessage(void* ctx, char* topic, int topic_len, void* msgp) {
  auto* self = static_cast<MqttSource*>(ctx);
  auto* m = static_cast<MQTTAsync_message*>(msgp);
  std::string_view t(topic, topic_len > 0 ? static_cast<size_t>(topic_len) : std::strlen(topic));
  std::string_view payload(static_cast<const char*>(m->payload), m->payload ? static_cast<size_t>(m->payloadlen) : 0);
  self->received_++;
  uint64_t h = Fnv(kFnvBasis, &m->msgid, sizeof m->msgid);
  h = Fnv(h, t.data(), t.size());
  h = Fnv(h, "", 1);
  h = Fnv(h, payload.data(), payload.size());
  if (m->dup && self->Recent(h)) {
    self->duplicates_++;  // already in the WAL: the broker redelivers what we took before a crash
  } else {
    std::string rec = Transform(self->opt_, t, payload, WallMicros());
    // The PUBACK leaves when this returns: the message must be in the WAL first. A WAL that
    // cannot be written holds the receive thread (the broker keeps the message) until it can.
    while (!self->Append(h, rec)) {
      self->wal_errors_++;
      if (self->stopping_.load()) {
        spdlog::critical(
            "mqtt: stopping with a message that could not be written to the WAL; exiting "
            "before it is acknowledged to the broker");
        std::_Exit(3);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (self->hold_at_ >= 0 && self->written_seq_.load() == self->hold_at_) {
      // Test hook (IOTPIPE_MQTT_TEST_HOLD_AT=<position>): the message is in the WAL, its PUBACK not
      // yet sent; a test kills the process here and expects the broker to redeliver it.
      spdlog::warn("mqtt: test hook: holding the callback after WAL position {}", self->hold_at_);
      std::this_thread::sleep_for(std::chrono::seconds(60));
    }
  }
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

void MqttSource::OnConnected(void* ctx, char* cause) {
  auto* self = static_cast<MqttSource*>(ctx);
  const bool again = self->ever_connected_.exchange(true);
  self->connected_ = true;
  self->connecting_ = false;
  self->retry_s_ = 1;
  if (again) self->reconnects_++;
  spdlog::info("mqtt: {} {} as {}", again ? "reconnected to" : "connected to", self->opt_.url, self->opt_.client_id);
  self->Subscribe();
}

void MqttSource::OnLost(void* ctx, char* cause) {
  auto* self = static_cast<MqttSource*>(ctx);
  self->connected_ = false;
  if (!self->stopping_.load())
    spdlog::warn("mqtt: connection to {} lost ({}); reconnecting", self->opt_.url, cause ? cause : "no reason given");
}

void MqttSource::OnConnectFailure(void* ctx, void* resp) {
  auto* self = static_cast<MqttSource*>(ctx);
  auto* r = static_cast<MQTTAsync_failureData5*>(resp);
  self->connecting_ = false;
  const int wait = self->retry_s_;
  self->retry_s_ = std::min(30, self->retry_s_ * 2);
  self->retry_at_us_ = MonoMicros() + int64_t{wait} * 1000000;
  spdlog::warn("mqtt: cannot connect to {}: {} (code {}); retrying in {} s", self->opt_.url,
               r && r->message ? r->message : MQTTAsync_strerror(r ? r->code : -1), r ? r->code : -1, wait);
}

void MqttSource::OnConnectSuccess(void* ctx, void* resp) {
  auto* self = static_cast<MqttSource*>(ctx);
  auto* r = static_cast<MQTTAsync_successData5*>(resp);
  if (r) spdlog::info("mqtt: session present: {}", r->alt.connect.sessionPresent ? "yes" : "no");
  (void)self;
}

void MqttSource::Subscribe() {
  std::vector<char*> topics;
  std::vector<int> qos;
  std::vector<MQTTSubscribe_options> so;
  for (auto& t : opt_.topics) {
    topics.push_back(const_cast<char*>(t.c_str()));
    qos.push_back(opt_.qos);
    MQTTSubscribe_options o = MQTTSubscribe_options_initializer;
    o.retainHandling = 1;  // retained messages only on a new subscription, not on every reconnect
    so.push_back(o);
  }
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  ro.context = this;
  ro.subscribeOptionsCount = static_cast<int>(so.size());
  ro.subscribeOptionsList = so.data();
  ro.onSuccess5 = [](void* ctx, MQTTAsync_successData5* r) {
    auto* self = static_cast<MqttSource*>(ctx);
    // One filter: the reason code is r->reasonCode; several: r->alt.sub.reasonCodes[i].
    bool refused = false;
    const int n = r ? r->alt.sub.reasonCodeCount : 0;
    for (int i = 0; n > 1 && r->alt.sub.reasonCodes && i < n; i++) {
      if (r->alt.sub.reasonCodes[i] >= 0x80 && static_cast<size_t>(i) < self->opt_.topics.size()) {
        spdlog::error("mqtt: subscription to {} refused: {}", self->opt_.topics[static_cast<size_t>(i)],
                      MQTTReasonCode_toString(r->alt.sub.reasonCodes[i]));
        refused = true;
      }
    }
    if (r && n <= 1 && r->reasonCode >= 0x80) {
      spdlog::error("mqtt: subscription refused: {}", MQTTReasonCode_toString(r->reasonCode));
      refused = true;
    }
    if (!refused)
      spdlog::info("mqtt: subscribed to {} topic filter(s) at QoS {}", self->opt_.topics.size(), self->opt_.qos);
  };
  ro.onFailure5 = [](void* ctx, MQTTAsync_failureData5* r) {
    spdlog::error("mqtt: subscribe failed: {}", r && r->message ? r->message : "no reason given");
  };
  int rc = MQTTAsync_subscribeMany(client_, static_cast<int>(topics.size()), topics.data(), qos.data(), &ro);
  if (rc != MQTTASYNC_SUCCESS) spdlog::error("mqtt: subscribe: {}", MQTTAsync_strerror(rc));
}

void MqttSource::Connect() {
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
  o.keepAliveInterval = opt_.keepalive_s;
  o.cleanstart = opt_.clean_start ? 1 : 0;
  o.automaticReconnect = 1;
  o.minRetryInterval = 1;
  o.maxRetryInterval = 30;
  o.connectTimeout = 10;
  o.context = this;
  o.onSuccess5 = [](void* ctx, MQTTAsync_successData5* r) { OnConnectSuccess(ctx, r); };
  o.onFailure5 = [](void* ctx, MQTTAsync_failureData5* r) { OnConnectFailure(ctx, r); };
  if (!opt_.username.empty()) o.username = opt_.username.c_str();
  if (!opt_.password.empty()) o.password = opt_.password.c_str();
  MQTTProperties props = MQTTProperties_initializer;
  MQTTProperty p;
  p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
  p.value.integer4 = static_cast<unsigned int>(opt_.clean_start ? 0 : opt_.session_expiry_s);
  MQTTProperties_add(&props, &p);
  o.connectProperties = &props;
  MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
  const bool tls = opt_.url.starts_with("ssl://") || opt_.url.starts_with("mqtts://") || !opt_.ca_file.empty();
  if (tls) {
    if (!opt_.ca_file.empty()) ssl.trustStore = opt_.ca_file.c_str();
    if (!opt_.cert_file.empty()) ssl.keyStore = opt_.cert_file.c_str();
    if (!opt_.key_file.empty()) ssl.privateKey = opt_.key_file.c_str();
    ssl.enableServerCertAuth = opt_.tls_insecure ? 0 : 1;
    ssl.verify = opt_.tls_insecure ? 0 : 1;
    o.ssl = &ssl;
  }
  connecting_ = true;
  int rc = MQTTAsync_connect(client_, &o);
  MQTTProperties_free(&props);
  if (rc != MQTTASYNC_SUCCESS) {
    connecting_ = false;
    retry_at_us_ = MonoMicros() + int64_t{retry_s_} * 1000000;
    spdlog::warn("mqtt: connect to {}: {}", opt_.url, MQTTAsync_strerror(rc));
  }
}

Status MqttSource::Start() {
  if (client_) return Status::OK();
  if (opt_.qos < 0 || opt_.qos > 2) return Status::InvalidArgument("mqtt: QoS must be 0, 1 or 2");
  if (opt_.topics.empty()) return Status::InvalidArgument("mqtt: no topic filter");
  Status s = OpenWal();
  if (!s.ok()) return s;
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
  MQTTAsync c = nullptr;
  int rc = MQTTAsync_createWithOptions(&c, opt_.url.c_str(), opt_.client_id.c_str(), MQTTCLIENT_PERSISTENCE_NONE,
                                       nullptr, &co);
  if (rc != MQTTASYNC_SUCCESS) return Status::InvalidArgument("mqtt: " + opt_.url + ": " + MQTTAsync_strerror(rc));
  client_ = c;
  MQTTAsync_setCallbacks(
      c, this, [](void* ctx, char* cause) { OnLost(ctx, cause); },
      [](void* ctx, char* topic, int len, MQTTAsync_message* m) { return OnMessage(ctx, topic, len, m); }, nullptr);
  MQTTAsync_setConnected(c, this, [](void* ctx, char* cause) { OnConnected(ctx, cause); });
  last_activity_us_ = MonoMicros();
  Connect();
  return Status::OK();
}

PollResult MqttSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (!client_ || closed_ || !error_.ok()) return PollResult::kEnd;
  if (!recovered_) {
    // The WAL is partition 0: files past the commit marker are removed, reading resumes after it.
    auto marker = listener_ ? listener_->Recover(0) : Result<int64_t>(int64_t{-1});
    if (!marker.ok()) {
      error_ = marker.status();
      return PollResult::kEnd;
    }
    read_seq_ = marker.value();
    read_seq_a_ = read_seq_;
    acked_ = marker.value();
    if (listener_) listener_->Assigned({0});
    recovered_ = true;
    spdlog::info("mqtt: reading the WAL after position {}", read_seq_);
  }
  const int64_t now = MonoMicros();
  if (!connected_.load() && !ever_connected_.load() && !connecting_.load() && now >= retry_at_us_.load()) Connect();
  out.data.reserve(max * 128);
  if (!ReadWal(out, max, now)) return PollResult::kEnd;
  // A batch is not handed on with a handful of records while more are arriving: up to 10 ms more
  // to fill it (records flowing one by one would otherwise cost a pipeline hand-off each).
  if (out.size() > 0 && out.size() < max) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
    while (out.size() < max && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // not woken per message: read in slices
      if (!ReadWal(out, max, now)) return PollResult::kEnd;
    }
  }
  read_seq_a_ = read_seq_;
  if (out.size() > 0) {
    last_activity_us_ = now;
    out.sent = static_cast<int64_t>(out.size());
    out.Seal();
    return PollResult::kData;
  }
  if (opt_.exit_when_idle_s > 0) {
    // Idle only counts while connected (the broker delivers what it holds at once) and the WAL is read.
    if (!connected_.load() || read_seq_ < written_seq_.load()) {
      last_activity_us_ = now;
    } else if (static_cast<double>(now - last_activity_us_) / 1e6 >= opt_.exit_when_idle_s) {
      return PollResult::kEnd;
    }
  }
  {  // nothing to read: wait for the callback to append (or 100 ms: the pipeline checks for a stop)
    std::unique_lock<std::mutex> l(mu_);
    waiting_ = true;
    appended_.wait_for(l, std::chrono::milliseconds(100), [&] { return written_seq_.load() > read_seq_; });
    waiting_ = false;
  }
  return PollResult::kIdle;
}

bool MqttSource::ReadWal(RawBatch& out, size_t max, int64_t now) {
  while (out.size() < max) {
    Segment s;
    bool last = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (dirty_ && now - last_sync_us_ > 1000000) {  // bounds what power loss could take (see header)
        (void)::fdatasync(wfd_);
        dirty_ = false;
        last_sync_us_ = now;
      }
      size_t i = 0;
      while (i < segs_.size() && segs_[i].first < rfirst_) i++;
      if (i == segs_.size()) break;
      s = segs_[i];
      last = i + 1 == segs_.size();
    }
    if (s.path != rpath_) {
      if (rfd_ >= 0) ::close(rfd_);
      rfd_ = ::open(s.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (rfd_ < 0) {
        error_ = Status::IOError("mqtt: cannot read " + s.path + ": " + std::strerror(errno));
        return false;
      }
      rpath_ = s.path;
      rfirst_ = s.first;
      roff_ = 0;
    }
    if (roff_ >= s.bytes) {
      if (last) break;
      rfirst_ = s.first + 1;  // on to the next segment
      continue;
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(s.bytes - roff_, 4u << 20));
    rbuf_.resize(want);
    ssize_t n = ::pread(rfd_, rbuf_.data(), want, static_cast<off_t>(roff_));
    if (n <= 0) {
      error_ = Status::IOError("mqtt: reading " + s.path + ": " + std::strerror(errno));
      return false;
    }
    size_t off = 0;
    while (off < static_cast<size_t>(n) && out.size() < max) {
      int64_t seq;
      uint64_t dg;
      std::string_view rec;
      size_t len = ParseEntry(rbuf_.data() + off, static_cast<size_t>(n) - off, &seq, &dg, &rec);
      if (len == 0) {
        if (off == 0 && static_cast<size_t>(n) == want && want == s.bytes - roff_) {
          error_ = Status::Corruption("mqtt: damaged WAL entry in " + s.path + " at byte " + std::to_string(roff_));
          return false;
        }
        break;  // the rest of a big entry is beyond this read
      }
      if (seq > read_seq_) {
        out.Add(rec);
        out.origins.push_back(Origin{0, seq});
        read_seq_ = seq;
      }
      off += len;
    }
    roff_ += off;
    if (off == 0) break;
  }
  return true;
}

void MqttSource::Ack(const OffsetMap& durable) {
  auto it = durable.find(0);
  if (it == durable.end()) return;
  std::vector<std::string> drop;
  {
    std::lock_guard<std::mutex> l(mu_);
    acked_ = std::max(acked_, it->second);
    // Segments wholly at or below the marker go, except the newest two (the dedup window's digests).
    while (segs_.size() > 2 && segs_.front().last <= acked_) {
      drop.push_back(segs_.front().path);
      segs_.erase(segs_.begin());
    }
  }
  for (auto& p : drop) ::unlink(p.c_str());
}

Status MqttSource::Stop() {
  if (!client_ || closed_) return error_;
  closed_ = true;
  stopping_ = true;
  MQTTAsync c = client_;
  if (MQTTAsync_isConnected(c)) {
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    d.timeout = 2000;
    if (MQTTAsync_disconnect(c, &d) == MQTTASYNC_SUCCESS) {
      for (int i = 0; i < 40 && MQTTAsync_isConnected(c); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  MQTTAsync_destroy(&c);
  client_ = nullptr;
  connected_ = false;
  std::lock_guard<std::mutex> l(mu_);
  if (wfd_ >= 0) {
    (void)::fdatasync(wfd_);
    ::close(wfd_);
    wfd_ = -1;
  }
  if (rfd_ >= 0) ::close(rfd_);
  rfd_ = -1;
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
  return error_;
}

}  // namespace iotpipe
