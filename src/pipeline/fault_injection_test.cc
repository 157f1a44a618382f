// Fault injection through the Env (LevelDB's fault_injection_test is the model): the whole pipeline
// (source -> processor -> ParquetStore, and for positioned sources the OffsetLedger) runs on a
// FaultInjectionEnv; a disk fault is injected mid-run; the run must fail with the IOError; then
// DropUnsyncedData() leaves what a power cut would, and a restart on the same directory with a fresh
// Env must recover and complete. Each test asserts:
//   - the failed run's Status is an IOError whose message names the injected fault;
//   - after the power cut, every record the source was acknowledged for is stored (none lost);
//   - readers (the DuckDB views) see no temporary file, and no record twice;
//   - the restart succeeds and the store then holds every record exactly once.
// Two paths: embedded (a plain Source; the store's durable() drives the acks) and positioned (a
// partitioned source that resumes after the commit marker through PartitionListener::Recover, as the
// Kafka source does; no broker).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/duck.h"
#include "core/fault_env.h"
#include "core/fsutil.h"
#include "core/tables.h"
#include "detect/detector.h"
#include "pipeline/offset_ledger.h"
#include "pipeline/pipeline.h"
#include "sources/partitioned.h"

namespace fs = std::filesystem;

namespace iotpipe {
namespace {

template <class F>
bool WaitFor(F cond) {
  for (int i = 0; i < 2000; i++) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

constexpr size_t kPerBatch = 100;

// Hands out released batches of kPerBatch records of partition 0: sensor "s0", timestamp
// 1732406400 + offset seconds, value = offset (so a record is identified by its value). Resumes at
// `start` (embedded: after the last acknowledged position; positioned: after the commit marker,
// learnt through the listener in Start, as the Kafka source does on assignment).
class ScriptedSource : public Source {
 public:
  explicit ScriptedSource(int64_t start, int64_t total) : next_(start), total_(total) {}
  PollResult Poll(RawBatch& out, size_t) override {
    out.Clear();
    if (next_ < total_ && batches_ < released_.load()) {
      batches_++;
      for (size_t k = 0; k < kPerBatch && next_ < total_; k++, next_++) {
        out.Add("{\"sensor_id\": \"s0\", \"timestamp\": " + std::to_string(1732406400 + next_) +
                ", \"value\": " + std::to_string(next_) + ", \"is_anomaly_ground_truth\": false}");
        out.origins.push_back(Origin{0, next_});
      }
      out.sent = static_cast<int64_t>(out.size());
      out.Seal();
      return PollResult::kData;
    }
    if (next_ >= total_ || ended_.load()) return PollResult::kEnd;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return PollResult::kIdle;
  }
  void Ack(const OffsetMap& durable) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = durable.find(0); it != durable.end()) acked_ = std::max(acked_, it->second);
  }
  std::string Describe() const override { return "scripted"; }

  void release(size_t n) { released_ += n; }
  void release_all() { released_ = 1u << 30; }
  int64_t acked() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_;
  }

 protected:
  int64_t next_, total_;

 private:
  size_t batches_ = 0;
  std::atomic<size_t> released_{0};
  std::atomic<bool> ended_{false};
  std::mutex mu_;
  int64_t acked_ = -1;
};

class PositionedSource final : public ScriptedSource, public PartitionedSource {
 public:
  explicit PositionedSource(int64_t total) : ScriptedSource(0, total) {}
  Status Start() override {
    if (!listener_) return Status::Error("no listener");
    auto m = listener_->Recover(0);  // deletes what is past the marker
    if (!m.ok()) return m.status();
    next_ = m.value() + 1;
    return Status::OK();
  }
  PollResult Poll(RawBatch& out, size_t max) override {
    if (!assigned_) {  // on the Poll thread, as the Kafka source's rebalance callback
      assigned_ = true;
      listener_->Assigned({0});
    }
    return ScriptedSource::Poll(out, max);
  }
  PositionNames position_names() const override { return {"fake-t", "t", "fake:t"}; }
  void SetPartitionListener(PartitionListener* l) override { listener_ = l; }
  std::set<int32_t> assigned() const override { return {0}; }
  std::map<int32_t, int64_t> LagByPartition() const override { return {}; }

 private:
  PartitionListener* listener_ = nullptr;
  bool assigned_ = false;
};

enum class Path { kEmbedded, kPositioned };

class FaultInjectionTest : public ::testing::TestWithParam<Path> {
 protected:
  static constexpr int64_t kTotal = 600;

  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name)
      if (c == '/') c = '_';
    dir = fs::temp_directory_path() / ("iotpipe_fault_" + std::to_string(getpid()) + "_" + name);
    fs::remove_all(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  bool positioned() const { return GetParam() == Path::kPositioned; }

  std::unique_ptr<ScriptedSource> MakeSource(int64_t resume_after) {
    if (positioned()) return std::make_unique<PositionedSource>(kTotal);
    return std::make_unique<ScriptedSource>(resume_after + 1, kTotal);
  }
  std::unique_ptr<Pipeline> Make(Source* src, Env* env) {
    PipelineOptions po;
    po.store.data_dir = dir.string();
    po.store.max_rows = kPerBatch;  // every batch is one file
    po.store.max_delay_us = int64_t{1} << 50;
    po.env = env;
    po.progress_interval_s = 0;
    po.batch_size = kPerBatch;
    po.mono = &clock;
    auto det = MakeDetector("baseline");
    EXPECT_TRUE(det.ok());
    return std::make_unique<Pipeline>(src, std::shared_ptr<const Detector>(std::move(det.value())), po,
                                      RealClock::Get());
  }

  // Runs two good batches (acknowledged), then `inject`, then one more batch: the run must fail with an
  // IOError whose message contains `expect`. Then the power cut. Returns what was acknowledged.
  int64_t RunUntilFault(FaultInjectionEnv* env, const std::function<void()>& inject, const std::string& expect) {
    auto src = MakeSource(-1);
    auto p = Make(src.get(), env);
    Status st;
    std::atomic<bool> stop{false};
    std::thread run([&] { st = p->Run(stop); });
    src->release(2);
    EXPECT_TRUE(WaitFor([&] { return src->acked() == 2 * kPerBatch - 1; })) << "acked " << src->acked();
    inject();
    src->release(1);
    if (!WaitFor([&] { return !st.ok(); })) stop = true;  // never hangs the suite
    run.join();
    EXPECT_FALSE(st.ok()) << "the fault did not fail the run";
    EXPECT_TRUE(st.IsIOError()) << st.message();
    EXPECT_NE(st.message().find(expect), std::string::npos) << st.message();
    const int64_t acked = src->acked();
    EXPECT_GE(acked, 2 * static_cast<int64_t>(kPerBatch) - 1);
    env->Crash();  // the process is gone: nothing more reaches the disk
    EXPECT_TRUE(env->DropUnsyncedData().ok());
    return acked;
  }

  // Stored rows (count, distinct values) with value <= up_to, through the readers' views.
  std::pair<int64_t, int64_t> Stored(int64_t up_to) {
    auto db = Duck::Open();
    EXPECT_TRUE(db.ok());
    EXPECT_TRUE(CreateDataViews(**db, dir.string()).ok());
    auto t = (*db)->Query("SELECT count(*), count(DISTINCT value) FROM sensor_readings WHERE value <= " +
                          std::to_string(up_to));
    EXPECT_TRUE(t.ok()) << t.status().message();
    if (!t.ok()) return {-1, -1};
    return {t->Int(0, 0), t->Int(0, 1)};
  }
  void ExpectNoTempFileReadable() {
    for (const auto& f : ReadableDataFiles(dir.string(), ReadingsTable())) {
      EXPECT_NE(fs::path(f).filename().string().front(), '.') << f;
      EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
    }
  }
  // After the power cut: nothing acknowledged is lost, nothing is there twice; then a restart with a
  // fresh Env completes and stores every record exactly once.
  void CheckAndRestart(int64_t acked) {
    auto [n, distinct] = Stored(acked);
    EXPECT_EQ(n, acked + 1) << "acknowledged records lost or duplicated";
    EXPECT_EQ(distinct, acked + 1);
    ExpectNoTempFileReadable();
    FaultInjectionEnv fresh;
    auto src = MakeSource(acked);
    src->release_all();
    auto p = Make(src.get(), &fresh);
    std::atomic<bool> stop{false};
    Status st = p->Run(stop);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(src->acked(), kTotal - 1);
    auto [n2, distinct2] = Stored(kTotal);
    EXPECT_EQ(n2, kTotal);
    EXPECT_EQ(distinct2, kTotal);
    ExpectNoTempFileReadable();
    if (positioned()) {
      auto m = ReadFile(OffsetLedger::MarkerPath(dir.string(), "t", 0));
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m.value(), std::to_string(kTotal - 1) + "\n");
    }
  }

  fs::path dir;
  ManualClock clock{1000000};
};

TEST_P(FaultInjectionTest, DiskFullDuringAParquetWrite) {
  FaultInjectionEnv env;
  int64_t acked = RunUntilFault(
      &env, [&] { env.SetWriteBudget(500); }, "No space left on device");
  // The torn temp file was removed: nothing hidden is left in the partition directories.
  for (auto& e : fs::recursive_directory_iterator(dir / "sensor_readings"))
    EXPECT_FALSE(e.path().filename().string().ends_with(".tmp")) << e.path();
  CheckAndRestart(acked);
}

TEST_P(FaultInjectionTest, FsyncFails) {
  FaultInjectionEnv env;
  int64_t acked = RunUntilFault(
      &env, [&] { env.FailSync(true); }, "fsync");
  CheckAndRestart(acked);
}

TEST_P(FaultInjectionTest, RenameFails) {
  FaultInjectionEnv env;
  int64_t acked = RunUntilFault(
      &env, [&] { env.FailRename(true); }, "rename");
  CheckAndRestart(acked);
}

TEST_P(FaultInjectionTest, CrashBetweenWriteAndRename) {
  FaultInjectionEnv env;
  int64_t acked = RunUntilFault(
      &env, [&] { env.CrashAtRename(1); }, "simulated crash");
  CheckAndRestart(acked);
}

// Positioned path: the Parquet file of batch 3 is committed, then the commit marker is torn
// (disk full while writing it). The marker stays at the last good commit; the restart deletes the
// committed-but-unmarked file and consumes it again: no loss, no duplicate.
TEST_P(FaultInjectionTest, TornCommitMarker) {
  if (!positioned()) GTEST_SKIP() << "commit markers exist on the positioned path only";
  FaultInjectionEnv env;
  int64_t acked = RunUntilFault(
      &env, [&] { env.TearWritesTo("/_offsets/", 1); }, "No space left on device");
  auto m = ReadFile(OffsetLedger::MarkerPath(dir.string(), "t", 0));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value(), std::to_string(acked) + "\n") << "the marker moved past what was acknowledged";
  // Batch 3's file reached the disk but is past the marker.
  EXPECT_EQ(Stored(kTotal).first, acked + 1 + static_cast<int64_t>(kPerBatch));
  CheckAndRestart(acked);
}

// A marker damaged on disk (not written by the ledger: e.g. a foreign tool) is refused with a
// Corruption, never read as "nothing committed" (which would delete committed files).
TEST_P(FaultInjectionTest, DamagedCommitMarkerIsRefused) {
  if (!positioned()) GTEST_SKIP() << "commit markers exist on the positioned path only";
  FaultInjectionEnv env;
  int64_t acked = RunUntilFault(
      &env, [&] { env.FailRename(true); }, "rename");
  ASSERT_TRUE(WriteFileAtomic(OffsetLedger::MarkerPath(dir.string(), "t", 0), "").ok());
  FaultInjectionEnv fresh;
  PositionedSource src(kTotal);
  src.release_all();
  auto p = Make(&src, &fresh);
  std::atomic<bool> stop{false};
  Status st = p->Run(stop);
  EXPECT_TRUE(st.IsCorruption()) << st.message();
  EXPECT_EQ(Stored(kTotal).first, acked + 1) << "files were deleted or written";
}

INSTANTIATE_TEST_SUITE_P(Paths, FaultInjectionTest, ::testing::Values(Path::kEmbedded, Path::kPositioned),
                         [](const auto& i) { return i.param == Path::kEmbedded ? "Embedded" : "Positioned"; });

}  // namespace
}  // namespace iotpipe
