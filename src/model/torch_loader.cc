// Loads libiotpipe_torch.so on first use (see model/torch_api.h).
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "model/torch_api.h"

namespace iotpipe::ml {

namespace {

constexpr const char* kLibName = "libiotpipe_torch.so";

std::vector<std::string> Candidates() {
  std::vector<std::string> c;
  if (const char* env = std::getenv("IOTPIPE_TORCH_LIB"); env && *env) {
    c.emplace_back(env);  // explicit: the only candidate
    return c;
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    c.push_back((exe.parent_path() / kLibName).string());
    c.push_back((exe.parent_path().parent_path() / "lib" / kLibName).string());
  }
  return c;
}

Result<const TorchApi*> Load() {
  auto fail = [](const std::string& why) {
    return Status::Error(std::string("training needs ") + kLibName + ": " + why);
  };
  std::string tried;
  for (const std::string& path : Candidates()) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      return fail(e ? e : path + ": dlopen failed");
    }
    using Entry = const TorchApi* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(h, "iotpipe_torch_api"));
    if (!entry) {
      const char* e = dlerror();
      return fail(e ? e : path + ": no iotpipe_torch_api");
    }
    const TorchApi* api = entry();
    const TorchApi want;
    if (!api || api->version != want.version || api->sizeof_api != want.sizeof_api ||
        api->sizeof_options != want.sizeof_options || api->sizeof_windows != want.sizeof_windows ||
        api->sizeof_weights != want.sizeof_weights || !api->fit_weights || !api->reconstruct || !api->init_weights)
      return fail(path + " was built from a different version of iotpipe (rebuild it with the binary)");
    return api;  // the handle stays open for the life of the process
  }
  return fail("not found (tried " + tried + "; set IOTPIPE_TORCH_LIB to its path)");
}

}  // namespace

Result<const TorchApi*> LoadTorch() {
  static const Result<const TorchApi*> loaded = Load();
  return loaded;
}

}  // namespace iotpipe::ml
