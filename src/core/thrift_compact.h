// Thrift compact protocol: the one codec for Parquet's page headers and footers, used by the native
// writer (streaming encode) and by compaction (decode a footer to a tree, edit it, re-encode it exactly).
//
// Invariant: Encode(Decode(bytes)) == bytes for every struct this codec writes (field ids, types and order
// are kept), so a merged footer differs from its inputs only where compaction edits it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iotpipe::thrift {

// Compact protocol type ids.
enum : uint8_t {
  kStop = 0,
  kTrue = 1,
  kFalse = 2,
  kByte = 3,
  kI16 = 4,
  kI32 = 5,
  kI64 = 6,
  kDouble = 7,
  kBinary = 8,
  kList = 9,
  kSet = 10,
  kMap = 11,
  kStruct = 12
};

inline uint64_t Zig(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }

// Streaming encoder: fields are written in the order given, with short (delta) field headers where possible.
class Encoder {
 public:
  explicit Encoder(std::string* o) : o_(o) {}
  void Byte(uint8_t b) { o_->push_back(static_cast<char>(b)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      o_->push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    o_->push_back(static_cast<char>(v));
  }
  void Field(int16_t id, uint8_t type) {
    int d = id - last_;
    if (d > 0 && d <= 15) {
      Byte(static_cast<uint8_t>((d << 4) | type));
    } else {
      Byte(type);
      Varint(Zig(id));
    }
    last_ = id;
  }
  void I32(int16_t id, int32_t v) { Field(id, kI32), Varint(Zig(v)); }
  void I64(int16_t id, int64_t v) { Field(id, kI64), Varint(Zig(v)); }
  void Bin(int16_t id, std::string_view s) { Field(id, kBinary), Elem(s); }
  void Bool(int16_t id, bool b) { Field(id, b ? kTrue : kFalse); }
  void Struct(int16_t id) { Field(id, kStruct), Push(); }
  void List(int16_t id, uint8_t elem_type, size_t n) {
    Field(id, kList);
    ListHeader(elem_type, n);
  }
  void ListHeader(uint8_t elem_type, size_t n) {
    if (n < 15) {
      Byte(static_cast<uint8_t>((n << 4) | elem_type));
    } else {
      Byte(static_cast<uint8_t>(0xF0 | elem_type));
      Varint(n);
    }
  }
  void Elem(int32_t v) { Varint(Zig(v)); }
  void Elem(std::string_view s) {
    Varint(s.size());
    o_->append(s);
  }
  void Raw(std::string_view s) { o_->append(s); }
  void Push() {  // a nested struct begins (as a field or as a list element)
    stack_.push_back(last_);
    last_ = 0;
  }
  void End() {  // the current struct ends
    Byte(kStop);
    if (!stack_.empty()) {
      last_ = stack_.back();
      stack_.pop_back();
    }
  }

 private:
  std::string* o_;
  int16_t last_ = 0;
  std::vector<int16_t> stack_;
};

// A decoded value: enough to re-encode it exactly (field ids, types, order).
struct TVal {
  uint8_t type = kStop;
  int64_t i = 0;                                 // bools (field: 1/0; element: the byte as read), byte, i16, i32, i64
  std::string s;                                 // binary; double (8 raw bytes)
  uint8_t elem = 0;                              // list/set element type; map value type
  uint8_t key = 0;                               // map key type
  std::vector<TVal> items;                       // list/set elements; map keys and values alternating
  std::vector<std::pair<int16_t, TVal>> fields;  // struct

  TVal* Field(int16_t id);
  void Erase(int16_t id);
};

// Decodes one struct from p[0, n); false on truncated, malformed or too deeply nested input.
// *used (if given) is the number of bytes the struct took.
bool DecodeStruct(const char* p, size_t n, TVal* out, size_t* used = nullptr);
// Encodes v (a struct, or any value wrapped as field 1 of a struct).
std::string Encode(const TVal& v);
void EncodeStruct(const TVal& v, Encoder* e);

}  // namespace iotpipe::thrift
