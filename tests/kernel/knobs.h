#pragma once
#include <cstdint>
namespace tcdtest {
extern uint64_t g_frames;  // generated frames for the differential test
extern uint64_t g_seed;    // its seed (random unless given)
extern bool g_seed_given;
}  // namespace tcdtest
