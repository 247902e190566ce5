// bindings/convert.hpp
// Conversions between frames and Python objects, shared by the hub and endpoint bindings.
#pragma once

#include <nanobind/nanobind.h>

#include <chrono>
#include <cstdint>
#include <cmath>
#include <span>
#include <vector>

#include "multilane/frame.hpp"

namespace multilane::bindings {

/// None -> wait forever (negative), else seconds -> nanoseconds (clamped at 0).
inline std::chrono::nanoseconds to_timeout(const nanobind::object& seconds) {
  if (seconds.is_none()) return std::chrono::nanoseconds(-1);
  const double s = nanobind::cast<double>(seconds);
  if (std::isnan(s)) throw std::invalid_argument("timeout must be a number, not NaN");
  if (s <= 0) return std::chrono::nanoseconds(0);
  if (s > 1e9) return std::chrono::nanoseconds(-1);
  return std::chrono::nanoseconds(static_cast<long long>(s * 1e9));
}

inline std::span<const std::byte> as_span(const nanobind::bytes& b) {
  return {reinterpret_cast<const std::byte*>(b.c_str()), b.size()};
}

/// A Frame record (kind, task_id, aux, flags, payload, attachments: a tuple, or None if
/// there are none); takes the frame's attachments. Defined in bind_frame.cpp.
nanobind::object frame_record(Frame& f);

/// A WorkerExit record (kind 0, running_task, exit_code, signal, pid).
nanobind::object exit_record(std::uint64_t running_task, int exit_code, int exit_signal, int pid);

/// Handles copied out of a Python sequence of Attachment objects (the blocks are shared).
inline std::vector<Attachment> attachments_of(const nanobind::handle& sequence) {
  std::vector<Attachment> out;
  for (nanobind::handle item : sequence) out.push_back(nanobind::cast<Attachment>(item));
  return out;
}

}  // namespace multilane::bindings
