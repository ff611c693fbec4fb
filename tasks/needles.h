// Needle images for the NIAH tasks, drawn with OpenCV: a coloured shape and a word on a plain
// background, with a multiple-choice question about it. Deterministic for a given index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/video.h"

namespace mmi {

struct Needle {
  VideoFrame image;                  // width x height RGB
  std::string shape, color, word;    // what is drawn
  std::string question;              // asks for the shape
  std::vector<std::string> options;  // "A. circle", ...
  std::string answer;                // the letter of the right option
};

// The needle number `index` (shapes, colours and words cycle through fixed lists).
Needle make_needle(int64_t index, int width, int height);

}  // namespace mmi
