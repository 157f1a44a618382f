// The one Thrift compact codec: what the writer encodes decodes and re-encodes byte for byte (the
// invariant compaction relies on), and damaged bytes are refused, never read past.
#include "core/thrift_compact.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/dictionaries.h"
#include "core/env.h"
#include "sinks/parquet_writer.h"

namespace iotpipe {
namespace {

namespace fs = std::filesystem;

std::string FooterOf(const std::string& file) {
  if (file.size() < 12) return "";
  uint32_t len;
  std::memcpy(&len, file.data() + file.size() - 8, 4);
  return file.substr(file.size() - 8 - len, len);
}

TEST(ThriftCompact, WriterFootersRoundTripExactly) {
  const fs::path dir = fs::temp_directory_path() / ("iotpipe_thrift_" + std::to_string(getpid()));
  fs::create_directories(dir);
  Dictionaries dicts;
  ReadingColumns c;
  for (int i = 0; i < 3000; i++) {
    c.sensor.push_back(dicts.sensors.Intern("s" + std::to_string(i % 17)));
    c.ts_us.push_back(1732406400000000LL + i * 1000000LL);
    c.value.push_back(i * 0.5);
    c.gt.push_back(i % 50 == 0);
    c.type.push_back(ReadingBatch::kNoType);
    c.processing_ts_us.push_back(1732406400000000LL);
    c.predicted.push_back(i % 70 == 0);
    c.score.push_back(static_cast<float>(i % 13) / 13.0f);
    c.model.push_back(static_cast<uint16_t>(dicts.models.Intern("baseline-v1")));
  }
  ParquetWriter w(ParquetWriterOptions{"zstd", 1, 1000});
  const std::string f = (dir / "x.parquet").string();
  ASSERT_TRUE(w.WriteReadings(f, c, dicts.sensors, dicts.types, dicts.models).ok());
  auto bytes = Env::Default()->ReadFile(f);
  ASSERT_TRUE(bytes.ok());
  const std::string footer = FooterOf(*bytes);
  ASSERT_GT(footer.size(), 100u);
  thrift::TVal meta;
  size_t used = 0;
  ASSERT_TRUE(thrift::DecodeStruct(footer.data(), footer.size(), &meta, &used));
  EXPECT_EQ(used, footer.size());
  EXPECT_EQ(thrift::Encode(meta), footer);
  ASSERT_NE(meta.Field(3), nullptr);
  EXPECT_EQ(meta.Field(3)->i, 3000);  // num_rows
  // Every truncation of the footer is refused (no read past the end).
  for (size_t n = 0; n < footer.size(); n += 7) {
    thrift::TVal t;
    EXPECT_FALSE(thrift::DecodeStruct(footer.data(), n, &t)) << n;
  }
  fs::remove_all(dir);
}

TEST(ThriftCompact, RefusesDeepNesting) {
  std::string deep(200, static_cast<char>(0x1c));  // field +1 of type struct, 200 deep
  thrift::TVal t;
  EXPECT_FALSE(thrift::DecodeStruct(deep.data(), deep.size(), &t));
}

}  // namespace
}  // namespace iotpipe
