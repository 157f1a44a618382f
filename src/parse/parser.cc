#include "parse/parser.h"

#include <simdjson.h>

#include <cmath>

#include "parse/known_layout.h"
#include "parse/mapping.h"

namespace iotpipe {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

std::string_view RejectName(Reject r) {
  switch (r) {
    case Reject::kNone:
      return "ok";
    case Reject::kEmpty:
      return "empty";
    case Reject::kOversize:
      return "oversize";
    case Reject::kInvalidJson:
      return "invalid_json";
    case Reject::kNotAnObject:
      return "not_an_object";
    case Reject::kMissingField:
      return "missing_field";
    case Reject::kWrongType:
      return "wrong_type";
    case Reject::kNonFiniteValue:
      return "non_finite_value";
    case Reject::kValueOutOfRange:
      return "value_out_of_range";
    case Reject::kTimestampOutOfRange:
      return "timestamp_out_of_range";
    case Reject::kInvalidSensorId:
      return "invalid_sensor_id";
    case Reject::kTooManySensors:
      return "too_many_sensors";
    case Reject::kInvalidAssetId:
      return "invalid_asset_id";
    case Reject::kMalformed:
      return "malformed";
    case Reject::kCount:
      break;
  }
  return "unknown";
}

struct Parser::Impl {
  od::parser parser{1 << 20};
};

Parser::Parser(Interner* sensors, Interner* types, ParserOptions opt)
    : impl_(std::make_unique<Impl>()), sensors_(sensors), types_(types), opt_(opt) {}
Parser::~Parser() = default;

static bool LooksNonFinite(std::string_view tok) {
  if (!tok.empty() && (tok[0] == '-' || tok[0] == '+')) tok.remove_prefix(1);
  return tok.starts_with("NaN") || tok.starts_with("nan") || tok.starts_with("Inf") || tok.starts_with("inf");
}

static const char* TypeName(od::json_type t) {
  switch (t) {
    case od::json_type::array:
      return "array";
    case od::json_type::object:
      return "object";
    case od::json_type::number:
      return "number";
    case od::json_type::string:
      return "string";
    case od::json_type::boolean:
      return "boolean";
    case od::json_type::null:
      return "null";
  }
  return "unknown";
}

// RFC 8259's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
static bool IsJsonNumber(std::string_view t) {
  size_t i = 0;
  auto digits = [&] {
    const size_t st = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') i++;
    return i > st;
  };
  if (i < t.size() && t[i] == '-') i++;
  if (i < t.size() && t[i] == '0')
    i++;
  else if (!digits())
    return false;
  if (i < t.size() && t[i] == '.' && (++i, !digits())) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) i++;
    if (!digits()) return false;
  }
  return i == t.size();
}

// Reads a finite double; classifies failures.
static Reject ReadNumber(od::value& v, std::string_view field, double* out, std::string* detail) {
  od::json_type t;
  if (v.type().get(t) != sj::SUCCESS) {
    if (LooksNonFinite(v.raw_json_token())) {
      *detail = std::string(field) + " is not finite";
      return Reject::kNonFiniteValue;
    }
    *detail = "bad token in " + std::string(field);
    return Reject::kInvalidJson;
  }
  if (t != od::json_type::number) {
    *detail = std::string(field) + " must be a number, got " + TypeName(t);
    return Reject::kWrongType;
  }
  auto err = v.get_double().get(*out);
  if (err != sj::SUCCESS) {
    if (LooksNonFinite(v.raw_json_token())) {
      *detail = std::string(field) + " is not finite";
      return Reject::kNonFiniteValue;
    }
    std::string_view tok = v.raw_json_token();
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\n' || tok.back() == '\r' || tok.back() == '\t'))
      tok.remove_suffix(1);
    if (IsJsonNumber(tok)) {  // 1e400: a number, too large for a double
      *detail = std::string(field) + " is not a representable number";
      return Reject::kValueOutOfRange;
    }
    // 0x10, 01, 1., -: not JSON numbers at all (issue 14: they were reported as out of range)
    *detail = std::string(field) + " = '" + std::string(tok.substr(0, 32)) + "' is not a JSON number";
    return Reject::kInvalidJson;
  }
  if (!std::isfinite(*out)) {
    *detail = std::string(field) + " is not finite";
    return Reject::kNonFiniteValue;
  }
  return Reject::kNone;
}

// The rules every decoded record must meet (both decoding paths).
static Reject CheckFields(const ParserOptions& opt, const ParsedRecord& r, std::string* detail) {
  if (r.sensor_id.empty() || r.sensor_id.size() > opt.max_sensor_id_bytes) {
    *detail = "sensor_id must have 1 to " + std::to_string(opt.max_sensor_id_bytes) + " bytes";
    return Reject::kInvalidSensorId;
  }
  for (unsigned char c : r.sensor_id) {
    if (c < 0x20 || c == 0x7f) {
      *detail = "sensor_id contains a control character";
      return Reject::kInvalidSensorId;
    }
  }
  if (!(r.timestamp >= opt.min_timestamp_s && r.timestamp < opt.max_timestamp_s)) {
    *detail = "timestamp " + std::to_string(r.timestamp) + " is not epoch seconds in [1970, 2100)";
    return Reject::kTimestampOutOfRange;
  }
  if (std::fabs(r.value) > opt.max_abs_value) {
    *detail = "|value| exceeds " + std::to_string(opt.max_abs_value);
    return Reject::kValueOutOfRange;
  }
  return Reject::kNone;
}

Reject Parser::ParseCopy(std::string_view rec, ParsedRecord* out, std::string* detail) {
  copy_.assign(rec);
  copy_.reserve(rec.size() + sj::SIMDJSON_PADDING);
  return ParseOne(std::string_view(copy_.data(), rec.size()), out, detail);
}

Reject Parser::ParseOne(std::string_view rec, ParsedRecord* out, std::string* detail) {
  // Trim a trailing CR/LF and surrounding blanks.
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
  // The producers' own layout is read in one scan; anything else goes through simdjson.
  if (opt_.known_layout && ParseKnownLayout(rec, out)) {
    out->has_gt = true;
    return CheckFields(opt_, *out, detail);
  }
  od::document doc;
  auto err = impl_->parser.iterate(rec.data(), rec.size(), rec.size() + sj::SIMDJSON_PADDING).get(doc);
  if (err) {
    *detail = sj::error_message(err);
    return Reject::kInvalidJson;
  }
  od::object obj;
  od::json_type dt;
  if ((err = doc.type().get(dt))) {
    *detail = sj::error_message(err);
    return Reject::kInvalidJson;
  }
  if (dt != od::json_type::object) {
    // On Demand classifies by the first byte: make sure the scalar/array is valid JSON at all.
    bool valid = false;
    switch (dt) {
      case od::json_type::null: {
        bool b = false;
        valid = doc.is_null().get(b) == sj::SUCCESS && b;
        break;
      }
      case od::json_type::boolean: {
        bool b;
        valid = doc.get_bool().get(b) == sj::SUCCESS;
        break;
      }
      case od::json_type::number: {
        double d;
        valid = doc.get_double().get(d) == sj::SUCCESS;
        break;
      }
      case od::json_type::string: {
        std::string_view v;
        valid = doc.get_string().get(v) == sj::SUCCESS;
        break;
      }
      case od::json_type::array: {
        od::array arr;
        size_t n;
        valid = doc.get_array().get(arr) == sj::SUCCESS;
        if (valid) {
          for (auto el : arr) {  // walking the elements consumes the array
            if (el.error()) {
              valid = false;
              break;
            }
          }
        }
        (void)n;
        break;
      }
      default:
        break;
    }
    if (!valid || !doc.current_location().error()) {
      *detail = "not a JSON document";
      return Reject::kInvalidJson;
    }
    *detail = std::string("top level is ") + TypeName(dt) + ", expected an object";
    return Reject::kNotAnObject;
  }
  if ((err = doc.get_object().get(obj))) {
    *detail = sj::error_message(err);
    return Reject::kInvalidJson;
  }
  bool has_id = false, has_ts = false, has_val = false, has_gt = false;
  out->anomaly_type = {};
  out->asset_id = {};
  for (auto field_r : obj) {
    od::field field;
    if ((err = std::move(field_r).get(field))) {
      *detail = sj::error_message(err);
      return Reject::kInvalidJson;
    }
    std::string_view key;
    if ((err = field.unescaped_key().get(key))) {
      *detail = sj::error_message(err);
      return Reject::kInvalidJson;
    }
    od::value v = field.value();
    if (key == "sensor_id") {
      od::json_type t;
      if ((err = v.type().get(t))) {
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
      if (t != od::json_type::string) {
        *detail = std::string("sensor_id must be a string, got ") + TypeName(t);
        return Reject::kWrongType;
      }
      if ((err = v.get_string().get(out->sensor_id))) {
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
      has_id = true;
    } else if (key == "timestamp") {
      Reject r = ReadNumber(v, "timestamp", &out->timestamp, detail);
      if (r != Reject::kNone) return r == Reject::kValueOutOfRange ? Reject::kTimestampOutOfRange : r;
      has_ts = true;
    } else if (key == "value") {
      Reject r = ReadNumber(v, "value", &out->value, detail);
      if (r != Reject::kNone) return r;
      has_val = true;
    } else if (key == "is_anomaly_ground_truth") {
      od::json_type t;
      if ((err = v.type().get(t))) {
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
      if (t == od::json_type::null) {  // null: unlabelled, as absent
        has_gt = false;
        continue;
      }
      if (t != od::json_type::boolean) {
        *detail = std::string("is_anomaly_ground_truth must be a boolean or null, got ") + TypeName(t);
        return Reject::kWrongType;
      }
      if ((err = v.get_bool().get(out->gt))) {
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
      has_gt = true;
    } else if (key == "anomaly_type") {
      od::json_type t;
      if ((err = v.type().get(t))) {
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
      if (t == od::json_type::null) {
        out->anomaly_type = {};
      } else if (t == od::json_type::string) {
        if ((err = v.get_string().get(out->anomaly_type))) {
          *detail = sj::error_message(err);
          return Reject::kInvalidJson;
        }
      } else {
        *detail = std::string("anomaly_type must be a string or null, got ") + TypeName(t);
        return Reject::kWrongType;
      }
    } else if (key == "asset_id") {
      od::json_type t;
      if ((err = v.type().get(t))) {
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
      if (t == od::json_type::null) {
        out->asset_id = {};
      } else if (t == od::json_type::string) {
        if ((err = v.get_string().get(out->asset_id))) {
          *detail = sj::error_message(err);
          return Reject::kInvalidJson;
        }
        if (out->asset_id.empty() || out->asset_id.size() > opt_.max_asset_id_bytes) {
          *detail = "asset_id must have 1 to " + std::to_string(opt_.max_asset_id_bytes) + " bytes";
          return Reject::kInvalidAssetId;
        }
        for (unsigned char c : out->asset_id) {
          if (c < 0x20 || c == 0x7f) {
            *detail = "asset_id contains a control character";
            return Reject::kInvalidAssetId;
          }
        }
      } else {
        *detail = std::string("asset_id must be a string or null, got ") + TypeName(t);
        return Reject::kWrongType;
      }
    } else {
      // Extra fields are allowed; make sure they are well-formed JSON.
      od::json_type t;
      if ((err = v.type().get(t))) {
        if (LooksNonFinite(v.raw_json_token())) {
          *detail = std::string(key) + " is not finite";
          return Reject::kNonFiniteValue;
        }
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
      size_t count = 0;
      if (t == od::json_type::object)
        err = v.count_fields().get(count);
      else if (t == od::json_type::array)
        err = v.count_elements().get(count);
      if (err) {
        *detail = sj::error_message(err);
        return Reject::kInvalidJson;
      }
    }
  }
  if (!doc.current_location().error()) {
    *detail = "trailing content after the object";
    return Reject::kInvalidJson;
  }
  if (!has_id) {
    *detail = "sensor_id";
    return Reject::kMissingField;
  }
  if (!has_ts) {
    *detail = "timestamp";
    return Reject::kMissingField;
  }
  if (!has_val) {
    *detail = "value";
    return Reject::kMissingField;
  }
  out->has_gt = has_gt;  // no label: an unlabelled reading (NULL), not a rejection
  if (!has_gt) out->gt = false;
  return CheckFields(opt_, *out, detail);
}

Status Parser::SetMapping(const InputMapping& m) {
  auto r = ResolveMapping(m);
  if (!r.ok()) return r.status();
  if (r->format == InputFormat::kOriginal) {
    mapped_.reset();
    return Status::OK();
  }
  mapped_ = std::make_unique<MappedDecoder>(std::move(r.value()), opt_);
  return Status::OK();
}

// A sensor's unit and tags go out once, and again only when they change (a hash per sensor).
void Parser::NoteMeta(uint32_t sid, const MappedReading& r, ProcessedBatch& out) {
  const uint64_t h = r.meta_hash ? r.meta_hash : MetaHash(r.unit, r.tags);
  if (sid >= meta_hash_.size()) meta_hash_.resize(sid + 1, 0);
  if (meta_hash_[sid] == h) return;
  meta_hash_[sid] = h;
  out.sensor_meta.push_back(SensorMeta{sid, r.unit, std::string(r.tags)});
}

void Parser::ParseMapped(const RawBatch& raw, ProcessedBatch& out) {
  std::string detail;
  const size_t n = raw.size();
  out.readings.Reserve(out.readings.size() + n);
  const bool with_origin = !raw.origins.empty();
  const int64_t arrival_us = clock_->NowMicros();
  auto reject = [&](size_t i, Reject r) {
    rejected_[static_cast<int>(r)]++;
    out.dead.raw.emplace_back(raw.record(i));
    std::string reason(RejectName(r));
    if (!detail.empty()) reason += ": " + detail;
    out.dead.reason.push_back(std::move(reason));
    if (with_origin) out.dead.origins.push_back(raw.origins[i]);
  };
  for (size_t i = 0; i < n; i++) {
    detail.clear();
    size_t k = 0;
    Reject r = mapped_->Decode(raw.record(i), arrival_us, &k, &detail);
    if (r != Reject::kNone) {
      reject(i, r);
      continue;
    }
    if (k == 0) {  // a CSV header
      skipped_++;
      continue;
    }
    // Intern every id first: a record is stored whole or rejected whole.
    const auto& rs = mapped_->out();
    sids_.clear();
    aids_.clear();
    bool full = false;
    for (size_t j = 0; j < k && !full; j++) {
      uint32_t sid = sensors_->Intern(rs[j].id);
      if (sid == Interner::kNone) {
        detail = "the sensor table is full (" + std::to_string(sensors_->capacity()) + " sensors)";
        reject(i, Reject::kTooManySensors);
        full = true;
        break;
      }
      uint32_t aid = ReadingBatch::kNoAsset;
      if (!rs[j].asset.empty() && assets_) {
        aid = assets_->Intern(rs[j].asset);
        if (aid == Interner::kNone) {
          detail = "the asset table is full (" + std::to_string(assets_->capacity()) + " assets)";
          reject(i, Reject::kInvalidAssetId);
          full = true;
          break;
        }
      }
      sids_.push_back(sid);
      aids_.push_back(aid);
    }
    if (full) continue;
    expanded_ += k - 1;
    for (size_t j = 0; j < k; j++) {
      if (!rs[j].unit.empty() || !rs[j].tags.empty()) NoteMeta(sids_[j], rs[j], out);
      out.readings.Push(sids_[j], rs[j].ts_us, rs[j].value, rs[j].label, ReadingBatch::kNoType);
      if (with_origin) out.readings.origins.push_back(raw.origins[i]);
      if (aids_[j] != ReadingBatch::kNoAsset) {
        auto& col = out.readings.asset;
        col.resize(out.readings.size() - 1, ReadingBatch::kNoAsset);
        col.push_back(aids_[j]);
      }
    }
  }
  if (!out.readings.asset.empty()) out.readings.asset.resize(out.readings.size(), ReadingBatch::kNoAsset);
}

void Parser::Parse(const RawBatch& raw, ProcessedBatch& out) {
  if (mapped_) return ParseMapped(raw, out);
  ParsedRecord rec;
  std::string detail;
  const size_t n = raw.size();
  out.readings.Reserve(out.readings.size() + n);
  const bool with_origin = !raw.origins.empty();
  auto reject = [&](size_t i, Reject r) {
    rejected_[static_cast<int>(r)]++;
    out.dead.raw.emplace_back(raw.record(i));
    std::string reason(RejectName(r));
    if (!detail.empty()) reason += ": " + detail;
    out.dead.reason.push_back(std::move(reason));
    if (with_origin) out.dead.origins.push_back(raw.origins[i]);
  };
  for (size_t i = 0; i < n; i++) {
    detail.clear();
    Reject r = ParseOne(raw.record(i), &rec, &detail);
    if (r != Reject::kNone) {
      reject(i, r);
      continue;
    }
    uint32_t sid = sensors_->Intern(rec.sensor_id);
    if (sid == Interner::kNone) {
      detail = "the sensor table is full (" + std::to_string(sensors_->capacity()) + " sensors)";
      reject(i, Reject::kTooManySensors);
      continue;
    }
    uint16_t ty = ReadingBatch::kNoType;
    if (!rec.anomaly_type.empty()) {
      uint32_t t = types_->Intern(rec.anomaly_type.size() > 64 ? rec.anomaly_type.substr(0, 64) : rec.anomaly_type);
      if (t == Interner::kNone) t = types_->Intern("other");
      if (t != Interner::kNone) ty = static_cast<uint16_t>(t);
    }
    uint32_t aid = ReadingBatch::kNoAsset;
    if (!rec.asset_id.empty() && assets_) {
      aid = assets_->Intern(rec.asset_id);
      if (aid == Interner::kNone) {
        detail = "the asset table is full (" + std::to_string(assets_->capacity()) + " assets)";
        reject(i, Reject::kInvalidAssetId);
        continue;
      }
    }
    out.readings.Push(sid, static_cast<int64_t>(std::llround(rec.timestamp * 1e6)), rec.value,
                      rec.has_gt ? static_cast<uint8_t>(rec.gt) : ReadingBatch::kNoLabel, ty);
    if (with_origin) out.readings.origins.push_back(raw.origins[i]);
    if (aid != ReadingBatch::kNoAsset) {  // the asset column exists only once a record carries one
      auto& col = out.readings.asset;
      col.resize(out.readings.size() - 1, ReadingBatch::kNoAsset);
      col.push_back(aid);
    }
  }
  if (!out.readings.asset.empty()) out.readings.asset.resize(out.readings.size(), ReadingBatch::kNoAsset);
}

}  // namespace iotpipe
