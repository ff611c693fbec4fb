#include "tasks/frame_cache.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>

#include "tasks/files.h"

namespace mmi {
namespace {

constexpr char kMagic[8] = {'M', 'M', 'I', 'F', 'R', 'M', '0', '1'};

// FNV-1a: stable across runs and machines, unlike std::hash.
uint64_t fnv1a(const void* data, size_t size, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

template <typename T>
void put(std::ofstream& out, const T& x) { out.write(reinterpret_cast<const char*>(&x), sizeof(T)); }
template <typename T>
bool get(std::ifstream& in, T& x) { return static_cast<bool>(in.read(reinterpret_cast<char*>(&x), sizeof(T))); }

std::optional<std::vector<VideoFrame>> read_entry(const std::string& file, size_t expected) {
  std::ifstream in(file, std::ios::binary);
  char magic[sizeof(kMagic)];
  uint64_t count = 0;
  if (!in || !in.read(magic, sizeof(magic)) || std::memcmp(magic, kMagic, sizeof(kMagic)) || !get(in, count) ||
      count != expected) {
    return std::nullopt;
  }
  std::vector<VideoFrame> frames(count);
  for (VideoFrame& f : frames) {
    int32_t w = 0, h = 0;
    if (!get(in, f.timestamp_s) || !get(in, w) || !get(in, h) || w <= 0 || h <= 0 || w > 65536 || h > 65536) {
      return std::nullopt;
    }
    f.width = w;
    f.height = h;
    f.rgb.resize(static_cast<size_t>(w) * h * 3);
    if (!in.read(reinterpret_cast<char*>(f.rgb.data()), static_cast<std::streamsize>(f.rgb.size()))) return std::nullopt;
  }
  return frames;
}

void write_entry(const std::string& file, const std::vector<VideoFrame>& frames) {
  const std::string partial = file + ".partial";  // renamed into place: readers never see half an entry
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) throw VideoError("frame cache: cannot write " + partial);
    out.write(kMagic, sizeof(kMagic));
    put(out, static_cast<uint64_t>(frames.size()));
    for (const VideoFrame& f : frames) {
      put(out, f.timestamp_s);
      put(out, static_cast<int32_t>(f.width));
      put(out, static_cast<int32_t>(f.height));
      out.write(reinterpret_cast<const char*>(f.rgb.data()), static_cast<std::streamsize>(f.rgb.size()));
    }
    if (!out) throw VideoError("frame cache: cannot write " + partial);
  }
  if (std::rename(partial.c_str(), file.c_str()) != 0) throw VideoError("frame cache: cannot write " + file);
}

}  // namespace

FrameCache::FrameCache(std::string directory) : directory_(std::move(directory)) {
  try {
    make_directories(directory_);
  } catch (const std::runtime_error& e) {
    throw VideoError(std::string("frame cache: ") + e.what());
  }
}

std::string FrameCache::entry_path(const std::string& path, const std::vector<double>& timestamps) const {
  FileIdentity id;
  try {
    id = file_identity(path);
  } catch (const std::runtime_error& e) {
    throw VideoError(e.what());
  }
  uint64_t h = fnv1a(id.absolute_path.data(), id.absolute_path.size());
  h = fnv1a(&id.size, sizeof(id.size), h);
  h = fnv1a(&id.modified_ns, sizeof(id.modified_ns), h);
  h = fnv1a(timestamps.data(), timestamps.size() * sizeof(double), h);
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.frames", static_cast<unsigned long long>(h));
  return join_path(directory_, name);
}

std::vector<VideoFrame> FrameCache::frames(const std::string& path, const std::vector<double>& timestamps) {
  const std::string entry = entry_path(path, timestamps);
  if (auto cached = read_entry(entry, timestamps.size())) {
    ++hits_;
    return std::move(*cached);
  }
  ++misses_;
  std::vector<VideoFrame> decoded = decode_frames(path, timestamps);
  write_entry(entry, decoded);
  return decoded;
}

std::vector<VideoFrame> haystack_frames(FrameCache& cache, const std::string& video, int64_t count,
                                        const std::string& needed_by) {
  const std::vector<double> times = timestamps_at_fps(probe_video(video), 1.0, count);
  if (static_cast<int64_t>(times.size()) < count) {
    throw VideoError(video + ": " + std::to_string(times.size()) + " s long, " + needed_by + " needs " +
                     std::to_string(count) + " frames at 1 fps");
  }
  return cache.frames(video, times);
}

}  // namespace mmi
