// Declared input mappings: records of other shapes than the original wire record → readings.
//
// Formats (InputMapping::format):
//   original  the original wire record {"sensor_id","timestamp","value"[,"is_anomaly_ground_truth"]},
//             on the known-layout fast path (parse/known_layout.h) and simdjson; nothing here runs.
//   json      any JSON object; where the id, time, value(s), label and asset are is declared with
//             JSON Pointers (RFC 6901). Defaults: /sensor_id, /timestamp, /value,
//             /is_anomaly_ground_truth, /asset_id.
//   telegraf  Telegraf's JSON serializer: {"fields":{…},"name":"cpu","tags":{…},"timestamp":N}.
//             One reading per numeric field; the device is the series key "name,tag=v,…" (tags in
//             the order sent), the sensor id "<series key><sep><field>".
//   influx    InfluxDB line protocol "measurement[,tag=v…] field=v[,field=v…] [timestamp]"
//             (escapes \, \= and \space; 12i / 12u integers; booleans and strings are not quantities).
//             Device = series key "measurement,tag=v…", sensor id "<series key><sep><field>".
//   flat      flat device JSON (Zigbee2MQTT / Home Assistant / Tasmota style):
//             {"device":"pump-3","ts":"2026-12-03T10:00:00Z","temperature":61.2,"pressure":3.1}.
//             Defaults /device and /ts; every other top-level number is a quantity.
//   csv       a header line, then one row per line; "paths" are column names (a leading / is
//             ignored). With a value column: one reading per row; without: every other column with
//             a number is a quantity of the row's device.
// Multi-field: where no value path is declared (json: value = ""), the members of the `fields`
// object (JSON Pointer, "" = the top level, minus the id/time/label/asset members) become one
// reading each, id "<device><sep><member>", and the device is the asset of its quantities (the
// asset detector scores it as a whole). Which members: all numeric (default), a list, or a glob
// pattern (* and ?).
// Time: a number in the declared unit or inferred (parse/timestamp.h), an ISO 8601 / RFC 3339
// string, or — only when declared with time = "arrival" — the time the record was decoded.
// Labels are optional everywhere: absent or null → an unlabelled reading (NULL in storage).
// Every failure is a rejection whose detail names the path and the problem, e.g.
//   missing_field: /payload/temp        wrong_type: /ts is an object
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/interner.h"
#include "parse/parser.h"
#include "parse/timestamp.h"

namespace iotpipe {

enum class InputFormat : uint8_t { kOriginal, kJson, kTelegraf, kInflux, kFlat, kCsv };
bool ParseInputFormat(std::string_view s, InputFormat* f);
std::string_view InputFormatName(InputFormat f);

// What the user declares. Empty strings mean "the format's default" (see ResolveMapping); the
// value path "-" means "no single value: multi-field".
struct InputMapping {
  InputFormat format = InputFormat::kOriginal;
  std::string id, time, value, label, asset, unit, tags;  // JSON Pointers (csv: column names)
  std::string fields;                                     // object holding the quantities (multi-field); "" = top level
  std::vector<std::string> quantities;                    // only these members (empty: all numeric)
  std::string pattern;                                    // only members matching this glob
  std::string separator = "/";                            // device/quantity
  std::string time_unit = "auto";                         // auto | s | ms | us | ns
  bool arrival_time = false;                              // time = "arrival": stamp records with the decode time
  char csv_delimiter = ',';
};

// The mapping with the format's defaults filled in and everything checked (pointer syntax, unit,
// separator). Problems are returned as InvalidArgument naming the key.
struct ResolvedMapping {
  InputFormat format = InputFormat::kOriginal;
  std::string id, time, value, label, asset, unit, tags, fields;
  bool multi = false;  // no single value: quantities of a device
  std::vector<std::string> quantities;
  std::string pattern;
  std::string separator;
  TimeUnit unit_of_time = TimeUnit::kAuto;
  bool arrival_time = false;
  char csv_delimiter = ',';
  std::vector<std::string> skip_top;  // top-level members that are not quantities (multi-field at "")
};
Result<ResolvedMapping> ResolveMapping(const InputMapping& m);

// One decoded reading of a mapped record.
struct MappedReading {
  std::string id;
  std::string asset;  // empty: none
  int64_t ts_us = 0;
  double value = 0;
  uint8_t label = 2;  // 0, 1, or 2 = unlabelled (ReadingBatch::kNoLabel)
  std::string unit;   // empty: none declared
  // A JSON object's text, or empty: a view into the decoder, valid until its next Decode.
  std::string_view tags;
  uint64_t meta_hash = 0;  // of unit and tags, where the decoder knows it (line protocol); 0: not computed
};

// Decodes records of one mapping. Not thread-safe (one per parser). CSV keeps the header it read
// first (a record that is the header yields no reading and no rejection: returns kNone, n == 0).
class MappedDecoder {
 public:
  MappedDecoder(ResolvedMapping m, ParserOptions opt);
  ~MappedDecoder();
  MappedDecoder(const MappedDecoder&) = delete;
  MappedDecoder& operator=(const MappedDecoder&) = delete;

  // rec must be followed by 64 readable bytes (RawBatch guarantees it). On success the readings
  // are out()[0, n). arrival_us: the decode time (for time = "arrival").
  Reject Decode(std::string_view rec, int64_t arrival_us, size_t* n, std::string* detail);
  const std::vector<MappedReading>& out() const { return out_; }
  const ResolvedMapping& mapping() const { return m_; }
  // Off: every json record takes the DOM path (tests compare the two; the fast path is on by default).
  void UseFastPath(bool on);

 private:
  struct Impl;
  Reject DecodeJson(std::string_view rec, int64_t arrival_us, size_t* n, std::string* detail);
  Reject DecodeInflux(std::string_view rec, int64_t arrival_us, size_t* n, std::string* detail);
  Reject DecodeCsv(std::string_view rec, int64_t arrival_us, size_t* n, std::string* detail);
  bool DecodePlain(int64_t arrival_us, size_t* n);
  Reject Check(const MappedReading& r, std::string* detail) const;
  MappedReading& Next(size_t* n);

  ResolvedMapping m_;
  ParserOptions opt_;
  std::unique_ptr<Impl> impl_;
  std::vector<MappedReading> out_;
  std::vector<std::string> header_;  // csv: the header, once read
  std::vector<std::string> csv_cells_;
  int id_col_ = -1, time_col_ = -1, value_col_ = -1, label_col_ = -1, asset_col_ = -1, unit_col_ = -1;
  std::string scratch_, tags_;
  // Line protocol. A field's key is a view into the line, or into lp_keys_ when it had escapes.
  struct LpField {
    std::string_view key;
    double value;
  };
  std::vector<LpField> fields_;
  std::string lp_keys_;
  // Series key -> its tags JSON and their hash (built once per series); looked up by view.
  struct ViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return Interner::HashBytes(s.data(), s.size()); }
  };
  std::unordered_map<std::string, std::pair<std::string, uint64_t>, ViewHash, std::equal_to<>> influx_tags_;
};

bool GlobMatch(std::string_view pattern, std::string_view s);
// Whether s holds a control byte (< 0x20 or 0x7f).
bool HasControlByte(std::string_view s);
// The hash the parser keeps per sensor to see a unit or tags change (never 0).
uint64_t MetaHash(std::string_view unit, std::string_view tags);

}  // namespace iotpipe
