// The HTTP source without a server or a pipeline: bodies into records, positions, and a request
// answered only once the pipeline acknowledges every row it produced. (Through the binary, with a
// real server, the store and clients: tests/http_ingest_test.cc.)
#include "sources/http_source.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace iotpipe {
namespace {

std::vector<std::string> Records(std::string_view body, BodyFormat f) {
  RawBatch b;
  std::string err;
  EXPECT_TRUE(HttpSource::SplitBody(body, f, &b, &err)) << err;
  std::vector<std::string> out;
  for (size_t i = 0; i < b.size(); i++) out.emplace_back(b.record(i));
  return out;
}

TEST(HttpSourceSplit, LinesSkipBlanksAndCarriageReturnsLineProtocolComments) {
  EXPECT_EQ(Records("a 1\r\n\n  \n# note\nb 2", BodyFormat::kLineProtocol), (std::vector<std::string>{"a 1", "b 2"}));
  EXPECT_EQ(Records("{\"a\":1}\n\n{\"b\":2}\n", BodyFormat::kJson),
            (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  EXPECT_TRUE(Records(" \n\n", BodyFormat::kJson).empty());
}

TEST(HttpSourceSplit, JsonArrayElementsAreRecordsBrokenArrayIsRefused) {
  EXPECT_EQ(Records(" [{\"a\": 1}, {\"b\": [2, 3]}, 4]", BodyFormat::kJson),
            (std::vector<std::string>{"{\"a\":1}", "{\"b\":[2,3]}", "4"}));
  RawBatch b;
  std::string err;
  EXPECT_FALSE(HttpSource::SplitBody("[{\"a\":1},", BodyFormat::kJson, &b, &err));
  EXPECT_NE(err.find("not a JSON array"), std::string::npos);
}

// A pipeline stand-in: what the store and the offset ledger would do with a batch.
struct FakePipeline {
  HttpSource& src;
  RawBatch Poll() {
    RawBatch b;
    for (int i = 0; i < 200; i++)
      if (src.Poll(b, 1000) == PollResult::kData) return b;
    ADD_FAILURE() << "nothing polled";
    return b;
  }
  // Record i becomes a reading, except the ones listed as dead letters.
  void Write(const RawBatch& raw, const std::set<size_t>& dead) {
    ProcessedBatch pb;
    for (size_t i = 0; i < raw.size(); i++) {
      if (dead.count(i)) {
        pb.dead.raw.emplace_back(raw.record(i));
        pb.dead.origins.push_back(raw.origins[i]);
      } else {
        pb.readings.Push(0, 0, 1.0, 2, 0);
        pb.readings.origins.push_back(raw.origins[i]);
      }
    }
    ASSERT_TRUE(src.observer()->Write(pb).ok());
  }
};

TEST(HttpSource, RequestIsAnsweredOnlyOnceItsRowsAreAcknowledged) {
  HttpSource src(HttpSourceOptions{});
  ASSERT_TRUE(src.Start().ok());
  auto reply =
      std::async(std::launch::async, [&] { return src.Ingest("a x=1 1\nb x=2 2\nbad\n", BodyFormat::kLineProtocol); });
  FakePipeline p{src};
  RawBatch raw = p.Poll();
  ASSERT_EQ(raw.size(), 3u);
  EXPECT_EQ(raw.mapping, 2 + static_cast<int>(TimeUnit::kAuto));  // line protocol, precision by magnitude
  EXPECT_EQ(raw.origins[0].offset, 0);
  EXPECT_EQ(raw.origins[2].offset, 2);
  p.Write(raw, {2});
  src.Ack({{0, 1}});  // not yet every row
  EXPECT_EQ(reply.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  src.Ack({{0, 2}});
  ASSERT_EQ(reply.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  IngestReply r = reply.get();
  EXPECT_EQ(r.code, IngestReply::kDurable);
  EXPECT_EQ(r.records, 3);
  EXPECT_EQ(r.readings, 2);
  EXPECT_EQ(r.dead_letters, 1);
  EXPECT_TRUE(src.Stop().ok());
}

TEST(HttpSource, RecordsWithoutRowsNeedNothingDurableEmptyBodyIsAnsweredAtOnce) {
  HttpSource src(HttpSourceOptions{});
  ASSERT_TRUE(src.Start().ok());
  EXPECT_EQ(src.Ingest("\n\n", BodyFormat::kJson).code, IngestReply::kDurable);
  auto reply = std::async(std::launch::async, [&] { return src.Ingest("{}\n{}\n", BodyFormat::kJson); });
  FakePipeline p{src};
  RawBatch raw = p.Poll();
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw.mapping, 0);                                  // the pipeline's own mapping (original) reads JSON
  ASSERT_TRUE(src.observer()->Write(ProcessedBatch{}).ok());  // no row at all (e.g. string-only line protocol)
  ASSERT_EQ(reply.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(reply.get().readings, 0);
}

TEST(HttpSource, FullQueueRefusesAtOnceStopAnswersTheWaiting) {
  HttpSourceOptions o;
  o.max_queue_bytes = 100;
  HttpSource src(o);
  ASSERT_TRUE(src.Start().ok());
  auto first = std::async(std::launch::async, [&] { return src.Ingest(std::string(80, 'x'), BodyFormat::kJson); });
  while (src.Lag() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  IngestReply full = src.Ingest(std::string(80, 'y'), BodyFormat::kJson);
  EXPECT_EQ(full.code, IngestReply::kQueueFull);
  EXPECT_EQ(src.Counters().at("http_queue_full"), 1);
  EXPECT_TRUE(src.Stop().ok());
  ASSERT_EQ(first.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(first.get().code, IngestReply::kUnavailable);
  EXPECT_EQ(src.Ingest("{}", BodyFormat::kJson).code, IngestReply::kUnavailable);
}

TEST(HttpSource, BatchesHoldOneMappingAndPositionsGrowAcrossRequests) {
  HttpSourceOptions o;
  o.mapping.format = InputFormat::kCsv;  // not a JSON shape: JSON bodies get the original mapping (1)
  HttpSource src(o);
  ASSERT_TRUE(src.Start().ok());
  EXPECT_EQ(src.mappings().size(), 6u);  // original + line protocol at 5 precisions
  auto a = std::async(std::launch::async, [&] { return src.Ingest("{}\n{}", BodyFormat::kJson); });
  while (src.Lag() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto b = std::async(std::launch::async,
                      [&] { return src.Ingest("m f=1 1", BodyFormat::kLineProtocol, TimeUnit::kSeconds); });
  while (src.Lag() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  FakePipeline p{src};
  RawBatch r1 = p.Poll(), r2 = p.Poll();
  EXPECT_EQ(r1.size(), 2u);
  EXPECT_EQ(r1.mapping, 1);
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_EQ(r2.mapping, 2 + static_cast<int>(TimeUnit::kSeconds));
  EXPECT_EQ(r2.origins[0].offset, 2);
  p.Write(r1, {});
  p.Write(r2, {});
  src.Ack({{0, 2}});
  EXPECT_EQ(a.get().readings, 2);
  EXPECT_EQ(b.get().readings, 1);
}

}  // namespace
}  // namespace iotpipe
