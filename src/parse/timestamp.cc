#include "parse/timestamp.h"

#include <charconv>
#include <cmath>

namespace iotpipe {

bool ParseTimeUnit(std::string_view s, TimeUnit* u) {
  if (s == "auto" || s.empty())
    *u = TimeUnit::kAuto;
  else if (s == "s")
    *u = TimeUnit::kSeconds;
  else if (s == "ms")
    *u = TimeUnit::kMillis;
  else if (s == "us" || s == "\xC2\xB5s")
    *u = TimeUnit::kMicros;
  else if (s == "ns")
    *u = TimeUnit::kNanos;
  else
    return false;
  return true;
}

std::string_view TimeUnitName(TimeUnit u) {
  switch (u) {
    case TimeUnit::kAuto:
      return "auto";
    case TimeUnit::kSeconds:
      return "s";
    case TimeUnit::kMillis:
      return "ms";
    case TimeUnit::kMicros:
      return "us";
    case TimeUnit::kNanos:
      return "ns";
  }
  return "auto";
}

TimeUnit InferTimeUnit(double v) {
  const double a = std::fabs(v);
  if (a < 1e11) return TimeUnit::kSeconds;
  if (a < 1e14) return TimeUnit::kMillis;
  if (a < 1e17) return TimeUnit::kMicros;
  return TimeUnit::kNanos;
}

bool EpochToMicros(double v, TimeUnit u, int64_t* us) {
  if (!std::isfinite(v)) return false;
  if (u == TimeUnit::kAuto) u = InferTimeUnit(v);
  double m = 0;
  switch (u) {
    case TimeUnit::kSeconds:
      m = v * 1e6;
      break;
    case TimeUnit::kMillis:
      m = v * 1e3;
      break;
    case TimeUnit::kMicros:
      m = v;
      break;
    case TimeUnit::kNanos:
      m = v / 1e3;
      break;
    case TimeUnit::kAuto:
      return false;
  }
  if (!(std::fabs(m) < 9.2e18)) return false;
  *us = static_cast<int64_t>(std::llround(m));
  return true;
}

bool EpochIntToMicros(int64_t v, TimeUnit u, int64_t* us) {
  if (u == TimeUnit::kAuto) u = InferTimeUnit(static_cast<double>(v));
  constexpr int64_t kMax = INT64_MAX / 1000000;
  switch (u) {
    case TimeUnit::kSeconds:
      if (v > kMax || v < -kMax) return false;
      *us = v * 1000000;
      return true;
    case TimeUnit::kMillis:
      if (v > INT64_MAX / 1000 || v < -(INT64_MAX / 1000)) return false;
      *us = v * 1000;
      return true;
    case TimeUnit::kMicros:
      *us = v;
      return true;
    case TimeUnit::kNanos: {
      int64_t q = v / 1000, r = v % 1000;
      if (r >= 500)
        q++;
      else if (r <= -500)
        q--;
      *us = q;
      return true;
    }
    case TimeUnit::kAuto:
      break;
  }
  return false;
}

namespace {

int64_t DaysFrom(int y, unsigned m, unsigned d) {  // Howard Hinnant's days_from_civil
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

bool ParseIsoTimestamp(std::string_view s, int64_t* us) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) || s[7] != '-' ||
      !Digits(s, 8, 2, &d))
    return false;
  size_t p = 10;
  int64_t frac_us = 0;
  int64_t offset_s = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return false;
    p++;
    if (!Digits(s, p, 2, &h) || p + 2 >= s.size() || s[p + 2] != ':' || !Digits(s, p + 3, 2, &mi)) return false;
    p += 5;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, &sec)) return false;
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        p++;
        size_t start = p;
        int64_t scale = 100000;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          frac_us += (s[p] - '0') * scale;  // digits past µs are cut off
          scale /= 10;
          p++;
        }
        if (p == start) return false;
      }
    }
    if (p < s.size()) {
      char z = s[p];
      if ((z == 'Z' || z == 'z') && p + 1 == s.size()) {
        p++;
      } else if (z == '+' || z == '-') {
        int oh = 0, om = 0;
        if (!Digits(s, p + 1, 2, &oh)) return false;
        size_t q = p + 3;
        if (q < s.size()) {
          if (s[q] == ':') q++;
          if (!Digits(s, q, 2, &om)) return false;
          q += 2;
        }
        if (q != s.size() || oh > 23 || om > 59) return false;
        offset_s = (z == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        p = q;
      } else {
        return false;
      }
    }
  }
  if (p != s.size()) return false;
  static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || static_cast<unsigned>(d) > kDays[mo - 1] || h > 23 || mi > 59 || sec > 60)
    return false;
  const int64_t days = DaysFrom(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  *us = secs * 1000000 + frac_us;
  return true;
}

bool ParseTimeText(std::string_view s, TimeUnit u, int64_t* us) {
  if (s.empty()) return false;
  // An integer: exact conversion.
  int64_t iv;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), iv);
  if (ec == std::errc() && p == s.data() + s.size()) return EpochIntToMicros(iv, u, us);
  double dv;
  auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), dv);
  if (ec2 == std::errc() && p2 == s.data() + s.size()) return EpochToMicros(dv, u, us);
  return ParseIsoTimestamp(s, us);
}

}  // namespace iotpipe
