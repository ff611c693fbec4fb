#include "kernels/layout.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace mmi {
namespace {

std::string span_label(int index, const Span& s) {
  return "span " + std::to_string(index) + " (" + modality_name(s.modality) + ", start " +
         std::to_string(s.start) + ", length " + std::to_string(s.length) + ")";
}

int64_t parse_count(const std::string& text, const std::string& item) {
  size_t used = 0;
  long long value = -1;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value <= 0) {
    throw std::invalid_argument("layout: '" + item + "': expected a positive integer, got '" + text +
                                "'");
  }
  return value;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream stream(s);
  std::string part;
  while (std::getline(stream, part, sep)) parts.push_back(part);
  return parts;
}

}  // namespace

const char* modality_name(Modality m) {
  switch (m) {
    case Modality::kText: return "text";
    case Modality::kVideo: return "video";
    case Modality::kImage: return "image";
  }
  return "unknown";
}

Modality parse_modality(const std::string& name) {
  if (name == "text") return Modality::kText;
  if (name == "video") return Modality::kVideo;
  if (name == "image") return Modality::kImage;
  throw std::invalid_argument("unknown modality '" + name + "' (known: text, video, image)");
}

SequenceLayout::SequenceLayout(std::vector<Span> spans) : spans_(std::move(spans)) {
  if (spans_.empty()) throw std::invalid_argument("layout: no spans");
  int64_t expected_start = 0;
  for (int i = 0; i < num_spans(); ++i) {
    const Span& s = spans_[i];
    if (s.length <= 0) throw std::invalid_argument("layout: " + span_label(i, s) + " is empty");
    if (s.start != expected_start) {
      throw std::invalid_argument("layout: " + span_label(i, s) + (s.start < expected_start
                                                                       ? " overlaps the previous span"
                                                                       : " leaves a gap after the previous span") +
                                  ", which ends at " + std::to_string(expected_start));
    }
    if (is_visual(s.modality)) {
      if (s.frames <= 0 || s.rows <= 0 || s.cols <= 0 || s.tokens_per_frame < s.rows * s.cols) {
        throw std::invalid_argument("layout: " + span_label(i, s) +
                                    " needs frames, rows, cols > 0 and tokens_per_frame >= rows*cols");
      }
      if (s.frames * s.tokens_per_frame != s.length) {
        throw std::invalid_argument("layout: " + span_label(i, s) + " has " + std::to_string(s.frames) +
                                    " frames of " + std::to_string(s.tokens_per_frame) +
                                    " tokens, which is not its length");
      }
      if (visual_begin_ < 0) visual_begin_ = s.start;
      visual_end_ = s.end();
    }
    expected_start = s.end();
  }
  length_ = expected_start;
}

SequenceLayout SequenceLayout::parse(const std::string& spec) {
  LayoutBuilder builder;
  for (const std::string& item : split(spec, ',')) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("layout: '" + item + "': expected KIND:SIZE, e.g. text:64, video:8x4x4");
    }
    const std::string kind = item.substr(0, colon);
    std::vector<int64_t> dims;
    for (const std::string& d : split(item.substr(colon + 1), 'x')) dims.push_back(parse_count(d, item));
    const Modality m = parse_modality(kind);
    if (m == Modality::kText && dims.size() == 1) {
      builder.text(dims[0]);
    } else if (m == Modality::kVideo && dims.size() == 3) {
      builder.video(dims[0], dims[1], dims[2]);
    } else if (m == Modality::kVideo && dims.size() == 2) {
      builder.video(dims[0], 1, dims[1]);
    } else if (m == Modality::kImage && dims.size() == 2) {
      builder.image(dims[0], dims[1]);
    } else {
      throw std::invalid_argument("layout: '" + item +
                                  "': expected text:N, video:FxHxW, video:FxT or image:HxW");
    }
  }
  return builder.build();
}

int SequenceLayout::span_index_at(int64_t pos) const {
  if (pos < 0 || pos >= length_) {
    throw std::out_of_range("layout: position " + std::to_string(pos) + " outside [0, " +
                            std::to_string(length_) + ")");
  }
  auto it = std::upper_bound(spans_.begin(), spans_.end(), pos,
                             [](int64_t p, const Span& s) { return p < s.start; });
  return static_cast<int>(it - spans_.begin()) - 1;
}

std::vector<int> SequenceLayout::spans_of(Modality m) const {
  std::vector<int> out;
  for (int i = 0; i < num_spans(); ++i) {
    if (spans_[i].modality == m) out.push_back(i);
  }
  return out;
}

std::vector<Modality> SequenceLayout::modalities() const {
  std::vector<Modality> out;
  for (int m = 0; m < kNumModalities; ++m) {
    if (count(static_cast<Modality>(m)) > 0) out.push_back(static_cast<Modality>(m));
  }
  return out;
}

int64_t SequenceLayout::frame_stride() const {
  for (const Span& s : spans_) {
    if (is_visual(s.modality)) return s.tokens_per_frame;
  }
  return 0;
}

int64_t SequenceLayout::count(Modality m) const {
  int64_t total = 0;
  for (const Span& s : spans_) {
    if (s.modality == m) total += s.length;
  }
  return total;
}

std::string SequenceLayout::describe() const {
  std::string out;
  for (const Span& s : spans_) {
    if (!out.empty()) out += ",";
    out += modality_name(s.modality);
    out += ":";
    if (s.modality == Modality::kText) {
      out += std::to_string(s.length);
    } else if (s.modality == Modality::kImage) {
      out += std::to_string(s.rows) + "x" + std::to_string(s.cols);
    } else {
      out += std::to_string(s.frames) + "x" + std::to_string(s.rows) + "x" + std::to_string(s.cols);
    }
  }
  return out;
}

LayoutBuilder& LayoutBuilder::text(int64_t tokens) {
  spans_.push_back(Span{next_start(), tokens, Modality::kText});
  return *this;
}

LayoutBuilder& LayoutBuilder::video(int64_t frames, int64_t rows, int64_t cols, int64_t extra) {
  const int64_t per_frame = rows * cols + extra;
  spans_.push_back(Span{next_start(), frames * per_frame, Modality::kVideo, frames, rows, cols, per_frame});
  return *this;
}

LayoutBuilder& LayoutBuilder::image(int64_t rows, int64_t cols) {
  spans_.push_back(Span{next_start(), rows * cols, Modality::kImage, 1, rows, cols, rows * cols});
  return *this;
}

}  // namespace mmi
