// Real prose for the mixed-modality haystack (MM-NIAH): a public-domain book split into
// document-level paragraphs. The default book is Arthur Conan Doyle's "The Adventures of Sherlock
// Holmes" (1892; Project Gutenberg #1661) as Debian 12's golang-github-pierrec-lz4-dev ships it for
// its compression tests. Plain C++: no FFmpeg or OpenCV.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace mmi {

struct ProseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ProseHaystack {
  std::string path;                     // the file it was read from
  std::vector<std::string> paragraphs;  // in reading order; one line each, never empty
};

// Reads a plain-text book (UTF-8; LF or CRLF) into paragraphs:
// - a Project Gutenberg frame is cut away: everything up to its "*** START OF ..." line and from
//   its "*** END OF ..." or "End of the Project Gutenberg ..." line on;
// - blocks are split at blank lines and their whitespace collapsed to single spaces;
// - boilerplate blocks (naming Project Gutenberg or an eBook, "Produced by ...", transcriber's
//   notes) are dropped, and so are titles, headings and tables of contents: blocks without a
//   lower-case letter or not ending, before closing quotes, in one of . ! ? : -
// - fragments shorter than 100 bytes (short lines of dialogue) are joined to the paragraph after.
// Throws ProseError naming the file when it cannot be read or holds no prose.
ProseHaystack load_prose(const std::string& path);

// $MMI_PROSE when set and non-empty, else the Debian book named above:
// /usr/share/gocode/src/github.com/pierrec/lz4/testdata/pg1661.txt
std::string default_prose_path();

// The offsets just past each sentence end in `text`: a '.', '!' or '?' after a lower-case letter, a
// digit, ')' or the "I" of "said I.", with any closing quotes or brackets, followed by the end of
// the text or a space and then no lower-case letter. Abbreviations ("Mr.", "St.") and initials
// ("J.") end no sentence.
std::vector<size_t> sentence_ends(const std::string& text);

}  // namespace mmi
