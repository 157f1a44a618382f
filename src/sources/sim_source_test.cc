// Finite sources report how far they have got (the progress line's percentage and ETA).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "sources/source.h"

namespace iotpipe {
namespace {

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
  char tmpl[] = "/tmp/iotpipe_src_progressXXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(tmpl);
    for (int i = 0; i < 100; i++) f << "{\"line\": " << 1000 + i << "}\n";  // 100 lines of equal length
  }
  FileSource s(tmpl);
  ASSERT_TRUE(s.Start().ok());
  EXPECT_DOUBLE_EQ(s.Done(), 0);
  RawBatch b;
  ASSERT_EQ(s.Poll(b, 40), PollResult::kData);
  EXPECT_GE(s.Done(), 0.4);  // stdio reads ahead: at least the lines handed out
  while (s.Poll(b, 40) == PollResult::kData) {
  }
  EXPECT_DOUBLE_EQ(s.Done(), 1.0);
  std::remove(tmpl);
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

}  // namespace
}  // namespace iotpipe
