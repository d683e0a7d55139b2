// jitgen/escape/escape.hpp — the umbrella header of the goroutine-aware escape analysis
// analyze_escapes() decides the ownership class of every allocation site of a verified
// UltraScript module (analysis.hpp), with reasons and statistics (decision.hpp), printed by
// report.hpp. Tools and other layers include only this header.
#pragma once

#include "jitgen/escape/analysis.hpp"
#include "jitgen/escape/decision.hpp"
#include "jitgen/escape/report.hpp"
