#include "tasks/prose.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace mmi {
namespace {

constexpr size_t kMinParagraphBytes = 100;
// Debian 12's golang-github-pierrec-lz4-dev: The Adventures of Sherlock Holmes.
const char* const kDebianBook = "/usr/share/gocode/src/github.com/pierrec/lz4/testdata/pg1661.txt";
const char* const kAbbreviations[] = {"Mr",  "Mrs", "Ms",  "Dr",   "St",  "Jr", "Sr", "Messrs",
                                      "Mme", "Rev", "Col", "Capt", "Gen", "Lt", "No", "Prof"};
// Closing quotes and brackets: ASCII, then U+201D and U+2019 in UTF-8.
const char* const kClosers[] = {"\"", "'", ")", "]", "\xE2\x80\x9D", "\xE2\x80\x99"};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_lower(char c) { return std::islower(static_cast<unsigned char>(c)) != 0; }
bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Runs of whitespace become one space; none leads or trails.
std::string collapse_spaces(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (!is_space(c)) {
      out += c;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool one_of(char c, const char* set) { return c != '\0' && std::strchr(set, c) != nullptr; }

// The bytes of the closing quote or bracket that starts at `at`, else 0.
size_t closer_at(const std::string& s, size_t at) {
  for (const char* closer : kClosers) {
    if (s.compare(at, std::strlen(closer), closer) == 0) return std::strlen(closer);
  }
  return 0;
}

// The bytes of the closing quote or bracket that ends just before `end`, else 0.
size_t closer_before(const std::string& s, size_t end) {
  for (const char* closer : kClosers) {
    const size_t n = std::strlen(closer);
    if (end >= n && s.compare(end - n, n, closer) == 0) return n;
  }
  return 0;
}

// Whether the '.' at `dot` ends an abbreviation or an initial rather than a sentence.
bool abbreviation_before(const std::string& s, size_t dot) {
  size_t start = dot;
  while (start > 0 && is_letter(s[start - 1])) --start;
  const std::string word = s.substr(start, dot - start);
  return word.size() == 1 || std::find(std::begin(kAbbreviations), std::end(kAbbreviations),
                                       word) != std::end(kAbbreviations);
}

// Whether the '.', '!' or '?' at `at` can end a sentence: it follows a lower-case letter, a digit
// or ')' and no abbreviation, or the pronoun in "said I.".
bool closes_sentence(const std::string& s, size_t at) {
  const char before = s[at - 1];
  if (before == 'I' && at >= 3 && s[at - 2] == ' ' && is_lower(s[at - 3])) return true;
  const bool after_word = is_lower(before) || std::isdigit(static_cast<unsigned char>(before)) ||
                          before == ')' || static_cast<unsigned char>(before) >= 0x80;
  return after_word && !(s[at] == '.' && abbreviation_before(s, at));
}

// Whether a block reads as prose rather than a title, a heading or a table of contents: it has a
// lower-case letter and ends, before any closing quotes, like a sentence or broken-off speech.
bool prose_block(const std::string& block) {
  if (std::none_of(block.begin(), block.end(), is_lower)) return false;
  size_t end = block.size();
  while (closer_before(block, end) > 0) end -= closer_before(block, end);
  return end > 0 && one_of(block[end - 1], ".!?:-");
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ProseError(path + ": cannot read the prose haystack: " + std::strerror(errno));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (!lines.empty() && lines[0].compare(0, 3, "\xEF\xBB\xBF") == 0) lines[0].erase(0, 3);  // BOM
  return lines;
}

bool gutenberg_start(const std::string& line) {
  const std::string l = lower(collapse_spaces(line));
  return starts_with(l, "***") && l.find("start of") != std::string::npos;
}

bool gutenberg_end(const std::string& line) {
  const std::string l = lower(collapse_spaces(line));
  return (starts_with(l, "***") && l.find("end of") != std::string::npos) ||
         starts_with(l, "end of the project gutenberg") ||
         starts_with(l, "end of project gutenberg");
}

// The lines inside a Project Gutenberg frame, or all of them when there is none.
std::vector<std::string> book_body(const std::vector<std::string>& lines) {
  auto begin = std::find_if(lines.begin(), lines.end(), gutenberg_start);
  begin = begin == lines.end() ? lines.begin() : begin + 1;
  return std::vector<std::string>(begin, std::find_if(begin, lines.end(), gutenberg_end));
}

// Blank-line separated blocks, whitespace collapsed.
std::vector<std::string> blocks(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  std::string current;
  for (const std::string& line : lines) {
    const std::string text = collapse_spaces(line);
    if (!text.empty()) {
      current += (current.empty() ? "" : " ") + text;
    } else if (!current.empty()) {
      out.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

bool boilerplate(const std::string& block) {
  const std::string l = lower(block);
  for (const char* word : {"gutenberg", "ebook", "e-book", "etext", "e-text"}) {
    if (l.find(word) != std::string::npos) return true;
  }
  return starts_with(l, "produced by") || starts_with(l, "transcriber");
}

// Joins fragments shorter than kMinParagraphBytes to the paragraph after them (the last to the one
// before), so that no text segment of the haystack is a lone line of dialogue.
std::vector<std::string> merge_fragments(const std::vector<std::string>& paragraphs) {
  std::vector<std::string> out;
  std::string pending;
  for (const std::string& p : paragraphs) {
    pending += (pending.empty() ? "" : " ") + p;
    if (pending.size() >= kMinParagraphBytes) {
      out.push_back(std::move(pending));
      pending.clear();
    }
  }
  if (pending.empty()) return out;
  if (out.empty()) {
    out.push_back(std::move(pending));
  } else {
    out.back() += " " + pending;
  }
  return out;
}

}  // namespace

std::vector<size_t> sentence_ends(const std::string& text) {
  std::vector<size_t> ends;
  for (size_t i = 1; i < text.size(); ++i) {
    if (!one_of(text[i], ".!?") || !closes_sentence(text, i)) continue;
    size_t end = i + 1;
    while (closer_at(text, end) > 0) end += closer_at(text, end);
    const bool followed_well =
        end == text.size() ||
        (text[end] == ' ' && (end + 1 == text.size() || !is_lower(text[end + 1])));
    if (followed_well) ends.push_back(end);
  }
  return ends;
}

ProseHaystack load_prose(const std::string& path) {
  std::vector<std::string> prose;
  for (std::string& block : blocks(book_body(read_lines(path)))) {
    if (!boilerplate(block) && prose_block(block)) prose.push_back(std::move(block));
  }
  ProseHaystack haystack{path, merge_fragments(prose)};
  if (haystack.paragraphs.empty()) throw ProseError(path + ": no paragraphs of prose found");
  return haystack;
}

std::string default_prose_path() {
  const char* given = std::getenv("MMI_PROSE");
  return given != nullptr && *given != '\0' ? given : kDebianBook;
}

}  // namespace mmi
