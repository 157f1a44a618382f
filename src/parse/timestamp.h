// Event times as fleets send them, to µs since the epoch (UTC).
//
// Numbers are epoch times in a declared unit (s, ms, us, ns) or, with unit `auto`, in the unit
// inferred from the magnitude of |v| (documented rule, the same as most TSDB importers use):
//     |v| <  1e11  seconds       (up to year 5138)
//     |v| <  1e14  milliseconds  (1e11 ms = 1973-03-03: any ms time after that)
//     |v| <  1e17  microseconds  (1e14 µs = 1973-03-03)
//     otherwise    nanoseconds   (1e17 ns = 1973-03-03)
// so any epoch time after 1973-03-03 is read in the unit it was written in. Integers are converted
// exactly (ns / 1000, rounded half away from zero); fractions are allowed in every unit.
// Strings are RFC 3339 / ISO 8601: YYYY-MM-DD, then optionally [T or space]hh:mm[:ss[.fraction]]
// and a zone: Z, ±hh:mm, ±hhmm or ±hh (no zone: UTC). The range check ([1970, 2100) by default)
// is the caller's.
#pragma once
#include <cstdint>
#include <string_view>

namespace iotpipe {

enum class TimeUnit : uint8_t { kAuto, kSeconds, kMillis, kMicros, kNanos };

// "auto", "s", "ms", "us" (or "µs"), "ns". False if unknown.
bool ParseTimeUnit(std::string_view s, TimeUnit* u);
std::string_view TimeUnitName(TimeUnit u);
// The unit `auto` picks for |v| (never kAuto).
TimeUnit InferTimeUnit(double v);

// False if the result does not fit (|µs| > 9.2e18) or v is not finite.
bool EpochToMicros(double v, TimeUnit u, int64_t* us);
bool EpochIntToMicros(int64_t v, TimeUnit u, int64_t* us);
// An RFC 3339 / ISO 8601 string (see above). False if malformed.
bool ParseIsoTimestamp(std::string_view s, int64_t* us);
// A string that is either an epoch number (decimal, in unit u) or an ISO 8601 time.
bool ParseTimeText(std::string_view s, TimeUnit u, int64_t* us);

}  // namespace iotpipe
