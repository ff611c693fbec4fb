#include "tasks/mm_niah.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "tasks/frame_cache.h"
#include "tasks/needles.h"
#include "tasks/niah.h"

namespace mmi {
namespace {

constexpr double kShareTolerance = 0.03;

// A sample's needle: a frame or a sentence, with the question that closes the prompt.
struct SampleNeedle {
  bool text = false;
  VideoFrame image;
  std::string sentence;
  std::string question;  // with the options, if any
  AnswerSpec answer;
};

std::string with_options(std::string question, const std::vector<std::string>& options) {
  for (const std::string& option : options) question += "\n" + option;
  return question;
}

SampleNeedle make_sample_needle(const std::string& kind, int64_t index, int width, int height) {
  SampleNeedle n;
  if (kind == "image_choice" || kind == "image_short") {
    const Needle image = kind == "image_choice" ? make_needle(index, width, height)
                                                : make_word_needle(index, width, height);
    n.image = image.image;
    n.question = with_options(image.question, image.options);
    n.answer.options = image.options;
    n.answer.target = image.answer;
  } else if (kind == "text_short" || kind == "text_choice") {
    const TextNeedle text = make_text_needle(index);
    n.text = true;
    n.sentence = text.sentence;
    if (kind == "text_choice") n.answer.options = text.options;
    n.question = with_options(text.question, n.answer.options);
    n.answer.target = kind == "text_choice" ? text.answer : text.code;
  } else {
    throw std::invalid_argument("MM-NIAH: unknown needle \"" + kind +
                                "\" (image_choice, image_short, text_short, text_choice)");
  }
  n.answer.kind = n.answer.options.empty() ? AnswerSpec::Kind::kShort : AnswerSpec::Kind::kChoice;
  return n;
}

void validate(const std::vector<VideoFrame>& haystack, const ProseHaystack& prose,
              const MmNiahOptions& o) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("MM-NIAH: " + what); };
  if (o.frames.empty() || o.depths.empty()) fail("needs at least one frame count and depth");
  if (*std::min_element(o.frames.begin(), o.frames.end()) <= 0) {
    fail("frame counts must be positive");
  }
  for (double d : o.depths) {
    if (!(d >= 0.0 && d <= 1.0)) fail("depth must be in [0, 1], got " + std::to_string(d));
  }
  if (!(o.text_share > 0.0 && o.text_share < 1.0)) {
    fail("text_share must be in (0, 1), got " + std::to_string(o.text_share));
  }
  if (o.tokens_per_frame <= 0 || o.frame_group <= 0) {
    fail("tokens_per_frame and frame_group must be positive");
  }
  if (!o.count_tokens) fail("count_tokens is empty");
  if (prose.paragraphs.empty()) fail("the prose haystack " + prose.path + " has no paragraphs");
  const int64_t longest = *std::max_element(o.frames.begin(), o.frames.end());
  if (static_cast<int64_t>(haystack.size()) < longest) {
    fail("the haystack has " + std::to_string(haystack.size()) + " frames, the grid needs " +
         std::to_string(longest));
  }
}

// Tokens of the prose's paragraphs, each counted once, when first needed.
class ParagraphTokens {
 public:
  ParagraphTokens(const ProseHaystack& prose, const TokenCounter& count)
      : prose_(prose), count_(count), tokens_(prose.paragraphs.size(), -1) {}
  int64_t operator()(size_t k) {
    if (tokens_[k] < 0) tokens_[k] = count_(prose_.paragraphs[k]);
    return tokens_[k];
  }

 private:
  const ProseHaystack& prose_;
  const TokenCounter& count_;
  std::vector<int64_t> tokens_;
};

// Among prefixes of `text` ending at `cuts` (ascending, from 0), the one whose tokens come closest
// to `target`. Bisects, since a longer prefix never has fewer tokens. Sets *error to the distance.
size_t closest_cut(const std::string& text, const std::vector<size_t>& cuts, int64_t target,
                   const TokenCounter& count, int64_t* error) {
  auto tokens = [&](size_t i) { return count(text.substr(0, cuts[i])); };
  size_t low = 0, high = cuts.size() - 1;  // tokens(low) <= target holds throughout
  if (tokens(high) <= target) low = high;
  while (high - low > 1) {
    const size_t mid = (low + high) / 2;
    (tokens(mid) <= target ? low : high) = mid;
  }
  const int64_t below = target - tokens(low), above = tokens(high) - target;
  *error = std::min(below, std::abs(above));
  return above < below ? cuts[high] : cuts[low];
}

// The prefix of `paragraph` whose tokens come closest to `target`, cut at a sentence end, or at a
// word when no sentence end comes within `slack` tokens. Empty when nothing fits.
std::string cut_paragraph(const std::string& paragraph, int64_t target, int64_t slack,
                          const TokenCounter& count) {
  if (target <= 0) return "";
  std::vector<size_t> cuts = sentence_ends(paragraph);
  cuts.insert(cuts.begin(), 0);
  int64_t error = 0;
  size_t cut = closest_cut(paragraph, cuts, target, count, &error);
  if (error > slack) {
    for (size_t i = 1; i < paragraph.size(); ++i) {
      if (paragraph[i] == ' ') cuts.push_back(i);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    cut = closest_cut(paragraph, cuts, target, count, &error);
  }
  return paragraph.substr(0, cut);
}

// Paragraphs in reading order from `start`, wrapping around the book, whose tokens with `separator`
// tokens each add up as close to `budget` as cutting the last one allows.
std::vector<std::string> take_prose(const ProseHaystack& prose, ParagraphTokens& tokens,
                                    size_t start, int64_t budget, int64_t separator, int64_t slack,
                                    const TokenCounter& count) {
  std::vector<std::string> taken;
  int64_t used = 0;
  for (size_t k = start;; k = (k + 1) % prose.paragraphs.size()) {
    const int64_t cost = tokens(k) + separator;
    if (cost <= 0) throw std::invalid_argument("MM-NIAH: count_tokens gives no tokens for prose");
    if (used + cost > budget) {
      std::string cut = cut_paragraph(prose.paragraphs[k], budget - used - separator, slack, count);
      if (!cut.empty()) taken.push_back(std::move(cut));
      return taken;
    }
    taken.push_back(prose.paragraphs[k]);
    used += cost;
  }
}

// Spreads the needle numbers' starting paragraphs over the book (golden-ratio steps).
size_t prose_start(int64_t needle_index, size_t paragraphs) {
  const double x = static_cast<double>(needle_index) * 0.6180339887498949;
  return static_cast<size_t>((x - std::floor(x)) * static_cast<double>(paragraphs)) % paragraphs;
}

// `sentence` placed at the sentence end of `paragraph` nearest to fraction `depth` of its length.
std::string insert_sentence(const std::string& paragraph, const std::string& sentence,
                            double depth) {
  if (paragraph.empty()) return sentence;
  std::vector<size_t> cuts = sentence_ends(paragraph);
  cuts.insert(cuts.begin(), 0);
  if (cuts.back() != paragraph.size()) cuts.push_back(paragraph.size());
  const double at = depth * static_cast<double>(paragraph.size());
  const size_t cut = *std::min_element(cuts.begin(), cuts.end(), [&](size_t a, size_t b) {
    return std::abs(static_cast<double>(a) - at) < std::abs(static_cast<double>(b) - at);
  });
  if (cut == 0) return sentence + " " + paragraph;
  if (cut == paragraph.size()) return paragraph + " " + sentence;
  return paragraph.substr(0, cut) + " " + sentence + paragraph.substr(cut);  // [cut] is a space
}

// The haystack part of the prompt: frames 0..frames-1 (and the image needle, if any, before frame
// needle_at) in runs, with the paragraphs spread evenly between runs at multiples of `group`.
std::vector<PromptSegment> interleave(const std::vector<VideoFrame>& haystack, int64_t frames,
                                      const std::vector<std::string>& paragraphs, int64_t group,
                                      const VideoFrame* needle, int64_t needle_at) {
  std::vector<std::string> text_before(frames);  // the paragraphs placed before frame i
  const int64_t groups = (frames + group - 1) / group, count = paragraphs.size();
  for (int64_t j = 0; j < count; ++j) {
    // Centred in equal shares of the groups: the document ends with frames, and starts with them
    // unless there are more than half as many paragraphs as groups.
    std::string& text = text_before[group * static_cast<int64_t>((j + 0.5) * groups / count)];
    text += (text.empty() ? "" : "\n\n") + paragraphs[j];
  }
  std::vector<PromptSegment> segments;
  PromptSegment run{PromptSegment::Kind::kVideo, "", {}};
  for (int64_t i = 0; i <= frames; ++i) {
    if (i < frames && !text_before[i].empty()) {
      if (!run.frames.empty()) segments.push_back(std::move(run));
      run = PromptSegment{PromptSegment::Kind::kVideo, "", {}};
      segments.push_back(
          PromptSegment{PromptSegment::Kind::kText, "\n" + text_before[i] + "\n", {}});
    }
    if (needle != nullptr && i == needle_at) run.frames.push_back(*needle);
    if (i < frames) run.frames.push_back(haystack[i]);
  }
  if (!run.frames.empty()) segments.push_back(std::move(run));
  return segments;
}

std::string sample_id(const std::string& kind, int64_t frames, double depth) {
  std::ostringstream id;
  id << "mmniah-" << kind << "-F" << frames << "-d" << depth;
  return id.str();
}

// The sample's paragraphs, with the text needle if it has one, for `visual` tokens of frames.
std::vector<std::string> sample_paragraphs(const ProseHaystack& prose, ParagraphTokens& tokens,
                                           const MmNiahOptions& o, const SampleNeedle& needle,
                                           int64_t visual, double depth, int64_t needle_index) {
  const int64_t target = std::llround(o.text_share / (1.0 - o.text_share) * visual);
  const int64_t budget = target - (needle.text ? o.count_tokens(needle.sentence) : 0);
  const int64_t slack = std::max<int64_t>(1, (target + visual) / 200);  // half a point of share
  std::vector<std::string> paragraphs =
      take_prose(prose, tokens, prose_start(needle_index, prose.paragraphs.size()), budget,
                 o.count_tokens("\n\n"), slack, o.count_tokens);
  if (needle.text) {
    if (paragraphs.empty()) paragraphs.emplace_back();
    std::string& host = paragraphs[std::llround(depth * (paragraphs.size() - 1))];
    host = insert_sentence(host, needle.sentence, depth);
  }
  return paragraphs;
}

TaskSample make_sample(const std::vector<VideoFrame>& haystack, const ProseHaystack& prose,
                       ParagraphTokens& tokens, const MmNiahOptions& o, int64_t frames,
                       double depth, int64_t index) {
  const int64_t needle_index = o.first_needle + index;
  SampleNeedle needle =
      make_sample_needle(o.needle, needle_index, haystack[0].width, haystack[0].height);
  const int64_t visual = std::llround(o.tokens_per_frame * double(frames + (needle.text ? 0 : 1)));
  const std::vector<std::string> paragraphs =
      sample_paragraphs(prose, tokens, o, needle, visual, depth, needle_index);
  const int64_t needle_at = needle_position(frames, depth);
  if (!needle.text) {  // between its neighbours' timestamps, so that each run's still ascend
    const VideoFrame& after = haystack[std::min(needle_at, frames - 1)];
    const VideoFrame& before = haystack[std::max<int64_t>(needle_at - 1, 0)];
    needle.image.timestamp_s = (before.timestamp_s + after.timestamp_s) / 2;
  }
  TaskSample s;
  s.id = sample_id(o.needle, frames, depth);
  s.prompt.push_back(PromptSegment{PromptSegment::Kind::kText, o.preprompt, {}});
  int64_t text = 0;
  for (PromptSegment& segment : interleave(haystack, frames, paragraphs, o.frame_group,
                                           needle.text ? nullptr : &needle.image, needle_at)) {
    if (segment.kind == PromptSegment::Kind::kText) text += o.count_tokens(segment.text);
    s.prompt.push_back(std::move(segment));
  }
  const std::string& instruction =
      needle.answer.options.empty() ? o.short_instruction : o.choice_instruction;
  s.prompt.push_back(
      PromptSegment{PromptSegment::Kind::kText, needle.question + "\n" + instruction, {}});
  s.answer = needle.answer;
  const double share = static_cast<double>(text) / static_cast<double>(text + visual);
  if (std::abs(share - o.text_share) > kShareTolerance) {
    throw std::invalid_argument("MM-NIAH: " + s.id + ": the text share came to " +
                                std::to_string(share) + " for a target of " +
                                std::to_string(o.text_share) +
                                " (too few frames for the needle or the token counter)");
  }
  s.grid = {{"frames", static_cast<double>(frames)}, {"depth", depth}, {"text_share", share}};
  return s;
}

}  // namespace

int64_t estimate_tokens(const std::string& text) {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

std::vector<TaskSample> build_mmniah(const std::vector<VideoFrame>& haystack,
                                     const ProseHaystack& prose, const MmNiahOptions& options) {
  validate(haystack, prose, options);
  ParagraphTokens tokens(prose, options.count_tokens);
  std::vector<TaskSample> samples;
  for (int64_t frames : options.frames) {
    for (double depth : options.depths) {
      samples.push_back(make_sample(haystack, prose, tokens, options, frames, depth,
                                    static_cast<int64_t>(samples.size())));
    }
  }
  return samples;
}

std::vector<TaskSample> build_mmniah_from_video(const std::string& haystack_video,
                                                FrameCache& cache, const ProseHaystack& prose,
                                                const MmNiahOptions& options) {
  if (options.frames.empty()) {
    throw std::invalid_argument("MM-NIAH: needs at least one frame count");
  }
  const int64_t longest = *std::max_element(options.frames.begin(), options.frames.end());
  return build_mmniah(haystack_frames(cache, haystack_video, longest, "the MM-NIAH grid"), prose, options);
}

}  // namespace mmi
