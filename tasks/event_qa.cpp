#include "tasks/event_qa.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include "tasks/frame_cache.h"

namespace mmi {
namespace {

struct Color {
  const char* name;
  std::array<uint8_t, 3> rgb;
};
// Far from the haystack's own moving square (orange-red) and from its gradient's dominant hues.
const Color kColors[] = {{"green", {30, 190, 60}},   {"blue", {30, 60, 230}},   {"yellow", {240, 220, 30}},
                         {"purple", {150, 40, 200}}, {"white", {250, 250, 250}}, {"black", {10, 10, 10}}};
constexpr int kNumColors = sizeof(kColors) / sizeof(kColors[0]);
const char* const kLetters = "ABCD";
const char* const kDirections[] = {"left to right", "right to left", "top to bottom", "bottom to top"};
constexpr int kMaxFlashes = 4;
constexpr int64_t kMotionFrames = 8;

// SplitMix64: the same numbers on every platform, unlike the standard distributions.
class Script {
 public:
  explicit Script(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }

 private:
  uint64_t state_;
};

// A square of side `side` with its top-left corner at (x, y), clipped to the frame.
void paint_square(VideoFrame& frame, int x, int y, int side, const std::array<uint8_t, 3>& rgb) {
  uint8_t* data = frame.rgb.data();  // detaches the shared haystack bytes
  for (int row = std::max(0, y); row < std::min(frame.height, y + side); ++row) {
    for (int col = std::max(0, x); col < std::min(frame.width, x + side); ++col) {
      std::copy(rgb.begin(), rgb.end(), data + (static_cast<size_t>(row) * frame.width + col) * 3);
    }
  }
}

// `count` distinct pairs of frames among F (pair p is frames 2p and 2p + 1), no two neighbours, in
// ascending order: choose among the pairs left once the gaps are set aside, then spread them out.
std::vector<int64_t> flash_pairs(Script& script, int64_t frames, int count) {
  const int64_t free_pairs = frames / 2 - (count - 1);
  std::vector<int64_t> chosen;
  while (static_cast<int>(chosen.size()) < count) {
    const int64_t p = script.below(free_pairs);
    if (std::find(chosen.begin(), chosen.end(), p) == chosen.end()) chosen.push_back(p);
  }
  std::sort(chosen.begin(), chosen.end());
  for (int i = 0; i < count; ++i) chosen[i] += i;
  return chosen;
}

struct Event {
  std::string question;
  std::vector<std::string> options;
  int answer = 0;  // index into options
};

// The largest number of flashes F frames hold with a free pair between any two.
int max_flashes(int64_t frames) { return static_cast<int>(std::min<int64_t>(kMaxFlashes, (frames / 2 + 1) / 2)); }

// The frames an event is painted on, the square's size and colour, and the script. Every draw from the
// script is its own statement, so the samples do not depend on a compiler's order of evaluation.
struct Canvas {
  std::vector<VideoFrame>& video;
  Script& script;
  int64_t frames;
  int width, height;
  int side, top;  // the square's side; the first row it may use
  const Color& color;

  // A random top-left coordinate along an axis of `extent` pixels, from `from` on.
  int place(int extent, int from) { return from + static_cast<int>(script.below(extent - from - side + 1)); }
  // A random spot for the square: (x, y) of its top-left corner (y drawn first).
  std::pair<int, int> spot() {
    const int y = place(height, top);
    return {place(width, 0), y};
  }
  // The square at `at` on frame pair `pair`.
  void flash(int64_t pair, std::pair<int, int> at) {
    for (int64_t f = 2 * pair; f < std::min(frames, 2 * pair + 2); ++f) paint_square(video[f], at.first, at.second, side, color.rgb);
  }
};

Event color_event(Canvas& c) {
  const std::pair<int, int> at = c.spot();
  c.flash(flash_pairs(c.script, c.frames, 1)[0], at);
  // The right colour and three others, in a scripted order.
  std::vector<int> order(kNumColors);
  for (int i = 0; i < kNumColors; ++i) order[i] = i;
  for (int i = kNumColors - 1; i > 0; --i) std::swap(order[i], order[c.script.below(i + 1)]);
  const int right = static_cast<int>(&c.color - kColors);
  order.erase(std::find(order.begin(), order.end(), right));
  order.resize(3);
  order.insert(order.begin() + c.script.below(4), right);
  Event e;
  e.question = "A large square flashes up once in the video. What color is it?";
  for (int i = 0; i < 4; ++i) e.options.push_back(kColors[order[i]].name);
  e.answer = static_cast<int>(std::find(order.begin(), order.end(), right) - order.begin());
  return e;
}

Event count_event(Canvas& c) {
  const int count = 1 + static_cast<int>(c.script.below(max_flashes(c.frames)));
  for (int64_t pair : flash_pairs(c.script, c.frames, count)) c.flash(pair, c.spot());
  return Event{"A large square flashes up in the video now and then. How many times does it appear?",
               {"1", "2", "3", "4"}, count - 1};
}

Event motion_event(Canvas& c) {
  const int direction = static_cast<int>(c.script.below(4));
  const int64_t first = 2 * c.script.below((c.frames - kMotionFrames) / 2 + 1);
  const bool across = direction < 2;  // horizontal
  const int fixed = across ? c.place(c.height, c.top) : c.place(c.width, 0);
  const int span = across ? c.width - c.side : c.height - c.top - c.side;
  for (int64_t t = 0; t < kMotionFrames; ++t) {
    const int step = static_cast<int>(span * t / (kMotionFrames - 1));
    const int along = direction % 2 == 0 ? step : span - step;
    paint_square(c.video[first + t], across ? along : fixed, across ? fixed : c.top + along, c.side, c.color.rgb);
  }
  return Event{"A large square moves across the video. Which way does it move?",
               {std::begin(kDirections), std::end(kDirections)}, direction};
}

// Paints the event of `kind` (one of event_questions()) and returns its question, options and answer.
Event paint_event(const std::string& kind, Script& script, std::vector<VideoFrame>& video) {
  const int height = video.front().height;
  const Color& color = kColors[script.below(kNumColors)];
  // Large, and below the haystack's frame-index band.
  Canvas canvas{video, script, static_cast<int64_t>(video.size()), video.front().width, height, height * 2 / 5, height / 4, color};
  Event e = kind == "color" ? color_event(canvas) : kind == "count" ? count_event(canvas) : motion_event(canvas);
  for (int i = 0; i < 4; ++i) e.options[i] = std::string(1, kLetters[i]) + ". " + e.options[i];
  return e;
}

uint64_t script_seed(int64_t script, int question, int64_t frames) {
  return (static_cast<uint64_t>(script) * 0x100000001B3ull) ^ (static_cast<uint64_t>(question) << 56) ^
         (static_cast<uint64_t>(frames) << 20);
}

}  // namespace

const std::vector<std::string>& event_questions() {
  static const std::vector<std::string> kinds = {"color", "count", "motion"};
  return kinds;
}

std::vector<TaskSample> build_event_qa(const std::vector<VideoFrame>& haystack, const EventQaOptions& o) {
  if (o.frames.empty() || o.questions.empty() || o.variants.empty())
    throw std::invalid_argument("Video-QA (generated): needs at least one frame count, question and variant");
  const int64_t longest = *std::max_element(o.frames.begin(), o.frames.end());
  if (*std::min_element(o.frames.begin(), o.frames.end()) < kMotionFrames)
    throw std::invalid_argument("Video-QA (generated): frame counts must be at least " + std::to_string(kMotionFrames));
  if (static_cast<int64_t>(haystack.size()) < longest)
    throw std::invalid_argument("Video-QA (generated): the haystack has " + std::to_string(haystack.size()) +
                                " frames, the grid needs " + std::to_string(longest));
  if (haystack.front().width < 32 || haystack.front().height < 32)
    throw std::invalid_argument("Video-QA (generated): haystack frames must be at least 32 x 32 pixels");
  const std::vector<std::string>& known = event_questions();
  for (const std::string& kind : o.questions) {
    if (std::find(known.begin(), known.end(), kind) == known.end())
      throw std::invalid_argument("Video-QA (generated): unknown question '" + kind + "'; known: color, count, motion");
  }
  std::vector<TaskSample> samples;
  for (int64_t f : o.frames) {
    for (const std::string& kind : o.questions) {
      const int question = static_cast<int>(std::find(known.begin(), known.end(), kind) - known.begin());
      for (int64_t variant : o.variants) {
        Script script(script_seed(o.first_script + variant, question, f));
        PromptSegment video{PromptSegment::Kind::kVideo, "", {}};
        video.frames.assign(haystack.begin(), haystack.begin() + f);
        const Event event = paint_event(kind, script, video.frames);
        std::string question_text = event.question;
        for (const std::string& option : event.options) question_text += "\n" + option;
        TaskSample s;
        s.id = "eventqa_" + kind + "_f" + std::to_string(f) + "_v" + std::to_string(variant);
        s.grid = {{"frames", static_cast<double>(f)}, {"question", static_cast<double>(question)},
                  {"variant", static_cast<double>(variant)}};
        s.prompt = {PromptSegment{PromptSegment::Kind::kText, o.preprompt, {}}, std::move(video),
                    PromptSegment{PromptSegment::Kind::kText, question_text + "\n" + o.instruction, {}}};
        s.answer.kind = AnswerSpec::Kind::kChoice;
        s.answer.target = std::string(1, kLetters[event.answer]);
        s.answer.options = event.options;
        samples.push_back(std::move(s));
      }
    }
  }
  return samples;
}

std::vector<TaskSample> build_event_qa_from_video(const std::string& haystack_video, FrameCache& cache,
                                                  const EventQaOptions& options) {
  if (options.frames.empty()) throw std::invalid_argument("Video-QA (generated): needs at least one frame count");
  const int64_t longest = *std::max_element(options.frames.begin(), options.frames.end());
  return build_event_qa(haystack_frames(cache, haystack_video, longest, "the generated Video-QA grid"), options);
}

}  // namespace mmi
