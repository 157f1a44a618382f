#include "sinks/parquet_merge.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace iotpipe {

namespace {

// Thrift compact protocol type ids.
enum : uint8_t {
  kStop = 0, kTrue = 1, kFalse = 2, kByte = 3, kI16 = 4, kI32 = 5, kI64 = 6, kDouble = 7, kBinary = 8,
  kList = 9, kSet = 10, kMap = 11, kStruct = 12
};
constexpr int kMaxDepth = 64;

// A decoded Thrift value: enough to re-encode it exactly (field ids, types, order).
struct TVal {
  uint8_t type = kStop;
  int64_t i = 0;       // bools (field: 1/0; element: the byte as read), byte, i16, i32, i64
  std::string s;       // binary; double (8 raw bytes)
  uint8_t elem = 0;    // list/set element type; map value type
  uint8_t key = 0;     // map key type
  std::vector<TVal> items;                       // list/set elements; map keys and values alternating
  std::vector<std::pair<int16_t, TVal>> fields;  // struct

  TVal* Field(int16_t id) {
    for (auto& [fid, v] : fields)
      if (fid == id) return &v;
    return nullptr;
  }
  void Erase(int16_t id) {
    for (size_t k = 0; k < fields.size(); k++)
      if (fields[k].first == id) {
        fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(k));
        return;
      }
  }
};

class Reader {
 public:
  Reader(const char* p, size_t n) : p_(reinterpret_cast<const uint8_t*>(p)), end_(p_ + n) {}
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

  const uint8_t* p_;
  const uint8_t* end_;
};

class Writer {
 public:
  explicit Writer(std::string* o) : o_(o) {}
  void Struct(const TVal& v) {
    int16_t last = 0;
    for (const auto& [id, f] : v.fields) {
      const uint8_t type = (f.type == kTrue || f.type == kFalse) ? static_cast<uint8_t>(f.i ? kTrue : kFalse) : f.type;
      if (id > last && id - last <= 15) {
        Byte(static_cast<uint8_t>(((id - last) << 4) | type));
      } else {
        Byte(type);
        Zig(id);
      }
      last = id;
      if (type != kTrue && type != kFalse) Value(f);
    }
    Byte(kStop);
  }

 private:
  void Byte(uint8_t b) { o_->push_back(static_cast<char>(b)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      Byte(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    Byte(static_cast<uint8_t>(v));
  }
  void Zig(int64_t v) { Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void Value(const TVal& v) {
    switch (v.type) {
      case kTrue:
      case kFalse:
      case kByte:
        Byte(static_cast<uint8_t>(v.i));
        break;
      case kI16:
      case kI32:
      case kI64:
        Zig(v.i);
        break;
      case kDouble:
        o_->append(v.s);
        break;
      case kBinary:
        Varint(v.s.size());
        o_->append(v.s);
        break;
      case kList:
      case kSet:
        if (v.items.size() < 15) {
          Byte(static_cast<uint8_t>((v.items.size() << 4) | v.elem));
        } else {
          Byte(static_cast<uint8_t>(0xf0 | v.elem));
          Varint(v.items.size());
        }
        for (const auto& e : v.items) Value(e);
        break;
      case kMap:
        Varint(v.items.size() / 2);
        if (!v.items.empty()) Byte(static_cast<uint8_t>((v.key << 4) | v.elem));
        for (const auto& e : v.items) Value(e);
        break;
      case kStruct:
        Struct(v);
        break;
      default:
        break;
    }
  }
  std::string* o_;
};

std::string Encode(const TVal& v) {
  std::string out;
  TVal holder;  // wrap a non-struct value so that Writer can encode it
  if (v.type == kStruct) {
    Writer(&out).Struct(v);
  } else {
    holder.type = kStruct;
    holder.fields.emplace_back(1, v);
    Writer(&out).Struct(holder);
  }
  return out;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status Errno(const std::string& what, const std::string& path) {
  return Status::Error(what + " " + path + ": " + std::strerror(errno));
}

bool PreadAll(int fd, char* buf, size_t n, off_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
    off += r;
  }
  return true;
}

bool WriteAll(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    buf += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Copies [off, off + n) of `in` to the current position of `out`: in the kernel where it can.
bool CopyRange(int in, off_t off, size_t n, int out) {
  bool kernel = true;
  std::string buf;
  while (n > 0) {
    if (kernel) {
      loff_t src = off;
      ssize_t c = ::copy_file_range(in, &src, out, nullptr, n, 0);
      if (c > 0) {
        off += c;
        n -= static_cast<size_t>(c);
        continue;
      }
      if (c < 0 && errno == EINTR) continue;
      kernel = false;  // EXDEV, ENOSYS, EINVAL, or 0 (filesystem refuses): copy by hand
      buf.resize(1 << 20);
    }
    size_t k = std::min(n, buf.size());
    if (!PreadAll(in, buf.data(), k, off) || !WriteAll(out, buf.data(), k)) return false;
    off += static_cast<off_t>(k);
    n -= k;
  }
  return true;
}

struct Footer {
  uint64_t size = 0;        // file size
  uint64_t footer_len = 0;
  TVal meta;
};

Status ReadFooter(int fd, const std::string& path, Footer* f) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("cannot stat", path);
  f->size = static_cast<uint64_t>(st.st_size);
  if (f->size < 12) return Status::Error(path + ": not a Parquet file (" + std::to_string(f->size) + " bytes)");
  char head[4], tail[8];
  if (!PreadAll(fd, head, 4, 0) || !PreadAll(fd, tail, 8, static_cast<off_t>(f->size - 8)))
    return Errno("cannot read", path);
  if (std::memcmp(head, "PAR1", 4) != 0 || std::memcmp(tail + 4, "PAR1", 4) != 0)
    return Status::Error(path + ": not a Parquet file (no PAR1 magic; encrypted files are not merged)");
  uint32_t len;
  std::memcpy(&len, tail, 4);  // little endian (x86-64)
  f->footer_len = len;
  if (f->footer_len == 0 || f->footer_len > f->size - 12)
    return Status::Error(path + ": bad Parquet footer length " + std::to_string(len));
  std::string buf(f->footer_len, '\0');
  if (!PreadAll(fd, buf.data(), buf.size(), static_cast<off_t>(f->size - 8 - f->footer_len)))
    return Errno("cannot read", path);
  Reader r(buf.data(), buf.size());
  if (!r.Struct(&f->meta, 0)) return Status::Error(path + ": malformed Parquet footer (Thrift)");
  TVal* rows = f->meta.Field(3);
  TVal* groups = f->meta.Field(4);
  TVal* schema = f->meta.Field(2);
  if (!rows || rows->type != kI64 || !groups || groups->type != kList || groups->elem != kStruct || !schema ||
      schema->type != kList)
    return Status::Error(path + ": Parquet footer without schema, num_rows or row_groups");
  if (f->meta.Field(8)) return Status::Error(path + ": encrypted Parquet files are not merged");
  return Status::OK();
}

// Shifts an i64 file position field by delta if present.
bool Shift(TVal* s, int16_t id, int64_t delta) {
  TVal* v = s->Field(id);
  if (!v) return true;
  if (v->type != kI64) return false;
  v->i += delta;
  return true;
}

}  // namespace

Result<ParquetFileInfo> ReadParquetInfo(const std::string& path) {
  Fd in;
  in.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0) return Errno("cannot open", path);
  Footer f;
  Status s = ReadFooter(in.fd, path, &f);
  if (!s.ok()) return s;
  ParquetFileInfo info;
  info.rows = f.meta.Field(3)->i;
  info.row_groups = static_cast<int64_t>(f.meta.Field(4)->items.size());
  info.bytes = f.size;
  info.schema = Encode(*f.meta.Field(2));
  if (TVal* cb = f.meta.Field(6); cb && cb->type == kBinary) info.created_by = cb->s;
  return info;
}

Status MergeParquetFiles(const std::vector<std::string>& inputs, const std::string& out_path, uint64_t* bytes) {
  if (inputs.empty()) return Status::Error("nothing to merge into " + out_path);
  Fd out;
  out.fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out.fd < 0) return Errno("cannot create", out_path);
  if (!WriteAll(out.fd, "PAR1", 4)) return Errno("cannot write", out_path);
  uint64_t pos = 4;
  TVal meta;
  std::string schema;
  int64_t rows = 0;
  std::vector<TVal> groups;
  for (const auto& path : inputs) {
    Fd in;
    in.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in.fd < 0) return Errno("cannot open", path);
    Footer f;
    Status s = ReadFooter(in.fd, path, &f);
    if (!s.ok()) return s;
    std::string sch = Encode(*f.meta.Field(2));
    if (groups.empty() && schema.empty()) {
      schema = sch;
    } else if (sch != schema) {
      return Status::Error(path + ": schema differs from " + inputs[0] + "; not merged");
    }
    // Everything between the magic and the footer moves as one block from offset 4 to `pos`.
    const uint64_t block = f.size - 8 - f.footer_len - 4;
    const int64_t delta = static_cast<int64_t>(pos) - 4;
    for (auto& g : f.meta.Field(4)->items) {
      if (!Shift(&g, 5, delta)) return Status::Error(path + ": malformed row group");
      TVal* cols = g.Field(1);
      if (!cols || cols->type != kList || cols->elem != kStruct) return Status::Error(path + ": row group without columns");
      for (auto& c : cols->items) {
        if (c.Field(1) || c.Field(8) || c.Field(9))
          return Status::Error(path + ": column chunks in other files or encrypted; not merged");
        if (!Shift(&c, 2, delta) || !Shift(&c, 4, delta) || !Shift(&c, 6, delta))
          return Status::Error(path + ": malformed column chunk");
        if (TVal* md = c.Field(3)) {
          if (md->type != kStruct || !Shift(md, 9, delta) || !Shift(md, 10, delta) || !Shift(md, 11, delta) ||
              !Shift(md, 14, delta))
            return Status::Error(path + ": malformed column metadata");
        }
      }
      groups.push_back(std::move(g));
    }
    rows += f.meta.Field(3)->i;
    if (!CopyRange(in.fd, 4, block, out.fd)) return Errno("cannot copy row groups of " + path + " to", out_path);
    pos += block;
    if (meta.type == kStop) meta = std::move(f.meta);
  }
  // Row-group ordinals (i16) are renumbered; beyond the i16 range they are left out (optional).
  for (size_t g = 0; g < groups.size(); g++) {
    if (TVal* ord = groups[g].Field(7)) {
      if (g <= INT16_MAX) {
        ord->i = static_cast<int64_t>(g);
      } else {
        groups[g].Erase(7);
      }
    }
  }
  meta.Field(3)->i = rows;
  meta.Field(4)->items = std::move(groups);
  std::string footer;
  Writer(&footer).Struct(meta);
  const uint32_t len = static_cast<uint32_t>(footer.size());
  footer.append(reinterpret_cast<const char*>(&len), 4);
  footer.append("PAR1", 4);
  if (!WriteAll(out.fd, footer.data(), footer.size())) return Errno("cannot write", out_path);
  if (bytes) *bytes = pos + footer.size();
  return Status::OK();
}

}  // namespace iotpipe
