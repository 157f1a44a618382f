#include "core/thrift_compact.h"

#include <climits>

namespace iotpipe::thrift {

namespace {

constexpr int kMaxDepth = 64;

class Decoder {
 public:
  Decoder(const char* p, size_t n) : begin_(reinterpret_cast<const uint8_t*>(p)), p_(begin_), end_(p_ + n) {}
  size_t used() const { return static_cast<size_t>(p_ - begin_); }
  bool Struct(TVal* out, int depth) {
    if (depth > kMaxDepth) return false;
    out->type = kStruct;
    int16_t last = 0;
    for (;;) {
      uint8_t b;
      if (!Byte(&b)) return false;
      if (b == kStop) return true;
      uint8_t type = b & 0x0f;
      int16_t id;
      if (b >> 4) {
        id = static_cast<int16_t>(last + (b >> 4));
      } else {
        int64_t v;
        if (!Zig(&v) || v < INT16_MIN || v > INT16_MAX) return false;
        id = static_cast<int16_t>(v);
      }
      last = id;
      TVal v;
      if (type == kTrue || type == kFalse) {
        v.type = type;
        v.i = type == kTrue;
      } else if (!Value(type, &v, depth + 1)) {
        return false;
      }
      out->fields.emplace_back(id, std::move(v));
    }
  }

 private:
  bool Byte(uint8_t* b) {
    if (p_ >= end_) return false;
    *b = *p_++;
    return true;
  }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Zig(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
    return true;
  }
  size_t Left() const { return static_cast<size_t>(end_ - p_); }
  bool Value(uint8_t type, TVal* v, int depth) {
    if (depth > kMaxDepth) return false;
    v->type = type;
    switch (type) {
      case kTrue:
      case kFalse:
      case kByte: {  // bools as collection elements are one byte
        uint8_t b;
        if (!Byte(&b)) return false;
        v->i = b;
        return true;
      }
      case kI16:
      case kI32:
      case kI64:
        return Zig(&v->i);
      case kDouble:
        if (Left() < 8) return false;
        v->s.assign(reinterpret_cast<const char*>(p_), 8);
        p_ += 8;
        return true;
      case kBinary: {
        uint64_t n;
        if (!Varint(&n) || n > Left()) return false;
        v->s.assign(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return true;
      }
      case kList:
      case kSet: {
        uint8_t h;
        if (!Byte(&h)) return false;
        uint64_t n = h >> 4;
        v->elem = h & 0x0f;
        if (n == 15 && !Varint(&n)) return false;
        if (n > Left()) return false;  // every element takes at least one byte
        v->items.resize(n);
        for (auto& e : v->items)
          if (!Value(v->elem, &e, depth + 1)) return false;
        return true;
      }
      case kMap: {
        uint64_t n;
        if (!Varint(&n) || n > Left()) return false;
        if (n == 0) return true;
        uint8_t h;
        if (!Byte(&h)) return false;
        v->key = h >> 4;
        v->elem = h & 0x0f;
        v->items.resize(2 * n);
        for (size_t k = 0; k < v->items.size(); k++)
          if (!Value(k % 2 == 0 ? v->key : v->elem, &v->items[k], depth + 1)) return false;
        return true;
      }
      case kStruct:
        return Struct(v, depth);
      default:
        return false;
    }
  }

  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
};

void EncodeValue(const TVal& v, Encoder* e) {
  switch (v.type) {
    case kTrue:
    case kFalse:
    case kByte:
      e->Byte(static_cast<uint8_t>(v.i));
      break;
    case kI16:
    case kI32:
    case kI64:
      e->Varint(Zig(v.i));
      break;
    case kDouble:
      e->Raw(v.s);
      break;
    case kBinary:
      e->Elem(v.s);
      break;
    case kList:
    case kSet:
      e->ListHeader(v.elem, v.items.size());
      for (const auto& x : v.items) EncodeValue(x, e);
      break;
    case kMap:
      e->Varint(v.items.size() / 2);
      if (!v.items.empty()) e->Byte(static_cast<uint8_t>((v.key << 4) | v.elem));
      for (const auto& x : v.items) EncodeValue(x, e);
      break;
    case kStruct:
      e->Push();
      EncodeStruct(v, e);
      break;
    default:
      break;
  }
}

}  // namespace

TVal* TVal::Field(int16_t id) {
  for (auto& [fid, v] : fields)
    if (fid == id) return &v;
  return nullptr;
}

void TVal::Erase(int16_t id) {
  for (size_t k = 0; k < fields.size(); k++)
    if (fields[k].first == id) {
      fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(k));
      return;
    }
}

bool DecodeStruct(const char* p, size_t n, TVal* out, size_t* used) {
  Decoder d(p, n);
  if (!d.Struct(out, 0)) return false;
  if (used) *used = d.used();
  return true;
}

// Writes v's fields and its stop byte (the caller has Push()ed for a nested struct).
void EncodeStruct(const TVal& v, Encoder* e) {
  for (const auto& [id, f] : v.fields) {
    if (f.type == kTrue || f.type == kFalse) {
      e->Bool(id, f.i != 0);
      continue;
    }
    e->Field(id, f.type);
    EncodeValue(f, e);
  }
  e->End();
}

std::string Encode(const TVal& v) {
  std::string out;
  Encoder e(&out);
  if (v.type == kStruct) {
    EncodeStruct(v, &e);
  } else {
    TVal holder;  // wrap a non-struct value as field 1 of a struct
    holder.type = kStruct;
    holder.fields.emplace_back(1, v);
    EncodeStruct(holder, &e);
  }
  return out;
}

}  // namespace iotpipe::thrift
