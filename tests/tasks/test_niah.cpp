// Needle images and the V-NIAH grid: the needle lands at the requested depth, the haystack keeps its
// order, the answer matches the drawn shape.
#include <fstream>
#include <set>

#include "tasks/answers.h"
#include "tasks/frame_cache.h"
#include "tasks/needles.h"
#include "tasks/niah.h"
#include "tasks/video_qa.h"
#include "tasks/video_writer.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using namespace mmi;
using mmi::testing::scratch_file;

namespace {

std::vector<VideoFrame> haystack(int64_t n, int width, int height) {
  std::vector<VideoFrame> frames(n);
  for (int64_t k = 0; k < n; ++k) {
    frames[k].width = width;
    frames[k].height = height;
    frames[k].timestamp_s = static_cast<double>(k);
    frames[k].rgb.assign(static_cast<size_t>(width) * height * 3, static_cast<uint8_t>(k));  // frame k is all k
  }
  return frames;
}

}  // namespace

TEST_CASE("needles differ, and their answer names the drawn shape", "[niah]") {
  std::set<std::vector<uint8_t>> seen;
  for (int64_t k = 0; k < 20; ++k) {
    const Needle n = make_needle(k, 96, 64);
    REQUIRE(n.image.rgb.size() == 96u * 64u * 3u);
    REQUIRE(seen.insert(n.image.rgb.vector()).second);  // every needle image is different
    REQUIRE(n.options.size() == 4);
    const char letter = n.answer[0];
    REQUIRE(n.options[letter - 'A'].find(n.shape) != std::string::npos);
    REQUIRE(extract_choice(n.options[letter - 'A']) == letter);
  }
  // The shape is really drawn: a circle covers about pi r^2 of its colour, a triangle about 2 r^2.
  auto coloured = [](const Needle& n) {
    int64_t count = 0;
    for (size_t p = 0; p < n.image.rgb.size(); p += 3) count += n.image.rgb[p] > 200 && n.image.rgb[p + 1] < 60;
    return count;
  };
  const Needle circle = make_needle(0, 200, 200), triangle = make_needle(2, 200, 200);  // both red
  REQUIRE(circle.color == "red");
  REQUIRE(triangle.color == "red");
  REQUIRE(coloured(circle) == Approx(M_PI * 50 * 50).epsilon(0.1));
  REQUIRE(coloured(triangle) == Approx(2.0 * 50 * 50).epsilon(0.1));
}

TEST_CASE("V-NIAH puts the needle at the requested depth", "[niah]") {
  NiahOptions o;
  o.frames = {5, 10};
  o.depths = {0.0, 0.5, 1.0};
  const std::vector<VideoFrame> hay = haystack(10, 32, 24);
  const std::vector<TaskSample> samples = build_vniah(hay, o);
  REQUIRE(samples.size() == 6);
  for (const TaskSample& s : samples) {
    const int64_t f = static_cast<int64_t>(s.grid.at("frames"));
    const int64_t at = needle_position(f, s.grid.at("depth"));
    REQUIRE(s.prompt.size() == 3);
    const std::vector<VideoFrame>& frames = s.prompt[1].frames;
    REQUIRE(static_cast<int64_t>(frames.size()) == f + 1);
    int64_t next = 0;
    for (int64_t k = 0; k <= f; ++k) {
      if (k == at) continue;  // the needle
      REQUIRE(frames[k].rgb[0] == next++);  // haystack frames in order, none lost
    }
    REQUIRE(frames[at].rgb != hay[0].rgb);
    REQUIRE(s.answer.kind == AnswerSpec::Kind::kChoice);
    REQUIRE(s.prompt[2].text.find("A. circle") != std::string::npos);
  }
  REQUIRE(needle_position(10, 0.0) == 0);
  REQUIRE(needle_position(10, 1.0) == 10);
  REQUIRE(needle_position(10, 0.25) == 3);  // round half away from zero
  REQUIRE_THROWS_WITH(needle_position(10, 1.5), Contains("depth must be in [0, 1]"));
  o.frames = {20};
  REQUIRE_THROWS_WITH(build_vniah(hay, o), Contains("haystack has 10 frames, the grid needs 20"));
}

TEST_CASE("V-NIAH short-answer needles ask for the written word", "[niah]") {
  NiahOptions o;
  o.frames = {6};
  o.depths = {0.5};
  o.needle = "short";
  const std::vector<TaskSample> samples = build_vniah(haystack(6, 32, 24), o);
  REQUIRE(samples.size() == 1);
  const TaskSample& s = samples[0];
  REQUIRE(s.answer.kind == AnswerSpec::Kind::kShort);
  REQUIRE(s.answer.options.empty());
  const Needle word = make_word_needle(0, 32, 24);
  REQUIRE(s.answer.target == word.answer);
  REQUIRE(s.prompt[1].frames[needle_position(6, 0.5)].rgb == word.image.rgb);
  REQUIRE(s.prompt[2].text.find(o.short_instruction) != std::string::npos);
  o.needle = "riddle";
  REQUIRE_THROWS_WITH(build_vniah(haystack(6, 32, 24), o), Contains("needle must be choice or short"));
}

TEST_CASE("V-NIAH from a haystack video samples it at 1 fps", "[niah][video]") {
  VideoWriteOptions video;
  video.frames = 120;  // 12 s at 10 fps
  const std::string path = scratch_file("mmi_test_haystack.mp4");
  write_generated_video(path, video);
  FrameCache cache(scratch_file("mmi_test_niah_cache"));
  NiahOptions o;
  o.frames = {4, 12};
  o.depths = {0.5};
  const std::vector<TaskSample> samples = build_vniah_from_video(path, cache, o);
  REQUIRE(samples.size() == 2);
  const std::vector<VideoFrame>& frames = samples[1].prompt[1].frames;  // F = 12, needle at 6
  REQUIRE(frames.size() == 13);
  REQUIRE(read_frame_index(frames[0]) == 0);
  REQUIRE(read_frame_index(frames[5]) == 50);  // one frame per second of the 10 fps video
  REQUIRE(read_frame_index(frames[7]) == 60);
  REQUIRE(frames[6].width == 128);
  o.frames = {20};
  REQUIRE_THROWS_WITH(build_vniah_from_video(path, cache, o),
                      Contains("mmi_test_haystack.mp4") && Contains("needs 20 frames at 1 fps"));
}

TEST_CASE("Video-QA and captioning samples from manifests over generated videos", "[video_qa][video]") {
  VideoWriteOptions video;
  video.frames = 40;
  write_generated_video(scratch_file("mmi_test_qa_video.mp4"), video);
  const std::string qa_manifest = scratch_file("mmi_test_qa_manifest.jsonl");
  const std::string caption_manifest = scratch_file("mmi_test_caption_manifest.jsonl");
  std::ofstream(qa_manifest)
      << R"({"id": "mc", "video": "mmi_test_qa_video.mp4", "question": "Which way does the square move?", "options": ["A. left", "B. right"], "answer": "B", "subtitles": "hello"})"
      << "\n"
      << R"({"id": "open", "video": "mmi_test_qa_video.mp4", "question": "What colour is the square?", "answer": "red"})" << "\n";
  std::ofstream(caption_manifest)
      << R"({"id": "c", "video": "mmi_test_qa_video.mp4", "captions": ["a red square moves over a gradient"]})" << "\n";
  FrameCache cache(scratch_file("mmi_test_qa_cache"));
  VideoQaOptions o;
  o.frames = 4;
  o.subtitles = true;
  const std::vector<TaskSample> qa = build_video_qa(load_video_qa_manifest(qa_manifest), cache, o);
  REQUIRE(qa.size() == 2);
  REQUIRE(qa[0].prompt[0].frames.size() == 4);
  std::vector<int64_t> indices;
  for (const VideoFrame& f : qa[0].prompt[0].frames) indices.push_back(read_frame_index(f));
  REQUIRE(indices == std::vector<int64_t>{5, 15, 25, 35});  // centres of 4 equal segments of 4 s
  REQUIRE(qa[0].answer.kind == AnswerSpec::Kind::kChoice);
  REQUIRE(qa[0].answer.target == "B");
  REQUIRE(qa[0].prompt[1].text.find("subtitles are listed below:\nhello") != std::string::npos);
  REQUIRE(qa[0].prompt[1].text.find("B. right") != std::string::npos);
  REQUIRE(qa[1].answer.kind == AnswerSpec::Kind::kShort);
  REQUIRE(cache.misses() == 1);  // the same video and sampling decoded once
  const std::vector<TaskSample> captions =
      build_captioning(load_caption_manifest(caption_manifest), cache, o);
  REQUIRE(captions[0].answer.kind == AnswerSpec::Kind::kCaption);
  REQUIRE(captions[0].answer.references.size() == 1);
  REQUIRE(captions[0].prompt[1].text == o.caption_prompt);
  const std::string missing = scratch_file("mmi_test_qa_missing.jsonl");
  std::ofstream(missing) << R"({"id": "x", "video": "no_such_clip.mp4", "question": "q", "answer": "a"})" << "\n";
  REQUIRE_THROWS_WITH(build_video_qa(load_video_qa_manifest(missing), cache, o),
                      Contains("no_such_clip.mp4"));
}
