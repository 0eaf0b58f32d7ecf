#include "runtime/core/profiler.h"

#include <algorithm>
#include <map>
#include <mutex>

namespace trident {

std::atomic<bool> Profiler::enabled_{false};

namespace {
std::mutex g_profile_mutex;
std::map<std::string, ProfileEntry>& table() {
  // Never destroyed: stream threads, which live until the process ends, record into it.
  static auto* const entries = new std::map<std::string, ProfileEntry>;
  return *entries;
}
}  // namespace

void Profiler::enable(bool on) { enabled_.store(on); }

void Profiler::reset() {
  std::lock_guard<std::mutex> lock(g_profile_mutex);
  table().clear();
}

void Profiler::record(const char* name, double seconds) {
  std::lock_guard<std::mutex> lock(g_profile_mutex);
  ProfileEntry& entry = table()[name];
  if (entry.name.empty()) entry.name = name;
  entry.seconds += seconds;
  ++entry.calls;
}

std::vector<ProfileEntry> Profiler::snapshot() {
  std::lock_guard<std::mutex> lock(g_profile_mutex);
  std::vector<ProfileEntry> out;
  for (const auto& [name, entry] : table()) out.push_back(entry);
  std::sort(out.begin(), out.end(), [](const ProfileEntry& a, const ProfileEntry& b) { return a.seconds > b.seconds; });
  return out;
}

}  // namespace trident
