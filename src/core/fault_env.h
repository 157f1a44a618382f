// FaultInjectionEnv: an Env that fails on request and can forget what was never made durable, for
// in-process tests of every durable write path (modelled on LevelDB's fault_injection_test).
//
// Faults: a write budget (Append fails with ENOSPC once it is spent: a full disk, possibly mid-file; a file
// written by another library, DuckDB's COPY, counts when it is first fsynced through this Env), failing
// fsync, failing rename, and a crash: after Crash() every operation fails, and DropUnsyncedData() then
// leaves on disk only what a power cut would: each file written through this Env is cut back to its last
// synced size, and renames whose directory was not fsynced afterwards are undone.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/env.h"

namespace iotpipe {

class FaultInjectionEnv final : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* base = Env::Default()) : EnvWrapper(base) {}

  void SetWriteBudget(int64_t bytes);  // -1: unlimited (the default)
  void FailSync(bool on);
  void FailRename(bool on);
  void Crash();  // from now on every operation fails (until Reset)
  // The n-th rename from now (1: the next) does not happen: the process "dies" there (Crash()), between
  // writing a file and making it visible. 0: off.
  void CrashAtRename(int n);
  int renames() const;  // renames done through this Env
  // Files whose path contains `path_part` take only their first `keep` bytes, then writes fail with
  // ENOSPC: a torn file of one kind (e.g. "_offsets/": a commit marker). Empty: off.
  void TearWritesTo(const std::string& path_part, int64_t keep);
  void Reset();               // clears every fault (not the tracked state)
  Status DropUnsyncedData();  // what survives a power cut at this moment

  int64_t appended_bytes() const;
  int failed_ops() const;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status SyncPath(const std::string& path) override;
  Status CreateDir(const std::string& dir) override;

 private:
  friend class FaultFile;
  struct FileState {
    uint64_t size = 0, synced = 0;
  };
  struct Rename {
    std::string from, to, dir;
  };
  Status Check(const char* op, const std::string& path);  // the crash switch
  Status OnAppend(const std::string& path, size_t n, size_t* fits);
  void OnSync(const std::string& path);

  mutable std::mutex mu_;
  int64_t budget_ = -1, appended_ = 0;
  bool fail_sync_ = false, fail_rename_ = false, crashed_ = false;
  int failed_ = 0, crash_at_rename_ = 0, renames_ = 0;
  std::string tear_part_;
  int64_t tear_keep_ = 0;
  std::map<std::string, FileState> files_;
  std::vector<Rename> pending_renames_;
};

}  // namespace iotpipe
