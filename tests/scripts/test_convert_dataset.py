#!/usr/bin/env python3
"""Tests of scripts/convert_dataset.py on the hand-written fixtures in tests/fixtures/datasets/.

CTest runs `python3 tests/scripts/test_convert_dataset.py` from the repository root; paths are found
from this file, so any working directory works. Standard library only.
"""

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "convert_dataset.py")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "datasets")


def load_script():
    spec = importlib.util.spec_from_file_location("convert_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert_dataset = load_script()


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def lettered(*options):
    return [f"{chr(ord('A') + i)}. {option}" for i, option in enumerate(options)]


QA_FIELDS = ["id", "video", "question", "options", "answer", "subtitles", "duration"]
CAPTION_FIELDS = ["id", "video", "captions", "prompt"]


def manifest_problems(items):
    """What tasks/manifest.cpp would reject, plus any field tasks/manifest.h does not document."""
    problems, ids = [], set()
    for n, item in enumerate(items, 1):
        fields = CAPTION_FIELDS if "captions" in item else QA_FIELDS
        required = ["id", "video", "captions"] if "captions" in item else ["id", "video", "question", "answer"]
        problems += [f"item {n}: missing {key}" for key in required if key not in item]
        problems += [f"item {n}: undocumented field {key}" for key in item if key not in fields]
        problems += [f"item {n}: {key} is not text" for key in fields
                     if key in item and key not in ("options", "captions") and not isinstance(item[key], str)]
        for key in ("options", "captions"):
            if key in item and not (item[key] and all(isinstance(t, str) for t in item[key])):
                problems.append(f"item {n}: {key} must be a non-empty list of texts")
        if item.get("options"):
            letters = [chr(ord("A") + i) for i in range(len(item["options"]))]
            if item["answer"] not in letters:
                problems.append(f"item {n}: answer {item['answer']} is not one of {letters}")
            if [o[:3] for o in item["options"]] != [f"{x}. " for x in letters]:
                problems.append(f"item {n}: options are not lettered 'A. ...'")
        if item.get("id") in ids:
            problems.append(f"item {n}: duplicate id {item['id']}")
        ids.add(item.get("id"))
    return problems


class ConverterTest(unittest.TestCase):
    """Runs the converter in-process on a temporary folder of (empty) videos."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.videos = os.path.join(self.tmp.name, "videos")
        self.out = os.path.join(self.tmp.name, "out", "manifest.jsonl")
        os.makedirs(self.videos)

    def tearDown(self):
        self.tmp.cleanup()

    def add_videos(self, *names):
        for name in names:
            os.makedirs(os.path.dirname(self.video(name)), exist_ok=True)
            open(self.video(name), "w").close()

    def video(self, name):
        return os.path.join(self.videos, name)

    def write(self, name, content):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        return path

    def convert(self, *argv, videos=None):
        """(exit code, stdout, stderr) of the converter with --videos and --out added."""
        stdout, stderr = io.StringIO(), io.StringIO()
        argv = list(argv) + ["--videos", videos or self.videos, "--out", self.out]
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = convert_dataset.main(argv)
        return code, stdout.getvalue(), stderr.getvalue()

    def manifest(self, *argv, **kwargs):
        """The items written, after checking that the run succeeded and the manifest is loadable; the
        converter's report is kept in self.stdout."""
        code, stdout, stderr = self.convert(*argv, **kwargs)
        self.assertEqual(code, 0, stderr)
        self.stdout = stdout
        with open(self.out, encoding="utf-8") as f:
            items = [json.loads(line) for line in f]
        self.assertEqual(manifest_problems(items), [])
        return items

    def assertFails(self, argv, message):
        code, _, stderr = self.convert(*argv)
        self.assertEqual(code, 1)
        self.assertIn(message, stderr)
        self.assertFalse(os.path.exists(self.out), "a failed conversion must not leave a manifest")


class VideoMmeTest(ConverterTest):
    def expected(self, subtitles):
        items = [
            {"id": "001-1", "video": self.video("vmA.mp4"), "question": "How many planets does the video show?",
             "options": lettered("One.", "Two.", "Three.", "Four."), "answer": "C"},
            {"id": "001-2", "video": self.video("vmA.mp4"), "question": "What colour is the largest planet?",
             "options": lettered("Red.", "Blue.", "Green.", "Grey."), "answer": "A"},
            {"id": "002-1", "video": self.video("vmB.mkv"), "question": "What is the video about?",
             "options": lettered("Cooking.", "A train journey.", "Gardening.", "Chess."), "answer": "B"}]
        for item, duration in zip(items, ["short", "short", "long"]):
            if subtitles and item["video"].endswith("vmA.mp4"):
                item["subtitles"] = "Welcome to the sky tour.\nHere are three planets."
            item["duration"] = duration
        return items

    def test_records_with_subtitles_and_duration(self):
        self.add_videos("vmA.mp4", "vmB.mkv")
        items = self.manifest("videomme", fixture("videomme", "videomme.jsonl"),
                              "--subtitles", fixture("videomme", "subtitles"))
        self.assertEqual(items, self.expected(subtitles=True))
        self.assertEqual([list(item) for item in items[:1]],
                         [["id", "video", "question", "options", "answer", "subtitles", "duration"]])
        self.assertIn("1 item without a subtitle file", self.stdout)

    def test_json_array_as_jsonl(self):
        self.add_videos("vmA.mp4", "vmB.mkv")
        with open(fixture("videomme", "videomme.jsonl"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        array = self.write("videomme.json", json.dumps(records, indent=1))
        self.assertEqual(self.manifest("videomme", array), self.expected(subtitles=False))

    def test_missing_options(self):
        bad = self.write("bad.jsonl", '{"videoID": "v", "question_id": "1", "question": "q", '
                                      '"options": ["A. x", "B. y"], "answer": "A"}\n\n'
                                      '{"videoID": "v", "question_id": "2", "question": "q", "answer": "A"}\n')
        self.assertFails(["videomme", bad], 'bad.jsonl: line 3: missing "options"')

    def test_option_with_the_wrong_letter(self):
        bad = self.write("bad.json", '[{"videoID": "v", "question_id": "1", "question": "q", '
                                     '"options": ["B. x", "A. y"], "answer": "A"}]')
        self.assertFails(["videomme", bad], 'bad.json: record 1: option 1 must start with "A.", got "B. x"')

    def test_answer_beyond_the_options(self):
        bad = self.write("bad.json", '[{"videoID": "v", "question_id": "1", "question": "q", '
                                     '"options": ["A. x", "B. y"], "answer": "C"}]')
        self.assertFails(["videomme", bad],
                         'bad.json: record 1: "answer" must be one of the letters A..B, got "C"')

    def test_malformed_json(self):
        bad = self.write("bad.json", '[{"videoID": "v",\n "question_id": }]')
        self.assertFails(["videomme", bad], "bad.json: malformed JSON (Expecting value at line 2 column")


class EgoSchemaTest(ConverterTest):
    def test_answered_questions_only(self):
        self.add_videos("q-0001.mp4", "q-0003.mp4")
        items = self.manifest("egoschema", fixture("egoschema", "questions.json"),
                              fixture("egoschema", "subset_answers.json"))
        self.assertEqual(items, [
            {"id": "q-0001", "video": self.video("q-0001.mp4"), "question": "What is C mainly doing?",
             "options": lettered("Cooking rice.", "Washing dishes.", "Reading a book.", "Painting a wall.",
                                 "Folding clothes."), "answer": "E"},
            {"id": "q-0003", "video": self.video("q-0003.mp4"), "question": "Where is C?",
             "options": lettered("In a kitchen.", "In a garden.", "In a car.", "In a shop.", "In an office."),
             "answer": "A"}])
        self.assertIn("1 question without an answer in", self.stdout)

    def test_answer_out_of_range(self):
        answers = self.write("answers.json", '{"q-0001": 9}')
        self.assertFails(["egoschema", fixture("egoschema", "questions.json"), answers],
                         'answers.json: q_uid "q-0001": "answer" must be an option index 0..4, got 9')

    def test_missing_option(self):
        questions = self.write("questions.json", '[{"q_uid": "q-0001", "question": "q", "option 0": "a", '
                                                 '"option 1": "b", "option 2": "c", "option 4": "e"}]')
        self.assertFails(["egoschema", questions, fixture("egoschema", "subset_answers.json")],
                         'questions.json: record 1: missing "option 3"')


class NextQaTest(ConverterTest):
    map = fixture("nextqa", "map_vid_vidorID.json")
    header = "video,question,answer,qid,a0,a1,a2,a3,a4\n"

    def expected(self, first, second):
        return [
            {"id": "1000000001_0", "video": first, "question": "why does the dog run",
             "options": lettered("it is cold", "to sleep", "chase the ball", "to eat", "it is lost"), "answer": "C"},
            {"id": "1000000001_1", "video": first, "question": "what does the dog do after the ball stops, at the end",
             "options": lettered("picks it up", "barks", "sits", "runs away", "lies down"), "answer": "A"},
            {"id": "1000000002_4", "video": second, "question": "how many people are there",
             "options": lettered("one", "two", "three", "four", "five"), "answer": "D"}]

    def test_map_gives_the_folders(self):
        self.add_videos("0001/1000000001.mp4", "0002/1000000002.mp4")
        items = self.manifest("nextqa", fixture("nextqa", "val.csv"), "--map", self.map)
        self.assertEqual(items, self.expected(self.video("0001/1000000001.mp4"),
                                              self.video("0002/1000000002.mp4")))

    def test_without_a_map_videos_are_named_by_id(self):
        self.add_videos("1000000001.mp4", "1000000002.mp4")
        items = self.manifest("nextqa", fixture("nextqa", "val.csv"))
        self.assertEqual(items, self.expected(self.video("1000000001.mp4"), self.video("1000000002.mp4")))

    def test_answer_index_out_of_range(self):
        bad = self.write("bad.csv", self.header + "1,q,0,0,a,b,c,d,e\n2,q,7,0,a,b,c,d,e\n")
        self.assertFails(["nextqa", bad], 'bad.csv: line 3: "answer" must be an option index 0..4, got 7')

    def test_missing_column(self):
        bad = self.write("bad.csv", "video,question,answer,a0,a1,a2,a3,a4\n1,q,0,a,b,c,d,e\n")
        self.assertFails(["nextqa", bad], 'bad.csv: line 1: missing column "qid"')

    def test_video_not_in_the_map(self):
        bad = self.write("bad.csv", self.header + "5,q,0,0,a,b,c,d,e\n")
        self.assertFails(["nextqa", bad, "--map", self.map],
                         'bad.csv: line 2: video "5" is not in')

    def test_duplicate_id(self):
        bad = self.write("bad.csv", self.header + "1,q,0,0,a,b,c,d,e\n1,r,1,0,a,b,c,d,e\n")
        self.assertFails(["nextqa", bad], 'bad.csv: line 3: duplicate id "1_0" (first at ')


class PerceptionTestTest(ConverterTest):
    def test_questions_of_every_video(self):
        self.add_videos("video_0001.mp4", "video_0002.mp4")
        items = self.manifest("perceptiontest", fixture("perceptiontest", "mc_question_valid.json"))
        first, second = self.video("video_0001.mp4"), self.video("video_0002.mp4")
        self.assertEqual(items, [
            {"id": "video_0001_0", "video": first, "question": "Is the cup moved?",
             "options": lettered("yes", "no", "I don't know"), "answer": "A"},
            {"id": "video_0001_1", "video": first, "question": "How many objects are on the table?",
             "options": lettered("1", "2", "3"), "answer": "C"},
            {"id": "video_0002_0", "video": second, "question": "What will happen to the ball?",
             "options": lettered("it falls", "it stays", "it floats"), "answer": "B"}])

    def test_test_split_without_answers(self):
        bad = self.write("mc.json", '{"video_1": {"mc_question": '
                                    '[{"id": 0, "question": "q", "options": ["a", "b", "c"]}]}}')
        self.assertFails(["perceptiontest", bad], 'mc.json: video "video_1": question 1: missing "answer_id"')

    def test_not_multiple_choice_annotations(self):
        bad = self.write("tracks.json", '{"video_1": {"object_tracking": []}}')
        self.assertFails(["perceptiontest", bad], 'tracks.json: video "video_1": missing "mc_question"')


class ActivityNetQaTest(ConverterTest):
    def expected(self, first, second):
        return [{"id": "v_abcDEF12345_1", "video": first, "question": "is the person outdoors?", "answer": "yes"},
                {"id": "v_abcDEF12345_2", "video": first, "question": "what color is the hat?", "answer": "red"},
                {"id": "v_-xyz_987654_3", "video": second, "question": "how many dogs are there?", "answer": "2"}]

    def test_answers_joined_on_question_id(self):
        self.add_videos("v_abcDEF12345.webm", "v_-xyz_987654.mp4")
        items = self.manifest("activitynetqa", fixture("activitynetqa", "test_q.json"),
                              fixture("activitynetqa", "test_a.json"))
        self.assertEqual(items, self.expected(self.video("v_abcDEF12345.webm"), self.video("v_-xyz_987654.mp4")))

    def test_video_pattern(self):
        self.add_videos("clips/abcDEF12345.mp4", "clips/-xyz_987654.mp4")
        items = self.manifest("activitynetqa", fixture("activitynetqa", "test_q.json"),
                              fixture("activitynetqa", "test_a.json"), "--video-pattern", "clips/{name}")
        self.assertEqual(items, self.expected(self.video("clips/abcDEF12345.mp4"),
                                              self.video("clips/-xyz_987654.mp4")))

    def test_question_without_answer(self):
        answers = self.write("a.json", '[{"answer": "yes", "type": 3, "question_id": "v_abcDEF12345_1"}]')
        self.assertFails(["activitynetqa", fixture("activitynetqa", "test_q.json"), answers],
                         'test_q.json: record 2: question "v_abcDEF12345_2" has no answer in')


class VideoDcTest(ConverterTest):
    def test_captions_merged_per_video(self):
        self.add_videos("v_cap1.mp4", "v_cap2.mp4")
        items = self.manifest("videodc", fixture("videodc", "captions.jsonl"))
        self.assertEqual(items, [
            {"id": "v_cap1", "video": self.video("v_cap1.mp4"),
             "captions": ["A man paints a fence in a sunny garden.", "Someone paints a wooden fence white."]},
            {"id": "v_cap2", "video": self.video("v_cap2.mp4"),
             "captions": ["Two children build a sandcastle.", "Kids play with sand on a beach."],
             "prompt": "Describe this video in detail."}])

    def test_lmms_lab_columns(self):
        self.add_videos("v_cap3.mp4")
        items = self.manifest("videodc", fixture("videodc", "videodetailcaption.jsonl"))
        self.assertEqual(items, [{"id": "v_cap3", "video": self.video("v_cap3.mp4"),
                                  "captions": ["A chef slices vegetables and stirs a pot."],
                                  "prompt": "Please provide a detailed description of the video."}])

    def test_empty_caption(self):
        bad = self.write("bad.jsonl", '{"video": "a", "caption": "  "}\n')
        self.assertFails(["videodc", bad], 'bad.jsonl: line 1: "caption" is empty')


class VideoPathTest(ConverterTest):
    def test_missing_videos_are_written_and_counted(self):
        self.add_videos("0001/1000000001.mp4")
        items = self.manifest("nextqa", fixture("nextqa", "val.csv"),
                              "--map", fixture("nextqa", "map_vid_vidorID.json"))
        self.assertEqual(len(items), 3)
        self.assertEqual(items[2]["video"], self.video("0002/1000000002.mp4"))
        self.assertIn("1 video missing under", self.stdout)
        self.assertIn("used by 1 item (written;", self.stdout)

    def test_skip_missing(self):
        self.add_videos("v_-xyz_987654.mp4")
        items = self.manifest("activitynetqa", fixture("activitynetqa", "test_q.json"),
                              fixture("activitynetqa", "test_a.json"), "--skip-missing")
        self.assertEqual([item["id"] for item in items], ["v_-xyz_987654_3"])
        self.assertIn("1 video missing under", self.stdout)
        self.assertIn("used by 2 items (skipped)", self.stdout)

    def test_limit(self):
        items = self.manifest("perceptiontest", fixture("perceptiontest", "mc_question_valid.json"), "--limit", "2")
        self.assertEqual([item["id"] for item in items], ["video_0001_0", "video_0001_1"])

    def test_relative_folder_resolves_from_the_manifest(self):
        """mmi resolves a relative video path against the manifest's folder, not the working directory."""
        self.add_videos("video_0001.mp4", "video_0002.mp4")
        cwd = os.getcwd()
        try:
            os.chdir(self.tmp.name)
            items = self.manifest("perceptiontest", fixture("perceptiontest", "mc_question_valid.json"),
                                  videos="videos")
        finally:
            os.chdir(cwd)
        self.assertEqual(items[0]["video"], os.path.join("..", "videos", "video_0001.mp4"))
        self.assertTrue(os.path.isfile(os.path.join(os.path.dirname(self.out), items[0]["video"])))

    def test_unreadable_annotations(self):
        self.assertFails(["videodc", os.path.join(self.tmp.name, "absent.jsonl")], "absent.jsonl: cannot read")


class CommandLineTest(unittest.TestCase):
    """The script as a user runs it: exit codes and where the messages go."""

    def run_script(self, *argv):
        return subprocess.run([sys.executable, SCRIPT, *argv], capture_output=True, text=True)

    def test_success_and_failure(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "qa.jsonl")
            ok = self.run_script("nextqa", fixture("nextqa", "val.csv"), "--videos", tmp, "--out", out)
            self.assertEqual((ok.returncode, ok.stderr), (0, ""))
            self.assertIn(f"wrote 3 items to {out}", ok.stdout)
            bad = self.run_script("egoschema", fixture("nextqa", "val.csv"),
                                  fixture("egoschema", "subset_answers.json"), "--videos", tmp, "--out", out + ".2")
            self.assertEqual(bad.returncode, 1)
            self.assertIn("val.csv: line 1: malformed JSON", bad.stderr)

    def test_usage_error(self):
        usage = self.run_script("nextqa", fixture("nextqa", "val.csv"), "--videos", "v", "--out", "o.jsonl",
                                "--limit", "0")
        self.assertEqual(usage.returncode, 2)
        self.assertIn("expected an integer >= 1", usage.stderr)


if __name__ == "__main__":
    run = unittest.main(exit=False, verbosity=1)
    result = run.result
    failed = len(result.failures) + len(result.errors)
    print(f"test_convert_dataset: {result.testsRun - failed} of {result.testsRun} tests passed")
    sys.exit(0 if result.wasSuccessful() else 1)
