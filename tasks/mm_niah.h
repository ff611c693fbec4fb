// MM-NIAH (mixed-modality needle in a haystack): V-NIAH's frames x depth grid over a haystack that
// interleaves real prose with the video frames at document level, so that text is a set share of
// the haystack's tokens. The needle is an image (one extra frame, as in V-NIAH) or a sentence
// hidden in a paragraph. Tasks know nothing of tokenizers: the options carry a text token counter
// and the number of visual tokens a frame costs the model, and the share is computed from those.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tasks/prose.h"
#include "tasks/sample.h"

namespace mmi {

using TokenCounter = std::function<int64_t(const std::string&)>;

// A tokenizer-free estimate of a text's tokens: one per 4 bytes, rounded up (English BPE
// vocabularies average about 4 bytes a token).
int64_t estimate_tokens(const std::string& text);

struct MmNiahOptions {
  std::vector<int64_t> frames = {8, 16};  // haystack frames F per sample
  std::vector<double> depths = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
  // "image_choice" (which shape is drawn), "image_short" (which word is written), "text_short"
  // (which code the hidden sentence gives) or "text_choice" (the same, as a multiple choice).
  std::string needle = "image_choice";
  // The share of the haystack's tokens that is text: paragraph tokens over paragraph tokens plus
  // tokens_per_frame x frames (needle included; pre-prompt and question excluded). In (0, 1); the
  // realised share is within 3 points of it or building throws.
  double text_share = 0.25;
  TokenCounter count_tokens = estimate_tokens;  // the model's text tokens of a string
  double tokens_per_frame = 128;  // e.g. Qwen2.5-VL at 448 x 448: 256 per 2 frames (0.5 at 28 x 28)
  // Paragraphs go only after a multiple of this many haystack frames, so that runs of frames fill
  // whole temporal patches (2 for Qwen2.5-VL, which pads an odd run with a copy of its last frame).
  int64_t frame_group = 1;
  int64_t first_needle = 0;  // the k-th sample uses needle first_needle + k
  std::string preprompt = "Watch the video and read the text between its frames carefully.";
  std::string choice_instruction =
      "Answer with the option's letter from the given choices directly.";
  std::string short_instruction = "Answer the question using a single word or phrase.";
};

// One sample per (F, depth), with id "mmniah-<needle>-F<F>-d<depth>" and grid frames, depth and
// text_share (the realised share). The prompt: the pre-prompt; then the interleaved haystack, runs
// of frames (kVideo) between text segments (one or more paragraphs, "\n"-framed, "\n\n" between),
// with the paragraphs spread evenly over the F frames; then question, options and instruction.
// - The prose is taken in reading order (wrapping around) from a paragraph that varies with the
//   needle number, as many paragraphs as the share needs; the last is cut at a sentence end (at a
//   word when no sentence end comes close enough).
// - An image needle is frame needle_position(F, depth) of the video frames, as in V-NIAH, with a
//   timestamp between its neighbours'.
// - A text needle goes into paragraph round(depth x (paragraphs - 1)) of the document, at the
//   sentence end nearest to that fraction of the paragraph (its start at depth 0, its end at 1).
// haystack holds at least max(F) frames of one size; throws std::invalid_argument otherwise or when
// an option is out of range.
std::vector<TaskSample> build_mmniah(const std::vector<VideoFrame>& haystack,
                                     const ProseHaystack& prose, const MmNiahOptions& options);

class FrameCache;
// The same from a haystack video sampled at 1 fps (as many frames as the grid needs), decoded
// through `cache`. Throws VideoError naming the file when it is too short.
std::vector<TaskSample> build_mmniah_from_video(const std::string& haystack_video,
                                                FrameCache& cache, const ProseHaystack& prose,
                                                const MmNiahOptions& options);

}  // namespace mmi
