// Durable file operations: temp file + fsync + rename + directory fsync, through an Env (core/env.h).
// The overloads without an Env use Env::Default().
#pragma once
#include <string>
#include <string_view>

#include "core/env.h"
#include "core/status.h"

namespace iotpipe {

Status FsyncPath(const std::string& path);          // fsync a file or a directory
Status MakeDirs(Env* env, const std::string& dir);  // mkdir -p, fsyncing each new directory's parent
Status MakeDirs(const std::string& dir);
// Makes tmp durable and atomically visible as final: fsync(tmp), rename, fsync(parent dir).
Status CommitFile(Env* env, const std::string& tmp, const std::string& final_path);
Status CommitFile(const std::string& tmp, const std::string& final_path);
// Writes content to path + ".tmp", syncs it, and commits it as path.
Status WriteFileAtomic(Env* env, const std::string& path, std::string_view content);
Status WriteFileAtomic(const std::string& path, std::string_view content);
Result<std::string> ReadFile(const std::string& path);
// Removes, under dir (recursively), temp files named ".<prefix>*.tmp" last modified more than max_age_s ago:
// what a kill between write and rename leaves (younger ones may belong to a live writer). Returns how many.
int RemoveStaleTempFiles(const std::string& dir, const std::string& prefix, double max_age_s);
std::string ParentDir(const std::string& path);

}  // namespace iotpipe
