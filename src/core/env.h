// Env: how code reaches files and the clock (the LevelDB way), so tests can inject disk-full, failed
// fsync or rename, torn writes and crashes in process, and run time forward on a manual clock.
//
// Contract: every durable write in iotpipe's own code goes through an Env — a file is written with
// NewWritableFile/Append/Sync/Close, made visible with RenameFile and made durable with SyncDir
// (CommitFile in core/fsutil.h does the three in order). Errors are Status codes (kIOError for the disk,
// kNotFound for missing files), never exceptions. Files DuckDB writes itself (COPY ... TO a temp file) reach the
// Env only when they are committed (CommitFile: SyncPath, RenameFile, SyncPath of the directory).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace iotpipe {

// Reads exactly [off, off + n) of fd into buf (retrying short reads and EINTR); false on error or early EOF.
bool PreadAll(int fd, char* buf, size_t n, int64_t off);

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Appends bytes [off, off + n) of the file at src: by default read and Append()ed in 1 MiB pieces (so a
  // wrapping Env sees every byte); the POSIX file copies in the kernel (copy_file_range) where it can.
  virtual Status AppendFileRange(const std::string& src, uint64_t off, uint64_t n);
  virtual Status Sync() = 0;   // data and size durable on return
  virtual Status Close() = 0;  // idempotent; the destructor closes without syncing
};

class Env {
 public:
  virtual ~Env() = default;
  // The process-wide POSIX file system and real clock.
  static Env* Default();

  // Creates or truncates path for writing.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;  // atomic replace
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status SyncPath(const std::string& path) = 0;  // fsync a closed file or a directory
  virtual Status CreateDir(const std::string& dir) = 0;  // one level; OK if it exists
  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of dir, unsorted.
  virtual Result<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  virtual Clock* clock() = 0;
};

// Forwards everything to a target Env (override what you need to change).
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p) override {
    return target_->NewWritableFile(p);
  }
  Result<std::string> ReadFile(const std::string& p) override { return target_->ReadFile(p); }
  Status RenameFile(const std::string& f, const std::string& t) override { return target_->RenameFile(f, t); }
  Status RemoveFile(const std::string& p) override { return target_->RemoveFile(p); }
  Status SyncPath(const std::string& p) override { return target_->SyncPath(p); }
  Status CreateDir(const std::string& d) override { return target_->CreateDir(d); }
  bool FileExists(const std::string& p) override { return target_->FileExists(p); }
  Result<uint64_t> FileSize(const std::string& p) override { return target_->FileSize(p); }
  Result<std::vector<std::string>> GetChildren(const std::string& d) override { return target_->GetChildren(d); }
  Clock* clock() override { return target_->clock(); }
  Env* target() const { return target_; }

 private:
  Env* target_;
};

}  // namespace iotpipe
