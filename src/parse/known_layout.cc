#include "parse/known_layout.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace iotpipe {

namespace {

inline void Ws(const char*& p, const char* e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
}

inline bool Lit(const char*& p, const char* e, std::string_view s) {
  if (static_cast<size_t>(e - p) < s.size() || std::memcmp(p, s.data(), s.size()) != 0) return false;
  p += s.size();
  return true;
}

// "key" then ':' (with whitespace around).
inline bool Key(const char*& p, const char* e, std::string_view quoted) {
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

// A JSON number (RFC 8259 grammar) of at most 19 digits, finite.
inline bool Num(const char*& p, const char* e, double* out) {
  const char* s = p;
  int digits = 0;
  if (p < e && *p == '-') p++;
  if (p >= e) return false;
  if (*p == '0') {
    p++;
    digits++;
  } else if (*p >= '1' && *p <= '9') {
    while (p < e && Digit(*p)) p++, digits++;
  } else {
    return false;
  }
  if (p < e && *p == '.') {
    p++;
    const char* d = p;
    while (p < e && Digit(*p)) p++, digits++;
    if (p == d) return false;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    const char* d = p;
    while (p < e && Digit(*p)) p++;
    if (p == d || p - d > 4) return false;
  }
  if (digits > 19) return false;
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
