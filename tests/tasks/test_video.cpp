// Decoding generated videos: counts, timestamps, sampling, seeking, pixels, and clear errors for
// missing, empty, corrupt, truncated and unsupported files.
#include <sys/stat.h>
#include <utime.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "tasks/frame_cache.h"
#include "tasks/video.h"
#include "tasks/video_writer.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using namespace mmi;
using mmi::testing::scratch_file;

namespace {

// The path of a generated video named `name` in the scratch folder, written once per run of the tests.
std::string generated(const std::string& name, const VideoWriteOptions& o) {
  const std::string path = scratch_file(name);
  std::ifstream existing(path);
  if (!existing) write_generated_video(path, o);
  return path;
}

double mean_abs_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
  return sum / a.size();
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("generated videos decode frame-exactly in two codecs", "[video]") {
  for (const auto& [name, encoder] : {std::pair<std::string, std::string>{"mmi_test_h264.mp4", "libx264"},
                                     {"mmi_test_mpeg4.mkv", "mpeg4"}}) {
    INFO(name);
    VideoWriteOptions o;
    o.encoder = encoder;
    const std::string path = generated(name, o);
    const VideoInfo info = probe_video(path);
    REQUIRE(info.width == 128);
    REQUIRE(info.height == 96);
    REQUIRE(info.fps == Approx(10.0));
    REQUIRE(info.frame_count == 50);
    REQUIRE(info.duration_s == Approx(5.0).margin(0.15));

    // Every frame, in order: index code, timestamp, pixels.
    std::vector<double> every;
    for (int k = 0; k < 50; ++k) every.push_back(k / 10.0);
    const std::vector<VideoFrame> frames = decode_frames(path, every);
    REQUIRE(frames.size() == 50);
    for (int k = 0; k < 50; ++k) {
      REQUIRE(read_frame_index(frames[k]) == k);
      REQUIRE(frames[k].timestamp_s == Approx(k / 10.0).margin(1e-3));
      REQUIRE(mean_abs_difference(frames[k].rgb.vector(), generated_frame(o, k)) < 12.0);
    }
    // Sparse, seeking across keyframes (every 12 frames) and jumping ahead.
    const std::vector<VideoFrame> sparse = decode_frames(path, {0.7, 1.3, 4.9});
    REQUIRE(read_frame_index(sparse[0]) == 7);
    REQUIRE(read_frame_index(sparse[1]) == 13);
    REQUIRE(read_frame_index(sparse[2]) == 49);
  }
}

TEST_CASE("uniform and per-second sampling", "[video]") {
  const std::string path = generated("mmi_test_h264.mp4", VideoWriteOptions{});
  const VideoInfo info = probe_video(path);
  const std::vector<double> uniform = uniform_timestamps(info, 5);
  REQUIRE(uniform.size() == 5);
  std::vector<int64_t> indices;
  for (const VideoFrame& f : decode_frames(path, uniform)) indices.push_back(read_frame_index(f));
  REQUIRE(indices == std::vector<int64_t>{5, 15, 25, 35, 45});
  indices.clear();
  for (const VideoFrame& f : decode_frames(path, timestamps_at_fps(info, 1.0))) indices.push_back(read_frame_index(f));
  REQUIRE(indices == std::vector<int64_t>{0, 10, 20, 30, 40});
  REQUIRE(timestamps_at_fps(info, 2.0, 3).size() == 3);
  REQUIRE_THROWS_WITH(uniform_timestamps(info, 0), Contains("must be positive"));
  REQUIRE_THROWS_WITH(timestamps_at_fps(info, 0), Contains("must be positive"));
  REQUIRE_THROWS_WITH(decode_frames(path, {2.0, 1.0}), Contains("mmi_test_h264.mp4") && Contains("ascend"));
}

TEST_CASE("bad video files give one clear error naming the file", "[video]") {
  REQUIRE_THROWS_WITH(probe_video("no_such_video.mp4"), Contains("no_such_video.mp4") && Contains("cannot open"));
  // Each file's error names it: empty, text, noise, truncated.
  auto probe_fails = [](const std::string& name, const std::string& bytes) {
    write_bytes(scratch_file(name), bytes);
    REQUIRE_THROWS_WITH(probe_video(scratch_file(name)), Contains(name));
  };
  probe_fails("mmi_test_empty.mp4", "");
  probe_fails("mmi_test_text.mp4", "this is not a video, only some words in a file with a video extension\n");
  std::string noise(20000, '\0');
  uint32_t state = 12345;
  for (char& c : noise) c = static_cast<char>((state = state * 1103515245u + 12345u) >> 24);
  probe_fails("mmi_test_noise.mkv", noise);
  // A truncated file: the header survives, most of the frames do not.
  const std::string full = read_bytes(generated("mmi_test_mpeg4.mkv", [] {
    VideoWriteOptions o;
    o.encoder = "mpeg4";
    return o;
  }()));
  const std::string truncated = scratch_file("mmi_test_truncated.mkv");
  write_bytes(truncated, full.substr(0, full.size() / 3));
  REQUIRE_THROWS_WITH(decode_frames(truncated, {0.5, 4.9}), Contains("mmi_test_truncated.mkv"));
  VideoWriteOptions bad;
  bad.encoder = "no_such_encoder";
  REQUIRE_THROWS_WITH(write_generated_video(scratch_file("mmi_test_bad.mp4"), bad),
                      Contains("no encoder named 'no_such_encoder'"));
  bad = VideoWriteOptions{};
  bad.width = 127;
  REQUIRE_THROWS_WITH(write_generated_video(scratch_file("mmi_test_odd.mp4"), bad),
                      Contains("mmi_test_odd.mp4") && Contains("even"));
}

TEST_CASE("the frame cache decodes once per file and sampling", "[video]") {
  FrameCache cache(scratch_file("mmi_test_cache"));  // a fresh cache
  const std::string video = scratch_file("mmi_test_cached.mp4");
  VideoWriteOptions o;
  o.frames = 30;
  write_generated_video(video, o);
  const std::vector<double> t = {0.3, 1.1, 2.5};
  const std::vector<VideoFrame> first = cache.frames(video, t);
  const std::vector<VideoFrame> again = cache.frames(video, t);
  REQUIRE(cache.misses() == 1);
  REQUIRE(cache.hits() == 1);
  for (size_t k = 0; k < t.size(); ++k) {
    REQUIRE(again[k].rgb == first[k].rgb);
    REQUIRE(again[k].timestamp_s == first[k].timestamp_s);
  }
  cache.frames(video, {0.3, 1.1});  // another sampling: another entry
  REQUIRE(cache.misses() == 2);
  // A damaged entry is decoded again.
  const std::string entry = cache.entry_path(video, t);
  std::ofstream(entry, std::ios::binary | std::ios::trunc) << "MMIFRM01garbage";
  REQUIRE(read_frame_index(cache.frames(video, t)[1]) == 11);
  REQUIRE(cache.misses() == 3);
  // A rewritten video is a new file identity.
  o.frames = 40;
  write_generated_video(video, o);
  struct stat st {};
  stat(video.c_str(), &st);
  const utimbuf later{st.st_atime, st.st_mtime + 5};  // a different modification time, whatever the clock
  utime(video.c_str(), &later);
  cache.frames(video, t);
  REQUIRE(cache.misses() == 4);
  REQUIRE_THROWS_WITH(cache.frames(scratch_file("mmi_test_gone.mp4"), t), Contains("mmi_test_gone.mp4"));
}

TEST_CASE("frame copies share their bytes until one is written", "[video]") {
  VideoFrame a;
  a.width = 2;
  a.height = 1;
  const std::vector<uint8_t> bytes = {1, 2, 3, 4, 5, 6};
  a.rgb.assign(bytes.begin(), bytes.end());
  VideoFrame b = a;  // a haystack frame placed in a second sample
  REQUIRE(b.rgb.identity() == a.rgb.identity());
  REQUIRE(b.rgb == a.rgb);
  b.rgb[0] = 9;  // writing detaches the copy; the original keeps its bytes
  REQUIRE(b.rgb.identity() != a.rgb.identity());
  REQUIRE(a.rgb[0] == 1);
  REQUIRE(b.rgb[0] == 9);
  REQUIRE(a.rgb != b.rgb);
  VideoFrame c = a;
  c.rgb.resize(3);
  REQUIRE(a.rgb.size() == 6);
  REQUIRE(VideoFrame().rgb.empty());
}
