// bindings/bindings.hpp
// Declarations shared by the binding files of multilane._core.
#pragma once

#include <nanobind/nanobind.h>

namespace multilane {
class Arena;
}

namespace multilane::bindings {
/// This process's arena for attachments and blobs (never destroyed).
Arena& process_arena();

void bind_errors(nanobind::module_& m);
void bind_frame(nanobind::module_& m);
void bind_hub(nanobind::module_& m);
void bind_endpoint(nanobind::module_& m);
void bind_attachment(nanobind::module_& m);
void bind_heap(nanobind::module_& m);
void bind_wait_watch(nanobind::module_& m);
}  // namespace multilane::bindings
