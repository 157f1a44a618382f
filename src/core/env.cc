#include "core/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace iotpipe {

namespace {

Status PosixError(const std::string& what, const std::string& path, int err) {
  std::string m = what + " " + path + ": " + std::strerror(err);
  return err == ENOENT ? Status::NotFound(m) : Status::IOError(m);
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t w = ::write(fd_, data.data(), data.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return PosixError("write", path_, w < 0 ? errno : ENOSPC);
      data.remove_prefix(static_cast<size_t>(w));
    }
    return Status::OK();
  }
  Status AppendFileRange(const std::string& src, uint64_t off, uint64_t n) override {
    int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return PosixError("cannot open", src, errno);
    while (n > 0) {
      loff_t from = static_cast<loff_t>(off);
      ssize_t c = ::copy_file_range(in, &from, fd_, nullptr, n, 0);
      if (c < 0 && errno == EINTR) continue;
      if (c <= 0) break;  // EXDEV, ENOSYS, EINVAL, or 0 (the file system refuses): copy through user space
      off += static_cast<uint64_t>(c);
      n -= static_cast<uint64_t>(c);
    }
    ::close(in);
    return n == 0 ? Status::OK() : WritableFile::AppendFileRange(src, off, n);
  }
  Status Sync() override { return ::fsync(fd_) == 0 ? Status::OK() : PosixError("fsync", path_, errno); }
  Status Close() override {
    if (fd_ < 0) return Status::OK();
    int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? Status::OK() : PosixError("close", path_, errno);
  }

 private:
  std::string path_;
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError("cannot create", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }
  Result<std::string> ReadFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open", path, errno);
    std::string out;
    char buf[1 << 16];
    for (;;) {
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        int e = errno;
        ::close(fd);
        return PosixError("read", path, e);
      }
      if (r == 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    ::close(fd);
    return out;
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? Status::OK() : PosixError("rename", from, errno);
  }
  Status RemoveFile(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 ? Status::OK() : PosixError("unlink", path, errno);
  }
  Status SyncPath(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open", path, errno);
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    return rc == 0 ? Status::OK() : PosixError("fsync", path, e);
  }
  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return Status::OK();
    return PosixError("mkdir", dir, errno);
  }
  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return PosixError("opendir", dir, errno);
    std::vector<std::string> out;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      out.emplace_back(e->d_name);
    }
    ::closedir(d);
    return out;
  }
  Clock* clock() override { return RealClock::Get(); }
};

}  // namespace

bool PreadAll(int fd, char* buf, size_t n, int64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
    off += r;
  }
  return true;
}

Status WritableFile::AppendFileRange(const std::string& src, uint64_t off, uint64_t n) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return PosixError("cannot open", src, errno);
  std::string buf(static_cast<size_t>(std::min<uint64_t>(n, 1 << 20)), '\0');
  Status s;
  while (n > 0 && s.ok()) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, buf.size()));
    errno = 0;
    if (!PreadAll(in, buf.data(), k, static_cast<off_t>(off))) {
      s = PosixError("read", src, errno ? errno : EIO);
      break;
    }
    s = Append(std::string_view(buf.data(), k));
    off += k;
    n -= k;
  }
  ::close(in);
  return s;
}

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

}  // namespace iotpipe
