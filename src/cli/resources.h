// Where the read-only files the binary serves at run time are (the dashboard and uPlot). Found relative to
// the executable, never in the source tree, so an installed or moved iotpipe works from any directory:
//   <prefix>/bin/iotpipe   ->  <prefix>/share/iotpipe/web, <prefix>/share/iotpipe/uplot   (make install)
//   <build>/iotpipe        ->  <build>/share/iotpipe/web, .../uplot   (links CMake makes in the build tree)
#pragma once
#include <string>

namespace iotpipe::cli {

// The dashboard directory (index.html, app.js, style.css): `given` (--web-dir) if set, else
// $IOTPIPE_WEB_DIR, else the first of the places above holding index.html (else the first place).
std::string FindWebDir(const std::string& given);
// uPlot's dist files (uPlot.iife.min.js, uPlot.min.css) for a dashboard directory: <web>/../uplot, else
// a source checkout's <web>/../.deps/node/node_modules/uplot/dist (--web-dir pointing at a checkout's web/).
std::string FindUplotDir(const std::string& web_dir);

}  // namespace iotpipe::cli
