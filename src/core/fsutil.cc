#include "core/fsutil.h"

#include <chrono>
#include <filesystem>

namespace iotpipe {

std::string ParentDir(const std::string& path) {
  auto p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

Status FsyncPath(const std::string& path) { return Env::Default()->SyncPath(path); }

Status MakeDirs(Env* env, const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::OK();
  std::string parent = ParentDir(dir);
  if (parent != dir) {
    Status s = MakeDirs(env, parent);
    if (!s.ok()) return s;
  }
  Status s = env->CreateDir(dir);
  if (!s.ok()) return s;
  return env->SyncPath(parent);
}
Status MakeDirs(const std::string& dir) { return MakeDirs(Env::Default(), dir); }

Status CommitFile(Env* env, const std::string& tmp, const std::string& final_path) {
  Status s = env->SyncPath(tmp);
  if (!s.ok()) return s;
  s = env->RenameFile(tmp, final_path);
  if (!s.ok()) return s;
  return env->SyncPath(ParentDir(final_path));
}
Status CommitFile(const std::string& tmp, const std::string& final_path) {
  return CommitFile(Env::Default(), tmp, final_path);
}

Status WriteFileAtomic(Env* env, const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  auto f = env->NewWritableFile(tmp);
  if (!f.ok()) return f.status();
  Status s = (*f)->Append(content);
  if (s.ok()) s = (*f)->Sync();
  Status c = (*f)->Close();
  if (s.ok()) s = c;
  if (!s.ok()) {
    (void)env->RemoveFile(tmp);
    return s;
  }
  s = env->RenameFile(tmp, path);
  if (!s.ok()) return s;
  return env->SyncPath(ParentDir(path));
}
Status WriteFileAtomic(const std::string& path, std::string_view content) {
  return WriteFileAtomic(Env::Default(), path, content);
}

Result<std::string> ReadFile(const std::string& path) { return Env::Default()->ReadFile(path); }

int RemoveStaleTempFiles(const std::string& dir, const std::string& prefix, double max_age_s) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  const auto now = fs::file_time_type::clock::now();
  int removed = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() < prefix.size() + 5 || name.rfind("." + prefix, 0) != 0 ||
        name.compare(name.size() - 4, 4, ".tmp") != 0)
      continue;
    std::error_code e2;
    auto mtime = fs::last_write_time(it->path(), e2);
    if (e2 || std::chrono::duration<double>(now - mtime).count() < max_age_s) continue;
    if (fs::remove(it->path(), e2)) removed++;
  }
  return removed;
}

}  // namespace iotpipe
