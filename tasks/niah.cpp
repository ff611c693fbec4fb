#include "tasks/niah.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tasks/frame_cache.h"
#include "tasks/needles.h"

namespace mmi {

int64_t needle_position(int64_t frames, double depth) {
  if (!(depth >= 0.0 && depth <= 1.0)) throw std::invalid_argument("V-NIAH: depth must be in [0, 1], got " + std::to_string(depth));
  return std::llround(depth * frames);
}

std::vector<TaskSample> build_vniah(const std::vector<VideoFrame>& haystack, const NiahOptions& o) {
  if (o.frames.empty() || o.depths.empty()) throw std::invalid_argument("V-NIAH: needs at least one frame count and depth");
  const int64_t longest = *std::max_element(o.frames.begin(), o.frames.end());
  if (*std::min_element(o.frames.begin(), o.frames.end()) <= 0) throw std::invalid_argument("V-NIAH: frame counts must be positive");
  if (static_cast<int64_t>(haystack.size()) < longest) {
    throw std::invalid_argument("V-NIAH: the haystack has " + std::to_string(haystack.size()) + " frames, the grid needs " +
                                std::to_string(longest));
  }
  if (o.needle != "choice" && o.needle != "short")
    throw std::invalid_argument("V-NIAH: needle must be choice or short, got '" + o.needle + "'");
  const int width = haystack.front().width, height = haystack.front().height;
  std::vector<TaskSample> samples;
  for (int64_t f : o.frames) {
    for (double depth : o.depths) {
      const int64_t at = needle_position(f, depth);
      const int64_t index = o.first_needle + static_cast<int64_t>(samples.size());
      const Needle needle = o.needle == "short" ? make_word_needle(index, width, height) : make_needle(index, width, height);
      TaskSample s;
      s.id = "vniah_f" + std::to_string(f) + "_d" + std::to_string(static_cast<int>(std::lround(depth * 100)));
      s.grid = {{"frames", static_cast<double>(f)}, {"depth", depth}};
      PromptSegment video{PromptSegment::Kind::kVideo, "", {}};
      video.frames.assign(haystack.begin(), haystack.begin() + f);
      video.frames.insert(video.frames.begin() + at, needle.image);
      std::string question = needle.question;
      for (const std::string& option : needle.options) question += "\n" + option;
      const bool choice = !needle.options.empty();
      s.prompt = {PromptSegment{PromptSegment::Kind::kText, o.preprompt, {}}, std::move(video),
                  PromptSegment{PromptSegment::Kind::kText,
                                question + "\n" + (choice ? o.instruction : o.short_instruction), {}}};
      s.answer.kind = choice ? AnswerSpec::Kind::kChoice : AnswerSpec::Kind::kShort;
      s.answer.target = needle.answer;
      s.answer.options = needle.options;
      samples.push_back(std::move(s));
    }
  }
  return samples;
}

std::vector<TaskSample> build_vniah_from_video(const std::string& haystack_video, FrameCache& cache,
                                               const NiahOptions& options) {
  if (options.frames.empty()) throw std::invalid_argument("V-NIAH: needs at least one frame count and depth");
  const int64_t longest = *std::max_element(options.frames.begin(), options.frames.end());
  return build_vniah(haystack_frames(cache, haystack_video, longest, "the V-NIAH grid"), options);
}

}  // namespace mmi
