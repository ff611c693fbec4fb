// The generated Video-QA: what each sample's frames show is what its answer says (the flashed colour,
// the number of flashes, the direction of motion), events sit on whole frame pairs, samples are
// reproducible, and bad grids are refused.
#include <array>
#include <cmath>
#include <map>
#include <set>

#include "tasks/answers.h"
#include "tasks/event_qa.h"
#include "tests/catch.h"

using namespace mmi;

namespace {

constexpr int kWidth = 64, kHeight = 48;

// Frame k is a flat grey 100 + k % 50: no painted colour is a grey in that range.
std::vector<VideoFrame> grey_haystack(int64_t n) {
  std::vector<VideoFrame> frames(n);
  for (int64_t k = 0; k < n; ++k) {
    frames[k].width = kWidth;
    frames[k].height = kHeight;
    frames[k].timestamp_s = static_cast<double>(k);
    frames[k].rgb.assign(static_cast<size_t>(kWidth) * kHeight * 3, static_cast<uint8_t>(100 + k % 50));
  }
  return frames;
}

struct Paint {
  int64_t pixels = 0;
  double x = 0, y = 0;  // centroid of the painted pixels
  int r = 0, g = 0, b = 0;
};

// The pixels of frame `index` that differ from the haystack's grey.
Paint painted(const VideoFrame& frame, int64_t index) {
  Paint p;
  const uint8_t grey = static_cast<uint8_t>(100 + index % 50);
  for (int y = 0; y < frame.height; ++y) {
    for (int x = 0; x < frame.width; ++x) {
      const uint8_t* px = frame.rgb.data() + (static_cast<size_t>(y) * frame.width + x) * 3;
      if (px[0] == grey && px[1] == grey && px[2] == grey) continue;
      ++p.pixels;
      p.x += x;
      p.y += y;
      p.r = px[0], p.g = px[1], p.b = px[2];
    }
  }
  if (p.pixels) p.x /= p.pixels, p.y /= p.pixels;
  return p;
}

const VideoFrame& frame_of(const TaskSample& s, int64_t k) { return s.prompt[1].frames[k]; }

// The text of the option the answer letter names, without "X. ".
std::string answer_text(const TaskSample& s) { return s.answer.options[s.answer.target[0] - 'A'].substr(3); }

// The frames of a sample that carry paint.
std::vector<int64_t> painted_frames(const TaskSample& s) {
  std::vector<int64_t> out;
  for (int64_t k = 0; k < static_cast<int64_t>(s.prompt[1].frames.size()); ++k) {
    if (painted(frame_of(s, k), k).pixels > 0) out.push_back(k);
  }
  return out;
}

std::vector<TaskSample> build(const std::vector<std::string>& questions, std::vector<int64_t> frames, int variants) {
  EventQaOptions o;
  o.frames = std::move(frames);
  o.questions = questions;
  o.variants.clear();
  for (int v = 0; v < variants; ++v) o.variants.push_back(v);
  o.first_script = 7;
  return build_event_qa(grey_haystack(200), o);
}

}  // namespace

TEST_CASE("generated Video-QA: the flashed square has the colour the answer names", "[eventqa]") {
  const std::map<std::string, std::array<int, 3>> rgb = {{"green", {30, 190, 60}},   {"blue", {30, 60, 230}},
                                                         {"yellow", {240, 220, 30}}, {"purple", {150, 40, 200}},
                                                         {"white", {250, 250, 250}}, {"black", {10, 10, 10}}};
  std::set<std::string> answers, letters;
  for (const TaskSample& s : build({"color"}, {8, 9, 31, 120}, 12)) {
    REQUIRE(s.prompt.size() == 3);
    REQUIRE(s.answer.kind == AnswerSpec::Kind::kChoice);
    REQUIRE(s.answer.options.size() == 4);
    REQUIRE(extract_choice(s.answer.options[s.answer.target[0] - 'A']) == s.answer.target[0]);
    const std::vector<int64_t> frames = painted_frames(s);
    REQUIRE(frames.size() == 2);
    REQUIRE(frames[0] % 2 == 0);
    REQUIRE(frames[1] == frames[0] + 1);
    const Paint p = painted(frame_of(s, frames[0]), frames[0]);
    REQUIRE(p.pixels == (kHeight * 2 / 5) * (kHeight * 2 / 5));
    REQUIRE(p.y >= kHeight / 4);  // below the haystack's index band
    const std::string named = answer_text(s);
    REQUIRE(rgb.count(named) == 1);
    REQUIRE(std::array<int, 3>{p.r, p.g, p.b} == rgb.at(named));
    answers.insert(named);
    letters.insert(s.answer.target);
  }
  REQUIRE(answers.size() == 6);
  REQUIRE(letters.size() == 4);
}

TEST_CASE("generated Video-QA: the square flashes as many times as the answer says", "[eventqa]") {
  std::set<std::string> answers;
  for (const TaskSample& s : build({"count"}, {8, 16, 17, 64}, 16)) {
    const std::vector<int64_t> frames = painted_frames(s);
    // Flashes are whole pairs with at least one clean pair between two of them.
    int flashes = 0;
    for (size_t i = 0; i < frames.size(); i += 2) {
      REQUIRE(frames[i] % 2 == 0);
      REQUIRE(i + 1 < frames.size());
      REQUIRE(frames[i + 1] == frames[i] + 1);
      if (i > 0) REQUIRE(frames[i] - frames[i - 1] >= 3);
      ++flashes;
    }
    REQUIRE(answer_text(s) == std::to_string(flashes));
    if (s.prompt[1].frames.size() == 8) REQUIRE(flashes <= 2);  // 4 pairs hold at most 2 separated flashes
    answers.insert(answer_text(s));
  }
  REQUIRE(answers == std::set<std::string>{"1", "2", "3", "4"});
}

TEST_CASE("generated Video-QA: the square moves the way the answer says", "[eventqa]") {
  std::set<std::string> answers;
  for (const TaskSample& s : build({"motion"}, {8, 11, 40}, 12)) {
    const std::vector<int64_t> frames = painted_frames(s);
    REQUIRE(frames.size() == 8);
    REQUIRE(frames[0] % 2 == 0);
    REQUIRE(frames.back() == frames[0] + 7);
    const Paint first = painted(frame_of(s, frames.front()), frames.front());
    const Paint last = painted(frame_of(s, frames.back()), frames.back());
    const std::string way = answer_text(s);
    const double dx = last.x - first.x, dy = last.y - first.y;
    if (way == "left to right") REQUIRE((dx > 20 && std::abs(dy) < 1));
    if (way == "right to left") REQUIRE((dx < -20 && std::abs(dy) < 1));
    if (way == "top to bottom") REQUIRE((dy > 5 && std::abs(dx) < 1));
    if (way == "bottom to top") REQUIRE((dy < -5 && std::abs(dx) < 1));
    answers.insert(way);
  }
  REQUIRE(answers.size() == 4);
}

TEST_CASE("generated Video-QA: samples are reproducible and leave the haystack untouched", "[eventqa]") {
  const std::vector<VideoFrame> hay = grey_haystack(40);
  EventQaOptions o;
  o.frames = {16, 40};
  const std::vector<TaskSample> a = build_event_qa(hay, o), b = build_event_qa(hay, o);
  REQUIRE(a.size() == 2 * 3 * 4);
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].id == b[i].id);
    REQUIRE(a[i].answer.target == b[i].answer.target);
    REQUIRE(a[i].prompt[1].frames.size() == static_cast<size_t>(a[i].grid.at("frames")));
    for (size_t k = 0; k < a[i].prompt[1].frames.size(); ++k) REQUIRE(a[i].prompt[1].frames[k].rgb == b[i].prompt[1].frames[k].rgb);
  }
  REQUIRE(a[0].id == "eventqa_color_f16_v0");
  for (int64_t k = 0; k < 40; ++k) REQUIRE(painted(hay[k], k).pixels == 0);  // painting copied the frames
  // Another script, another event.
  o.first_script = 1;
  const std::vector<TaskSample> c = build_event_qa(hay, o);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) differs |= painted_frames(a[i]) != painted_frames(c[i]);
  REQUIRE(differs);
}

TEST_CASE("generated Video-QA refuses grids it cannot build", "[eventqa]") {
  EventQaOptions o;
  o.frames = {7};
  REQUIRE_THROWS_WITH(build_event_qa(grey_haystack(20), o), Contains("at least 8"));
  o.frames = {30};
  REQUIRE_THROWS_WITH(build_event_qa(grey_haystack(20), o), Contains("the haystack has 20 frames"));
  o.frames = {16};
  o.questions = {"size"};
  REQUIRE_THROWS_WITH(build_event_qa(grey_haystack(20), o), Contains("unknown question 'size'"));
}
