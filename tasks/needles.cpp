#include "tasks/needles.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

namespace mmi {
namespace {

const char* const kShapes[] = {"circle", "square", "triangle", "star"};
struct Color {
  const char* name;
  cv::Scalar rgb;
};
const Color kColors[] = {{"red", {220, 30, 30}}, {"green", {30, 170, 60}}, {"blue", {40, 70, 220}},
                         {"yellow", {235, 200, 20}}, {"purple", {140, 50, 180}}};
const char* const kWords[] = {"APPLE", "RIVER", "CLOCK", "HORSE", "LEMON", "TIGER", "PIANO"};

std::vector<cv::Point> star(cv::Point c, int r) {
  std::vector<cv::Point> points;
  for (int k = 0; k < 10; ++k) {
    const double angle = -M_PI / 2 + k * M_PI / 5, radius = k % 2 ? r * 0.45 : r;
    points.emplace_back(c.x + static_cast<int>(radius * std::cos(angle)), c.y + static_cast<int>(radius * std::sin(angle)));
  }
  return points;
}

void draw_shape(cv::Mat& img, const std::string& shape, cv::Point c, int r, const cv::Scalar& color) {
  if (shape == "circle") {
    cv::circle(img, c, r, color, cv::FILLED, cv::LINE_AA);
  } else if (shape == "square") {
    cv::rectangle(img, {c.x - r, c.y - r}, {c.x + r, c.y + r}, color, cv::FILLED, cv::LINE_AA);
  } else if (shape == "triangle") {
    const std::vector<cv::Point> tri = {{c.x, c.y - r}, {c.x - r, c.y + r}, {c.x + r, c.y + r}};
    cv::fillConvexPoly(img, tri, color, cv::LINE_AA);
  } else {
    cv::fillPoly(img, std::vector<std::vector<cv::Point>>{star(c, r)}, color, cv::LINE_AA);
  }
}

}  // namespace

Needle make_needle(int64_t index, int width, int height) {
  Needle n;
  const int shape = static_cast<int>(index % 4);
  n.shape = kShapes[shape];
  n.color = kColors[(index / 4) % 5].name;
  n.word = kWords[index % 7];
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(245, 245, 240));  // RGB order throughout
  const int r = std::min(width, height) / 4;
  draw_shape(img, n.shape, {width / 2, height / 2 - r / 4}, r, kColors[(index / 4) % 5].rgb);
  const double scale = std::max(0.3, height / 240.0);
  int baseline = 0;
  const cv::Size text = cv::getTextSize(n.word, cv::FONT_HERSHEY_SIMPLEX, scale, 2, &baseline);
  cv::putText(img, n.word, {(width - text.width) / 2, height - baseline - 4}, cv::FONT_HERSHEY_SIMPLEX, scale,
              cv::Scalar(20, 20, 20), 2, cv::LINE_AA);
  n.image.width = width;
  n.image.height = height;
  n.image.rgb.assign(img.data, img.data + img.total() * img.elemSize());
  n.question = "One frame of the video shows a " + n.color + " shape and a word. Which shape is it?";
  for (int k = 0; k < 4; ++k) n.options.push_back(std::string(1, static_cast<char>('A' + k)) + ". " + kShapes[k]);
  n.answer = std::string(1, static_cast<char>('A' + shape));
  return n;
}

Needle make_word_needle(int64_t index, int width, int height) {
  Needle n = make_needle(index, width, height);
  n.question = "One frame of the video shows a " + n.color + " " + n.shape +
               " and a word. What word is written in that frame?";
  n.options.clear();
  n.answer = n.word;
  return n;
}

namespace {

const char* const kTextColors[] = {"blue", "silver", "crimson", "green", "amber"};
const char* const kPlaces[] = {"lighthouse", "orchard",     "library", "harbour",
                               "windmill",   "observatory", "bridge",  "garden"};

// Four digits, distinct for 9000 indices in a row (7919 is prime to 9000).
int64_t text_code(int64_t index) { return 1000 + (index % 9000 * 7919 + 4817) % 9000; }

}  // namespace

TextNeedle make_text_needle(int64_t index) {
  TextNeedle n;
  const std::string subject =
      std::string("the ") + kTextColors[index % 5] + " " + kPlaces[(index / 5) % 8];
  const int64_t code = text_code(index);
  n.code = std::to_string(code);
  n.sentence = "The secret code of " + subject + " is " + n.code + ".";
  n.question = "What is the secret code of " + subject + "?";
  // The code takes option index % 4; the distractors are other four-digit codes, distinct because
  // 2357 m mod 9000 differs for m = 1, 2, 3.
  const int right = static_cast<int>(index % 4);
  for (int option = 0, m = 1; option < 4; ++option) {
    const int64_t shown = option == right ? code : 1000 + (code - 1000 + 2357 * m++) % 9000;
    n.options.push_back(std::string(1, static_cast<char>('A' + option)) + ". " +
                        std::to_string(shown));
  }
  n.answer = std::string(1, static_cast<char>('A' + right));
  return n;
}

}  // namespace mmi
