// bindings/bind_attachment.cpp
// Binds Attachment (out-of-band buffers in a memfd) and MappedBuffer, a buffer-protocol view
// of one buffer in a private mapping. Packing copies with the GIL released.
#include <nanobind/nanobind.h>

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "bindings.hpp"
#include "multilane/attachment.hpp"

namespace nb = nanobind;

namespace multilane::bindings {

namespace {

/// One buffer of a mapped attachment. The mapping lives as long as any MappedBuffer (or a
/// memoryview or array made from one) refers to it.
struct MappedBuffer {
  std::shared_ptr<const AttachmentMap> map;
  std::span<std::byte> data;
  bool readonly = false;
};

int mapped_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* buffer = nb::inst_ptr<MappedBuffer>(self);
  return PyBuffer_FillInfo(view, self, buffer->data.data(), static_cast<Py_ssize_t>(buffer->data.size()),
                           buffer->readonly ? 1 : 0, flags);
}

PyType_Slot mapped_slots[] = {{Py_bf_getbuffer, reinterpret_cast<void*>(mapped_getbuffer)}, {0, nullptr}};

/// Holds Py_buffer views for the duration of a pack (the exporters stay locked meanwhile).
class Views {
 public:
  explicit Views(const nb::list& objects) {
    views_.reserve(objects.size());
    for (nb::handle obj : objects) {
      Py_buffer view;
      if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_ANY_CONTIGUOUS) != 0) throw nb::python_error();
      views_.push_back(view);
      spans_.emplace_back(static_cast<const std::byte*>(view.buf), static_cast<std::size_t>(view.len));
    }
  }
  ~Views() {
    for (Py_buffer& view : views_) PyBuffer_Release(&view);
  }
  Views(const Views&) = delete;
  Views& operator=(const Views&) = delete;
  [[nodiscard]] std::span<const std::span<const std::byte>> spans() const { return spans_; }

 private:
  std::vector<Py_buffer> views_;
  std::vector<std::span<const std::byte>> spans_;
};

}  // namespace

/// The process's arena: free blocks up to an eighth of memory, at most 1 GiB. Never
/// destroyed (blocks may be released by Python objects freed during interpreter exit).
Arena& process_arena() {
  static Arena* arena = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGE_SIZE);
    const std::size_t memory = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
    const std::size_t keep = std::min<std::size_t>(std::size_t{1} << 30, memory / 8);
    AttachmentMap::set_kept_bytes(keep);  // received blocks kept mapped: the same bound
    return new Arena(keep);
  }();
  return *arena;
}

void bind_attachment(nb::module_& m) {
  nb::class_<MappedBuffer>(m, "MappedBuffer", nb::type_slots(mapped_slots), nb::is_weak_referenceable(),
                           "One received buffer, mapped copy-on-write (writes stay in this process).")
      .def("__len__", [](const MappedBuffer& b) { return b.data.size(); })
      .def_prop_ro("address", [](const MappedBuffer& b) { return reinterpret_cast<std::uintptr_t>(b.data.data()); });

  m.def(
      "buffer_address",
      [](const nb::handle& obj) {
        Py_buffer view;
        if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_ANY_CONTIGUOUS) != 0) throw nb::python_error();
        const auto address = reinterpret_cast<std::uintptr_t>(view.buf);
        PyBuffer_Release(&view);
        return address;
      },
      nb::arg("buffer"), "The address of a contiguous buffer's first byte.");

  nb::class_<Attachment>(m, "Attachment", "Buffers packed into a memfd block, to send beside a frame.")
      .def_prop_ro("count", &Attachment::count)
      .def_prop_ro("size", &Attachment::size)
      .def_prop_ro("payload_bytes", &Attachment::payload_bytes)
      .def_prop_ro("fd", &Attachment::fd, "The block's descriptor: tells apart the blocks open here.")
      .def("taint", &Attachment::taint, "The block went to a process that died: never reuse it.")
      .def(
          "map",
          [](const Attachment& attachment, bool readonly) {
            std::shared_ptr<const AttachmentMap> map;
            {
              nb::gil_scoped_release release;  // mapping a large block in takes a while
              map = std::make_shared<const AttachmentMap>(attachment);
            }
            nb::list out;
            for (std::size_t i = 0; i < map->count(); ++i) {
              out.append(nb::cast(MappedBuffer{map, map->buffer(i), readonly}));
            }
            return out;
          },
          nb::arg("readonly") = false,
          "Maps the block privately; returns one MappedBuffer per buffer (no copy). A received "
          "attachment can be mapped once.");

  m.def(
      "pack_buffers",
      [](const nb::list& buffers) {
        Views views(buffers);
        nb::gil_scoped_release release;
        return process_arena().pack(views.spans());
      },
      nb::arg("buffers"),
      "Copies contiguous buffers (bytes, memoryview, PickleBuffer.raw()...) into a block of this "
      "process's arena.");

  m.def(
      "arena_trim",
      [] {
        process_arena().trim();
        AttachmentMap::drop_kept();
      },
      "Closes the arena's free blocks and unmaps kept received blocks (no pool is left).");

  m.def(
      "settle_kept_mappings",
      [] {
        nb::gil_scoped_release release;  // 2 ms per 256 MB of page tables to read
        AttachmentMap::settle_kept();
      },
      "Checks received blocks released since the last call; keeps their mappings if clean.");

  m.def("arena_stats", [] {
    const Arena::Stats s = process_arena().stats();
    nb::dict out;
    out["blocks_made"] = s.blocks_made;
    out["blocks_reused"] = s.blocks_reused;
    out["free_bytes"] = s.free_bytes;
    out["lent_blocks"] = s.lent_blocks;
    out["kept_mapped_bytes"] = AttachmentMap::kept_bytes();
    return out;
  });
}

}  // namespace multilane::bindings
