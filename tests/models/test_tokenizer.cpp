// Tokenizer parity with Hugging Face tokenizers (fixtures from scripts/make_tokenizer_fixture.py),
// NFC against hand-picked strings, and load errors.
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/tokenizer.h"
#include "models/unicode_nfc.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

#ifndef MMI_FIXTURES_DIR
#define MMI_FIXTURES_DIR "tests/fixtures"
#endif

using namespace mmi;
using nlohmann::json;

namespace {

const std::string kDir = std::string(MMI_FIXTURES_DIR) + "/tokenizer/";

json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return json::parse(in);
}

std::string unhex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return bytes;
}

// Each case's ids, decoded text with and without specials, and the round trip through NFC.
void check_cases(const std::string& tokenizer_file, const std::string& cases_file) {
  const Tokenizer tokenizer = Tokenizer::load(kDir + tokenizer_file);
  const json cases = read_json(kDir + cases_file);
  REQUIRE(cases.size() >= 40);
  for (const json& c : cases) {
    const std::string text = c.contains("hex") ? unhex(c["hex"]) : c["text"].get<std::string>();
    INFO("case: " << c.dump());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    CHECK(tokenizer.encode(text) == ids);
    CHECK(tokenizer.decode(ids) == c["decoded"].get<std::string>());
    CHECK(tokenizer.decode(ids, true) == c["decoded_skip_special"].get<std::string>());
    if (c["round_trip"].get<bool>()) CHECK(tokenizer.decode(tokenizer.encode(text)) == nfc(text));
  }
}

}  // namespace

TEST_CASE("Qwen2-structured tokenizer matches Hugging Face tokenizers", "[tokenizer]") {
  check_cases("tokenizer.json", "cases.json");
}

TEST_CASE("GPT-2-structured tokenizer matches Hugging Face tokenizers", "[tokenizer]") {
  // ByteLevel with add_prefix_space and the GPT-2 regex, ignore_merges, no normalizer, merges as
  // "a b" strings.
  check_cases("bytelevel_tokenizer.json", "bytelevel_cases.json");
}

TEST_CASE("token lookups and special tokens", "[tokenizer]") {
  const Tokenizer tokenizer = Tokenizer::load(kDir + "tokenizer.json");
  REQUIRE(tokenizer.vocab_size() == 3012);  // 3000 BPE tokens, 8 specials, 4 other added tokens
  REQUIRE(tokenizer.token_id("<|im_start|>") == 3001);
  REQUIRE(tokenizer.token_id("<|video_pad|>") == 3007);
  REQUIRE(tokenizer.token_text(3002) == "<|im_end|>");
  REQUIRE(tokenizer.is_special(3002));
  REQUIRE_FALSE(tokenizer.is_special(3008));  // <tool_call>
  REQUIRE_FALSE(tokenizer.is_special(0));
  REQUIRE(tokenizer.find_token("Ġthe").has_value());
  REQUIRE(tokenizer.token_text(*tokenizer.find_token("Ġthe")) == "Ġthe");
  REQUIRE_FALSE(tokenizer.find_token("<|nope|>").has_value());
  REQUIRE_THROWS_WITH(tokenizer.token_id("<|nope|>"), Contains("<|nope|>"));
  REQUIRE_THROWS_WITH(tokenizer.token_text(3012), Contains("3012"));
  REQUIRE_THROWS_WITH(tokenizer.decode({1, -5}), Contains("-5"));
  // A multi-byte character split across tokens decodes to U+FFFD alone, whole once joined.
  const auto ids = tokenizer.encode("\ua000");  // not in the training corpus
  REQUIRE(ids.size() > 1);
  REQUIRE(tokenizer.decode({ids[0]}) == "\uFFFD");
  REQUIRE(tokenizer.decode(ids) == "\ua000");
}

TEST_CASE("NFC composes, reorders and leaves exclusions and Hangul right", "[tokenizer]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},
      {"plain ASCII, caf\u00e9 \u00ff", "plain ASCII, caf\u00e9 \u00ff"},  // the fast path
      {"e\u0301", "\u00e9"},
      {"A\u030a\u0301", "\u01fa"},         // A + ring + acute
      {"\u212b", "\u00c5"},                // Angstrom sign, a singleton
      {"\u2126", "\u03a9"},                // Ohm sign
      {"d\u0307\u0323", "\u1e0d\u0307"},   // dot below sorts first and composes
      {"q\u0307\u0323", "q\u0323\u0307"},  // no composite: only reordered
      {"\u0958", "\u0915\u093c"},          // a composition exclusion stays decomposed
      {"\u0915\u093c", "\u0915\u093c"},
      {"\u0344", "\u0308\u0301"},                        // a non-starter decomposition
      {"\u1100\u1161", "\uac00"},                        // Hangul L + V
      {"\u1100\u1161\u11a8", "\uac01"},                  // L + V + T
      {"\uac00\u11a8", "\uac01"},                        // LV + T
      {"\uac01\u11a8", "\uac01\u11a8"},                  // LVT + T: nothing to compose
      {"\u0301a", "\u0301a"},                            // a leading combining mark
      {"a\u0301\u0301", "\u00e1\u0301"},                 // the second acute is blocked
      {"\u0b47\u0b3e", "\u0b4b"},                        // two starters compose (Oriya vowel signs)
      {"\U0001f44d\U0001f3fd", "\U0001f44d\U0001f3fd"},  // emoji unchanged
      {"a\xFF-", "a\uFFFD-"},                            // ill-formed UTF-8 becomes U+FFFD
  };
  for (const auto& [input, expected] : cases) {
    INFO("input: " << input);
    REQUIRE(nfc(input) == expected);
  }
  REQUIRE(valid_utf8("\xED\xA0\x80") == "\uFFFD\uFFFD\uFFFD");  // a surrogate: 3 subparts
  REQUIRE(valid_utf8("\xF0\x9F\x98") == "\uFFFD");              // a cut emoji: 1 subpart
}

TEST_CASE("tokenizer load errors name the file and the problem", "[tokenizer]") {
  const mmi::testing::TempDir dir;
  const json good = read_json(kDir + "tokenizer.json");
  const auto variant = [&](const std::string& name, const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    mmi::testing::write_file(dir.file(name), j.dump());
    return dir.file(name);
  };

  REQUIRE_THROWS_WITH(Tokenizer::load(dir.file("missing.json")),
                      Contains(dir.file("missing.json")) && Contains("cannot open"));
  const std::string bad_json = dir.file("bad.json");
  mmi::testing::write_file(bad_json, "{\"model\": [1, 2");
  REQUIRE_THROWS_WITH(Tokenizer::load(bad_json), Contains(bad_json) && Contains("parse error"));
  const std::string wordpiece =
      variant("wordpiece.json", [](json& j) { j["model"]["type"] = "WordPiece"; });
  REQUIRE_THROWS_WITH(Tokenizer::load(wordpiece), Contains(wordpiece) && Contains("WordPiece"));
  const std::string nfkc = variant("nfkc.json", [](json& j) {
    j["normalizer"] = {{"type", "Sequence"},
                       {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKC"}}}}};
  });
  REQUIRE_THROWS_WITH(Tokenizer::load(nfkc), Contains(nfkc) && Contains("normalizer \"NFKC\""));
  const std::string no_merges =
      variant("no_merges.json", [](json& j) { j["model"].erase("merges"); });
  REQUIRE_THROWS_WITH(Tokenizer::load(no_merges), Contains(no_merges) && Contains("model.merges"));
  const std::string bad_merge = variant("bad_merge.json", [](json& j) {
    j["model"]["merges"][5] = json::array({"Ġthe", "nonexistent"});
  });
  REQUIRE_THROWS_WITH(Tokenizer::load(bad_merge), Contains("nonexistent"));
  const std::string merged = variant("merged.json", [](json& j) {
    j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithPrevious";
  });
  REQUIRE_THROWS_WITH(Tokenizer::load(merged), Contains("MergedWithPrevious"));
  const std::string bad_regex = variant("bad_regex.json", [](json& j) {
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  });
  REQUIRE_THROWS_WITH(Tokenizer::load(bad_regex), Contains(bad_regex) && Contains("(unclosed"));
  const std::string metaspace = variant("metaspace.json", [](json& j) {
    j["decoder"] = {{"type", "Metaspace"}};
  });
  REQUIRE_THROWS_WITH(Tokenizer::load(metaspace), Contains("decoder \"Metaspace\""));
}
