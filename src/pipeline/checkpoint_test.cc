// The checkpoint codec: round trip, every header line under the checksum, the legacy format read,
// and a file larger than its header allows refused before it is read (issue 14, findings 4 and 7).
#include "pipeline/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/checksum.h"

namespace iotpipe {
namespace {

std::string Sample(size_t sensors, size_t stride = 8) {
  std::string payload;
  for (size_t i = 0; i < sensors; i++) {
    const std::string state(stride, static_cast<char>('a' + i % 26));
    AppendCheckpointEntry(&payload, "sensor_" + std::to_string(i), state.data(), stride);
  }
  return FormatCheckpoint("baseline", "v1", stride, payload, sensors);
}

TEST(Checkpoint, RoundTripsAndEveryHeaderLineIsChecked) {
  const std::string c = Sample(3);
  CheckpointView v;
  ASSERT_TRUE(ParseCheckpoint(c, "ckpt", &v).ok());
  EXPECT_EQ(v.name, "baseline");
  EXPECT_EQ(v.version, "v1");
  ASSERT_EQ(v.entries.size(), 3u);
  EXPECT_EQ(v.entries[2].first, "sensor_2");
  EXPECT_EQ(v.entries[2].second, std::string(8, 'c'));
  std::string edited = c;  // the version line, outside the checksum in format 2
  edited.replace(edited.find("\nv1\n"), 4, "\nv9\n");
  Status s = ParseCheckpoint(edited, "ckpt", &v);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("checksum mismatch"), std::string::npos) << s.message();
  edited = c;
  edited.replace(edited.find("baseline"), 8, "baselinf");
  EXPECT_FALSE(ParseCheckpoint(edited, "ckpt", &v).ok());
}

TEST(Checkpoint, LegacyFormatTwoIsStillRead) {
  std::string payload;
  AppendCheckpointEntry(&payload, "s", "12345678", 8);
  char dims[64];
  std::snprintf(dims, sizeof dims, "8 1 %016llx\n", static_cast<unsigned long long>(Fnv1a64(payload)));
  const std::string c = std::string("IOTPCKP 2\nbaseline\nv1\n") + dims + payload;
  CheckpointView v;
  Status s = ParseCheckpoint(c, "ckpt", &v);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(v.entries[0].first, "s");
}

TEST(Checkpoint, AFileLargerThanItsHeaderAllowsIsRefusedBeforeReading) {
  char path[] = "/tmp/iotpipe_ckptXXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(path, std::ios::binary);
    f << Sample(2) << std::string(4 << 20, 'x');  // 2 entries, then 4 MiB of padding
  }
  auto r = ReadCheckpointFile(Env::Default(), path, "checkpoint");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().message();
  EXPECT_NE(r.status().message().find("more than its header"), std::string::npos) << r.status().message();
  {
    std::ofstream f(path, std::ios::binary);
    f << Sample(20000, 64);  // a genuinely big one (1.6 MB) is read and parses
  }
  r = ReadCheckpointFile(Env::Default(), path, "checkpoint");
  ASSERT_TRUE(r.ok()) << r.status().message();
  CheckpointView v;
  EXPECT_TRUE(ParseCheckpoint(r.value(), "checkpoint", &v).ok());
  EXPECT_EQ(v.entries.size(), 20000u);
  std::remove(path);
}

}  // namespace
}  // namespace iotpipe
