// The sequence layout of one pre-fill: which token positions are text, video or image, and the frame
// grid of every visual span. Every attention pattern and estimator reads it. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mmi {

enum class Modality : uint8_t { kText = 0, kVideo = 1, kImage = 2 };
constexpr int kNumModalities = 3;

const char* modality_name(Modality m);
// Accepts "text", "video", "image"; throws std::invalid_argument listing them otherwise.
Modality parse_modality(const std::string& name);
inline bool is_visual(Modality m) { return m != Modality::kText; }

// One contiguous run of tokens of one modality. Visual spans carry their grid: `frames` temporal groups
// of `tokens_per_frame` tokens each, of which rows × cols are merged patches (the rest are separators
// a model inserts, e.g. a newline token per row).
struct Span {
  int64_t start = 0;
  int64_t length = 0;
  Modality modality = Modality::kText;
  int64_t frames = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t tokens_per_frame = 0;

  int64_t end() const { return start + length; }
  bool contains(int64_t pos) const { return pos >= start && pos < end(); }
};

// An ordered list of spans that tiles [0, length) exactly. Construction validates and throws
// std::invalid_argument naming the offending span.
class SequenceLayout {
 public:
  SequenceLayout() = default;
  explicit SequenceLayout(std::vector<Span> spans);

  // Parses "text:64,video:8x4x4,text:32": text:N, video:FxHxW (H·W tokens per frame),
  // video:FxT (T tokens per frame, one row), image:HxW. Positions are assigned in order.
  static SequenceLayout parse(const std::string& spec);

  int64_t length() const { return length_; }
  const std::vector<Span>& spans() const { return spans_; }
  const Span& span(int index) const { return spans_.at(index); }
  int num_spans() const { return static_cast<int>(spans_.size()); }

  int span_index_at(int64_t pos) const;  // binary search; pos must be in [0, length)
  Modality modality_at(int64_t pos) const { return spans_[span_index_at(pos)].modality; }
  std::vector<int> spans_of(Modality m) const;
  std::vector<Modality> modalities() const;  // the modalities present, in enum order
  bool has_visual() const { return visual_begin_ >= 0; }
  int64_t visual_begin() const { return visual_begin_; }  // first visual position, -1 if none
  int64_t visual_end() const { return visual_end_; }      // end of the last visual span, -1 if none
  // Tokens per frame of the first visual span (the natural grid stride); 0 without visual spans.
  int64_t frame_stride() const;
  int64_t count(Modality m) const;
  std::string describe() const;  // the spec string that parse() accepts

 private:
  std::vector<Span> spans_;
  int64_t length_ = 0;
  int64_t visual_begin_ = -1;
  int64_t visual_end_ = -1;
};

// Appends spans one after another; build() validates.
class LayoutBuilder {
 public:
  LayoutBuilder& text(int64_t tokens);
  LayoutBuilder& video(int64_t frames, int64_t rows, int64_t cols, int64_t extra_tokens_per_frame = 0);
  LayoutBuilder& image(int64_t rows, int64_t cols);
  SequenceLayout build() const { return SequenceLayout(spans_); }

 private:
  int64_t next_start() const { return spans_.empty() ? 0 : spans_.back().end(); }
  std::vector<Span> spans_;
};

}  // namespace mmi
