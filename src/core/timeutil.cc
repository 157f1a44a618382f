#include "core/timeutil.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace iotpipe {

void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yy + (*m <= 2));
}

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

static bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

Result<int64_t> ParseTimeMicros(std::string_view s) {
  double v;
  if (ParseDouble(s, &v)) {
    if (v < 0 || v > 32503680000.0) return Status::Error("epoch seconds out of range: " + std::string(s));
    return static_cast<int64_t>(std::llround(v * 1e6));
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double sec = 0;
  char sep = 0;
  int n = 0;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
    return Status::Error("cannot parse time '" + str + "': expected ISO 8601 or epoch seconds");
  std::string_view rest = s.substr(10);
  if (!rest.empty()) {
    int n2 = 0;
    if (std::sscanf(str.c_str() + 10, "%c%2d:%2d%n", &sep, &h, &mi, &n2) != 3 || (sep != 'T' && sep != ' '))
      return Status::Error("cannot parse time '" + str + "'");
    rest = rest.substr(n2);
    if (!rest.empty() && rest[0] == ':') {
      size_t e = 1;
      while (e < rest.size() && (isdigit(static_cast<unsigned char>(rest[e])) || rest[e] == '.')) e++;
      if (!ParseDouble(rest.substr(1, e - 1), &sec)) return Status::Error("cannot parse seconds in '" + str + "'");
      rest = rest.substr(e);
    }
    if (rest == "Z" || rest == "+00:00" || rest.empty()) {
    } else {
      return Status::Error("only UTC times are accepted (suffix Z or +00:00): '" + str + "'");
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec >= 61)
    return Status::Error("time field out of range in '" + str + "'");
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return days * 86400000000LL + (h * 3600LL + mi * 60LL) * 1000000LL + std::llround(sec * 1e6);
}

Result<int64_t> ParseDurationMicros(std::string_view s) {
  double mult = 1e6;
  std::string_view num = s;
  auto ends = [&](std::string_view suf) { return s.size() > suf.size() && s.substr(s.size() - suf.size()) == suf; };
  if (ends("ms")) {
    mult = 1e3;
    num = s.substr(0, s.size() - 2);
  } else if (ends("s")) {
    mult = 1e6;
    num = s.substr(0, s.size() - 1);
  } else if (ends("m")) {
    mult = 60e6;
    num = s.substr(0, s.size() - 1);
  } else if (ends("h")) {
    mult = 3600e6;
    num = s.substr(0, s.size() - 1);
  } else if (ends("d")) {
    mult = 86400e6;
    num = s.substr(0, s.size() - 1);
  } else if (ends("w")) {
    mult = 7 * 86400e6;
    num = s.substr(0, s.size() - 1);
  }
  double v;
  if (!ParseDouble(num, &v) || v < 0 || v * mult > 9e18)
    return Status::Error("cannot parse duration '" + std::string(s) + "' (e.g. 3600, 90m, 12h, 7d)");
  return static_cast<int64_t>(std::llround(v * mult));
}

std::string FormatIsoMicros(int64_t us) {
  int64_t days = us >= 0 ? us / 86400000000LL : (us - 86399999999LL) / 86400000000LL;
  int64_t rem = us - days * 86400000000LL;
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  int64_t secs = rem / 1000000, frac = rem % 1000000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", y, m, d, static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60), static_cast<int>(frac));
  return buf;
}

std::string HourPartition(int64_t hour_index) {
  int64_t days = hour_index >= 0 ? hour_index / 24 : (hour_index - 23) / 24;
  int h = static_cast<int>(hour_index - days * 24);
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[48];
  std::snprintf(buf, sizeof buf, "date=%04d-%02u-%02u/hour=%02d", y, m, d, h);
  return buf;
}

std::string FormatSpan(double seconds) {
  if (!(seconds >= 0) || seconds > 1e9) return "?";
  const int64_t t = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (t < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(t));
  else if (t < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60));
  return buf;
}

}  // namespace iotpipe
