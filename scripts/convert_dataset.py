#!/usr/bin/env python3
"""Converts the annotations of public Video-QA and captioning benchmarks into mmi's JSONL manifests.

The output is what tasks/manifest.h parses, one JSON object per line:
  Video-QA, multiple choice: {"id", "video", "question", "options": ["A. ...", "B. ..."], "answer": "B",
                              "subtitles" (optional), "duration": "short|medium|long" (optional)}
  Video-QA, open-ended:      the same without "options"; "answer" is the reference text
  Captioning:                {"id", "video", "captions": ["...", ...], "prompt" (optional)}

One subcommand per dataset; docs/datasets.md says where each dataset's files come from. Videos are looked
up under --videos and written as paths the manifest resolves (absolute when --videos is absolute, else
relative to the manifest's folder). A missing video is counted and reported, never fatal: mmi records
such an item as a failed sample. Malformed input stops the conversion with the file, the record and the
field. Standard library only, so that Debian's python3 runs it.

  scripts/convert_dataset.py videomme videomme.jsonl --videos data/videomme/data \\
      --subtitles data/videomme/subtitle --out data/videomme/qa.jsonl
"""

import argparse
import csv
import inspect
import io
import json
import os
import re
import sys
from collections import Counter

VIDEO_EXTENSIONS = (".mp4", ".MP4", ".mkv", ".webm")  # tried in this order for a name without one
DURATIONS = ("short", "medium", "long")
OPTION_PREFIX = re.compile(r"([A-Z])[.)]\s*")
SUBTITLE_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # <i>, <font ...>, {\an8}


class ConversionError(Exception):
    """Malformed input; the message names the file, the record and the field."""


# Reading annotation files. Every record travels with `where` ("file: record 3", "file: line 7") so that
# an error can say where it is.

def read_text(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except OSError as e:
        raise ConversionError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConversionError(f"{path}: not UTF-8 text") from None


def parse_json(text, where, in_line=False):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = f"column {e.colno}" if in_line else f"line {e.lineno} column {e.colno}"
        raise ConversionError(f"{where}: malformed JSON ({e.msg} at {at})") from None


def read_records(path):
    """(where, object) for each record of a JSON array or a JSON Lines file.

    The two are told apart by the first character, not the file name: exports of the same table come
    both ways (pandas writes an array, Hugging Face `datasets` writes JSON Lines even to a .json name).
    """
    text = read_text(path)
    if text.lstrip().startswith("["):
        records = [(f"{path}: record {i}", r) for i, r in enumerate(parse_json(text, path), 1)]
    else:
        records = [(f"{path}: line {n}", parse_json(line, f"{path}: line {n}", in_line=True))
                   for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    for where, record in records:
        if not isinstance(record, dict):
            raise ConversionError(f"{where}: expected a JSON object")
    return records


def read_keyed_object(path, key_name):
    """(where, key, value) for each member of a JSON object keyed by `key_name` (a video id, a q_uid)."""
    data = parse_json(read_text(path), path)
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: expected a JSON object keyed by {key_name}")
    return [(f'{path}: {key_name} "{key}"', key, value) for key, value in data.items()]


def read_csv_rows(path, columns):
    """(where, row) for each data row of a CSV file with a header naming at least `columns`."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ConversionError(f'{path}: line 1: missing column "{missing[0]}"')
        rows = []
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if None in row:
                raise ConversionError(f"{where}: more fields than the header names")
            rows.append((where, row))
        return rows
    except csv.Error as e:
        raise ConversionError(f"{path}: line {reader.line_num}: malformed CSV ({e})") from None


# Fields. Text is stripped and must not be empty; integers are accepted as text (numeric ids).

def value(record, key, where):
    v = record.get(key)
    if v is None:
        raise ConversionError(f'{where}: missing "{key}"')
    return v


def as_text(v, where, label):
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise ConversionError(f"{where}: {label} must be text, got {json.dumps(v)}")
    if not v.strip():
        raise ConversionError(f"{where}: {label} is empty")
    return v.strip()


def text(record, key, where):
    return as_text(value(record, key, where), where, f'"{key}"')


def text_list(record, key, where, at_least):
    v = value(record, key, where)
    if not isinstance(v, list) or len(v) < at_least:
        raise ConversionError(f'{where}: "{key}" must be a list of at least {at_least} texts')
    return [as_text(item, where, f'"{key}" item {i}') for i, item in enumerate(v, 1)]


def option_index(record, key, where, count):
    """An option index 0..count-1, as a JSON integer or as digits (CSV cells, some exports)."""
    v = value(record, key, where)
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < count:
        raise ConversionError(f'{where}: "{key}" must be an option index 0..{count - 1}, '
                              f'got {json.dumps(v)}')
    return v


def letter(i):
    return chr(ord("A") + i)


def lettered(options):
    """The manifest's option format: "A. text", "B. text", ..."""
    return [f"{letter(i)}. {option}" for i, option in enumerate(options)]


def unlettered(option, i, where):
    """The text of an option published with its letter ("B. text"), checking that the letter is i's."""
    match = OPTION_PREFIX.match(option)
    if not match or match.group(1) != letter(i):
        raise ConversionError(f'{where}: option {i + 1} must start with "{letter(i)}.", '
                              f'got {json.dumps(option)}')
    return as_text(option[match.end():], where, f"option {i + 1}")


def answer_letter(record, key, where, count):
    answer = text(record, key, where)
    if answer not in [letter(i) for i in range(count)]:
        raise ConversionError(f'{where}: "{key}" must be one of the letters A..{letter(count - 1)}, '
                              f'got {json.dumps(answer)}')
    return answer


def multiple_choice(item_id, video, question, options, answer_index):
    return {"id": item_id, "video": video, "question": question, "options": lettered(options),
            "answer": letter(answer_index)}


def read_subtitles(path):
    """The spoken text of an SRT file, one cue line per line; "" when there is no such file.

    Cue numbers, timings and formatting tags are dropped, and a line repeating the one before it (cues
    split across timings) is kept once. mmi puts the whole text before the question; the official
    Video-MME evaluation keeps only the cues at the sampled frames (docs/datasets.md).
    """
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        lines = []
        for line in f:
            line = SUBTITLE_TAG.sub("", line).strip()
            if line and not line.isdigit() and "-->" not in line and (not lines or lines[-1] != line):
                lines.append(line)
    return "\n".join(lines)


# Converters: each yields (where, item) with item["video"] a name under --videos (without an extension,
# or with one), and tallies anything worth reporting in `notes`, keyed by (noun, what is said of it).

def convert_videomme(args, notes):
    """Video-MME (BradyFU/Video-MME). The records of lmms-lab/Video-MME on Hugging Face
    (videomme/test-00000-of-00001.parquet), exported to JSON or JSON Lines, one per question:
      {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
       "url": "https://www.youtube.com/watch?v=...", "videoID": "<YouTube id>", "question_id": "001-1",
       "task_type": "Temporal Perception", "question": "...",
       "options": ["A. ...", "B. ...", "C. ...", "D. ..."], "answer": "C"}
    Videos: <videoID>.mp4 (videos_chunked_*.zip). Subtitles: <videoID>.srt (subtitle.zip); not every video
    has one, so a missing file is counted, not an error. domain, sub_category and task_type are not
    manifest fields and are left out. Confidence: high for videoID, question_id, question, options,
    answer and duration (lmms-eval's videomme task reads them); the rest as the dataset card lists them.
    """
    for where, record in read_records(args.annotations):
        video = text(record, "videoID", where)
        options = [unlettered(o, i, where) for i, o in enumerate(text_list(record, "options", where, 2))]
        item = {"id": text(record, "question_id", where), "video": video,
                "question": text(record, "question", where), "options": lettered(options),
                "answer": answer_letter(record, "answer", where, len(options))}
        if args.subtitles:
            subtitles = read_subtitles(os.path.join(args.subtitles, video + ".srt"))
            if subtitles:
                item["subtitles"] = subtitles
            else:
                notes["item", f"without a subtitle file in {args.subtitles}"] += 1
        if record.get("duration") is not None:
            item["duration"] = text(record, "duration", where)
            if item["duration"] not in DURATIONS:
                raise ConversionError(f'{where}: "duration" must be short, medium or long, '
                                      f'got {json.dumps(item["duration"])}')
        yield where, item


def convert_egoschema(args, notes):
    """EgoSchema (egoschema/EgoSchema):
      questions.json:      [{"q_uid": "001934bb-81bd-...", "google_drive_id": "...", "question": "...",
                             "option 0": "...", "option 1": "...", ..., "option 4": "..."}, ...]
      subset_answers.json: {"<q_uid>": 3, ...}: the 500 questions with public answers (the others are
                           graded only by the benchmark's evaluation server)
    Videos: <q_uid>.mp4. Questions with no answer are skipped and counted. Confidence: high for q_uid,
    the options and the answers file (read from the repository); "question" as evaluation scripts built
    on the file read it (the copy of questions.json we could read, an early one, has no question text).
    """
    answers = {key: (where, value) for where, key, value in read_keyed_object(args.answers, "q_uid")}
    for where, record in read_records(args.questions):
        q_uid = text(record, "q_uid", where)
        if q_uid not in answers:
            notes["question", f"without an answer in {args.answers} (skipped)"] += 1
            continue
        options = [text(record, f"option {i}", where) for i in range(5)]
        answer_where, answer = answers[q_uid]
        yield where, multiple_choice(q_uid, q_uid, text(record, "question", where), options,
                                     option_index({"answer": answer}, "answer", answer_where, 5))


def convert_nextqa(args, notes):
    """NExT-QA multiple choice (doc-doc/NExT-QA, dataset/nextqa/{val,test}.csv):
      video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4
      4010069381,369,640,480,how do the two man play the instrument,0,6,CH,roll the handle,...
    answer is the index of the right one of a0..a4; qid numbers the questions of one video, so the id is
    <video>_<qid>. Videos: with --map (dataset/nextqa/map_vid_vidorID.json, {"4010069381": "1025/4010069381"})
    <videos>/<mapped>.mp4, the layout of the NExTVideo download; without it <videos>/<video>.mp4.
    Confidence: high (read from the repository's files).
    """
    folders = {}
    if args.map:
        folders = {key: (where, value) for where, key, value in read_keyed_object(args.map, "video")}
    columns = ["video", "question", "answer", "qid"] + [f"a{i}" for i in range(5)]
    for where, row in read_csv_rows(args.csv, columns):
        video = path = text(row, "video", where)
        if args.map:
            if video not in folders:
                raise ConversionError(f'{where}: video "{video}" is not in {args.map}')
            map_where, mapped = folders[video]
            path = as_text(mapped, map_where, "the path")
        options = [text(row, f"a{i}", where) for i in range(5)]
        yield where, multiple_choice(f"{video}_{text(row, 'qid', where)}", path,
                                     text(row, "question", where), options,
                                     option_index(row, "answer", where, len(options)))


def convert_perceptiontest(args, notes):
    """Perception Test multiple-choice video QA (google-deepmind/perception_test; mc_question_valid.json
    in mc_question_valid_annotations.zip), one member per video:
      {"video_10909": {"metadata": {"video_id": "video_10909", "num_frames": ..., ...},
                       "mc_question": [{"id": 0, "question": "...", "options": ["...", "...", "..."],
                                        "answer_id": 1, "area": "Physics", "reasoning": "...",
                                        "tag": [...]}, ...]}, ...}
    The id is <video>_<question id>. Videos: <video>.mp4 (valid_videos.zip). The test split publishes no
    answer_id. Confidence: high for the question fields (the repository's README documents them); the
    per-video nesting as loaders of the file read it.
    """
    for video_where, video, entry in read_keyed_object(args.annotations, "video"):
        if not isinstance(entry, dict) or not isinstance(entry.get("mc_question"), list):
            raise ConversionError(f'{video_where}: missing "mc_question" (a list of questions)')
        for n, question in enumerate(entry["mc_question"], 1):
            where = f"{video_where}: question {n}"
            if not isinstance(question, dict):
                raise ConversionError(f"{where}: expected a JSON object")
            options = text_list(question, "options", where, 2)
            yield where, multiple_choice(f"{video}_{text(question, 'id', where)}", video,
                                         text(question, "question", where), options,
                                         option_index(question, "answer_id", where, len(options)))


def convert_activitynetqa(args, notes):
    """ActivityNet-QA, open-ended (MILVLG/activitynet-qa, dataset/{val,test}_{q,a}.json):
      test_q.json: [{"video_name": "1QIUV7WYKXg", "question": "is the athlete wearing trousers",
                     "question_id": "v_1QIUV7WYKXg_3"}, ...]
      test_a.json: [{"answer": "no", "type": 3, "question_id": "v_1QIUV7WYKXg_3"}, ...]
    joined on question_id. The questions carry no question mark; one is added, as lmms-eval's
    activitynetqa task does. video_name is the YouTube id; ActivityNet's downloads are named v_<id>.mp4
    (or .mkv, .webm), hence --video-pattern "v_{name}". Confidence: high (dataset/README.md).
    """
    answers = {}
    for where, record in read_records(args.answers):
        answers[text(record, "question_id", where)] = text(record, "answer", where)
    for where, record in read_records(args.questions):
        question_id = text(record, "question_id", where)
        if question_id not in answers:
            raise ConversionError(f'{where}: question "{question_id}" has no answer in {args.answers}')
        video = args.video_pattern.replace("{name}", text(record, "video_name", where))
        question = text(record, "question", where)
        yield where, {"id": question_id, "video": video,
                      "question": question if question.endswith("?") else question + "?",
                      "answer": answers[question_id]}


def convert_videodc(args, notes):
    """Video detailed captions (VideoDC), as a JSON array or JSON Lines of
      {"video": "v_abc", "caption": "..."}                        one reference per record, or
      {"video_id": "v_abc", "captions": ["...", "..."]}            several, or
      {"video_name": "v_abc", "question": "...", "answer": "..."}  lmms-lab/VideoDetailCaption's rows
    with an optional "prompt" (or "question") for the instruction. Records of the same video are merged
    into one item with all their references, in order; the first record's prompt is kept. Videos:
    <video>.mp4 unless the name has an extension. Confidence: the first two shapes are mmi's own
    convention; the third is the lmms-lab dataset's columns as lmms-eval reads them (video_name,
    question, answer; videos in Test_Videos/).
    """
    items = {}
    for where, record in read_records(args.annotations):
        key = next((k for k in ("video", "video_id", "video_name") if record.get(k) is not None), "video")
        video = text(record, key, where)
        if record.get("captions") is not None:
            captions = text_list(record, "captions", where, 1)
        else:
            lmms_lab = record.get("caption") is None and record.get("answer") is not None
            captions = [text(record, "answer" if lmms_lab else "caption", where)]
        prompt_key = "prompt" if record.get("prompt") is not None else "question"
        if video not in items:
            item = {"id": os.path.splitext(video)[0] if video.endswith(VIDEO_EXTENSIONS) else video,
                    "video": video, "captions": []}
            if record.get(prompt_key) is not None:
                item["prompt"] = text(record, prompt_key, where)
            items[video] = (where, item)
        items[video][1]["captions"].extend(captions)
    yield from items.values()


# Writing the manifest.

class VideoFolder:
    """Finds each item's video under --videos and writes its path as the manifest will resolve it."""

    def __init__(self, root, manifest):
        self.root = root
        self.manifest_dir = os.path.dirname(os.path.abspath(manifest))
        self.missing = {}  # video path -> items using it, in first-seen order

    def path(self, name):
        """The path to write for video `name`, and whether the file is there."""
        if name.endswith(VIDEO_EXTENSIONS):
            candidates = [name]
        else:
            candidates = [name + extension for extension in VIDEO_EXTENSIONS]
        found = next((c for c in candidates if os.path.isfile(os.path.join(self.root, c))), None)
        full = os.path.join(self.root, found or candidates[0])
        if found is None:
            self.missing[full] = self.missing.get(full, 0) + 1
        written = full if os.path.isabs(full) else os.path.relpath(full, self.manifest_dir)
        return written, found is not None


def collect(items, videos, limit, skip_missing):
    """The items to write: videos resolved, ids checked unique, at most `limit` of them."""
    out, ids = [], {}
    for where, item in items:
        if item["id"] in ids:
            raise ConversionError(f'{where}: duplicate id "{item["id"]}" (first at {ids[item["id"]]})')
        ids[item["id"]] = where
        item["video"], found = videos.path(item["video"])
        if found or not skip_missing:
            out.append(item)
        if limit and len(out) == limit:
            break
    return out


def write_manifest(path, items):
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")


def count(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def missing_videos(args, videos):
    return (f"{count(len(videos.missing), 'video')} missing under {args.videos}, used by "
            f"{count(sum(videos.missing.values()), 'item')}")


def report(args, items, videos, notes):
    print(f"wrote {count(len(items), 'item')} to {args.out}")
    if videos.missing:
        fate = "skipped" if args.skip_missing else "written; mmi records them as failed samples"
        print(f"{missing_videos(args, videos)} ({fate}); first: {next(iter(videos.missing))}")
    for (noun, said), n in notes.items():
        print(f"{count(n, noun)} {said}")


def nothing_written_reasons(args, videos, notes):
    reasons = [f"{count(n, noun)} {said}" for (noun, said), n in notes.items()]
    if videos.missing:
        reasons.append(missing_videos(args, videos))
    return f" ({'; '.join(reasons)})" if reasons else ""


# Command line.

def positive_int(text_value):
    if not text_value.isdigit() or int(text_value) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got '{text_value}'")
    return int(text_value)


def video_pattern(text_value):
    if "{name}" not in text_value:
        raise argparse.ArgumentTypeError(f"the pattern must contain {{name}}, got '{text_value}'")
    return text_value


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--videos", required=True, metavar="DIR", help="the folder holding the videos")
    common.add_argument("--out", required=True, metavar="FILE.jsonl", help="the manifest to write")
    common.add_argument("--limit", type=positive_int, metavar="N", help="write the first N items only")
    common.add_argument("--skip-missing", action="store_true",
                        help="leave out items whose video is missing (default: write and count them)")
    parser = argparse.ArgumentParser(
        prog="convert_dataset.py",
        description="Convert a benchmark's annotations into an mmi manifest (docs/datasets.md).")
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")

    def command(name, convert, help_text):
        p = sub.add_parser(name, parents=[common], help=help_text,
                           description=inspect.cleandoc(convert.__doc__),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(convert=convert)
        return p

    p = command("videomme", convert_videomme, "Video-MME multiple choice, with or without subtitles")
    p.add_argument("annotations", help="the records as JSON or JSON Lines")
    p.add_argument("--subtitles", metavar="DIR", help="the folder of <videoID>.srt files")
    p = command("egoschema", convert_egoschema, "EgoSchema multiple choice (the subset with public answers)")
    p.add_argument("questions", help="questions.json")
    p.add_argument("answers", help="subset_answers.json")
    p = command("nextqa", convert_nextqa, "NExT-QA multiple choice")
    p.add_argument("csv", help="val.csv or test.csv")
    p.add_argument("--map", metavar="FILE", help="map_vid_vidorID.json: video id -> path under --videos")
    p = command("perceptiontest", convert_perceptiontest, "Perception Test multiple choice")
    p.add_argument("annotations", help="mc_question_valid.json")
    p = command("activitynetqa", convert_activitynetqa, "ActivityNet-QA, open-ended")
    p.add_argument("questions", help="test_q.json (or val_q.json)")
    p.add_argument("answers", help="test_a.json (or val_a.json)")
    p.add_argument("--video-pattern", type=video_pattern, default="v_{name}", metavar="PATTERN",
                   help="the video file name for a video_name, extension optional (default: v_{name})")
    p = command("videodc", convert_videodc, "video detailed captions (captioning manifest)")
    p.add_argument("annotations", help="captions as JSON or JSON Lines")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    videos, notes = VideoFolder(args.videos, args.out), Counter()
    try:
        items = collect(args.convert(args, notes), videos, args.limit, args.skip_missing)
        if not items:
            raise ConversionError("no items to write" + nothing_written_reasons(args, videos, notes))
        write_manifest(args.out, items)
    except ConversionError as e:
        print(f"convert_dataset.py: error: {e}", file=sys.stderr)
        return 1
    report(args, items, videos, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
