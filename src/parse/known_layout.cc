#include "parse/known_layout.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace iotpipe {

namespace {

inline void Ws(const char*& p, const char* e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
}

[[gnu::always_inline]] inline bool Lit(const char*& p, const char* e, std::string_view s) {
  if (static_cast<size_t>(e - p) < s.size() || std::memcmp(p, s.data(), s.size()) != 0) return false;
  p += s.size();
  return true;
}

// "key" then ':' (with whitespace around).
[[gnu::always_inline]] inline bool Key(const char*& p, const char* e, std::string_view quoted) {
  Ws(p, e);
  if (!Lit(p, e, quoted)) return false;
  Ws(p, e);
  if (p >= e || *p != ':') return false;
  p++;
  Ws(p, e);
  return true;
}

inline bool Comma(const char*& p, const char* e) {
  Ws(p, e);
  if (p >= e || *p != ',') return false;
  p++;
  return true;
}

// A string of printable ASCII without escapes.
inline bool Str(const char*& p, const char* e, std::string_view* out) {
  if (p >= e || *p != '"') return false;
  const char* s = ++p;
  while (p < e) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"') {
      *out = std::string_view(s, static_cast<size_t>(p - s));
      p++;
      return true;
    }
    if (c < 0x20 || c == '\\' || c >= 0x80) return false;
    p++;
  }
  return false;
}

inline bool Digit(char c) { return c >= '0' && c <= '9'; }

// Exact powers of ten as doubles: 10^0 .. 10^22 are all representable.
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// A JSON number (RFC 8259 grammar) of at most 19 digits, finite.
// Fast path (Clinger): without an exponent and with at most 15 significant digits, the digits form
// an integer m < 2^53 and the value is m / 10^f with f <= 15 fraction digits; both operands are
// exact doubles, so the one IEEE division is correctly rounded, which is exactly what from_chars
// returns (tested bit for bit against it). Everything else goes to std::from_chars.
[[gnu::always_inline]] inline bool Num(const char*& p, const char* e, double* out) {
  const char* s = p;
  int digits = 0, frac = 0;
  uint64_t m = 0;
  const bool neg = p < e && *p == '-';
  if (neg) p++;
  if (p >= e) return false;
  if (*p == '0') {
    p++;
    digits++;
  } else if (*p >= '1' && *p <= '9') {
    while (p < e && Digit(*p)) m = m * 10 + static_cast<uint64_t>(*p++ - '0'), digits++;
  } else {
    return false;
  }
  if (p < e && *p == '.') {
    p++;
    const char* d = p;
    while (p < e && Digit(*p)) m = m * 10 + static_cast<uint64_t>(*p++ - '0'), digits++;
    frac = static_cast<int>(p - d);
    if (frac == 0) return false;
  }
  bool exp = false;
  if (p < e && (*p == 'e' || *p == 'E')) {
    exp = true;
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    const char* d = p;
    while (p < e && Digit(*p)) p++;
    if (p == d || p - d > 4) return false;
  }
  if (digits > 19) return false;
  if (!exp && digits <= 15) {  // m < 10^15 < 2^53, frac <= 15
    const double v = static_cast<double>(m) / kPow10[frac];
    *out = neg ? -v : v;
    return true;
  }
  auto [ptr, ec] = std::from_chars(s, p, *out);
  return ec == std::errc() && ptr == p && std::isfinite(*out);
}

}  // namespace

bool ParseKnownLayout(std::string_view rec, ParsedRecord* out) {
  const char* p = rec.data();
  const char* const e = p + rec.size();
  Ws(p, e);
  if (p >= e || *p != '{') return false;
  p++;
  if (!Key(p, e, "\"sensor_id\"") || !Str(p, e, &out->sensor_id) || !Comma(p, e)) return false;
  if (!Key(p, e, "\"timestamp\"") || !Num(p, e, &out->timestamp) || !Comma(p, e)) return false;
  if (!Key(p, e, "\"value\"") || !Num(p, e, &out->value) || !Comma(p, e)) return false;
  if (!Key(p, e, "\"is_anomaly_ground_truth\"")) return false;
  if (Lit(p, e, "true")) {
    out->gt = true;
  } else if (Lit(p, e, "false")) {
    out->gt = false;
  } else {
    return false;
  }
  out->anomaly_type = {};
  out->asset_id = {};
  Ws(p, e);
  if (p < e && *p == ',') {
    p++;
    if (!Key(p, e, "\"anomaly_type\"")) return false;
    if (!Lit(p, e, "null") && !Str(p, e, &out->anomaly_type)) return false;
    Ws(p, e);
  }
  if (p >= e || *p != '}') return false;
  p++;
  Ws(p, e);
  return p == e;
}

}  // namespace iotpipe
