#include "sinks/parquet_merge.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/thrift_compact.h"

namespace iotpipe {

namespace {

using thrift::kBinary;
using thrift::kI64;
using thrift::kList;
using thrift::kStop;
using thrift::kStruct;
using thrift::TVal;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status Errno(const std::string& what, const std::string& path) {
  return Status::Error(what + " " + path + ": " + std::strerror(errno));
}

struct Footer {
  uint64_t size = 0;  // file size
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
  if (!thrift::DecodeStruct(buf.data(), buf.size(), &f->meta))
    return Status::Error(path + ": malformed Parquet footer (Thrift)");
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
  info.schema = thrift::Encode(*f.meta.Field(2));
  if (TVal* cb = f.meta.Field(6); cb && cb->type == kBinary) info.created_by = cb->s;
  return info;
}

Status MergeParquetFiles(Env* env, const std::vector<std::string>& inputs, const std::string& out_path,
                         uint64_t* bytes) {
  if (inputs.empty()) return Status::Error("nothing to merge into " + out_path);
  auto created = env->NewWritableFile(out_path);
  if (!created.ok()) return created.status();
  std::unique_ptr<WritableFile> out = std::move(created.value());
  Status w = out->Append("PAR1");
  if (!w.ok()) return w;
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
    std::string sch = thrift::Encode(*f.meta.Field(2));
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
      if (!cols || cols->type != kList || cols->elem != kStruct)
        return Status::Error(path + ": row group without columns");
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
    w = out->AppendFileRange(path, 4, block);
    if (!w.ok()) return w;
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
  std::string footer = thrift::Encode(meta);
  const uint32_t len = static_cast<uint32_t>(footer.size());
  footer.append(reinterpret_cast<const char*>(&len), 4);
  footer.append("PAR1", 4);
  w = out->Append(footer);
  if (w.ok()) w = out->Close();
  if (!w.ok()) return w;
  if (bytes) *bytes = pos + footer.size();
  return Status::OK();
}

}  // namespace iotpipe
