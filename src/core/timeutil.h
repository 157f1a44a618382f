// Time parsing and formatting (UTC only; no time-zone database on the hot path).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace iotpipe {

// "2024-11-24T00:00:00Z", "2024-11-24 00:00:00.5", "2024-11-24" or epoch seconds "1732406400.5".
Result<int64_t> ParseTimeMicros(std::string_view s);
// "3600" (seconds), "1.5s", "90m", "12h", "7d", "500ms".
Result<int64_t> ParseDurationMicros(std::string_view s);
// Days since epoch -> (y, m, d), proleptic Gregorian (Howard Hinnant's algorithm).
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d);
int64_t DaysFromCivil(int y, unsigned m, unsigned d);
// "2024-11-24T00:00:00.123456Z"
std::string FormatIsoMicros(int64_t us);
// A span for people: 45s, 3m05s, 2h07m (rounded to the second; negative or not finite: "?").
std::string FormatSpan(double seconds);
// Hive partition path for an hour: "date=2024-11-24/hour=07".
std::string HourPartition(int64_t hour_index);
inline int64_t HourIndex(int64_t us) { return us >= 0 ? us / 3600000000LL : (us - 3599999999LL) / 3600000000LL; }

}  // namespace iotpipe
