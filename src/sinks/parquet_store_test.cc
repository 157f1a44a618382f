#include "sinks/parquet_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/dictionaries.h"
#include "core/fault_env.h"
#include "core/fsutil.h"

namespace fs = std::filesystem;

namespace iotpipe {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("iotpipe_store_" + std::to_string(getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    dicts.models.Intern("baseline-v1");
  }
  void TearDown() override { fs::remove_all(dir); }
  OffsetMap committed;  // what the pipeline's ledger would have committed (positioned mode)
  Env* env = Env::Default();
  size_t merge_min_rows = 16384;  // StoreOptions' default: 100-row files are re-encoded by DuckDB

  // topic: positioned mode, named and committed as the pipeline does for a Kafka source.
  std::unique_ptr<ParquetStore> Open(const std::string& topic = "") {
    StoreOptions o;
    o.data_dir = dir.string();
    o.env = env;
    o.compact_merge_min_rows = merge_min_rows;
    if (!topic.empty()) {
      o.position_files = "kafka-" + topic;
      o.source_label = "kafka:" + topic;
      o.committed = committed;
    }
    auto s = ParquetStore::Open(o, &dicts.sensors, &dicts.types, &dicts.models);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return std::move(s.value());
  }
  // n readings for sensor "s<i % 3>", one second apart, from t0.
  ProcessedBatch Batch(int n, int64_t t0, int32_t kpart = -1, int64_t off0 = 0) {
    ProcessedBatch b;
    for (int i = 0; i < n; i++) {
      uint32_t sid = dicts.sensors.Intern("s" + std::to_string(i % 3));
      uint16_t ty = i % 10 == 0 ? static_cast<uint16_t>(dicts.types.Intern("spike")) : ReadingBatch::kNoType;
      b.readings.Push(sid, t0 + i * 1000000LL, i * 0.5, i % 10 == 0, ty);
      b.readings.predicted.back() = i % 7 == 0;
      b.readings.score.back() = 0.25f;
      if (kpart >= 0) b.readings.origins.push_back({kpart, off0 + i});
    }
    b.readings.processing_ts_us = t0 + 5;
    return b;
  }
  std::vector<std::string> Files(const std::string& sub) {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir / sub))
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir / sub).string());
    std::sort(out.begin(), out.end());
    return out;
  }
  int64_t Count(const std::string& sql) {
    auto db = Duck::Open();
    EXPECT_TRUE(CreateDataViews(**db, dir.string()).ok());
    auto t = (*db)->Query(sql);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? t->Int() : -1;
  }

  fs::path dir;
  Dictionaries dicts;
};

const int64_t kT0 = 1732406400000000LL;  // 2024-11-24T00:00:00Z

TEST_F(StoreTest, WritesHourPartitionsAtomicallyWithTheStoredSchema) {
  auto store = Open();
  ASSERT_TRUE(store->Append(Batch(5000, kT0 + 3000 * 1000000LL)).ok());  // spans hours 00, 01 and 02
  EXPECT_EQ(store->buffered_rows(), 5000u);
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(store->buffered_rows(), 0u);
  auto files = Files("sensor_readings");
  std::string all;
  for (auto& f : files) all += f + " ";
  ASSERT_EQ(files.size(), 3u) << all;
  EXPECT_TRUE(files[0].starts_with("date=2024-11-24/hour=00/part-")) << files[0];
  EXPECT_TRUE(files[1].starts_with("date=2024-11-24/hour=01/part-")) << files[1];
  EXPECT_TRUE(files[2].starts_with("date=2024-11-24/hour=02/part-")) << files[2];
  for (auto& f : files) EXPECT_TRUE(f.ends_with(".parquet")) << "no temporary names left: " << f;
  EXPECT_EQ(Count("select count(*) from sensor_readings"), 5000);
  EXPECT_EQ(Count("select count(*) from sensor_readings where hour = 0"), 600);
  EXPECT_EQ(Count("select count(*) from sensor_readings where hour = 1"), 3600);
  EXPECT_EQ(Count("select count(*) from sensor_readings where anomaly_type = 'spike' and is_anomaly_ground_truth"),
            500);
  EXPECT_EQ(Count("select count(*) from sensor_readings where anomaly_type is null"), 4500);
  EXPECT_EQ(Count("select count(*) from sensor_readings where model_version = 'baseline-v1' and anomaly_score = 0.25"),
            5000);
  EXPECT_EQ(Count("select count(*) from sensor_readings where timestamp = TIMESTAMP '2024-11-24 00:50:00'"), 1);
  // Column names and types are the contract.
  auto db = Duck::Open();
  ASSERT_TRUE(CreateDataViews(**db, dir.string()).ok());
  auto t = (*db)->Query(
      "select column_name, data_type from information_schema.columns where table_name = 'sensor_readings' order by "
      "ordinal_position");
  ASSERT_TRUE(t.ok()) << t.status().message();
  std::string cols;
  for (size_t i = 0; i < t->rows.size(); i++) cols += t->Str(i, 0) + ":" + t->Str(i, 1) + " ";
  EXPECT_EQ(cols,
            "sensor_id:VARCHAR timestamp:TIMESTAMP value:DOUBLE is_anomaly_ground_truth:BOOLEAN anomaly_type:VARCHAR "
            "processing_timestamp:TIMESTAMP is_anomaly_predicted:BOOLEAN anomaly_score:FLOAT model_version:VARCHAR "
            "date:DATE hour:INTEGER ");
}

TEST_F(StoreTest, DeadLettersKeepRawBytesAndReason) {
  auto store = Open();
  ProcessedBatch b;
  b.dead.raw = {"{broken", std::string("\xff\x00\x01", 3)};
  b.dead.reason = {"invalid_json: x", "invalid_json: utf8"};
  b.dead.received_ts_us = kT0;
  ASSERT_TRUE(store->Append(b).ok());
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(Count("select count(*) from dead_letters"), 2);
  EXPECT_EQ(Count("select count(*) from dead_letters where raw = '{broken'::BLOB and reason = 'invalid_json: x'"), 1);
  EXPECT_EQ(Count("select octet_length(raw) from dead_letters where reason = 'invalid_json: utf8'"), 3);
  EXPECT_EQ(store->stats().dead, 2u);
}

TEST_F(StoreTest, CompactionMergesClosedHoursIntoOneFileAndKeepsEveryRow) {
  auto store = Open();
  for (int i = 0; i < 5; i++) {
    ASSERT_TRUE(store->Append(Batch(100, kT0 + i * 100 * 1000000LL)).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  EXPECT_EQ(Files("sensor_readings").size(), 5u);
  // Event time moves past the hour (and its grace period): hour 00 is closed.
  ASSERT_TRUE(store->Append(Batch(1, kT0 + 2 * 3600 * 1000000LL)).ok());
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->CompactClosed().ok());
  auto files = Files("sensor_readings");
  ASSERT_EQ(files.size(), 2u) << "hour 00 compacted to one file, hour 02 untouched";
  EXPECT_NE(files[0].find("-c"), std::string::npos) << files[0];
  EXPECT_EQ(Count("select count(*) from sensor_readings"), 501);
  EXPECT_EQ(Count("select count(distinct (sensor_id, timestamp)) from sensor_readings"), 501);
  EXPECT_EQ(store->stats().compactions, 1u);
}

// A full disk during compaction (both ways of writing its output: row groups concatenated through the
// Env, and DuckDB's re-encoding COPY): the compaction fails with an IOError, readers still see every row
// once and no temporary file, the inputs stay; with space again, the next compaction succeeds.
TEST_F(StoreTest, CompactionOnAFullDiskFailsCleanlyThenSucceeds) {
  for (bool concatenate : {true, false}) {
    SCOPED_TRACE(concatenate ? "row groups concatenated" : "re-encoded by DuckDB");
    fs::remove_all(dir);
    FaultInjectionEnv fenv;
    env = &fenv;
    merge_min_rows = concatenate ? 1 : size_t{1} << 30;
    auto store = Open();
    for (int i = 0; i < 5; i++) {
      ASSERT_TRUE(store->Append(Batch(100, kT0 + i * 100 * 1000000LL)).ok());
      ASSERT_TRUE(store->Flush().ok());
    }
    ASSERT_TRUE(store->Append(Batch(1, kT0 + 2 * 3600 * 1000000LL)).ok());  // hour 00 closes
    ASSERT_TRUE(store->Flush().ok());
    fenv.SetWriteBudget(600);  // the manifest fits, the compacted file does not
    Status s = store->CompactClosed();
    ASSERT_FALSE(s.ok()) << "compaction on a full disk reported success";
    EXPECT_TRUE(s.IsIOError()) << s.message();
    EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s.message();
    EXPECT_EQ(store->stats().compactions, 0u);
    EXPECT_EQ(Files("sensor_readings").size(), 6u) << "the inputs stay, no temporary file is left";
    EXPECT_EQ(Count("select count(*) from sensor_readings"), 501);
    EXPECT_EQ(Count("select count(distinct (sensor_id, timestamp)) from sensor_readings"), 501);
    fenv.Reset();
    ASSERT_TRUE(store->CompactClosed().ok());
    EXPECT_EQ(store->stats().compactions, 1u);
    EXPECT_EQ(Files("sensor_readings").size(), 2u);
    EXPECT_EQ(Count("select count(*) from sensor_readings"), 501);
    EXPECT_EQ(Count("select count(distinct (sensor_id, timestamp)) from sensor_readings"), 501);
    store.reset();
    env = Env::Default();
  }
}

// Regression: compaction drops closed partitions' buffers while others are active; new buffers must
// never reuse the name of a live buffer table.
TEST_F(StoreTest, AppendsContinueAfterCompactionWhileOtherPartitionsAreBuffered) {
  auto store = Open();
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(store->Append(Batch(10, kT0 + i * 10 * 1000000LL)).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  ASSERT_TRUE(store->Append(Batch(10, kT0 + 2 * 3600 * 1000000LL)).ok());  // buffered, hour 02
  ASSERT_TRUE(store->CompactClosed().ok());
  ASSERT_TRUE(store->Append(Batch(10, kT0 + 3 * 3600 * 1000000LL)).ok());  // new buffer, hour 03
  ASSERT_TRUE(store->Append(Batch(10, kT0 + 2 * 3600 * 1000000LL + 100 * 1000000LL)).ok());
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(Count("select count(*) from sensor_readings"), 60);
}

TEST_F(StoreTest, RecoveryFinishesAnInterruptedCompactionAndDropsTemporaryFiles) {
  {
    auto store = Open();
    for (int i = 0; i < 3; i++) {
      ASSERT_TRUE(store->Append(Batch(10, kT0 + i * 10 * 1000000LL)).ok());
      ASSERT_TRUE(store->Flush().ok());
    }
  }
  fs::path hour = dir / "sensor_readings" / "date=2024-11-24" / "hour=00";
  auto inputs = Files("sensor_readings");
  ASSERT_EQ(inputs.size(), 3u);
  // Simulate a crash after the compacted file was renamed into place but before inputs were removed:
  // the compacted file holds the rows of the inputs.
  {
    auto db = Duck::Open();
    std::string list;
    for (auto& f : inputs) list += (list.empty() ? "" : ", ") + SqlQuote((dir / "sensor_readings" / f).string());
    ASSERT_TRUE((*db)
                    ->Exec("COPY (SELECT * FROM read_parquet([" + list + "], hive_partitioning=false)) TO " +
                           SqlQuote((hour / "part-x-c000001.parquet").string()) + " (FORMAT parquet)")
                    .ok());
  }
  std::string manifest = "part-x-c000001.parquet\n";
  for (auto& f : inputs) manifest += fs::path(f).filename().string() + "\n";
  // A dead process id (pid 0 is never a live writer here) marks the manifest as abandoned.
  ASSERT_TRUE(WriteFileAtomic((hour / ".compact-part-x-c000001.parquet.999999.manifest").string(), manifest).ok());
  std::ofstream(hour / ".part-y-000009.parquet.999999.tmp") << "partial";
  ASSERT_TRUE(ParquetStore::Recover((dir / "sensor_readings").string()).ok());
  auto after = Files("sensor_readings");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(fs::path(after[0]).filename(), "part-x-c000001.parquet");
  EXPECT_EQ(Count("select count(*) from sensor_readings"), 30);
}

TEST_F(StoreTest, KafkaFilesCarryOffsetsAndReplayedRowsAreSkipped) {
  {
    auto store = Open("iot-sensor-data");
    ASSERT_TRUE(store->Append(Batch(100, kT0, 2, 1000)).ok());
    ASSERT_TRUE(store->Flush().ok());
    committed = *store->durable();  // the pipeline commits what every durable sink holds
    EXPECT_EQ(store->durable()->at(2), 1099);
  }
  auto files = Files("sensor_readings");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(fs::path(files[0]).filename(), "kafka-iot-sensor-data-p2-o1000-1099.parquet");
  OffsetMap hw;
  ParquetStore::ScanPositions((dir / "sensor_readings").string(), "kafka-iot-sensor-data", &hw);
  EXPECT_EQ(hw.at(2), 1099);
  // A restarted processor re-reads offsets 1050..1149: only 1100..1149 are new.
  auto store = Open("iot-sensor-data");
  ProcessedBatch replay = Batch(100, kT0 + 50 * 1000000LL, 2, 1050);
  ASSERT_TRUE(store->Append(replay).ok());
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(Count("select count(*) from sensor_readings"), 150);
  EXPECT_EQ(Count("select count(distinct (sensor_id, timestamp)) from sensor_readings"), 150);
}

}  // namespace
}  // namespace iotpipe
