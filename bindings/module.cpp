// bindings/module.cpp
// multilane._core: the nanobind module. It only calls the bind_<topic> functions.
#include "bindings.hpp"

NB_MODULE(_core, m) {
  m.doc() = "multilane's C++ core: shared-memory rings, futex doorbells, worker supervision.";
  multilane::bindings::bind_errors(m);
  multilane::bindings::bind_frame(m);
  multilane::bindings::bind_attachment(m);
  multilane::bindings::bind_heap(m);
  multilane::bindings::bind_wait_watch(m);
  multilane::bindings::bind_hub(m);
  multilane::bindings::bind_endpoint(m);
}
