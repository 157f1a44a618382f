// The drain/ack logic of the pipeline against fake sources and sinks, timers on a manual clock:
// positions are acknowledged only once every durable sink holds them; a failing flush stops the
// acknowledgements at the last good flush and fails the run; a revocation waits for durability;
// the end of the source flushes everything.
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/fsutil.h"
#include "detect/detector.h"
#include "pipeline/offset_ledger.h"
#include "pipeline/stages.h"
#include "sources/partitioned.h"

namespace fs = std::filesystem;

namespace iotpipe {
namespace {

// Waits (real time) until cond holds; false after 10 s.
template <class F>
bool WaitFor(F cond) {
  for (int i = 0; i < 2000; i++) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

// A partitioned source handing out scripted batches: batch i holds `per_batch` records of
// partition part[i], offsets continuing per partition. Batches are released by the test
// (release()); Poll is idle in between. end(): kEnd once every released batch is handed out.
// revoke(): the next Poll revokes partition 0 through the pipeline's listener.
class FakeSource final : public Source, public PartitionedSource {
 public:
  FakeSource(std::vector<int32_t> parts, size_t per_batch) : parts_(std::move(parts)), per_batch_(per_batch) {}
  PollResult Poll(RawBatch& out, size_t max) override {
    out.Clear();
    if (revoke_.exchange(false)) {
      revoked_ok_ = listener_ && listener_->Revoking({0});
      revoked_ = true;
    }
    if (next_ < released_.load()) {
      const int32_t p = parts_[next_++];
      for (size_t k = 0; k < per_batch_; k++) {
        const int64_t off = next_off_[p]++;
        out.Add("{\"sensor_id\": \"s" + std::to_string(p) + "\", \"timestamp\": " + std::to_string(1732406400 + off) +
                ".25, \"value\": 1.5, \"is_anomaly_ground_truth\": false}");
        out.origins.push_back(Origin{p, off});
      }
      out.sent = static_cast<int64_t>(out.size());
      out.Seal();
      return PollResult::kData;
    }
    if (ended_.load()) return PollResult::kEnd;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return PollResult::kIdle;
  }
  void Ack(const OffsetMap& durable) override {
    std::lock_guard<std::mutex> l(mu_);
    acks_.push_back(durable);
  }
  std::string Describe() const override { return "fake"; }
  PositionNames position_names() const override { return {"fake-t", "t", "fake:t"}; }
  void SetPartitionListener(PartitionListener* l) override { listener_ = l; }
  std::set<int32_t> assigned() const override { return {0, 1}; }
  std::map<int32_t, int64_t> LagByPartition() const override { return {}; }

  void release(size_t n) { released_ += n; }
  void end() { ended_ = true; }
  void revoke() { revoke_ = true; }
  bool revoked() const { return revoked_.load(); }
  bool revoked_ok() const { return revoked_ok_.load(); }
  std::vector<OffsetMap> acks() {
    std::lock_guard<std::mutex> l(mu_);
    return acks_;
  }
  // The highest position of partition p ever acknowledged (-1: none).
  int64_t max_acked(int32_t p) {
    int64_t m = -1;
    for (auto& a : acks())
      if (auto it = a.find(p); it != a.end()) m = std::max(m, it->second);
    return m;
  }

 private:
  std::vector<int32_t> parts_;
  size_t per_batch_;
  size_t next_ = 0;
  std::map<int32_t, int64_t> next_off_;
  std::atomic<size_t> released_{0};
  std::atomic<bool> ended_{false}, revoke_{false}, revoked_{false}, revoked_ok_{false};
  PartitionListener* listener_ = nullptr;
  std::mutex mu_;
  std::vector<OffsetMap> acks_;
};

// A durable sink: what it was written becomes durable on Flush, or on Tick once `flush_every_us`
// of the manual clock passed since its last flush (0: only Flush). fail_flush: the next flush fails.
class FakeSink final : public Sink {
 public:
  explicit FakeSink(int64_t flush_every_us = 0) : every_(flush_every_us) {}
  Status Write(const ProcessedBatch& b) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto* o : {&b.readings.origins, &b.dead.origins})
      for (const Origin& x : *o) written_[x.partition] = std::max(written_[x.partition], x.offset);
    writes_++;
    return Status::OK();
  }
  Status Tick(int64_t now) override {
    if (last_ < 0) last_ = now;
    if (every_ <= 0 || now - last_ < every_) return Status::OK();
    last_ = now;
    return Flush();
  }
  Status Flush() override {
    std::lock_guard<std::mutex> l(mu_);
    if (fail_flush_) return Status::Error("disk full (fake)");
    durable_ = written_;
    flushes_++;
    return Status::OK();
  }
  Status Close() override {
    closed_ = true;
    return Status::OK();
  }
  const OffsetMap* durable() const override { return &durable_; }

  int64_t written(int32_t p) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = written_.find(p);
    return it == written_.end() ? -1 : it->second;
  }
  int64_t durable_at(int32_t p) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = durable_.find(p);
    return it == durable_.end() ? -1 : it->second;
  }
  void fail_flush() {
    std::lock_guard<std::mutex> l(mu_);
    fail_flush_ = true;
  }
  int flushes() {
    std::lock_guard<std::mutex> l(mu_);
    return flushes_;
  }
  bool closed() const { return closed_.load(); }

 private:
  int64_t every_;
  int64_t last_ = -1;
  std::mutex mu_;
  OffsetMap written_, durable_;
  int writes_ = 0, flushes_ = 0;
  bool fail_flush_ = false;
  std::atomic<bool> closed_{false};
};

// A sink the acknowledgement does not wait for.
class Observer final : public Sink {
 public:
  Status Write(const ProcessedBatch& b) override {
    rows += static_cast<int64_t>(b.readings.size());
    return Status::OK();
  }
  std::atomic<int64_t> rows{0};
};

class PipelineAckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("iotpipe_ack_" + std::to_string(getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::unique_ptr<Pipeline> Make(Source* src) {
    PipelineOptions po;
    po.with_store = false;
    po.store.data_dir = dir.string();
    po.progress_interval_s = 0;
    po.batch_size = 100;
    po.mono = &clock;
    auto det = MakeDetector("baseline");
    EXPECT_TRUE(det.ok());
    return std::make_unique<Pipeline>(src, std::shared_ptr<const Detector>(std::move(det.value())), po,
                                      RealClock::Get());
  }
  std::string Marker(int32_t p) {
    auto t = ReadFile(OffsetLedger::MarkerPath(dir.string(), "t", p));
    return t.ok() ? t.value() : "";
  }
  fs::path dir;
  ManualClock clock{1000000};
  std::atomic<bool> stop{false};
};

TEST_F(PipelineAckTest, AcknowledgesOnlyWhatEveryDurableSinkHolds) {
  FakeSource src({0, 0, 0}, 10);
  FakeSink ticking(1000000), lazy;  // flushes every second of the manual clock / only when asked
  Observer obs;
  auto p = Make(&src);
  p->AddSink(&ticking, true);
  p->AddSink(&lazy);
  p->AddSink(&obs);
  Status st;
  std::thread run([&] { st = p->Run(stop); });
  src.release(3);
  ASSERT_TRUE(WaitFor([&] { return lazy.written(0) == 29; }));
  clock.Advance(2000000);
  ASSERT_TRUE(WaitFor([&] { return ticking.durable_at(0) == 29; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a few sink steps
  EXPECT_EQ(lazy.durable_at(0), -1);
  EXPECT_EQ(src.max_acked(0), -1) << "acknowledged before the lazy sink was durable";
  EXPECT_EQ(Marker(0), "");
  src.end();
  run.join();
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(src.max_acked(0), 29);
  EXPECT_EQ(src.acks().back().at(0), 29);
  EXPECT_EQ(Marker(0), "29\n");
  EXPECT_EQ(obs.rows.load(), 30);
  EXPECT_TRUE(ticking.closed() && lazy.closed());
}

TEST_F(PipelineAckTest, FailingFlushStopsAcknowledgementsAtTheLastGoodFlush) {
  FakeSource src({0, 0}, 10);
  FakeSink a(1000000), b(1000000);
  auto p = Make(&src);
  p->AddSink(&a, true);
  p->AddSink(&b);
  Status st;
  std::thread run([&] { st = p->Run(stop); });
  src.release(1);
  ASSERT_TRUE(WaitFor([&] { return b.written(0) == 9; }));
  clock.Advance(2000000);
  ASSERT_TRUE(WaitFor([&] { return src.max_acked(0) == 9; }));
  EXPECT_EQ(Marker(0), "9\n");
  b.fail_flush();
  src.release(1);
  ASSERT_TRUE(WaitFor([&] { return b.written(0) == 19; }));
  clock.Advance(2000000);
  run.join();  // the failing flush ends the run
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "disk full (fake)");
  EXPECT_EQ(src.max_acked(0), 9);
  EXPECT_EQ(Marker(0), "9\n");
  EXPECT_FALSE(b.closed());
}

TEST_F(PipelineAckTest, RevocationWaitsUntilEverythingHandedOutIsDurable) {
  FakeSource src({0, 1, 0}, 10);
  FakeSink a, b;  // durable only when flushed
  auto p = Make(&src);
  p->AddSink(&a, true);
  p->AddSink(&b);
  Status st;
  std::thread run([&] { st = p->Run(stop); });
  src.release(3);
  ASSERT_TRUE(WaitFor([&] { return b.written(0) == 19 && b.written(1) == 9; }));
  EXPECT_EQ(src.max_acked(0), -1);
  src.revoke();
  ASSERT_TRUE(WaitFor([&] { return src.revoked(); }));
  EXPECT_TRUE(src.revoked_ok());
  // When Revoking returned, every record handed out was durable in both sinks and committed.
  EXPECT_EQ(a.durable_at(0), 19);
  EXPECT_EQ(b.durable_at(1), 9);
  EXPECT_EQ(src.max_acked(0), 19);
  EXPECT_EQ(src.max_acked(1), 9);
  EXPECT_EQ(Marker(0), "19\n");
  EXPECT_EQ(Marker(1), "9\n");
  src.end();
  run.join();
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST_F(PipelineAckTest, EndOfSourceFlushesAndAcknowledgesEverything) {
  FakeSource src({0, 1, 0, 1, 1}, 7);
  FakeSink a, b;
  auto p = Make(&src);
  p->AddSink(&a);
  p->AddSink(&b);
  src.release(5);
  src.end();
  Status st = p->Run(stop);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(a.flushes(), 1);
  EXPECT_EQ(b.flushes(), 1);
  EXPECT_EQ(src.acks().back(), (OffsetMap{{0, 13}, {1, 20}}));
  EXPECT_EQ(Marker(0), "13\n");
  EXPECT_EQ(Marker(1), "20\n");
  EXPECT_EQ(p->metrics().sent.load(), 35);
}

TEST(MinDurable, PerPartitionMinimumAndAbsentMeansNothingDurable) {
  struct S final : Sink {
    OffsetMap m;
    bool durable_sink = true;
    Status Write(const ProcessedBatch&) override { return Status::OK(); }
    const OffsetMap* durable() const override { return durable_sink ? &m : nullptr; }
  } a, b, c;
  a.m = {{0, 10}, {1, 5}, {2, 7}};
  b.m = {{0, 8}, {1, 9}};
  c.durable_sink = false;  // an observer: no constraint
  EXPECT_EQ(MinDurable({&a, &b, &c}), (OffsetMap{{0, 8}, {1, 5}}));
  EXPECT_EQ(MinDurable({&c}), OffsetMap());
}

}  // namespace
}  // namespace iotpipe
