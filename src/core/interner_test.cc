// The interner's open-addressing table: stable ids in insertion order, lookups of every length
// (the hash reads 1-3, 4-7, 8-16 and > 16 bytes differently), growth, capacity, concurrent Name().
#include "core/interner.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <unordered_set>

namespace iotpipe {
namespace {

TEST(Interner, IdsAreStableAcrossGrowthForKeysOfEveryLength) {
  Interner in(1 << 20);
  std::vector<std::string> keys;
  for (int i = 0; i < 100000; i++) {
    std::string k = "s" + std::to_string(i);
    k.resize(static_cast<size_t>(i % 40), static_cast<char>('a' + i % 26));  // lengths 0..39
    k += std::to_string(i);
    keys.push_back(k);
  }
  keys.push_back("");
  for (size_t i = 0; i < keys.size(); i++) ASSERT_EQ(in.Intern(keys[i]), i) << keys[i];
  ASSERT_EQ(in.size(), keys.size());
  for (size_t i = 0; i < keys.size(); i++) {
    ASSERT_EQ(in.Intern(keys[i]), i);
    ASSERT_EQ(in.Find(keys[i]), i);
    ASSERT_EQ(in.Name(static_cast<uint32_t>(i)), keys[i]);
  }
  EXPECT_EQ(in.Find("not there"), Interner::kNone);
  EXPECT_EQ(in.Find(std::string_view("s1\0", 3)), Interner::kNone);  // embedded NUL differs from "s1"
  EXPECT_EQ(in.size(), keys.size());
}

TEST(Interner, FullReturnsNoneAndKeepsExistingIds) {
  Interner in(3);
  EXPECT_EQ(in.Intern("a"), 0u);
  EXPECT_EQ(in.Intern("b"), 1u);
  EXPECT_EQ(in.Intern("c"), 2u);
  EXPECT_EQ(in.Intern("d"), Interner::kNone);
  EXPECT_EQ(in.Intern("b"), 1u);
  EXPECT_EQ(in.size(), 3u);
}

TEST(Interner, HashSpreadsSimilarIds) {
  // sensor_0 .. sensor_99999 differ in a few bytes: their hashes' low bits must not collide much.
  std::unordered_set<uint64_t> low;
  for (int i = 0; i < 100000; i++) {
    std::string k = "sensor_" + std::to_string(i);
    low.insert(Interner::HashBytes(k.data(), k.size()) & ((1 << 18) - 1));
  }
  EXPECT_GT(low.size(), 80000u);  // a uniform hash into 2^18 buckets keeps ~83k of 100k distinct
}

TEST(Interner, NamesAreReadableWhileTheWriterGrowsTheTable) {
  Interner in(1 << 18);
  for (int i = 0; i < 1000; i++) in.Intern("k" + std::to_string(i));
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      const uint32_t n = in.size();
      for (uint32_t i = 0; i < n; i += 97) ASSERT_EQ(in.Name(i), "k" + std::to_string(i));
    }
  });
  for (int i = 1000; i < 200000; i++) in.Intern("k" + std::to_string(i));
  done = true;
  reader.join();
  EXPECT_EQ(in.size(), 200000u);
}

}  // namespace
}  // namespace iotpipe
