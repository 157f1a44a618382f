#include "parse/mapping.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "parse/plain_scan.h"

namespace iotpipe {

namespace dom = simdjson::dom;

bool ParseInputFormat(std::string_view s, InputFormat* f) {
  if (s == "original" || s.empty())
    *f = InputFormat::kOriginal;
  else if (s == "json")
    *f = InputFormat::kJson;
  else if (s == "telegraf")
    *f = InputFormat::kTelegraf;
  else if (s == "influx" || s == "line-protocol" || s == "line_protocol")
    *f = InputFormat::kInflux;
  else if (s == "flat")
    *f = InputFormat::kFlat;
  else if (s == "csv")
    *f = InputFormat::kCsv;
  else
    return false;
  return true;
}

std::string_view InputFormatName(InputFormat f) {
  switch (f) {
    case InputFormat::kOriginal:
      return "original";
    case InputFormat::kJson:
      return "json";
    case InputFormat::kTelegraf:
      return "telegraf";
    case InputFormat::kInflux:
      return "influx";
    case InputFormat::kFlat:
      return "flat";
    case InputFormat::kCsv:
      return "csv";
  }
  return "original";
}

uint64_t MetaHash(std::string_view unit, std::string_view tags) {
  return (std::hash<std::string_view>{}(unit)*0x9E3779B97F4A7C15ULL ^ std::hash<std::string_view>{}(tags)) | 1;
}

bool GlobMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      pi++, si++;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') pi++;
  return pi == p.size();
}

namespace {

// RFC 6901: "" or "/a/b~1c"; ~ must be followed by 0 or 1.
bool ValidPointer(const std::string& p) {
  if (p.empty()) return true;
  if (p[0] != '/') return false;
  for (size_t i = 0; i < p.size(); i++)
    if (p[i] == '~' && (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1'))) return false;
  return true;
}

// The member name of a one-level pointer ("/ts" -> "ts"), else "".
std::string TopName(const std::string& p) {
  if (p.size() < 2 || p.find('/', 1) != std::string::npos) return "";
  std::string s = p.substr(1);
  for (size_t i = 0; (i = s.find('~', i)) != std::string::npos; i++) s.replace(i, 2, s[i + 1] == '1' ? "/" : "~");
  return s;
}

std::string Column(const std::string& p) { return !p.empty() && p[0] == '/' ? p.substr(1) : p; }

const char* DomType(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "an array";
    case dom::element_type::OBJECT:
      return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return "a number";
    case dom::element_type::STRING:
      return "a string";
    case dom::element_type::BOOL:
      return "a boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

std::string Shown(const std::string& p) { return p.empty() ? "/ (the record)" : p; }

}  // namespace

Result<ResolvedMapping> ResolveMapping(const InputMapping& m) {
  ResolvedMapping r;
  r.format = m.format;
  auto pick = [](const std::string& v, const char* def) { return v.empty() ? std::string(def) : v; };
  switch (m.format) {
    case InputFormat::kOriginal:
    case InputFormat::kJson:
      r.id = pick(m.id, "/sensor_id");
      r.time = pick(m.time, "/timestamp");
      r.value = pick(m.value, "/value");
      r.fields = m.fields;
      break;
    case InputFormat::kTelegraf:
      r.id = pick(m.id, "/name");
      r.time = pick(m.time, "/timestamp");
      r.value = pick(m.value, "-");
      r.fields = m.fields.empty() ? "/fields" : m.fields;
      r.tags = pick(m.tags, "/tags");
      break;
    case InputFormat::kFlat:
      r.id = pick(m.id, "/device");
      r.time = pick(m.time, "/ts");
      r.value = pick(m.value, "-");
      r.fields = m.fields;
      break;
    case InputFormat::kInflux:
      r.value = "-";
      break;
    case InputFormat::kCsv:
      r.id = Column(pick(m.id, "sensor_id"));
      r.time = Column(pick(m.time, "timestamp"));
      r.value = Column(pick(m.value, "value"));
      break;
  }
  r.label = pick(m.label, "/is_anomaly_ground_truth");
  r.asset = pick(m.asset, "/asset_id");
  if (m.format == InputFormat::kCsv) r.label = Column(r.label), r.asset = Column(r.asset);
  if (r.tags.empty()) r.tags = m.tags;
  r.unit = m.format == InputFormat::kCsv && !m.unit.empty() ? Column(m.unit) : m.unit;
  r.multi = r.value == "-";
  if (r.multi) r.value.clear();
  r.quantities = m.quantities;
  r.pattern = m.pattern;
  r.separator = m.separator;
  r.arrival_time = m.arrival_time || m.time == "arrival";
  if (m.time == "arrival") r.time.clear();
  r.csv_delimiter = m.csv_delimiter;
  if (!ParseTimeUnit(m.time_unit, &r.unit_of_time))
    return Status::InvalidArgument("input time-unit '" + m.time_unit + "': expected auto, s, ms, us or ns");
  if (r.separator.empty() || r.separator.size() > 8)
    return Status::InvalidArgument("input separator must have 1 to 8 characters");
  if (m.format != InputFormat::kCsv && m.format != InputFormat::kInflux) {
    const std::pair<const char*, const std::string*> ptrs[] = {
        {"id", &r.id},       {"time", &r.time}, {"value", &r.value}, {"label", &r.label},
        {"asset", &r.asset}, {"unit", &r.unit}, {"tags", &r.tags},   {"fields", &r.fields}};
    for (auto& [k, p] : ptrs)
      if (!ValidPointer(*p))
        return Status::InvalidArgument(
            std::string("input ") + k + " = '" + *p +
            "' is not a JSON Pointer (RFC 6901: empty, or /member/member with ~0 ~1 escapes)");
    if (r.id.empty()) return Status::InvalidArgument("input id: a JSON Pointer to the sensor or device id is required");
    if (r.time.empty() && !r.arrival_time)
      return Status::InvalidArgument("input time: a JSON Pointer, or \"arrival\" to stamp records when they arrive");
    if (r.multi && r.fields.empty()) {
      for (const std::string* p : {&r.id, &r.time, &r.label, &r.asset, &r.unit, &r.tags}) {
        std::string t = TopName(*p);
        if (!t.empty()) r.skip_top.push_back(t);
      }
    }
  }
  if (!r.multi && (!r.quantities.empty() || !r.pattern.empty()))
    return Status::InvalidArgument("input quantities/pattern need a multi-field layout (value = \"-\")");
  return r;
}

struct MappedDecoder::Impl {
  dom::parser parser{1 << 20};
  PlainScan scan;  // single-value json mappings: the fast path (parse/plain_scan.h)
  bool fast = false;
};

// The slots of PlainScan in a single-value json mapping.
enum { kIdSlot, kTimeSlot, kLabelSlot, kValueSlot, kAssetSlot };

MappedDecoder::MappedDecoder(ResolvedMapping m, ParserOptions opt)
    : m_(std::move(m)), opt_(opt), impl_(std::make_unique<Impl>()) {
  if (m_.format == InputFormat::kJson && !m_.multi && !m_.id.empty() && !m_.value.empty() && !m_.label.empty() &&
      !m_.asset.empty() && m_.unit.empty() && m_.tags.empty())
    impl_->fast = impl_->scan.Compile({m_.id, m_.time, m_.label, m_.value, m_.asset});
}

void MappedDecoder::UseFastPath(bool on) {
  if (!on) impl_->fast = false;
}

// The fast path's reading of a record PlainScan took; false: let the DOM path decide (it also gives
// every rejection, so both paths reject alike).
bool MappedDecoder::DecodePlain(int64_t arrival_us, size_t* n) {
  using K = PlainScan::Kind;
  const PlainScan& sc = impl_->scan;
  const PlainScan::Value& id = sc.value(kIdSlot);
  if (id.kind != K::kString && id.kind != K::kInt) return false;  // an integer's text is its to_string
  int64_t ts = arrival_us;
  if (!m_.time.empty()) {
    const PlainScan::Value& t = sc.value(kTimeSlot);
    if (t.kind == K::kInt) {
      int64_t i;
      if (!PlainInt(t.text, &i) || !EpochIntToMicros(i, m_.unit_of_time, &ts)) return false;
    } else if (t.kind == K::kDouble) {
      double d;
      if (!PlainDouble(t.text, &d) || !EpochToMicros(d, m_.unit_of_time, &ts)) return false;
    } else if (t.kind == K::kString) {
      if (!ParseTimeText(t.text, m_.unit_of_time, &ts)) return false;
    } else if (t.kind != K::kAbsent || !m_.arrival_time) {
      return false;
    }
  }
  const K lk = sc.value(kLabelSlot).kind;
  if (lk != K::kAbsent && lk != K::kNull && lk != K::kTrue && lk != K::kFalse) return false;
  const PlainScan::Value& v = sc.value(kValueSlot);
  double value;
  if (v.kind == K::kInt) {
    int64_t i;
    if (!PlainInt(v.text, &i)) return false;
    value = static_cast<double>(i);
  } else if (v.kind != K::kDouble || !PlainDouble(v.text, &value)) {
    return false;
  }
  const PlainScan::Value& a = sc.value(kAssetSlot);
  if (a.kind != K::kAbsent && a.kind != K::kNull && a.kind != K::kString) return false;
  MappedReading& o = Next(n);
  o.id.assign(id.text);
  o.ts_us = ts;
  o.value = value;
  o.label = lk == K::kTrue ? 1 : lk == K::kFalse ? 0 : 2;
  if (a.kind == K::kString) o.asset.assign(a.text);
  return true;
}
MappedDecoder::~MappedDecoder() = default;

// Whether s holds a byte < 0x20 or 0x7f, 8 bytes at a time (the byte loop was 7 % of mapped parsing).
// hasless(w, n) = (w - n * 0x01..01) & ~w & 0x80..80 is non-zero iff some byte of w is < n (n <= 128).
bool HasControlByte(std::string_view s) {
  constexpr uint64_t k01 = 0x0101010101010101ull, k80 = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    const uint64_t del = w ^ (k01 * 0x7f);  // 0x7f bytes become 0
    if (((w - k01 * 0x20) & ~w & k80) | ((del - k01) & ~del & k80)) return true;
  }
  for (; i < s.size(); i++) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

MappedReading& MappedDecoder::Next(size_t* n) {
  if (*n >= out_.size()) out_.emplace_back();
  MappedReading& r = out_[(*n)++];
  r.asset.clear();
  r.unit.clear();
  r.tags = {};
  r.meta_hash = 0;
  r.label = 2;
  return r;
}

Reject MappedDecoder::Check(const MappedReading& r, std::string* detail) const {
  if (r.id.empty() || r.id.size() > opt_.max_sensor_id_bytes) {
    *detail =
        "sensor id '" + r.id.substr(0, 64) + "' must have 1 to " + std::to_string(opt_.max_sensor_id_bytes) + " bytes";
    return Reject::kInvalidSensorId;
  }
  const bool control = HasControlByte(r.id);
  if (control) {
    *detail = "sensor id contains a control character";
    return Reject::kInvalidSensorId;
  }
  if (r.asset.size() > opt_.max_asset_id_bytes) {
    *detail = "asset id must have at most " + std::to_string(opt_.max_asset_id_bytes) + " bytes";
    return Reject::kInvalidAssetId;
  }
  const double ts = static_cast<double>(r.ts_us) / 1e6;
  if (!(ts >= opt_.min_timestamp_s && ts < opt_.max_timestamp_s)) {
    *detail = "time " + std::to_string(r.ts_us) + " us is not in [1970, 2100)";
    return Reject::kTimestampOutOfRange;
  }
  if (!std::isfinite(r.value)) {
    *detail = r.id + " is not finite";
    return Reject::kNonFiniteValue;
  }
  if (std::fabs(r.value) > opt_.max_abs_value) {
    *detail = "|" + r.id + "| exceeds " + std::to_string(opt_.max_abs_value);
    return Reject::kValueOutOfRange;
  }
  return Reject::kNone;
}

Reject MappedDecoder::Decode(std::string_view rec, int64_t arrival_us, size_t* n, std::string* detail) {
  *n = 0;
  while (!rec.empty() && (rec.back() == '\n' || rec.back() == '\r' || rec.back() == ' ' || rec.back() == '\t'))
    rec.remove_suffix(1);
  while (!rec.empty() && (rec.front() == ' ' || rec.front() == '\t')) rec.remove_prefix(1);
  if (rec.empty()) {
    *detail = "empty record";
    return Reject::kEmpty;
  }
  if (rec.size() > opt_.max_record_bytes) {
    *detail = "record of " + std::to_string(rec.size()) + " bytes exceeds " + std::to_string(opt_.max_record_bytes);
    return Reject::kOversize;
  }
  Reject r;
  switch (m_.format) {
    case InputFormat::kInflux:
      r = DecodeInflux(rec, arrival_us, n, detail);
      break;
    case InputFormat::kCsv:
      r = DecodeCsv(rec, arrival_us, n, detail);
      break;
    default:
      r = DecodeJson(rec, arrival_us, n, detail);
      break;
  }
  if (r != Reject::kNone) {
    *n = 0;
    return r;
  }
  for (size_t i = 0; i < *n; i++) {
    r = Check(out_[i], detail);
    if (r != Reject::kNone) {
      *n = 0;
      return r;
    }
  }
  return Reject::kNone;
}

// ---- JSON (json, telegraf, flat) ----

namespace {

// A time element: integer (exact), fraction, or a string (epoch digits or ISO 8601).
Reject JsonTime(dom::element el, const std::string& path, TimeUnit u, int64_t* us, std::string* detail) {
  const auto t = el.type();
  bool ok = false;
  if (t == dom::element_type::INT64) {
    ok = EpochIntToMicros(int64_t(el), u, us);
  } else if (t == dom::element_type::UINT64) {
    ok = false;
  } else if (t == dom::element_type::DOUBLE) {
    ok = EpochToMicros(double(el), u, us);
  } else if (t == dom::element_type::STRING) {
    std::string_view s = el.get_string().value_unsafe();
    ok = ParseTimeText(s, u, us);
    if (!ok) {
      *detail = path + " = \"" + std::string(s.substr(0, 64)) + "\" is neither epoch time nor ISO 8601";
      return Reject::kTimestampOutOfRange;
    }
  } else {
    *detail = path + " is " + DomType(t);
    return Reject::kWrongType;
  }
  if (!ok) {
    *detail = path + " does not fit an epoch time";
    return Reject::kTimestampOutOfRange;
  }
  return Reject::kNone;
}

Reject JsonNumber(dom::element el, const std::string& path, double* v, std::string* detail) {
  switch (el.type()) {
    case dom::element_type::INT64:
      *v = static_cast<double>(int64_t(el));
      return Reject::kNone;
    case dom::element_type::UINT64:
      *v = static_cast<double>(uint64_t(el));
      return Reject::kNone;
    case dom::element_type::DOUBLE:
      *v = double(el);
      return Reject::kNone;
    default:
      break;
  }
  *detail = path + " is " + DomType(el.type()) + ", expected a number";
  return Reject::kWrongType;
}

bool IsNumber(dom::element_type t) {
  return t == dom::element_type::INT64 || t == dom::element_type::UINT64 || t == dom::element_type::DOUBLE;
}

std::string Escape(std::string_view k) {  // a member name as a JSON Pointer token
  std::string s;
  for (char c : k) {
    if (c == '~')
      s += "~0";
    else if (c == '/')
      s += "~1";
    else
      s += c;
  }
  return s;
}

}  // namespace

Reject MappedDecoder::DecodeJson(std::string_view rec, int64_t arrival_us, size_t* n, std::string* detail) {
  if (impl_->fast && impl_->scan.Scan(rec)) {
    if (DecodePlain(arrival_us, n)) return Reject::kNone;
    *n = 0;
  }
  dom::element doc;
  auto err = impl_->parser.parse(rec.data(), rec.size(), false).get(doc);
  if (err) {
    *detail = simdjson::error_message(err);
    return Reject::kInvalidJson;
  }
  if (doc.type() != dom::element_type::OBJECT) {
    *detail = std::string("top level is ") + DomType(doc.type()) + ", expected an object";
    return Reject::kNotAnObject;
  }
  auto at = [&](const std::string& p, dom::element* el) { return doc.at_pointer(p).get(*el) == simdjson::SUCCESS; };
  // Device or sensor id.
  dom::element el;
  if (!at(m_.id, &el)) {
    *detail = m_.id;
    return Reject::kMissingField;
  }
  std::string& dev = scratch_;
  if (el.type() == dom::element_type::STRING) {
    dev.assign(el.get_string().value_unsafe());
  } else if (el.type() == dom::element_type::INT64 || el.type() == dom::element_type::UINT64) {
    dev = el.type() == dom::element_type::INT64 ? std::to_string(int64_t(el)) : std::to_string(uint64_t(el));
  } else {
    *detail = m_.id + " is " + DomType(el.type()) + ", expected a string";
    return Reject::kWrongType;
  }
  // Telegraf: the series key (name,tag=v,...) names the device.
  if (m_.format == InputFormat::kTelegraf && !m_.tags.empty()) {
    dom::element tags;
    if (at(m_.tags, &tags)) {
      dom::object to;
      if (tags.get_object().get(to) != simdjson::SUCCESS) {
        *detail = m_.tags + " is " + DomType(tags.type()) + ", expected an object";
        return Reject::kWrongType;
      }
      for (auto [k, v] : to) {
        std::string_view sv;
        if (v.get_string().get(sv) != simdjson::SUCCESS) {
          *detail = m_.tags + "/" + Escape(k) + " is " + DomType(v.type()) + ", expected a string";
          return Reject::kWrongType;
        }
        dev.append(",").append(k).append("=").append(sv);
      }
    }
  }
  // Time.
  int64_t ts = arrival_us;
  if (!m_.time.empty()) {
    if (!at(m_.time, &el)) {
      if (!m_.arrival_time) {
        *detail = m_.time;
        return Reject::kMissingField;
      }
    } else {
      Reject r = JsonTime(el, m_.time, m_.unit_of_time, &ts, detail);
      if (r != Reject::kNone) return r;
    }
  }
  // Label (optional).
  uint8_t label = 2;
  if (at(m_.label, &el) && el.type() != dom::element_type::NULL_VALUE) {
    bool b;
    if (el.get_bool().get(b) != simdjson::SUCCESS) {
      *detail = m_.label + " is " + DomType(el.type()) + ", expected a boolean or null";
      return Reject::kWrongType;
    }
    label = b ? 1 : 0;
  }
  // Unit (a string; for several quantities also an object of strings by quantity) and tags (an object),
  // both optional: they go to the sensors dataset, not to each row.
  dom::element unit_el;
  const bool has_unit = !m_.unit.empty() && at(m_.unit, &unit_el) && unit_el.type() != dom::element_type::NULL_VALUE;
  if (has_unit && unit_el.type() != dom::element_type::STRING &&
      (!m_.multi || unit_el.type() != dom::element_type::OBJECT)) {
    *detail = m_.unit + " is " + DomType(unit_el.type()) +
              (m_.multi ? ", expected a string or an object of strings" : ", expected a string");
    return Reject::kWrongType;
  }
  std::string& tags = tags_;
  tags.clear();
  if (!m_.tags.empty() && at(m_.tags, &el) && el.type() != dom::element_type::NULL_VALUE) {
    if (el.type() != dom::element_type::OBJECT) {
      *detail = m_.tags + " is " + DomType(el.type()) + ", expected an object";
      return Reject::kWrongType;
    }
    tags = simdjson::minify(el);
  }
  auto unit_of = [&](std::string_view q, std::string* u) {
    u->clear();
    if (!has_unit) return Reject::kNone;
    dom::element e = unit_el;
    if (unit_el.type() == dom::element_type::OBJECT && unit_el.get_object().value_unsafe().at_key(q).get(e))
      return Reject::kNone;  // no unit for this quantity
    std::string_view sv;
    if (e.get_string().get(sv) != simdjson::SUCCESS) {
      *detail = m_.unit + "/" + Escape(q) + " is " + DomType(e.type()) + ", expected a string";
      return Reject::kWrongType;
    }
    u->assign(sv);
    return Reject::kNone;
  };
  if (!m_.multi) {
    if (!at(m_.value, &el)) {
      *detail = m_.value;
      return Reject::kMissingField;
    }
    double v;
    Reject r = JsonNumber(el, m_.value, &v, detail);
    if (r != Reject::kNone) return r;
    MappedReading& o = Next(n);
    o.id = dev;
    o.ts_us = ts;
    o.value = v;
    o.label = label;
    if (has_unit) (void)unit_of("", &o.unit);
    o.tags = tags;
    if (at(m_.asset, &el) && el.type() != dom::element_type::NULL_VALUE) {
      std::string_view a;
      if (el.get_string().get(a) != simdjson::SUCCESS) {
        *detail = m_.asset + " is " + DomType(el.type()) + ", expected a string";
        return Reject::kWrongType;
      }
      o.asset.assign(a);
    }
    return Reject::kNone;
  }
  // Multi-field: one reading per quantity of the fields object.
  dom::element fe;
  if (!at(m_.fields, &fe)) {
    *detail = m_.fields;
    return Reject::kMissingField;
  }
  dom::object fo;
  if (fe.get_object().get(fo) != simdjson::SUCCESS) {
    *detail = Shown(m_.fields) + " is " + DomType(fe.type()) + ", expected an object";
    return Reject::kWrongType;
  }
  auto add = [&](std::string_view k, double v) {
    MappedReading& o = Next(n);
    o.id.assign(dev).append(m_.separator).append(k);
    o.asset.assign(dev);
    o.ts_us = ts;
    o.value = v;
    o.label = label;
    o.tags = tags;
    return unit_of(k, &o.unit);
  };
  if (!m_.quantities.empty()) {
    for (const std::string& q : m_.quantities) {
      dom::element v;
      const std::string path = m_.fields + "/" + Escape(q);
      if (fo.at_key(q).get(v) != simdjson::SUCCESS) {
        *detail = path;
        return Reject::kMissingField;
      }
      double d;
      Reject r = JsonNumber(v, path, &d, detail);
      if (r == Reject::kNone) r = add(q, d);
      if (r != Reject::kNone) return r;
    }
    return Reject::kNone;
  }
  for (auto [k, v] : fo) {
    if (!IsNumber(v.type())) continue;
    bool skip = false;
    for (const std::string& s : m_.skip_top) skip |= s == k;
    if (skip || (!m_.pattern.empty() && !GlobMatch(m_.pattern, k))) continue;
    double d = 0;
    (void)JsonNumber(v, "", &d, detail);
    if (Reject r = add(k, d); r != Reject::kNone) return r;
  }
  if (*n == 0) {
    *detail = Shown(m_.fields) + " has no numeric quantity" + (m_.pattern.empty() ? "" : " matching " + m_.pattern);
    return Reject::kMissingField;
  }
  return Reject::kNone;
}

// ---- InfluxDB line protocol ----

namespace {

// Appends c to a JSON string's contents, escaped.
void AppendJsonChar(std::string* out, char c) {
  if (c == '"' || c == '\\') {
    out->push_back('\\');
    out->push_back(c);
  } else if (static_cast<unsigned char>(c) < 0x20) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
    out->append(buf);
  } else {
    out->push_back(c);
  }
}

// The end of a line protocol token starting at i: its first unescaped stop character (or the end).
// *escaped is set when the token holds a backslash escape.
template <typename IsStop>
size_t LpEnd(std::string_view s, size_t i, IsStop is_stop, bool* escaped) {
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      *escaped = true;
      i += 2;
      continue;
    }
    if (is_stop(c)) break;
    i++;
  }
  return i;
}

// A token without its escapes, appended to out.
void LpUnescape(std::string_view tok, std::string* out) {
  for (size_t k = 0; k < tok.size(); k++) {
    if (tok[k] == '\\' && k + 1 < tok.size()) k++;
    out->push_back(tok[k]);
  }
}

}  // namespace

Reject MappedDecoder::DecodeInflux(std::string_view s, int64_t arrival_us, size_t* n, std::string* detail) {
  // Series key: measurement[,tag=value...] up to the first unescaped space; a view into the line
  // unless it holds escapes (copying every key cost a tenth of line protocol's rate).
  bool escaped = false;
  size_t i = LpEnd(
      s, 0, [](char c) { return c == ' '; }, &escaped);
  std::string_view key = s.substr(0, i);
  if (escaped) {
    scratch_.clear();
    LpUnescape(key, &scratch_);
    key = scratch_;
  }
  // The tag set as a JSON object for the sensors dataset, {"tag":"value",...} in the order sent: built once
  // per series key and looked up after (building it on every line cost a third of line protocol's rate).
  auto cached = influx_tags_.find(key);
  if (cached == influx_tags_.end()) {
    if (influx_tags_.size() >= (1u << 20)) influx_tags_.clear();  // bounded memory: rebuilt on demand
    std::string tags;
    bool in_tag_key = false;
    for (size_t k = 0; k < i;) {
      const bool esc = s[k] == '\\' && k + 1 < i;
      const char c = esc ? s[k + 1] : s[k];
      k += esc ? 2 : 1;
      if (!esc && c == ',') {
        tags += tags.empty() ? "{\"" : "\",\"";
        in_tag_key = true;
      } else if (!esc && c == '=' && in_tag_key) {
        tags += "\":\"";
        in_tag_key = false;
      } else if (!tags.empty()) {
        AppendJsonChar(&tags, c);
      }
    }
    if (!tags.empty()) tags += in_tag_key ? "\":\"\"}" : "\"}";
    const uint64_t h = tags.empty() ? 0 : MetaHash("", tags);
    cached = influx_tags_.emplace(std::string(key), std::make_pair(std::move(tags), h)).first;
  }
  const std::string& tags = cached->second.first;
  const uint64_t tags_hash = cached->second.second;
  if (key.empty() || key[0] == ',') {
    *detail = "measurement (line protocol: measurement[,tag=v] field=v [time])";
    return Reject::kMissingField;
  }
  if (i >= s.size()) {
    *detail = "field set (line protocol: measurement[,tag=v] field=v [time])";
    return Reject::kMissingField;
  }
  i++;
  // Field set, then an optional timestamp. Keys are views into the line, or into lp_keys_ (reserved
  // to the line's size, so never moved) when escaped.
  uint8_t label = 2;
  fields_.clear();
  lp_keys_.clear();
  while (true) {
    escaped = false;
    const size_t st = i;
    i = LpEnd(
        s, i, [](char c) { return c == '=' || c == ',' || c == ' '; }, &escaped);
    std::string_view k = s.substr(st, i - st);
    if (i >= s.size() || s[i] != '=' || k.empty()) {
      *detail = "field set: expected key=value at byte " + std::to_string(i);
      return Reject::kMalformed;
    }
    if (escaped) {
      if (lp_keys_.capacity() < s.size()) lp_keys_.reserve(s.size());
      const size_t at = lp_keys_.size();
      LpUnescape(k, &lp_keys_);
      k = std::string_view(lp_keys_).substr(at);
    }
    i++;
    if (i < s.size() && s[i] == '"') {  // a string field: not a quantity
      i++;
      while (i < s.size() && s[i] != '"') i += (s[i] == '\\') ? 2 : 1;
      if (i >= s.size()) {
        *detail = "field " + std::string(k) + ": unterminated string";
        return Reject::kMalformed;
      }
      i++;
    } else {
      size_t vs = i;
      while (i < s.size() && s[i] != ',' && s[i] != ' ') i++;
      std::string_view tok = s.substr(vs, i - vs);
      if (tok == "t" || tok == "T" || tok == "true" || tok == "True" || tok == "TRUE" || tok == "f" || tok == "F" ||
          tok == "false" || tok == "False" || tok == "FALSE") {
        if (k == "is_anomaly_ground_truth") label = (tok[0] == 't' || tok[0] == 'T') ? 1 : 0;
      } else {
        if (!tok.empty() && (tok.back() == 'i' || tok.back() == 'u')) tok.remove_suffix(1);
        double d;
        auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), d);
        if (tok.empty() || ec != std::errc() || p != tok.data() + tok.size()) {
          *detail = "field " + std::string(k) + " = '" + std::string(tok.substr(0, 32)) +
                    "' is not a number, boolean or string";
          return Reject::kWrongType;
        }
        if (m_.pattern.empty() || GlobMatch(m_.pattern, k)) fields_.push_back({k, d});
      }
    }
    if (i < s.size() && s[i] == ',') {
      i++;
      continue;
    }
    break;
  }
  int64_t ts = arrival_us;
  while (i < s.size() && s[i] == ' ') i++;
  if (i < s.size()) {
    std::string_view tok = s.substr(i);
    int64_t iv;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), iv);
    if (ec != std::errc() || p != tok.data() + tok.size()) {
      *detail = "timestamp '" + std::string(tok.substr(0, 32)) + "' is not an integer";
      return Reject::kWrongType;
    }
    if (!EpochIntToMicros(iv, m_.unit_of_time, &ts)) {
      *detail = "timestamp does not fit an epoch time";
      return Reject::kTimestampOutOfRange;
    }
  } else if (!m_.arrival_time) {
    *detail = "timestamp (declare time = \"arrival\" to stamp records without one)";
    return Reject::kMissingField;
  }
  if (!m_.quantities.empty()) {
    for (const std::string& q : m_.quantities) {
      bool found = false;
      for (const auto& [fk, fv] : fields_) {
        if (fk != q) continue;
        found = true;
        MappedReading& o = Next(n);
        o.id.assign(key).append(m_.separator).append(fk);
        o.asset.assign(key);
        o.tags = tags;
        o.meta_hash = tags_hash;
        o.ts_us = ts;
        o.value = fv;
        o.label = label;
      }
      if (!found) {
        *detail = "field " + q;
        return Reject::kMissingField;
      }
    }
    return Reject::kNone;
  }
  for (const auto& [fk, fv] : fields_) {
    MappedReading& o = Next(n);
    o.id.assign(key).append(m_.separator).append(fk);
    o.asset.assign(key);
    o.tags = tags;
    o.meta_hash = tags_hash;
    o.ts_us = ts;
    o.value = fv;
    o.label = label;
  }
  if (*n == 0) {
    *detail = "field set has no numeric field";
    return Reject::kMissingField;
  }
  return Reject::kNone;
}

// ---- CSV ----

Reject MappedDecoder::DecodeCsv(std::string_view s, int64_t arrival_us, size_t* n, std::string* detail) {
  // Split (RFC 4180 quotes; "" inside quotes is a quote).
  std::vector<std::string>& cells = csv_cells_;
  cells.clear();
  std::string cur;
  bool q = false;
  for (size_t i = 0; i <= s.size(); i++) {
    if (i == s.size()) {
      if (q) {
        *detail = "unterminated quoted cell";
        return Reject::kMalformed;
      }
      cells.push_back(cur);
      break;
    }
    char c = s[i];
    if (q) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"')
        cur += '"', i++;
      else if (c == '"')
        q = false;
      else
        cur += c;
    } else if (c == '"' && cur.empty()) {
      q = true;
    } else if (c == m_.csv_delimiter) {
      cells.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (header_.empty()) {
    header_ = cells;
    for (auto& h : header_)
      while (!h.empty() && (h.back() == ' ' || h.back() == '\r')) h.pop_back();
    id_col_ = time_col_ = value_col_ = label_col_ = asset_col_ = unit_col_ = -1;
    for (int c = 0; c < static_cast<int>(header_.size()); c++) {
      const std::string& h = header_[static_cast<size_t>(c)];
      if (h == m_.id)
        id_col_ = c;
      else if (h == m_.time)
        time_col_ = c;
      else if (h == m_.value && !m_.multi)
        value_col_ = c;
      else if (h == m_.label)
        label_col_ = c;
      else if (h == m_.asset)
        asset_col_ = c;
      else if (!m_.unit.empty() && h == m_.unit)
        unit_col_ = c;
    }
    return Reject::kNone;  // the header: no reading
  }
  if (cells.size() != header_.size()) {
    *detail = "row has " + std::to_string(cells.size()) + " cells, the header " + std::to_string(header_.size());
    return Reject::kMalformed;
  }
  auto cell = [&](int c) -> const std::string& { return cells[static_cast<size_t>(c)]; };
  if (id_col_ < 0) {
    *detail = "column " + m_.id + " (not in the header)";
    return Reject::kMissingField;
  }
  const std::string& dev = cell(id_col_);
  int64_t ts = arrival_us;
  if (time_col_ >= 0 && !cell(time_col_).empty()) {
    if (!ParseTimeText(cell(time_col_), m_.unit_of_time, &ts)) {
      *detail = "column " + m_.time + " = '" + cell(time_col_).substr(0, 64) + "' is neither epoch time nor ISO 8601";
      return Reject::kTimestampOutOfRange;
    }
  } else if (!m_.arrival_time) {
    *detail = "column " + m_.time;
    return Reject::kMissingField;
  }
  uint8_t label = 2;
  if (label_col_ >= 0) {
    const std::string& l = cell(label_col_);
    if (l == "true" || l == "True" || l == "TRUE" || l == "1")
      label = 1;
    else if (l == "false" || l == "False" || l == "FALSE" || l == "0")
      label = 0;
    else if (!l.empty() && l != "null" && l != "NULL") {
      *detail = "column " + m_.label + " = '" + l.substr(0, 32) + "' is not a boolean";
      return Reject::kWrongType;
    }
  }
  auto num = [](const std::string& t, double* d) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), *d);
    return !t.empty() && ec == std::errc() && p == t.data() + t.size();
  };
  if (!m_.multi && value_col_ >= 0) {
    double d;
    if (!num(cell(value_col_), &d)) {
      *detail = "column " + m_.value + " = '" + cell(value_col_).substr(0, 32) + "' is not a number";
      return cell(value_col_).empty() ? Reject::kMissingField : Reject::kWrongType;
    }
    MappedReading& o = Next(n);
    o.id = dev;
    o.ts_us = ts;
    o.value = d;
    o.label = label;
    if (asset_col_ >= 0) o.asset = cell(asset_col_);
    if (unit_col_ >= 0) o.unit = cell(unit_col_);
    return Reject::kNone;
  }
  // No value column: every other numeric cell is a quantity of the row's device.
  for (int c = 0; c < static_cast<int>(cells.size()); c++) {
    if (c == id_col_ || c == time_col_ || c == label_col_ || c == asset_col_ || c == unit_col_) continue;
    const std::string& h = header_[static_cast<size_t>(c)];
    if (!m_.quantities.empty() && std::find(m_.quantities.begin(), m_.quantities.end(), h) == m_.quantities.end())
      continue;
    if (!m_.pattern.empty() && !GlobMatch(m_.pattern, h)) continue;
    double d;
    if (!num(cell(c), &d)) continue;
    MappedReading& o = Next(n);
    o.id.assign(dev).append(m_.separator).append(h);
    o.asset = dev;
    if (unit_col_ >= 0) o.unit = cell(unit_col_);
    o.ts_us = ts;
    o.value = d;
    o.label = label;
  }
  if (*n == 0) {
    *detail = "row has no numeric quantity (and no column " + m_.value + ")";
    return Reject::kMissingField;
  }
  return Reject::kNone;
}

}  // namespace iotpipe
