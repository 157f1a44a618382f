#include "core/timeutil.h"

#include <gtest/gtest.h>

#include <cmath>

namespace iotpipe {
namespace {

TEST(TimeUtil, ParsesIsoAndEpoch) {
  EXPECT_EQ(ParseTimeMicros("1732406400").value(), 1732406400000000LL);
  EXPECT_EQ(ParseTimeMicros("1732406400.5").value(), 1732406400500000LL);
  EXPECT_EQ(ParseTimeMicros("2024-11-24T00:00:00Z").value(), 1732406400000000LL);
  EXPECT_EQ(ParseTimeMicros("2024-11-24 00:00:01.25").value(), 1732406401250000LL);
  EXPECT_EQ(ParseTimeMicros("2024-11-24").value(), 1732406400000000LL);
  EXPECT_FALSE(ParseTimeMicros("yesterday").ok());
  EXPECT_FALSE(ParseTimeMicros("2024-13-01").ok());
  EXPECT_FALSE(ParseTimeMicros("2024-11-24T00:00:00+02:00").ok());
}

TEST(TimeUtil, ParsesDurations) {
  EXPECT_EQ(ParseDurationMicros("3600").value(), 3600000000LL);
  EXPECT_EQ(ParseDurationMicros("90m").value(), 5400000000LL);
  EXPECT_EQ(ParseDurationMicros("7d").value(), 604800000000LL);
  EXPECT_EQ(ParseDurationMicros("500ms").value(), 500000LL);
  EXPECT_FALSE(ParseDurationMicros("abc").ok());
  EXPECT_FALSE(ParseDurationMicros("-5m").ok());
}

TEST(TimeUtil, HourPartitionsAndFormatting) {
  EXPECT_EQ(HourPartition(HourIndex(1732406400000000LL)), "date=2024-11-24/hour=00");
  EXPECT_EQ(HourPartition(HourIndex(1732406400000000LL + 7 * 3600000000LL + 5)), "date=2024-11-24/hour=07");
  EXPECT_EQ(FormatIsoMicros(1732406400123456LL), "2024-11-24T00:00:00.123456Z");
  for (int64_t d = -1000; d < 100000; d += 37) {
    int y;
    unsigned m, dd;
    CivilFromDays(d, &y, &m, &dd);
    EXPECT_EQ(DaysFromCivil(y, m, dd), d);
  }
}

}  // namespace
TEST(TimeUtil, FormatSpanForPeople) {
  EXPECT_EQ(FormatSpan(0), "0s");
  EXPECT_EQ(FormatSpan(44.6), "45s");
  EXPECT_EQ(FormatSpan(185), "3m05s");
  EXPECT_EQ(FormatSpan(7620), "2h07m");
  EXPECT_EQ(FormatSpan(-1), "?");
  EXPECT_EQ(FormatSpan(std::nan("")), "?");
}

}  // namespace iotpipe
