#include "core/fault_env.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/fsutil.h"

namespace fs = std::filesystem;

namespace iotpipe {

class FaultFile final : public WritableFile {
 public:
  FaultFile(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Status Append(std::string_view data) override {
    size_t fits = 0;
    Status s = env_->OnAppend(path_, data.size(), &fits);
    if (!s.ok()) {
      // A full disk takes the part that fits: a torn file, as a real ENOSPC leaves.
      if (fits) (void)base_->Append(data.substr(0, fits));
      return s;
    }
    return base_->Append(data);
  }
  Status Sync() override {
    Status s = env_->Check("fsync", path_);
    if (s.ok()) {
      std::lock_guard<std::mutex> g(env_->mu_);
      if (env_->fail_sync_) {
        env_->failed_++;
        s = Status::IOError("fsync " + path_ + ": Input/output error (injected)");
      }
    }
    if (!s.ok()) return s;
    s = base_->Sync();
    if (s.ok()) env_->OnSync(path_);
    return s;
  }
  Status Close() override { return base_->Close(); }

 private:
  FaultInjectionEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

void FaultInjectionEnv::SetWriteBudget(int64_t bytes) {
  std::lock_guard<std::mutex> g(mu_);
  budget_ = bytes;
  appended_ = 0;
}
void FaultInjectionEnv::FailSync(bool on) {
  std::lock_guard<std::mutex> g(mu_);
  fail_sync_ = on;
}
void FaultInjectionEnv::FailRename(bool on) {
  std::lock_guard<std::mutex> g(mu_);
  fail_rename_ = on;
}
void FaultInjectionEnv::Crash() {
  std::lock_guard<std::mutex> g(mu_);
  crashed_ = true;
}
void FaultInjectionEnv::CrashAtRename(int n) {
  std::lock_guard<std::mutex> g(mu_);
  crash_at_rename_ = n;
}
void FaultInjectionEnv::TearWritesTo(const std::string& path_part, int64_t keep) {
  std::lock_guard<std::mutex> g(mu_);
  tear_part_ = path_part;
  tear_keep_ = keep;
}
int FaultInjectionEnv::renames() const {
  std::lock_guard<std::mutex> g(mu_);
  return renames_;
}
void FaultInjectionEnv::Reset() {
  std::lock_guard<std::mutex> g(mu_);
  budget_ = -1;
  crash_at_rename_ = 0;
  tear_part_.clear();
  appended_ = 0;
  fail_sync_ = fail_rename_ = crashed_ = false;
}
int64_t FaultInjectionEnv::appended_bytes() const {
  std::lock_guard<std::mutex> g(mu_);
  return appended_;
}
int FaultInjectionEnv::failed_ops() const {
  std::lock_guard<std::mutex> g(mu_);
  return failed_;
}

Status FaultInjectionEnv::Check(const char* op, const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  if (!crashed_) return Status::OK();
  failed_++;
  return Status::IOError(std::string(op) + " " + path + ": simulated crash");
}

Status FaultInjectionEnv::OnAppend(const std::string& path, size_t n, size_t* fits) {
  std::lock_guard<std::mutex> g(mu_);
  *fits = 0;
  if (crashed_) {
    failed_++;
    return Status::IOError("write " + path + ": simulated crash");
  }
  if (!tear_part_.empty() && path.find(tear_part_) != std::string::npos) {
    FileState& f = files_[path];
    const int64_t have = static_cast<int64_t>(f.size);
    if (have + static_cast<int64_t>(n) > tear_keep_) {
      failed_++;
      *fits = static_cast<size_t>(std::max<int64_t>(tear_keep_ - have, 0));
      f.size += *fits;
      appended_ += static_cast<int64_t>(*fits);
      return Status::IOError("write " + path + ": No space left on device (injected, torn)");
    }
  }
  if (budget_ >= 0 && appended_ + static_cast<int64_t>(n) > budget_) {
    failed_++;
    *fits = static_cast<size_t>(budget_ - appended_);
    appended_ = budget_;
    files_[path].size += *fits;
    return Status::IOError("write " + path + ": No space left on device (injected)");
  }
  appended_ += static_cast<int64_t>(n);
  files_[path].size += n;
  return Status::OK();
}

void FaultInjectionEnv::OnSync(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = files_.find(path);
  if (it != files_.end()) it->second.synced = it->second.size;
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path) {
  Status s = Check("create", path);
  if (!s.ok()) return s;
  auto f = target()->NewWritableFile(path);
  if (!f.ok()) return f.status();
  {
    std::lock_guard<std::mutex> g(mu_);
    files_[path] = FileState{};
  }
  return std::unique_ptr<WritableFile>(new FaultFile(this, path, std::move(f.value())));
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  Status s = Check("rename", from);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (fail_rename_) {
      failed_++;
      return Status::IOError("rename " + from + ": Input/output error (injected)");
    }
    if (crash_at_rename_ > 0 && --crash_at_rename_ == 0) {
      crashed_ = true;
      failed_++;
      return Status::IOError("rename " + from + ": simulated crash");
    }
  }
  s = target()->RenameFile(from, to);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> g(mu_);
  renames_++;
  auto it = files_.find(from);
  if (it != files_.end()) {
    files_[to] = it->second;
    files_.erase(it);
  }
  pending_renames_.push_back({from, to, ParentDir(to)});
  return Status::OK();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  Status s = Check("unlink", path);
  if (!s.ok()) return s;
  s = target()->RemoveFile(path);
  if (s.ok()) {
    std::lock_guard<std::mutex> g(mu_);
    files_.erase(path);
  }
  return s;
}

Status FaultInjectionEnv::SyncPath(const std::string& path) {
  Status s = Check("fsync", path);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (fail_sync_) {
      failed_++;
      return Status::IOError("fsync " + path + ": Input/output error (injected)");
    }
  }
  // A file another library wrote (DuckDB's COPY ... TO) reaches the Env first here, at its commit: its
  // bytes count against the write budget now, so a full disk fails it as the real one would have.
  if (std::error_code ec; fs::is_regular_file(path, ec)) {
    std::lock_guard<std::mutex> g(mu_);
    if (!files_.count(path)) {
      const int64_t n = static_cast<int64_t>(fs::file_size(path, ec));
      if (budget_ >= 0 && appended_ + n > budget_) {
        failed_++;
        appended_ = budget_;
        return Status::IOError("write " + path + ": No space left on device (injected; written by another library)");
      }
      appended_ += n;
    }
  }
  s = target()->SyncPath(path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> g(mu_);
  auto it = files_.find(path);
  if (it != files_.end()) it->second.synced = it->second.size;
  // A directory fsync makes the renames into it durable.
  std::vector<Rename> keep;
  for (auto& r : pending_renames_)
    if (r.dir != path) keep.push_back(r);
  pending_renames_.swap(keep);
  return Status::OK();
}

Status FaultInjectionEnv::CreateDir(const std::string& dir) {
  Status s = Check("mkdir", dir);
  if (!s.ok()) return s;
  return target()->CreateDir(dir);
}

Status FaultInjectionEnv::DropUnsyncedData() {
  std::lock_guard<std::mutex> g(mu_);
  // Undo the renames that no directory fsync made durable, newest first.
  for (auto it = pending_renames_.rbegin(); it != pending_renames_.rend(); ++it) {
    std::error_code ec;
    std::filesystem::rename(it->to, it->from, ec);
    auto f = files_.find(it->to);
    if (f != files_.end()) {
      files_[it->from] = f->second;
      files_.erase(f);
    }
  }
  pending_renames_.clear();
  // Cut every written file back to what was synced.
  for (auto& [path, st] : files_) {
    if (st.synced < st.size) {
      if (::truncate(path.c_str(), static_cast<off_t>(st.synced)) != 0 && errno != ENOENT)
        return Status::IOError("truncate " + path + " (dropping unsynced data)");
      st.size = st.synced;
    }
  }
  return Status::OK();
}

}  // namespace iotpipe
