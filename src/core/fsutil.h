// Durable file operations: temp file + fsync + rename + directory fsync.
#pragma once
#include <string>
#include <string_view>

#include "core/status.h"

namespace iotpipe {

Status FsyncPath(const std::string& path);      // fsync a file or a directory
Status MakeDirs(const std::string& dir);         // mkdir -p, fsyncing each new directory's parent
// Makes tmp durable and atomically visible as final: fsync(tmp), rename, fsync(parent dir).
Status CommitFile(const std::string& tmp, const std::string& final_path);
Status WriteFileAtomic(const std::string& path, std::string_view content);
Result<std::string> ReadFile(const std::string& path);
std::string ParentDir(const std::string& path);

}  // namespace iotpipe
