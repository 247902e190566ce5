// cpp/tests/test_smoke.cpp
// Temporary: proves the core links and a frame crosses a ring.
#include <gtest/gtest.h>

#include "multilane/ring.hpp"
#include "multilane/shm_region.hpp"

TEST(Smoke, FrameCrossesRing) {
  using namespace multilane;
  auto region = ShmRegion::create(Ring::bytes_for(1024));
  Doorbell r, w;
  Ring producer = Ring::create(region.data(), 1024, &r, &w);
  Ring consumer = Ring::attach(region.data(), region.size(), &r, &w);
  const std::byte data[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  ASSERT_TRUE(producer.try_push(data));
  std::vector<std::byte> out;
  ASSERT_TRUE(consumer.try_pop(out));
  EXPECT_EQ(out.size(), 3u);
}
