// V-NIAH (LongVA's visual needle in a haystack): a haystack of video frames sampled at 1 fps and one
// needle image inserted as an extra frame at depth d among the first F frames, over a frames x depth
// grid. Scored by the option letter (teacher-forced in the harness).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/sample.h"

namespace mmi {

struct NiahOptions {
  std::vector<int64_t> frames = {8, 16};  // haystack frames F per sample
  std::vector<double> depths = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
  int64_t first_needle = 0;  // needles are make_needle(first_needle + k) for the k-th sample
  std::string preprompt = "Watch the video carefully.";
  std::string instruction = "Answer with the option's letter from the given choices directly.";
  // "choice": which shape the needle shows, as a multiple choice (the answer is a letter); "short":
  // which word is written on it (the answer is the word).
  std::string needle = "choice";
  std::string short_instruction = "Answer the question using a single word or phrase.";
};

// Where the needle goes among F haystack frames at depth d in [0, 1]: round(d * F).
int64_t needle_position(int64_t frames, double depth);

// One sample per (F, depth): [preprompt, video of F + 1 frames, question + options + instruction].
// haystack holds at least max(F) frames of one size; throws std::invalid_argument otherwise.
std::vector<TaskSample> build_vniah(const std::vector<VideoFrame>& haystack, const NiahOptions& options);

class FrameCache;
// The same from a haystack video: its frames at 1 fps (as many as the grid needs), decoded through
// `cache` so that repeated sweeps decode once. Throws VideoError naming the file when it is too short.
std::vector<TaskSample> build_vniah_from_video(const std::string& haystack_video, FrameCache& cache,
                                               const NiahOptions& options);

}  // namespace mmi
