// `mmi video`: look at what the tasks will see. info (probe), frames (decode sampled frames to PPM
// images, through the frame cache), generate (write a generated test video).
#include <cstdio>
#include <fstream>

#include "harness/cli.h"
#include "harness/commands.h"
#include "tasks/files.h"
#include "tasks/frame_cache.h"
#include "tasks/video.h"
#include "tasks/video_writer.h"

namespace mmi {
namespace {

void write_ppm(const std::string& path, const VideoFrame& f) {
  std::ofstream out(path, std::ios::binary);
  out << "P6\n" << f.width << " " << f.height << "\n255\n";
  out.write(reinterpret_cast<const char*>(f.rgb.data()), static_cast<std::streamsize>(f.rgb.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

int info(int argc, char** argv) {
  ArgParser args("video info FILE", "Prints what FFmpeg reports for a video: codec, size, frame rate, duration, frames.");
  if (argc < 4 || argv[3][0] == '-' || !args.parse(argc, argv, 4)) {
    std::printf("%s", args.help().c_str());
    return argc < 4 ? 2 : 0;
  }
  const VideoInfo v = probe_video(argv[3]);
  std::printf("%s: %s, %dx%d, %.3f fps, %.3f s, %lld frames\n", v.path.c_str(), v.codec.c_str(), v.width, v.height,
              v.fps, v.duration_s, static_cast<long long>(v.frame_count));
  return 0;
}

int frames(int argc, char** argv) {
  ArgParser args("video frames FILE", "Decodes sampled frames (uniformly by count, or by frames per second) into PPM images.");
  args.option("count", "N", "frames spread uniformly over the video (the centre of N equal segments)")
      .option("fps", "F", "one frame every 1/F seconds instead, e.g. 1 (the V-NIAH haystack)")
      .option("out", "DIR", "where the images go", "results/frames")
      .option("cache", "DIR", "frame cache folder", "results/frame_cache");
  if (argc < 4 || argv[3][0] == '-' || !args.parse(argc, argv, 4)) {
    std::printf("%s", args.help().c_str());
    return argc < 4 ? 2 : 0;
  }
  const std::string path = argv[3];
  const VideoInfo v = probe_video(path);
  if (args.has("count") == args.has("fps")) throw UsageError("give exactly one of --count and --fps");
  double fps = 0;
  if (args.has("fps") && std::sscanf(args.get("fps").c_str(), "%lf", &fps) != 1) {
    throw UsageError("--fps must be a number, got '" + args.get("fps") + "'");
  }
  const std::vector<double> times =
      args.has("count") ? uniform_timestamps(v, args.get_int("count")) : timestamps_at_fps(v, fps);
  FrameCache cache(args.get("cache"));
  const std::vector<VideoFrame> decoded = cache.frames(path, times);
  make_directories(args.get("out"));
  for (size_t k = 0; k < decoded.size(); ++k) {
    char name[32];
    std::snprintf(name, sizeof(name), "frame_%05zu.ppm", k);
    write_ppm(join_path(args.get("out"), name), decoded[k]);
  }
  std::printf("%zu frames of %s (%s) written to %s/ as PPM\n", decoded.size(), path.c_str(),
              cache.hits() ? "from the frame cache" : "decoded and cached", args.get("out").c_str());
  return 0;
}

int generate(int argc, char** argv) {
  ArgParser args("video generate FILE",
                 "Writes a generated test video: moving content, each frame's index drawn as a block code.");
  args.option("frames", "N", "frames", "50")
      .option("fps", "F", "frames per second", "10")
      .option("size", "WxH", "frame size (even numbers)", "128x96")
      .option("encoder", "NAME", "FFmpeg encoder: libx264, mpeg4, libvpx-vp9, ...", "libx264");
  if (argc < 4 || argv[3][0] == '-' || !args.parse(argc, argv, 4)) {
    std::printf("%s", args.help().c_str());
    return argc < 4 ? 2 : 0;
  }
  VideoWriteOptions o;
  o.frames = args.get_int("frames");
  o.fps = static_cast<int>(args.get_int("fps"));
  o.encoder = args.get("encoder");
  if (std::sscanf(args.get("size").c_str(), "%dx%d", &o.width, &o.height) != 2) {
    throw UsageError("--size must look like 128x96, got '" + args.get("size") + "'");
  }
  write_generated_video(argv[3], o);
  std::printf("wrote %s: %lld frames, %dx%d at %d fps (%s)\n", argv[3], static_cast<long long>(o.frames), o.width,
              o.height, o.fps, o.encoder.c_str());
  return 0;
}

}  // namespace

int video_command(int argc, char** argv) {
  const std::string action = argc >= 3 ? argv[2] : "";
  if (action == "--help" || action == "-h") {
    std::printf("usage: mmi video info|frames|generate FILE [options]; 'mmi video ACTION --help' for each\n");
    return 0;
  }
  if (action == "info") return info(argc, argv);
  if (action == "frames") return frames(argc, argv);
  if (action == "generate") return generate(argc, argv);
  throw UsageError("usage: mmi video info|frames|generate FILE [options]");
}

}  // namespace mmi
