// The differential test's frame generator: reproducible, and its mix covers
// what the dispatch-key contract distinguishes.
#include "tests/ref/framegen.h"
#include "tests/ref/ref_classifier.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

namespace {

using tcdref::Class;
using tcdref::FrameGen;

// FNV-1a over the lengths and bytes of the first n frames of a seed.
uint64_t fingerprint(uint64_t seed, int n) {
    FrameGen g(seed);
    uint64_t h = 0xCBF29CE484222325ULL;
    auto mix = [&h](uint8_t b) {
        h ^= b;
        h *= 0x100000001B3ULL;
    };
    for (int i = 0; i < n; ++i) {
        const std::vector<uint8_t> f = g.next();
        for (int s = 0; s < 32; s += 8) mix(static_cast<uint8_t>(f.size() >> s));
        for (uint8_t b : f) mix(b);
    }
    return h;
}

TEST(FrameGen, SameSeedSameFrames) {
    FrameGen a(12345), b(12345);
    for (int i = 0; i < 5000; ++i) ASSERT_EQ(a.next(), b.next()) << "frame " << i;
}

TEST(FrameGen, DifferentSeedsDiffer) {
    FrameGen a(1), b(2);
    int same = 0;
    for (int i = 0; i < 1000; ++i) same += a.next() == b.next() ? 1 : 0;
    EXPECT_LT(same, 20);  // only the odd empty/tiny frame may coincide
    EXPECT_NE(fingerprint(1, 100), fingerprint(2, 100));
    EXPECT_NE(fingerprint(0, 100), fingerprint(UINT64_MAX, 100));
}

// Pins the exact sequence so a failing seed reported by the differential test
// reproduces on any machine and standard library. If you change the generator
// on purpose, update the value (old seeds then mean different frames).
TEST(FrameGen, GoldenSequence) {
    EXPECT_EQ(fingerprint(42, 1000), 0xDB45FB28F795B2BAULL);
}

// Length of the IPv6 extension chain present in the frame (walked without
// the spec's limit of 8), or -1 when the frame is not IPv6 with a whole header.
int chain_length_in_frame(const std::vector<uint8_t>& f) {
    if (f.size() < 14) return -1;
    size_t type_off = 12;
    unsigned type = (unsigned{f[12]} << 8) | f[13];
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88A8); ++tags) {
        if (type_off + 6 + 2 > f.size()) return -1;
        type_off += 4;
        type = (unsigned{f[type_off]} << 8) | f[type_off + 1];
    }
    const size_t l3 = type_off + 2;
    if (type != 0x86DD || l3 + 40 > f.size() || (f[l3] >> 4) != 6) return -1;
    unsigned nh = f[l3 + 6];
    size_t pos = l3 + 40;
    int n = 0;
    while (nh == 0 || nh == 43 || nh == 44 || nh == 60) {
        if (pos + 2 > f.size()) break;
        const size_t len = nh == 44 ? 8 : (size_t{f[pos + 1]} + 1) * 8;
        if (pos + len > f.size()) break;
        nh = f[pos];
        pos += len;
        ++n;
    }
    return n;
}

TEST(FrameGen, MixOver100000Frames) {
    constexpr int kFrames = 100000;
    FrameGen g(7);
    std::array<int, 4> classes{};
    std::array<int, 11> chains{};
    std::array<int, 256> keys4{}, keys6{};
    int below14 = 0, small = 0, large = 0, longest = 0;
    for (int i = 0; i < kFrames; ++i) {
        const std::vector<uint8_t> f = g.next();
        ASSERT_LE(f.size(), FrameGen::kMaxFrameLen);
        longest = std::max(longest, static_cast<int>(f.size()));
        if (f.size() < 14) ++below14;
        if (f.size() >= 14 && f.size() <= 80) ++small;
        if (f.size() > 500) ++large;
        const tcdref::RefResult r = tcdref::classify(f.data(), f.size());
        ++classes[static_cast<size_t>(r.cls)];
        if (r.cls == Class::ipv4) ++keys4[static_cast<size_t>(r.key)];
        if (r.cls == Class::ipv6) ++keys6[static_cast<size_t>(r.key)];
        const int n = chain_length_in_frame(f);
        if (n >= 0 && n <= 10) ++chains[static_cast<size_t>(n)];
    }
    auto share = [](int count) { return 100.0 * count / kFrames; };
    const double v4 = share(classes[static_cast<size_t>(Class::ipv4)]);
    const double v6 = share(classes[static_cast<size_t>(Class::ipv6)]);
    const double nonip = share(classes[static_cast<size_t>(Class::non_ip)]);
    const double bad = share(classes[static_cast<size_t>(Class::malformed)]);
    EXPECT_GT(v4, 18.0);
    EXPECT_LT(v4, 40.0);
    EXPECT_GT(v6, 15.0);
    EXPECT_LT(v6, 35.0);
    EXPECT_GT(nonip, 10.0);
    EXPECT_LT(nonip, 28.0);
    EXPECT_GT(bad, 18.0);
    EXPECT_LT(bad, 40.0);

    // Frames the kernel harness cannot run exist, but rarely.
    EXPECT_GT(share(below14), 0.5);
    EXPECT_LT(share(below14), 3.0);
    // Short frames (where the boundaries are) are well represented; long ones exist.
    EXPECT_GT(share(small), 20.0);
    EXPECT_GT(share(large), 5.0);
    EXPECT_EQ(longest, static_cast<int>(FrameGen::kMaxFrameLen));

    for (size_t n = 0; n <= 10; ++n) EXPECT_GT(chains[n], 500) << "IPv6 chains of length " << n;

    // Keys the spec names, on both families.
    for (int key : {1, 4, 6, 17, 41, 47, 50, 51, 132}) {
        EXPECT_GT(keys4[static_cast<size_t>(key)], 100) << "IPv4 key " << key;
    }
    for (int key : {6, 17, 51, 58, 59}) {
        EXPECT_GT(keys6[static_cast<size_t>(key)], 100) << "IPv6 key " << key;
    }
    int v6_distinct = 0;
    for (int c : keys6) v6_distinct += c > 0 ? 1 : 0;
    EXPECT_GT(v6_distinct, 200);
    // The walked values never come out as IPv6 keys.
    for (int key : {0, 43, 44, 60}) EXPECT_EQ(keys6[static_cast<size_t>(key)], 0);
}

}  // namespace
