#include "parse/plain_scan.h"

#include <charconv>
#include <cstring>

namespace iotpipe {

namespace {

constexpr int kMaxDepth = 64;

bool Digit(char c) { return c >= '0' && c <= '9'; }

// Splits a JSON Pointer into its unescaped tokens (RFC 6901); false if malformed or the whole document.
bool Tokens(const std::string& ptr, std::vector<std::string>* out) {
  if (ptr.empty() || ptr[0] != '/') return false;
  out->clear();
  std::string tok;
  for (size_t i = 1; i <= ptr.size(); i++) {
    if (i == ptr.size() || ptr[i] == '/') {
      out->push_back(tok);
      tok.clear();
    } else if (ptr[i] == '~') {
      if (i + 1 >= ptr.size() || (ptr[i + 1] != '0' && ptr[i + 1] != '1')) return false;
      tok.push_back(ptr[++i] == '0' ? '~' : '/');
    } else {
      tok.push_back(ptr[i]);
    }
  }
  return true;
}

}  // namespace

bool PlainInt(std::string_view t, int64_t* out) {
  const bool neg = !t.empty() && t[0] == '-';
  uint64_t m = 0;
  size_t i = neg;
  if (i >= t.size() || t.size() - i > 19) return false;
  for (; i < t.size(); i++) m = m * 10 + static_cast<uint64_t>(t[i] - '0');  // 19 digits fit uint64
  if (m > static_cast<uint64_t>(INT64_MAX) + neg) return false;
  *out = neg ? static_cast<int64_t>(0 - m) : static_cast<int64_t>(m);
  return true;
}

bool PlainDouble(std::string_view t, double* out) {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const char* p = t.data();
  const char* end = p + t.size();
  const bool neg = p < end && *p == '-';
  p += neg;
  uint64_t m = 0;
  int digits = 0, exp10 = 0;
  for (; p < end && Digit(*p); p++, digits++) m = m * 10 + static_cast<uint64_t>(*p - '0');
  if (p < end && *p == '.')
    for (p++; p < end && Digit(*p); p++, digits++, exp10--) m = m * 10 + static_cast<uint64_t>(*p - '0');
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    const bool eneg = p < end && *p == '-';
    p += (p < end && (*p == '-' || *p == '+'));
    int e = 0;
    for (; p < end && Digit(*p) && e < 100000; p++) e = e * 10 + (*p - '0');
    exp10 += eneg ? -e : e;
  }
  // Clinger's fast path: the mantissa and the power of ten are exact doubles, so one IEEE operation
  // rounds correctly. Leading zeros count as digits here, which only makes the test stricter.
  if (digits <= 19 && m <= (uint64_t{1} << 53) && exp10 >= -22 && exp10 <= 22) {
    double d = static_cast<double>(m);
    d = exp10 < 0 ? d / kPow10[-exp10] : d * kPow10[exp10];
    *out = neg ? -d : d;
    return true;
  }
  return std::from_chars(t.data(), t.data() + t.size(), *out).ec == std::errc();
}

bool PlainScan::Compile(const std::vector<std::string>& pointers) {
  nodes_.assign(1, Node{});
  values_.assign(pointers.size(), Value{});
  std::vector<std::string> toks;
  for (size_t slot = 0; slot < pointers.size(); slot++) {
    if (pointers[slot].empty()) continue;  // an unused slot
    if (!Tokens(pointers[slot], &toks)) return false;
    int node = 0;
    for (const std::string& t : toks) {
      if (nodes_[node].slot >= 0) return false;  // a leaf is also a prefix
      int next = -1;
      for (int k : nodes_[node].kids)
        if (nodes_[k].key == t) next = k;
      if (next < 0) {
        next = static_cast<int>(nodes_.size());
        nodes_.push_back(Node{t, -1, {}, false});
        nodes_[node].kids.push_back(next);
      }
      node = next;
    }
    if (nodes_[node].slot >= 0 || !nodes_[node].kids.empty()) return false;
    nodes_[node].slot = static_cast<int>(slot);
  }
  return true;
}

bool PlainScan::Scan(std::string_view rec) {
  for (auto& v : values_) v = Value{};
  for (auto& n : nodes_) n.seen = false;
  const char* p = rec.data();
  end_ = p + rec.size();
  while (p < end_ && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end_ || *p != '{') return false;
  p = ScanObject(p, 0, 0);
  if (!p) return false;
  while (p < end_ && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p == end_;
}

namespace {

inline const char* Ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

// p at '"'. Plain strings only: an escape, a control or a non-ASCII byte sends the record to the DOM.
inline const char* String(const char* p, const char* end, std::string_view* out) {
  const char* s = ++p;
  for (; p < end; p++) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"') {
      *out = std::string_view(s, static_cast<size_t>(p - s));
      return p + 1;
    }
    if (c == '\\' || c < 0x20 || c >= 0x80) return nullptr;
  }
  return nullptr;
}

// p at '-' or a digit: the JSON number grammar. integer: no fraction and no exponent.
inline const char* Number(const char* p, const char* end, bool* integer) {
  if (*p == '-') p++;
  if (p >= end) return nullptr;
  if (*p == '0') {
    p++;
  } else if (*p >= '1' && *p <= '9') {
    while (p < end && Digit(*p)) p++;
  } else {
    return nullptr;
  }
  *integer = true;
  if (p < end && *p == '.') {
    *integer = false;
    if (++p >= end || !Digit(*p)) return nullptr;
    while (p < end && Digit(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    *integer = false;
    if (++p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !Digit(*p)) return nullptr;
    while (p < end && Digit(*p)) p++;
  }
  return p;
}

// A number simdjson reads without error: integers to 19 digits (to 20, uint64, or past it: the DOM's to
// judge), fractions and exponents that PlainDouble reads (from_chars refuses what is out of range).
inline const char* CheckedNumber(const char* p, const char* end, bool* integer) {
  const char* s = p;
  if (!(p = Number(p, end, integer))) return nullptr;
  if (*integer) return static_cast<size_t>(p - s) - (*s == '-') > 19 ? nullptr : p;
  double d;
  return PlainDouble(std::string_view(s, static_cast<size_t>(p - s)), &d) ? p : nullptr;
}

inline const char* Literal(const char* p, const char* end, const char* word, size_t n) {
  return static_cast<size_t>(end - p) >= n && std::memcmp(p, word, n) == 0 ? p + n : nullptr;
}

}  // namespace

const char* PlainScan::Capture(const char* p, Value* v) {
  const char* s = p;
  switch (*p) {
    case '"':
      v->kind = Kind::kString;
      return String(p, end_, &v->text);
    case 't':
      v->kind = Kind::kTrue;
      return Literal(p, end_, "true", 4);
    case 'f':
      v->kind = Kind::kFalse;
      return Literal(p, end_, "false", 5);
    case 'n':
      v->kind = Kind::kNull;
      return Literal(p, end_, "null", 4);
    case '{':
    case '[':
      v->kind = Kind::kOther;
      return SkipValue(p, 1);
    default:
      break;
  }
  bool integer = false;
  p = CheckedNumber(p, end_, &integer);
  if (!p) return nullptr;
  v->text = std::string_view(s, static_cast<size_t>(p - s));
  const size_t digits = v->text.size() - (*s == '-');
  // -0 (simdjson keeps its sign as a double) and integers past 19 digits (uint64 or an error there) are
  // the DOM's to read; a 19-digit one past int64 fails PlainInt in the caller and goes there too.
  if (integer && (digits > 19 || v->text == "-0")) return nullptr;
  v->kind = integer ? Kind::kInt : Kind::kDouble;
  return p;
}

const char* PlainScan::SkipValue(const char* p, int depth) {
  if (p >= end_ || depth > kMaxDepth) return nullptr;
  std::string_view ignored;
  bool integer;
  switch (*p) {
    case '"':
      return String(p, end_, &ignored);
    case 't':
      return Literal(p, end_, "true", 4);
    case 'f':
      return Literal(p, end_, "false", 5);
    case 'n':
      return Literal(p, end_, "null", 4);
    case '{':
    case '[': {
      const char close = *p == '{' ? '}' : ']';
      p = Ws(p + 1, end_);
      if (p < end_ && *p == close) return p + 1;
      for (;;) {
        if (close == '}') {
          if (p >= end_ || *p != '"' || !(p = String(p, end_, &ignored))) return nullptr;
          p = Ws(p, end_);
          if (p >= end_ || *p != ':') return nullptr;
          p = Ws(p + 1, end_);
        }
        if (!(p = SkipValue(p, depth + 1))) return nullptr;
        p = Ws(p, end_);
        if (p >= end_) return nullptr;
        if (*p == close) return p + 1;
        if (*p != ',') return nullptr;
        p = Ws(p + 1, end_);
      }
    }
    default:
      return CheckedNumber(p, end_, &integer);
  }
}

// p at '{' of the object at trie node `node`.
const char* PlainScan::ScanObject(const char* p, int node, int depth) {
  if (depth > kMaxDepth) return nullptr;
  p = Ws(p + 1, end_);
  if (p < end_ && *p == '}') return p + 1;
  std::string_view key;
  for (;;) {
    if (p >= end_ || *p != '"' || !(p = String(p, end_, &key))) return nullptr;
    p = Ws(p, end_);
    if (p >= end_ || *p != ':') return nullptr;
    p = Ws(p + 1, end_);
    if (p >= end_) return nullptr;
    int kid = -1;
    for (int k : nodes_[node].kids)
      if (nodes_[k].key == key) kid = k;
    if (kid >= 0 && !nodes_[kid].seen) {  // the first of duplicate members counts, as in at_key
      Node& n = nodes_[kid];
      n.seen = true;
      if (n.slot >= 0) {
        p = Capture(p, &values_[n.slot]);
      } else if (*p == '{') {
        p = ScanObject(p, kid, depth + 1);
      } else {
        return nullptr;  // a path through an array or a scalar: the DOM's to answer
      }
    } else {
      p = SkipValue(p, depth + 1);
    }
    if (!p) return nullptr;
    p = Ws(p, end_);
    if (p >= end_) return nullptr;
    if (*p == '}') return p + 1;
    if (*p != ',') return nullptr;
    p = Ws(p + 1, end_);
  }
}

}  // namespace iotpipe
