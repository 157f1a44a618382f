// PlainScan: the fast path of json input mappings whose paths are plain member names
// ("/device/id", "/time_ms", "/reading/v"), in one pass over the record with no DOM (issue 16: mapped
// JSON at >= half the original record's rate; simdjson's DOM parse plus one at_pointer per path cost
// 2.5 us a record, see docs/PERFORMANCE.md).
//
// It is a validating scanner for the plain ASCII subset of JSON: it answers only when the whole
// record is valid JSON and every value it took is of the expected kind; otherwise it says "ask the DOM"
// (kFallback), never "invalid". Strings with escapes or non-ASCII bytes, numbers simdjson would read
// as big integers or -0, arrays on a path, more than 64 levels of nesting: all go to the DOM path,
// which gives the exact rejection or reading. The first of duplicate members counts, as in simdjson's
// at_key. Equal results are tested in plain_scan_test.cc (a differential test over generated and
// mutated records) and by the parser fuzz target.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace iotpipe {

// Numbers of the texts PlainScan captured (JSON grammar already checked), exactly as simdjson reads
// them: Int: an integer that fits int64. Double: correctly rounded (Clinger's exact fast path for up
// to 2^53 with a power of ten to 22, from_chars otherwise). False: out of range.
bool PlainInt(std::string_view text, int64_t* out);
bool PlainDouble(std::string_view text, double* out);

class PlainScan {
 public:
  // A captured value: its kind and its text (a string's contents without quotes, a number's digits).
  enum class Kind : uint8_t { kAbsent, kString, kInt, kDouble, kTrue, kFalse, kNull, kOther };
  struct Value {
    Kind kind = Kind::kAbsent;
    std::string_view text;
  };

  // Paths as JSON Pointers ("" for an unused slot). False if one cannot take the fast path (the
  // whole document, or a path that is a prefix of another).
  bool Compile(const std::vector<std::string>& pointers);

  // Scans rec; on true, value(i) is the i-th pointer's value (kAbsent if the member is not there).
  // False: let the DOM decide.
  bool Scan(std::string_view rec);
  const Value& value(size_t i) const { return values_[i]; }

 private:
  struct Node {
    std::string key;
    int slot = -1;  // a leaf: index into values_
    std::vector<int> kids;
    bool seen = false;
  };
  const char* ScanObject(const char* p, int node, int depth);
  const char* SkipValue(const char* p, int depth);
  const char* Capture(const char* p, Value* v);

  std::vector<Node> nodes_;  // nodes_[0]: the document
  std::vector<Value> values_;
  const char* end_ = nullptr;
};

}  // namespace iotpipe
