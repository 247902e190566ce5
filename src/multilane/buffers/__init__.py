"""How data crosses to a worker: pickling with out-of-band buffers (``_serialize``),
regions of shared memory the workers map (``_regions``, ``_shared``), and arrays made in
shared memory from the start (``_zero_copy``)."""
