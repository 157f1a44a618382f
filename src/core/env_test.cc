// Env and FaultInjectionEnv: the durable-write helpers under injected faults.
#include "core/env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/fault_env.h"
#include "core/fsutil.h"

namespace iotpipe {
namespace {

namespace fs = std::filesystem;

struct TmpDir {
  fs::path p;
  TmpDir() : p(fs::temp_directory_path() / ("iotpipe-env-" + std::to_string(::getpid()) + "-" + std::to_string(n++))) {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~TmpDir() { fs::remove_all(p); }
  std::string operator/(const std::string& f) const { return (p / f).string(); }
  static inline int n = 0;
};

TEST(Env, PosixRoundTripAndCodes) {
  TmpDir d;
  Env* env = Env::Default();
  ASSERT_TRUE(WriteFileAtomic(env, d / "a", "hello").ok());
  auto r = env->ReadFile(d / "a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(*env->FileSize(d / "a"), 5u);
  EXPECT_TRUE(env->ReadFile(d / "missing").status().IsNotFound());
  EXPECT_TRUE(env->RenameFile(d / "missing", d / "b").IsNotFound());
  auto kids = env->GetChildren(d.p.string());
  ASSERT_TRUE(kids.ok());
  EXPECT_EQ(kids->size(), 1u);  // no temp file left
  EXPECT_TRUE(MakeDirs(env, d / "x/y/z").ok());
  EXPECT_TRUE(fs::is_directory(d / "x/y/z"));
}

TEST(FaultEnv, DiskFullFailsTheWriteAndLeavesTheOldFile) {
  TmpDir d;
  FaultInjectionEnv env;
  ASSERT_TRUE(WriteFileAtomic(&env, d / "f", "old content").ok());
  env.SetWriteBudget(4);
  Status s = WriteFileAtomic(&env, d / "f", "new content that does not fit");
  EXPECT_TRUE(s.IsIOError()) << s.message();
  EXPECT_NE(s.message().find("No space left"), std::string::npos);
  EXPECT_EQ(*Env::Default()->ReadFile(d / "f"), "old content");
  EXPECT_FALSE(fs::exists(d / "f.tmp"));
}

TEST(FaultEnv, FailedSyncOrRenameNeverPublishes) {
  TmpDir d;
  FaultInjectionEnv env;
  env.FailSync(true);
  EXPECT_TRUE(WriteFileAtomic(&env, d / "f", "x").IsIOError());
  EXPECT_FALSE(fs::exists(d / "f"));
  env.Reset();
  env.FailRename(true);
  EXPECT_TRUE(WriteFileAtomic(&env, d / "f", "x").IsIOError());
  EXPECT_FALSE(fs::exists(d / "f"));
  env.Reset();
  EXPECT_TRUE(WriteFileAtomic(&env, d / "f", "x").ok());
  EXPECT_TRUE(fs::exists(d / "f"));
}

TEST(FaultEnv, CrashDropsUnsyncedBytesAndUndurableRenames) {
  TmpDir d;
  FaultInjectionEnv env;
  // A committed file (CommitFile syncs the directory) survives whole.
  ASSERT_TRUE(WriteFileAtomic(&env, d / "c", "committed").ok());
  // Written and synced, renamed but the directory not synced: the rename is undone by the crash.
  {
    auto f = env.NewWritableFile(d / "t.tmp");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("durable").ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Append("-lost").ok());
    ASSERT_TRUE((*f)->Close().ok());
  }
  ASSERT_TRUE(env.RenameFile(d / "t.tmp", d / "t").ok());
  env.Crash();
  EXPECT_TRUE(env.NewWritableFile(d / "after").status().IsIOError());
  ASSERT_TRUE(env.DropUnsyncedData().ok());
  EXPECT_FALSE(fs::exists(d / "t"));
  EXPECT_EQ(*Env::Default()->ReadFile(d / "t.tmp"), "durable");
  EXPECT_EQ(*Env::Default()->ReadFile(d / "c"), "committed");
  EXPECT_GT(env.failed_ops(), 0);
}

TEST(Status, CodesAreKeptThroughContext) {
  Status s = Status::Corruption("bad checksum").Prefixed("reading x");
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.message(), "reading x: bad checksum");
  EXPECT_TRUE(Status::OK().Prefixed("ctx").ok());
  EXPECT_FALSE(Status::Error("e").ok());
  EXPECT_EQ(Status::Error("e").code(), Status::Code::kError);
}

}  // namespace
}  // namespace iotpipe
