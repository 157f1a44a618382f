// MQTT source: a subscriber (Eclipse Paho C, MQTTAsync, MQTT 5) feeding the pipeline, with no
// acknowledged message lost and duplicates bounded and counted.
//
// Acknowledgement: Paho C 1.3 sends the PUBACK of a QoS 1 message itself, with no manual-ack API
// (MQTTProtocol_handlePublishes: the message is handed to the messageArrived callback, then the
// PUBACK goes out). It calls that callback synchronously, before the PUBACK, as long as the
// callback accepts every message (returns 1; a 0 would queue the message and PUBACK it at once).
// So the callback appends the message to a local write-ahead log (the WAL) before it returns:
// by the time the broker holds the message delivered, the WAL holds it. Against a killed process
// a completed write() is enough (the kernel keeps the page); against power loss the WAL is
// fdatasync'ed every second, or before every PUBACK with fsync_each (slow: ~1 ms per message).
//
// Positions: every WAL entry has a sequence number; the pipeline sees the WAL as partition 0 of a
// PartitionedSource, so the offset ledger (pipeline/offset_ledger.h) makes WAL → store exactly
// once: files are named by WAL positions, the commit marker is the last stored one, and on start
// the source resumes after the marker (files past it are deleted). Ack lets the WAL drop its
// segments at or below the marker (the newest two are kept: their digests seed the dedup window).
//
// Duplicates: a message the broker redelivers (DUP flag set: the process died after the WAL write
// but before the PUBACK left) whose digest (packet id, topic, payload) is among the last
// kDedupWindow entries of the WAL is not written again; it is counted (duplicates()).
//
// Topic templates: "sensors/{device}/{quantity}" matched against the topic gives the record its id
// (sensor id "device<sep>quantity", or {sensor}): a payload that is a plain number becomes an
// original wire record stamped with its arrival time; a JSON object gets the id member (id_key,
// e.g. "sensor_id" or "device") inserted first. A topic that does not match leaves the payload
// as it is (the mapping then dead-letters it with its reason).
//
// Reconnects: Paho's automatic reconnect (1 s doubling to 30 s) after a lost connection; a failed
// first connection is retried by Poll with the same backoff. reconnects() and connected() are
// reported (Counters: the progress line and /metrics).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "sources/partitioned.h"
#include "sources/source.h"

namespace iotpipe {

struct MqttSourceOptions {
  std::string url = "tcp://127.0.0.1:1883";  // tcp://, mqtt://, ssl://, mqtts://
  std::string client_id = "iotpipe";
  std::vector<std::string> topics = {"sensors/#"};  // filters, wildcards, $share/<group>/<filter>
  int qos = 1;
  bool clean_start = false;      // false: persistent session (the broker keeps what we missed)
  int session_expiry_s = 86400;  // MQTT 5 session expiry interval
  std::string username, password;
  std::string ca_file, cert_file, key_file;  // TLS (ssl:// or mqtts://)
  bool tls_insecure = false;                 // do not verify the server certificate
  std::string topic_template;                // e.g. sensors/{device}/{quantity}
  std::string id_key = "sensor_id";          // member inserted into JSON payloads from the template
  std::string separator = "/";               // device<sep>quantity
  std::string wal_dir;                       // required: where the WAL lives (data/_mqtt/<client id>)
  bool fsync_each = false;                   // fdatasync before every PUBACK (power-loss safe, slow)
  double exit_when_idle_s = 0;               // > 0: end once nothing arrived for this long (and WAL read)
  int keepalive_s = 20;
};

class MqttSource final : public Source, public PartitionedSource {
 public:
  explicit MqttSource(MqttSourceOptions opt);
  ~MqttSource() override;
  // Source
  Status Start() override;
  PollResult Poll(RawBatch& out, size_t max) override;
  void Ack(const OffsetMap& durable) override;
  Status Stop() override;
  int64_t Lag() const override;
  std::string Describe() const override;
  std::map<std::string, int64_t> Counters() const override;
  // PartitionedSource: one partition (0), the WAL.
  PositionNames position_names() const override;
  void SetPartitionListener(PartitionListener* l) override { listener_ = l; }
  std::set<int32_t> assigned() const override;
  std::map<int32_t, int64_t> LagByPartition() const override;

  int64_t duplicates() const { return duplicates_.load(); }
  int64_t reconnects() const { return reconnects_.load(); }
  bool connected() const { return connected_.load(); }
  int64_t received() const { return received_.load(); }

  // The record a message becomes (template applied). Public for tests.
  static std::string Transform(const MqttSourceOptions& o, std::string_view topic, std::string_view payload,
                               int64_t arrival_us);
  static constexpr size_t kDedupWindow = 8192;

 private:
  struct Segment {
    int64_t first = 0, last = -1;  // sequence numbers held (last < first: empty)
    std::string path;
    uint64_t bytes = 0;  // bytes written (readable)
  };
  static int OnMessage(void* ctx, char* topic, int topic_len, void* msg);
  static void OnConnected(void* ctx, char* cause);
  static void OnLost(void* ctx, char* cause);
  static void OnConnectFailure(void* ctx, void* resp);
  static void OnConnectSuccess(void* ctx, void* resp);
  Status OpenWal();
  Status RollSegment();  // writer: a new segment starting at next_seq_ (mu_ held)
  bool Append(uint64_t digest, std::string_view rec);
  // Appends WAL entries past read_seq_ to out (up to max). False: an error (error_ set).
  bool ReadWal(RawBatch& out, size_t max, int64_t now);
  void Connect();
  void Subscribe();
  bool Recent(uint64_t digest);
  void Remember(uint64_t digest);

  MqttSourceOptions opt_;
  void* client_ = nullptr;  // MQTTAsync
  PartitionListener* listener_ = nullptr;
  bool recovered_ = false;
  int lock_fd_ = -1;

  // WAL (writer: the Paho callback thread; reader: Poll; Ack: sink thread).
  mutable std::mutex mu_;
  std::condition_variable appended_;  // Append -> a waiting Poll
  bool waiting_ = false;              // a Poll waits on appended_ (mu_)
  std::vector<Segment> segs_;         // oldest first; the last is the writer's
  int wfd_ = -1;
  int64_t next_seq_ = 0;
  int64_t last_sync_us_ = 0;
  bool dirty_ = false;
  std::deque<uint64_t> window_;  // digests of the last kDedupWindow entries
  std::unordered_multiset<uint64_t> window_set_;
  int64_t acked_ = -1;

  // Reader (Poll thread).
  int rfd_ = -1;
  std::string rpath_;
  uint64_t roff_ = 0;
  int64_t rfirst_ = 0;     // first position of the segment being read
  int64_t read_seq_ = -1;  // last handed out
  std::string rbuf_;
  std::atomic<int64_t> read_seq_a_{-1};

  std::atomic<int64_t> written_seq_{-1};
  std::atomic<int64_t> duplicates_{0}, reconnects_{0}, received_{0}, wal_errors_{0};
  std::atomic<bool> connected_{false}, ever_connected_{false}, connecting_{false}, stopping_{false};
  std::atomic<int64_t> retry_at_us_{0};
  int retry_s_ = 1;
  int64_t hold_at_ = -1;  // test hook: see OnMessage
  int64_t last_activity_us_ = 0;
  Status error_;
  bool closed_ = false;
};

}  // namespace iotpipe
