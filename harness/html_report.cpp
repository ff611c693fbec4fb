// The HTML dashboard: one self-contained page that works offline. Inline CSS; heat maps and the
// latency chart as inline SVG drawn here (deterministic, so golden-testable); the rows as a JSON
// island; a few lines of hand-written JS that sort and filter tables (the page reads fine without).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "harness/report.h"

namespace mmi {
namespace {

const char kStyle[] = R"css(
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--soft:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;
  font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif}
header{padding:22px 32px 14px;background:var(--soft);border-bottom:1px solid var(--line)}
header h1{margin:0;font-size:22px;font-weight:600}
header h1 span{color:var(--muted);font-weight:400}
.meta{margin-top:4px;color:var(--muted);font-size:13px}
.meta code{font-size:12px;background:#eaeef2;padding:1px 5px;border-radius:4px;color:var(--fg)}
nav{margin-top:10px;font-size:13px}
nav a{color:var(--accent);text-decoration:none;margin-right:16px}
main{padding:4px 32px 40px}
section{margin-top:26px}
h2{font-size:18px;font-weight:600;margin:0 0 6px;padding-bottom:6px;
  border-bottom:1px solid var(--line)}
h3{font-size:14px;font-weight:600;margin:18px 0 6px}
p.note{margin:4px 0 10px;color:var(--muted);font-size:13px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px}
th,td{padding:5px 10px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
td:first-child{white-space:nowrap}
th{background:var(--soft);font-weight:600;white-space:nowrap;border-bottom:1px solid var(--line)}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:hover{background:#f6f8fa}
tr.paper td{color:var(--muted);font-style:italic;background:#fbfbfc}
td small{color:var(--muted);margin-left:4px;font-size:11px}
.bad{color:#cf222e}
.tag{font-size:11px;padding:0 6px;border-radius:8px;background:#eaeef2;color:var(--muted);
  font-style:normal}
.tag.paper{background:#fff1d6;color:#8a5a00}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \25B2";font-size:9px}
table.sortable th[aria-sort=descending]::after{content:" \25BC";font-size:9px}
#samples td{font-size:12px;white-space:nowrap}
#samples td.text{max-width:220px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
input.filter{margin:0 0 8px;padding:5px 9px;width:320px;font:inherit;font-size:13px;
  border:1px solid var(--line);border-radius:6px}
.panels{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;padding:8px 10px 4px;border:1px solid var(--line);border-radius:6px;background:#fff}
figcaption{font-size:13px;margin-bottom:2px;max-width:560px;overflow-wrap:anywhere}
figcaption span{color:var(--muted);margin-left:6px}
svg{display:block;max-width:100%;height:auto}
svg text{font-family:inherit;fill:var(--fg)}
.hm rect.cell{stroke:#fff;stroke-width:1.5}
.hm rect.empty{fill:#fff;stroke:#d0d7de;stroke-dasharray:2 2}
.hm text.v{font-size:10px;text-anchor:middle}
.hm text.v.light{fill:#fff}
.hm text.v.small{font-size:8.5px}
.axis text{font-size:11px;fill:var(--muted)}
.axis text.title{font-size:11px;fill:var(--fg)}
.chart .grid line{stroke:#eaeef2}
.chart .frame{fill:none;stroke:var(--line)}
.chart polyline{fill:none;stroke-width:2}
.chart text.speedup{font-size:11px;font-weight:600}
ul.legend{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 18px;
  font-size:12px}
ul.legend li{display:flex;align-items:center;gap:6px}
ul.legend i{display:inline-block;width:18px;height:3px;border-radius:2px}
details pre{margin:6px 0 0;padding:8px;background:var(--soft);border-radius:4px;font-size:11px}
footer{padding:16px 32px;color:var(--muted);font-size:12px;border-top:1px solid var(--line)}
)css";

// Click a header to sort (numbers where the header says so, missing values last); type to filter.
const char kScript[] = R"js(
(function () {
  function key(row, i, numeric) {
    var cell = row.cells[i], v = cell.getAttribute('data-v');
    if (v === null) v = cell.textContent;
    if (!numeric) return v.toLowerCase();
    var x = parseFloat(v);
    return isNaN(x) ? null : x;
  }
  function sortBy(table, th, i) {
    var up = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(th.parentNode.cells, function (h) {
      h.removeAttribute('aria-sort');
    });
    th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
    var numeric = th.classList.contains('num'), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, i, numeric), y = key(b, i, numeric);
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y) === up ? -1 : 1;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.title = 'Sort';
      th.addEventListener('click', function () { sortBy(table, th, i); });
    });
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    var table = document.getElementById(input.getAttribute('data-table'));
    input.hidden = false;
    input.addEventListener('input', function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.hidden = q !== '' && r.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  });
})();
)js";

const char* const kSeriesColours[] = {"#2563eb", "#e8590c", "#0ca678", "#c2255c",
                                      "#7048e8", "#1098ad", "#74b816", "#f59f00"};
const char kDenseColour[] = "#495057";

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string px(double value) {  // an SVG coordinate
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

std::string short_number(double value) {  // a tick label
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Colour ramps

struct Rgb {
  double r, g, b;
};

Rgb mix(Rgb a, Rgb b, double t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

std::string hex(Rgb c) {
  char text[8];
  std::snprintf(text, sizeof text, "#%02X%02X%02X", static_cast<int>(std::lround(c.r)),
                static_cast<int>(std::lround(c.g)), static_cast<int>(std::lround(c.b)));
  return text;
}

bool is_dark(Rgb c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b < 140; }

// The NIAH heat maps' fixed 0-1 ramp (MM-NIAH's crimson, gold, medium sea green).
Rgb score_colour(double score) {
  const Rgb red{0xDC, 0x14, 0x3C}, gold{0xFF, 0xD7, 0x00}, green{0x3C, 0xB3, 0x71};
  const double s = std::clamp(score, 0.0, 1.0);
  return s < 0.5 ? mix(red, gold, 2 * s) : mix(gold, green, 2 * s - 1);
}

// Differences on a zero-centred ramp: losses red, gains blue, no change near-white (set apart from
// the white page and from the dashed outline of a cell without data).
Rgb diff_colour(double diff, double extent) {
  const Rgb red{0xB2, 0x18, 0x2B}, white{0xF7, 0xF7, 0xF7}, blue{0x21, 0x66, 0xAC};
  const double t = std::clamp(diff / extent, -1.0, 1.0);
  return t < 0 ? mix(white, red, -t) : mix(white, blue, t);
}

// The difference maps share one symmetric scale per task: the smallest of these that fits.
double diff_extent(const NiahSection& section) {
  double largest = 0;
  for (const HeatMap& map : section.maps) {
    for (const auto& line : map.diff) {
      for (double d : line) {
        if (std::isfinite(d)) largest = std::max(largest, std::fabs(d));
      }
    }
  }
  for (double extent : {0.1, 0.25, 0.5}) {
    if (largest <= extent) return extent;
  }
  return 1.0;
}

// ---------------------------------------------------------------------------------------------
// Heat maps

struct HeatGeometry {
  double cell_w, cell_h = 24, left = 76, top = 6, bottom = 36;
  explicit HeatGeometry(size_t columns)
      : cell_w(std::clamp(440.0 / static_cast<double>(columns), 28.0, 48.0)) {}
};

std::string frames_label(int64_t frames) {  // LongVA's style: 800, 1.2K
  if (frames < 1000) return std::to_string(frames);
  char text[16];
  std::snprintf(text, sizeof text, "%.1fK", frames / 1000.0);
  return text;
}

// Cell (r, c): its colour, its value, and a tooltip with the sample count.
std::string heat_cell(const NiahSection& section, const HeatMap& map, bool diff, double extent,
                      const HeatGeometry& g, size_t r, size_t c) {
  const double x = g.left + c * g.cell_w, y = g.top + r * g.cell_h;
  std::string tip =
      "frames " + std::to_string(section.frames[c]) + ", depth " + section.depths[r].label;
  const Stat& stat = map.cells[r][c];
  const double value = diff ? map.diff[r][c] : stat.mean;
  const bool failed_only = !diff && stat.n == 0 && stat.failed > 0;
  std::string text = failed_only ? "fail" : "", look = "class=\"empty\"";
  bool light = false;
  if (std::isfinite(value)) {
    const Rgb colour = diff ? diff_colour(value, extent) : score_colour(value);
    look = "class=\"cell\" fill=\"" + hex(colour) + "\"";
    light = is_dark(colour);
    text = diff ? format_signed(value, 2) : format_fixed(value, 2);
    tip += ": " + text;
  } else if (failed_only) {
    look = "class=\"cell\" fill=\"#ced4da\"";
  }
  if (!diff) {
    tip += " (n=" + std::to_string(stat.n) +
           (stat.failed ? ", " + std::to_string(stat.failed) + " failed)" : ")");
  }
  std::string out = "<rect " + look + " x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"" +
                    px(g.cell_w) + "\" height=\"" + px(g.cell_h) + "\"><title>" + escape(tip) +
                    "</title></rect>";
  if (text.empty()) return out;
  const std::string classes =
      std::string("v") + (light ? " light" : "") + (g.cell_w < 34 ? " small" : "");
  return out + "<text class=\"" + classes + "\" x=\"" + px(x + g.cell_w / 2) + "\" y=\"" +
         px(y + g.cell_h / 2 + 3.5) + "\">" + escape(text) + "</text>";
}

std::string heat_axes(const NiahSection& section, const HeatGeometry& g, double width,
                      double height) {
  std::string out = "<g class=\"axis\">";
  for (size_t r = 0; r < section.depths.size(); ++r) {
    out += "<text x=\"" + px(g.left - 6) + "\" y=\"" + px(g.top + (r + 0.5) * g.cell_h + 4) +
           "\" text-anchor=\"end\">" + escape(section.depths[r].label) + "</text>";
  }
  const double below = g.top + section.depths.size() * g.cell_h;
  for (size_t c = 0; c < section.frames.size(); ++c) {
    out += "<text x=\"" + px(g.left + (c + 0.5) * g.cell_w) + "\" y=\"" + px(below + 14) +
           "\" text-anchor=\"middle\">" + frames_label(section.frames[c]) + "</text>";
  }
  out += "<text class=\"title\" x=\"" + px(g.left + (width - g.left) / 2) + "\" y=\"" +
         px(height - 4) + "\" text-anchor=\"middle\">frames</text>";
  out += "<text class=\"title\" transform=\"translate(12," + px(g.top + (below - g.top) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">depth</text>";
  return out + "</g>";
}

std::string heat_map_svg(const NiahSection& section, const HeatMap& map, bool diff, double extent) {
  const HeatGeometry g(section.frames.size());
  const double width = g.left + section.frames.size() * g.cell_w + 4;
  const double height = g.top + section.depths.size() * g.cell_h + g.bottom;
  std::string out = "<svg class=\"hm\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + px(width) +
                    "\" height=\"" + px(height) + "\" viewBox=\"0 0 " + px(width) + " " +
                    px(height) + "\" role=\"img\">";
  for (size_t r = 0; r < section.depths.size(); ++r) {
    for (size_t c = 0; c < section.frames.size(); ++c) {
      out += heat_cell(section, map, diff, extent, g, r, c);
    }
  }
  return out + heat_axes(section, g, width, height) + "</svg>";
}

// A horizontal colour bar with its end and middle values.
std::string ramp_legend(const std::string& id, bool diff, double extent,
                        const std::string& caption) {
  std::string stops;
  for (int k = 0; k <= 10; ++k) {
    const double t = k / 10.0;
    const Rgb c = diff ? diff_colour((2 * t - 1) * extent, extent) : score_colour(t);
    stops += "<stop offset=\"" + short_number(t) + "\" stop-color=\"" + hex(c) + "\"/>";
  }
  const std::string low = diff ? format_signed(-extent, 2) : "0",
                    high = diff ? format_signed(extent, 2) : "1";
  return "<svg class=\"axis\" xmlns=\"http://www.w3.org/2000/svg\" width=\"420\" height=\"34\" "
         "viewBox=\"0 0 420 34\"><defs><linearGradient id=\"" +
         id + "\">" + stops +
         "</linearGradient></defs><rect x=\"8\" y=\"4\" width=\"220\" height=\"10\" fill=\"url(#" +
         id + ")\" stroke=\"#d0d7de\"/><text x=\"8\" y=\"28\">" + low +
         "</text><text x=\"118\" y=\"28\" text-anchor=\"middle\">" + (diff ? "0" : "0.5") +
         "</text><text x=\"228\" y=\"28\" text-anchor=\"end\">" + high +
         "</text><text class=\"title\" x=\"240\" y=\"13\">" + escape(caption) + "</text></svg>";
}

std::string heat_panel(const Report& report, const NiahSection& section, const HeatMap& map,
                       bool diff, double extent) {
  std::string caption = "<b>" + escape(report.name(map.key)) + "</b><span>" +
                        (diff ? "− dense" : "mean " + format_fixed(map.mean, 2)) + "</span>";
  return "<figure><figcaption>" + caption + "</figcaption>" +
         heat_map_svg(section, map, diff, extent) + "</figure>";
}

std::string niah_html(const Report& report, const NiahSection& section) {
  const std::string title = task_title(section.task);
  std::string out = "<section id=\"" + section.task + "\"><h2>" + title + "</h2>" +
                    "<p class=\"note\">Mean score per cell over ok samples (hover a cell for n); "
                    "depth 0% puts the needle at the start.</p>" +
                    ramp_legend("ramp-" + section.task, false, 1, "score") +
                    "<div class=\"panels\">";
  for (const HeatMap& map : section.maps) out += heat_panel(report, section, map, false, 1);
  out += "</div>";
  const bool any_diff = std::any_of(section.maps.begin(), section.maps.end(),
                                    [](const HeatMap& m) { return !m.diff.empty(); });
  if (!any_diff) return out + "</section>";
  const double extent = diff_extent(section);
  out +=
      "<h3>Difference from dense</h3><p class=\"note\">This method's cell minus dense's, where "
      "both were measured: red where sparse attention loses, blue where it gains.</p>" +
      ramp_legend("ramp-" + section.task + "-diff", true, extent, "method − dense") +
      "<div class=\"panels\">";
  for (const HeatMap& map : section.maps) {
    if (!map.diff.empty()) out += heat_panel(report, section, map, true, extent);
  }
  return out + "</div></section>";
}

// ---------------------------------------------------------------------------------------------
// Latency chart

struct Axis {
  double lo = 0, hi = 1, from = 0, to = 1;
  bool log = false;

  double at(double v) const {
    const double t = log ? std::log(v / lo) / std::log(hi / lo) : (v - lo) / (hi - lo);
    return from + t * (to - from);
  }
};

double nice_step(double raw) {  // the smallest 1, 2 or 5 x 10^k that is at least `raw`
  if (!(raw > 0)) return 1;
  const double unit = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * unit >= raw) return m * unit;
  }
  return 10 * unit;
}

// Log scale where the values span a decade or more; linear from zero (ms) otherwise.
Axis make_axis(double min, double max, double from, double to, double wide, bool from_zero) {
  Axis axis;
  axis.from = from;
  axis.to = to;
  axis.log = min > 0 && max / min >= wide;
  if (axis.log) {
    axis.lo = min / 1.3;
    axis.hi = max * 1.3;
  } else {
    const double span = max > min ? max - min : std::max(std::fabs(max), 1.0);
    axis.lo = from_zero ? 0.0 : min - 0.08 * span;
    axis.hi = from_zero ? nice_step(max * 1.1 / 5) * 5 : max + 0.08 * span;
  }
  return axis;
}

// Powers of `base` (with 2x and 5x between decades when base is 10), thinned to about 8.
std::vector<double> ticks(const Axis& axis, double base) {
  std::vector<double> out;
  if (!axis.log) {
    const double step = nice_step((axis.hi - axis.lo) / 5);
    for (double v = std::ceil(axis.lo / step) * step; v <= axis.hi + 1e-9 * step; v += step) {
      out.push_back(std::fabs(v) < 1e-12 ? 0.0 : v);
    }
    return out;
  }
  const int first = static_cast<int>(std::floor(std::log(axis.lo) / std::log(base)));
  const int last = static_cast<int>(std::ceil(std::log(axis.hi) / std::log(base)));
  const int stride = std::max(1, (last - first + 7) / 8);
  for (int k = first; k <= last; ++k) {
    for (double m :
         base == 10 && last - first <= 3 ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
      const double v = m * std::pow(base, k);
      if (k % stride == 0 && v >= axis.lo && v <= axis.hi) out.push_back(v);
    }
  }
  return out;
}

std::string chart_axes(const Axis& x, const Axis& y) {
  std::string grid = "<g class=\"grid\">", labels = "<g class=\"axis\">";
  for (double v : ticks(x, 2)) {
    grid += "<line x1=\"" + px(x.at(v)) + "\" x2=\"" + px(x.at(v)) + "\" y1=\"" + px(y.to) +
            "\" y2=\"" + px(y.from) + "\"/>";
    labels += "<text x=\"" + px(x.at(v)) + "\" y=\"" + px(y.from + 16) +
              "\" text-anchor=\"middle\">" + format_tokens(std::llround(v)) + "</text>";
  }
  for (double v : ticks(y, 10)) {
    grid += "<line x1=\"" + px(x.from) + "\" x2=\"" + px(x.to) + "\" y1=\"" + px(y.at(v)) +
            "\" y2=\"" + px(y.at(v)) + "\"/>";
    labels += "<text x=\"" + px(x.from - 6) + "\" y=\"" + px(y.at(v) + 4) +
              "\" text-anchor=\"end\">" + short_number(v) + "</text>";
  }
  labels += "<text class=\"title\" x=\"" + px((x.from + x.to) / 2) + "\" y=\"" + px(y.from + 36) +
            "\" text-anchor=\"middle\">LM input tokens" + (x.log ? " (log)" : "") + "</text>";
  labels += "<text class=\"title\" transform=\"translate(14," + px((y.from + y.to) / 2) +
            ") rotate(-90)\" text-anchor=\"middle\">median pre-fill ms" + (y.log ? " (log)" : "") +
            "</text>";
  return grid + "</g><rect class=\"frame\" x=\"" + px(x.from) + "\" y=\"" + px(y.to) +
         "\" width=\"" + px(x.to - x.from) + "\" height=\"" + px(y.from - y.to) + "\"/>" + labels +
         "</g>";
}

struct Annotation {
  double x, y;
  std::string text, colour;
};

std::string series_svg(const Report& report, const LatencySeries& series, const std::string& colour,
                       const Axis& x, const Axis& y, std::vector<Annotation>& annotations) {
  const LatencyTable& latency = report.latency;
  std::string points, dots;
  const LatencyPoint* last = nullptr;
  double last_x = 0, last_y = 0;
  for (size_t b = 0; b < latency.bins.size(); ++b) {
    const LatencyPoint& p = series.points[b];
    if (p.n == 0) continue;
    last = &p;
    last_x = x.at(latency.bins[b].center);
    last_y = y.at(p.prefill_ms);
    points += (points.empty() ? "" : " ") + px(last_x) + "," + px(last_y);
    const std::string speedup = format_fixed(p.speedup, 2);
    const std::string tip = report.name(series.key) + " at " + latency.bins[b].label +
                            " tokens: " + format_ms(p.prefill_ms) + " ms" +
                            (speedup.empty() ? "" : ", " + speedup + "× dense");
    dots += "<circle cx=\"" + px(last_x) + "\" cy=\"" + px(last_y) + "\" r=\"3.5\" fill=\"" +
            colour + "\"><title>" + escape(tip) + "</title></circle>";
  }
  if (last && !series.key.dense() && std::isfinite(last->speedup)) {
    annotations.push_back({last_x + 8, last_y + 4, format_fixed(last->speedup, 1) + "×", colour});
  }
  return "<polyline stroke=\"" + colour + "\" points=\"" + points + "\"/>" + dots;
}

// Speedup labels at the ends of the curves, pushed apart so that none overlap.
std::string annotations_svg(std::vector<Annotation> annotations) {
  std::stable_sort(annotations.begin(), annotations.end(),
                   [](const Annotation& a, const Annotation& b) { return a.y < b.y; });
  std::string out;
  for (size_t k = 0; k < annotations.size(); ++k) {
    if (k > 0) annotations[k].y = std::max(annotations[k].y, annotations[k - 1].y + 13);
    out += "<text class=\"speedup\" x=\"" + px(annotations[k].x) + "\" y=\"" +
           px(annotations[k].y) + "\" style=\"fill:" + annotations[k].colour + "\">" +
           annotations[k].text + "</text>";
  }
  return out;
}

std::string latency_chart(const Report& report) {
  const LatencyTable& latency = report.latency;
  double x_min = INFINITY, x_max = 0, y_min = INFINITY, y_max = 0;
  for (const LatencySeries& series : latency.series) {
    for (size_t b = 0; b < latency.bins.size(); ++b) {
      if (series.points[b].n == 0) continue;
      x_min = std::min(x_min, latency.bins[b].center);
      x_max = std::max(x_max, latency.bins[b].center);
      y_min = std::min(y_min, series.points[b].prefill_ms);
      y_max = std::max(y_max, series.points[b].prefill_ms);
    }
  }
  const double width = 860, height = 380;
  const Axis x = make_axis(x_min, x_max, 70, width - 60, 8, false);
  const Axis y = make_axis(y_min, y_max, height - 44, 12, 10, true);
  std::string out = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    px(width) + "\" height=\"" + px(height) + "\" viewBox=\"0 0 " + px(width) +
                    " " + px(height) + "\" role=\"img\">" + chart_axes(x, y);
  std::vector<Annotation> annotations;
  std::string legend = "<ul class=\"legend\">";
  size_t sparse = 0;
  for (const LatencySeries& series : latency.series) {
    const std::string colour =
        series.key.dense() ? kDenseColour : kSeriesColours[sparse++ % std::size(kSeriesColours)];
    out += series_svg(report, series, colour, x, y, annotations);
    legend += "<li><i style=\"background:" + colour + "\"></i>" + escape(report.name(series.key)) +
              "</li>";
  }
  return out + annotations_svg(annotations) + "</svg>" + legend + "</ul>";
}

// ---------------------------------------------------------------------------------------------
// Tables

// A numeric cell carries its value in data-v, so that the script sorts it as a number.
std::string cell(const std::string& html, bool numeric, const std::string& sort_value = "") {
  if (!numeric) return "<td>" + html + "</td>";
  return "<td class=\"num\" data-v=\"" + escape(sort_value) + "\">" + html + "</td>";
}

std::string header_row(const std::vector<std::string>& names, const std::vector<bool>& numeric) {
  std::string out = "<thead><tr>";
  for (size_t c = 0; c < names.size(); ++c) {
    out += std::string(numeric[c] ? "<th class=\"num\">" : "<th>") + escape(names[c]) + "</th>";
  }
  return out + "</tr></thead>";
}

// Rows whose "source" column says "paper" are set apart.
std::string text_table_html(const TextTable& table) {
  const auto source = std::find(table.header.begin(), table.header.end(), "source");
  const size_t source_at = source - table.header.begin();
  std::string out =
      "<div class=\"scroll\"><table>" + header_row(table.header, table.numeric) + "<tbody>";
  for (const auto& row : table.rows) {
    const bool paper = source_at < row.size() && row[source_at] == "paper";
    out += paper ? "<tr class=\"paper\">" : "<tr>";
    for (size_t c = 0; c < row.size(); ++c) {
      std::string text = row[c].empty() ? "—" : escape(row[c]);
      if (c == source_at) {
        text = "<span class=\"tag" + std::string(paper ? " paper" : "") + "\">" + text + "</span>";
      }
      out += table.numeric[c] ? "<td class=\"num\">" + text + "</td>" : "<td>" + text + "</td>";
    }
    out += "</tr>";
  }
  return out + "</tbody></table></div>";
}

std::string stat_html(const Stat& stat) {
  std::string text =
      stat.n > 0 ? format_fixed(stat.mean, 1) + "<small>" + std::to_string(stat.n) + "</small>"
                 : std::string("—");
  if (stat.failed > 0) {
    text += "<small class=\"bad\">" + std::to_string(stat.failed) + " failed</small>";
  }
  return cell(text, true, format_fixed(stat.mean, 4));
}

std::string or_dash(const std::string& text) { return text.empty() ? "—" : text; }

std::string accuracy_html(const Report& report) {
  const AccuracyTable& accuracy = report.accuracy;
  std::vector<std::string> names = {"model", "method", "source"};
  for (const std::string& task : accuracy.tasks) names.push_back(task);
  for (const char* name : {"FLOPs %", "average", "failed"}) names.push_back(name);
  std::vector<bool> numeric(names.size(), true);
  numeric[0] = numeric[1] = numeric[2] = false;
  std::string out =
      "<div class=\"scroll\"><table class=\"sortable\">" + header_row(names, numeric) + "<tbody>";
  for (const AccuracyRow& row : accuracy.rows) {
    out += "<tr>" + cell(escape(row.key.model), false) + cell(escape(row.key.label), false) +
           cell("<span class=\"tag\">measured</span>", false);
    for (const Stat& stat : row.tasks) out += stat_html(stat);
    out += cell(or_dash(format_fixed(row.flops.mean, 1)), true, format_fixed(row.flops.mean, 4)) +
           cell("<b>" + or_dash(format_fixed(row.average, 1)) + "</b>", true,
                format_fixed(row.average, 4)) +
           cell(row.failed ? "<span class=\"bad\">" + std::to_string(row.failed) + "</span>" : "0",
                true, std::to_string(row.failed));
    out += "</tr>";
  }
  for (const PaperAccuracy& paper : report.paper.accuracy) {
    const std::string model =
        paper.model + (paper.setting.empty() ? "" : " (" + paper.setting + ")");
    out += "<tr class=\"paper\">" + cell(escape(model), false) + cell(escape(paper.label), false) +
           cell("<span class=\"tag paper\">paper</span>", false);
    for (size_t t = 0; t < accuracy.tasks.size(); ++t) out += cell("—", true);
    out += cell(or_dash(format_fixed(paper.flops, 1)), true, format_fixed(paper.flops, 4)) +
           cell(format_fixed(paper.average, 1), true, format_fixed(paper.average, 4)) +
           cell("", true) + "</tr>";
  }
  return out + "</tbody></table></div>";
}

std::string runs_html(const std::vector<RunRecord>& runs) {
  const std::vector<std::string> names = {"run",    "sweep",    "shard",         "started",
                                          "commit", "host",     "device",        "driver",
                                          "CUDA",   "LibTorch", "resolved sweep"};
  std::string out = "<div class=\"scroll\"><table class=\"sortable\">" +
                    header_row(names, std::vector<bool>(names.size(), false)) + "<tbody>";
  for (const RunRecord& r : runs) {
    out += "<tr>";
    for (const std::string* field :
         {&r.run_id, &r.sweep_name, &r.shard, &r.started_at, &r.git_commit, &r.host, &r.device,
          &r.driver, &r.cuda, &r.torch_version}) {
      const bool code = field == &r.run_id || field == &r.git_commit;
      out += cell(field->empty() ? "—"
                  : code         ? "<code>" + escape(*field) + "</code>"
                                 : escape(*field),
                  false);
    }
    out += cell(r.sweep_yaml.empty() ? "—"
                                     : "<details><summary>YAML</summary><pre>" +
                                           escape(r.sweep_yaml) + "</pre></details>",
                false);
    out += "</tr>";
  }
  return out + "</tbody></table></div>";
}

std::string number_cell(double value, int decimals) {
  return cell(or_dash(format_fixed(value, decimals)), true, format_fixed(value, 6));
}

std::string sample_row(const SampleRecord& s) {
  auto clipped = [](const std::string& text) {
    return "<td class=\"text\" title=\"" + escape(text) + "\">" + escape(text) + "</td>";
  };
  const bool ok = s.status == "ok";
  std::string out = ok ? "<tr>" : "<tr class=\"bad\">";
  for (const std::string* text : {&s.run_id, &s.model, &s.method_params, &s.task, &s.sample_id}) {
    out += cell(escape(*text), false);
  }
  out += cell(std::to_string(s.frames), true, std::to_string(s.frames)) +
         cell(std::to_string(s.tokens), true, std::to_string(s.tokens)) + number_cell(s.depth, 2) +
         number_cell(s.score, 2) + number_cell(s.prefill_ms, 1) + number_cell(s.attention_ms, 1) +
         number_cell(s.index_ms, 1) + number_cell(100 * s.flops_ratio, 1);
  out += cell(ok ? "ok" : escape(s.status + (s.error.empty() ? "" : ": " + s.error)), false);
  return out + clipped(s.prediction) + clipped(s.target) + "</tr>";
}

std::string samples_html(const std::vector<SampleRecord>& samples) {
  const std::vector<std::string> names = {"run",     "model",      "method",       "task",
                                          "sample",  "frames",     "tokens",       "depth",
                                          "score",   "prefill ms", "attention ms", "index ms",
                                          "FLOPs %", "status",     "prediction",   "target"};
  std::vector<bool> numeric(names.size(), false);
  for (size_t c = 5; c <= 12; ++c) numeric[c] = true;  // frames ... FLOPs %
  std::string out =
      "<input class=\"filter\" type=\"search\" placeholder=\"Filter samples…\" "
      "data-table=\"samples\" hidden><div class=\"scroll\"><table id=\"samples\" "
      "class=\"sortable\">" +
      header_row(names, numeric) + "<tbody>";
  for (const SampleRecord& s : samples) out += sample_row(s);
  return out + "</tbody></table></div>";
}

// ---------------------------------------------------------------------------------------------
// Page

nlohmann::ordered_json run_json(const RunRecord& r) {
  return {{"run_id", r.run_id},
          {"started_at", r.started_at},
          {"sweep_name", r.sweep_name},
          {"shard", r.shard},
          {"git_commit", r.git_commit},
          {"host", r.host},
          {"device", r.device},
          {"driver", r.driver},
          {"cuda", r.cuda},
          {"torch_version", r.torch_version},
          {"sweep_yaml", r.sweep_yaml}};
}

nlohmann::ordered_json sample_json(const SampleRecord& s) {
  return {{"run_id", s.run_id},
          {"case_key", s.case_key},
          {"model", s.model},
          {"method", s.method},
          {"method_params", s.method_params},
          {"pattern_table", s.pattern_table},
          {"task", s.task},
          {"sample_id", s.sample_id},
          {"frames", s.frames},
          {"tokens", s.tokens},
          {"depth", s.depth},
          {"prediction", s.prediction},
          {"target", s.target},
          {"score", s.score},
          {"vision_ms", s.vision_ms},
          {"prefill_ms", s.prefill_ms},
          {"attention_ms", s.attention_ms},
          {"index_ms", s.index_ms},
          {"peak_memory_gb", s.peak_memory_gb},
          {"density", s.density},
          {"flops_ratio", s.flops_ratio},
          {"recall", s.recall},
          {"status", s.status},
          {"error", s.error},
          {"finished_at", s.finished_at}};
}

// The rows as JSON (NaN becomes null). Every '<' is escaped, so "</script>" cannot end the island.
std::string json_island(const Report& report, const std::vector<RunRecord>& runs,
                        const std::vector<SampleRecord>& samples) {
  nlohmann::ordered_json data = {{"title", report.title},
                                 {"generated_at", report.generated_at},
                                 {"run_ids", report.run_ids},
                                 {"runs", nlohmann::ordered_json::array()},
                                 {"samples", nlohmann::ordered_json::array()}};
  for (const RunRecord& r : runs) data["runs"].push_back(run_json(r));
  for (const SampleRecord& s : samples) data["samples"].push_back(sample_json(s));
  const std::string text = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (char c : text) out += c == '<' ? std::string("\\u003c") : std::string(1, c);
  return "<script type=\"application/json\" id=\"mmi-data\">" + out + "</script>";
}

std::string page_header(const Report& report) {
  std::string runs;
  for (const std::string& id : report.run_ids) {
    runs += (runs.empty() ? "" : " ") + std::string("<code>") + escape(id) + "</code>";
  }
  std::string models;
  for (const std::string& m : report.models) models += (models.empty() ? "" : ", ") + escape(m);
  std::string nav = "<a href=\"#accuracy\">Accuracy</a>";
  for (const NiahSection& section : report.niah) {
    nav += "<a href=\"#" + section.task + "\">" + task_title(section.task) + "</a>";
  }
  if (!report.niah.empty() || !report.paper.retrieval.empty()) {
    nav += "<a href=\"#niah-summary\">NIAH summary</a>";
  }
  if (!report.latency.series.empty() || !report.paper.speedups.empty()) {
    nav += "<a href=\"#latency\">Latency</a>";
  }
  if (!report.kernel_bench.empty()) nav += "<a href=\"#kernels\">Kernels</a>";
  nav += "<a href=\"#runs\">Runs</a><a href=\"#samples-section\">Samples</a>";
  return "<header><h1>mmi report <span>· " +
         escape(report.title.empty() ? "untitled" : report.title) +
         "</span></h1><div class=\"meta\">" + std::to_string(report.samples) + " samples (" +
         std::to_string(report.failed) + " failed) · models: " + (models.empty() ? "—" : models) +
         " · runs: " + (runs.empty() ? "—" : runs) +
         (report.generated_at.empty() ? "" : " · generated " + escape(report.generated_at)) +
         "</div><nav>" + nav + "</nav></header>";
}

std::string latency_section(const Report& report) {
  std::string out = "<section id=\"latency\"><h2>Latency against context length</h2>";
  if (!report.latency.series.empty()) {
    out +=
        "<p class=\"note\">Median LM pre-fill per context length over ok samples; labels give "
        "the speedup over dense (dense pre-fill / pre-fill) at the longest context.</p>" +
        latency_chart(report) + "<h3>Medians</h3>" + text_table_html(latency_text(report));
  }
  if (!report.paper.speedups.empty()) {
    out += "<h3>Published speedups</h3>" + text_table_html(paper_speedup_text(report));
  }
  return out + "</section>";
}

std::string niah_summary_section(const Report& report) {
  if (report.niah.empty() && report.paper.retrieval.empty()) return "";
  return "<section id=\"niah-summary\"><h2>NIAH summary</h2><p class=\"note\">Mean over cells × "
         "100; Δ dense in points.</p>" +
         text_table_html(niah_summary_text(report)) + "</section>";
}

}  // namespace

std::string render_html(const Report& report, const std::vector<RunRecord>& runs,
                        const std::vector<SampleRecord>& samples) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>mmi report: " +
      escape(report.title) + "</title><style>" + kStyle + "</style></head><body>\n" +
      page_header(report) + "\n<main>\n";
  out +=
      "<section id=\"accuracy\"><h2>Accuracy</h2><p class=\"note\">Mean score × 100 over ok "
      "samples (n small); FLOPs in % of dense attention; the average is the plain mean over "
      "tasks.</p>" +
      accuracy_html(report) + "</section>\n";
  for (const NiahSection& section : report.niah) out += niah_html(report, section) + "\n";
  out += niah_summary_section(report) + "\n";
  if (!report.latency.series.empty() || !report.paper.speedups.empty()) {
    out += latency_section(report) + "\n";
  }
  if (!report.kernel_bench.empty()) {
    out += "<section id=\"kernels\"><h2>Attention kernels</h2><p class=\"note\">mmi bench attention: one "
           "layer of pre-fill attention; speedups over cuDNN SDPA measured in the same run.</p>" +
           text_table_html(kernel_bench_text(report)) + "</section>\n";
  }
  out += "<section id=\"runs\"><h2>Runs</h2>" + runs_html(runs) + "</section>\n";
  out +=
      "<section id=\"samples-section\"><h2>Samples</h2><p class=\"note\">The latest row per "
      "case. Click a header to sort.</p>" +
      samples_html(samples) + "</section>\n</main>\n";
  std::string sources;
  for (const std::string& s : report.paper.sources) sources += "<br>Paper: " + escape(s);
  out += "<footer>Generated by <code>mmi report</code>." + sources + "</footer>\n";
  return out + json_island(report, runs, samples) + "\n<script>" + kScript +
         "</script>\n</body></html>\n";
}

}  // namespace mmi
