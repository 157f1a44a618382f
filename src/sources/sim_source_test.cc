// Finite sources report how far they have got (the progress line's percentage and ETA).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "sources/source.h"

namespace iotpipe {
namespace {

// A new temporary file holding text; its path.
std::string TempFileWith(const std::string& text) {
  char path[] = "/tmp/iotpipe_src_testXXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(SourceProgress, SimulatorCountsTowardsItsEventBound) {
  SimSourceOptions o;
  o.sim.sensors = 10;
  o.max_events = 1000;
  RealClock clock;
  SimSource s(o, &clock);
  RawBatch b;
  ASSERT_EQ(s.Poll(b, 250), PollResult::kData);
  EXPECT_DOUBLE_EQ(s.Done(), 0.25);
  while (s.Poll(b, 300) == PollResult::kData) {
  }
  EXPECT_DOUBLE_EQ(s.Done(), 1.0);
  SimSourceOptions unbounded;
  SimSource u(unbounded, &clock);
  ASSERT_EQ(u.Poll(b, 10), PollResult::kData);
  EXPECT_LT(u.Done(), 0) << "no bound: unknown";
}

TEST(SourceProgress, FileByBytesStreamUnknown) {
  std::string lines;
  for (int i = 0; i < 100; i++) lines += "{\"line\": " + std::to_string(1000 + i) + "}\n";  // of equal length
  const std::string tmpl = TempFileWith(lines);
  FileSource s(tmpl);
  ASSERT_TRUE(s.Start().ok());
  EXPECT_DOUBLE_EQ(s.Done(), 0);
  RawBatch b;
  ASSERT_EQ(s.Poll(b, 40), PollResult::kData);
  EXPECT_GE(s.Done(), 0.4);  // stdio reads ahead: at least the lines handed out
  while (s.Poll(b, 40) == PollResult::kData) {
  }
  EXPECT_DOUBLE_EQ(s.Done(), 1.0);
  std::remove(tmpl.c_str());
  FileSource dir("/etc");  // issue 14: `process --input /etc` exited 0
  Status st = dir.Start();
  EXPECT_TRUE(st.IsInvalidArgument()) << st.message();
  EXPECT_NE(st.message().find("is a directory"), std::string::npos) << st.message();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  FileSource stream("/dev/fd/" + std::to_string(p[0]));
  ASSERT_TRUE(stream.Start().ok());
  EXPECT_LT(stream.Done(), 0) << "a pipe has no size";
  close(p[0]);
  close(p[1]);
}

// A line longer than the limit is not held: its prefix is handed out as a cut record with the line's
// whole length, the lines around it are intact, and memory stays bounded (issue 14: a 300 MB line
// cost 2.5 GB). Also through a pipe, and for input with no newline at all (/dev/zero).
TEST(FileSourceLines, LongLinesAreCutNotHeld) {
  const std::string path =  // a 5 MiB line between two short ones
      TempFileWith("first\n" + std::string(5 << 20, 'x') + "\nlast\n");
  FileSource s(path, 1 << 20);
  ASSERT_TRUE(s.Start().ok());
  std::vector<std::string> recs;
  std::vector<std::pair<size_t, uint64_t>> cuts;
  RawBatch b;
  for (int polls = 0; polls < 1000; polls++) {
    PollResult r = s.Poll(b, 8192);
    for (auto& [at, len] : b.cut) cuts.emplace_back(recs.size() + at, len);
    for (size_t i = 0; i < b.size(); i++) recs.emplace_back(b.record(i));
    if (r == PollResult::kEnd) break;
  }
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0], "first");
  EXPECT_EQ(recs[1], std::string(FileSource::kKeptOfCutLine, 'x'));
  EXPECT_EQ(recs[2], "last");
  ASSERT_EQ(cuts.size(), 1u);
  EXPECT_EQ(cuts[0], (std::pair<size_t, uint64_t>(1, 5 << 20)));
  std::remove(path.c_str());
  // /dev/zero: no newline ever; polls hand out nothing and memory does not grow with what is read.
  FileSource zero("/dev/zero", 1 << 20);
  ASSERT_TRUE(zero.Start().ok());
  for (int polls = 0; polls < 200; polls++) {  // 200 MiB of zeros
    EXPECT_NE(zero.Poll(b, 8192), PollResult::kEnd);
    EXPECT_EQ(b.size(), 0u);
  }
  EXPECT_LT(b.data.capacity(), 1u << 20);
}

}  // namespace
}  // namespace iotpipe
