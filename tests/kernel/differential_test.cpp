// Differential test: the BPF dispatcher (through BPF_PROG_TEST_RUN, trace
// mode) against the independent reference classifier, on every frame of
// every capture in ../shared/pcaps and on generated and mutated frames.
// Class, key, missed and the counter totals must agree exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <random>
#include <string>
#include <vector>

#include "core/pcap_reader.h"
#include "core/trace.h"
#include "tests/common/kernel.h"
#include "tests/kernel/knobs.h"
#include "tests/ref/framegen.h"
#include "tests/ref/ref_classifier.h"

namespace {

namespace fs = std::filesystem;

std::string pcap_dir() {
    if (const char* e = std::getenv("TCD_PCAP_DIR"); e && *e) return e;
    return TCD_PCAP_DIR;
}

std::string hex(const uint8_t* d, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; i++) s += fmt::format("{:02x}", d[i]);
    return s;
}

// Runs frames through both sides and keeps the reference's counters.
class Differ {
public:
    explicit Differ(tcd::Tracer& t) : t_(t) {}

    void frame(const uint8_t* data, size_t len, const std::string& where) {
        tcdref::RefResult want = tcdref::classify(data, len);
        frames_++;
        if (len < tcd::Tracer::kMinFrame) {
            // test_run cannot take it; the contract says malformed.
            short_++;
            if (want.cls != tcdref::Class::malformed) note(where, data, len, "short frame not malformed in the reference");
            return;
        }
        auto got = t_.run(data, len, frames_);
        if (!got) {
            note(where, data, len, "test_run failed: " + got.error().message());
            return;
        }
        size_t slot = want.cls == tcdref::Class::non_ip      ? 256
                      : want.cls == tcdref::Class::malformed ? 257
                                                             : size_t(want.key);
        // The dispatcher counts the bytes it sees (data_end - data). A frame
        // can only reach this non-frags program whole, but test_run hands a
        // frame longer than a page's worth to it as a linear part of
        // 4096 - 256 (headroom) - 320 (skb_shared_info) bytes plus fragments.
        constexpr size_t kTestRunLinear = 4096 - 256 - 320;
        ref_[slot].packets++;
        ref_[slot].bytes += std::min(len, kTestRunLinear);
        bool ip = want.cls == tcdref::Class::ipv4 || want.cls == tcdref::Class::ipv6;
        if (ip) ref_[slot].missed++;  // no instance: every key misses
        if (got->cls != tcdref::class_name(want.cls)) {
            note(where, data, len, fmt::format("class bpf={} ref={}", got->cls, tcdref::class_name(want.cls)));
            return;
        }
        int key = got->key ? int(*got->key) : -1;
        if (key != want.key) note(where, data, len, fmt::format("key bpf={} ref={}", key, want.key));
        if (got->missed != ip) note(where, data, len, "missed differs");
        if (got->verdict != "XDP_PASS") note(where, data, len, "verdict " + got->verdict);
    }

    // Compares the trace copy's own counters with the reference's sums.
    void check_counters() {
        auto c = t_.counters();
        ASSERT_TRUE(c) << c.error().message();
        for (size_t slot = 0; slot < 258; slot++) {
            const tcd::Counters& got = slot < 256 ? c->keys[slot] : slot == 256 ? c->non_ip : c->malformed;
            EXPECT_EQ(got.packets, ref_[slot].packets) << "slot " << slot;
            EXPECT_EQ(got.bytes, ref_[slot].bytes) << "slot " << slot;
            EXPECT_EQ(got.missed, ref_[slot].missed) << "slot " << slot;
        }
    }

    uint64_t frames() const { return frames_; }
    uint64_t mismatches() const { return mismatches_; }
    uint64_t short_frames() const { return short_; }

private:
    void note(const std::string& where, const uint8_t* d, size_t n, const std::string& what) {
        if (++mismatches_ <= 20)
            ADD_FAILURE() << where << ": " << what << "\n  frame (" << n << " bytes): " << hex(d, std::min<size_t>(n, 200));
    }

    tcd::Tracer& t_;
    tcd::Counters ref_[258]{};
    uint64_t frames_ = 0, mismatches_ = 0, short_ = 0;
};

std::unique_ptr<tcd::Tracer> fresh_tracer() {
    // A pin dir that does not exist: no instance, an empty jump table.
    auto t = tcd::Tracer::open("/sys/fs/bpf/" + tcdtest::unique_name("tcddiff_none"));
    if (!t) {
        ADD_FAILURE() << t.error().message();
        return nullptr;
    }
    return std::make_unique<tcd::Tracer>(std::move(*t));
}

TEST(Differential, EveryCaptureFrame) {
    TCD_REQUIRE_KERNEL();
    auto tracer = fresh_tracer();
    ASSERT_TRUE(tracer);
    Differ d(*tracer);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(pcap_dir()))
        if (e.path().extension() == ".pcap" || e.path().extension() == ".pcapng") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_GT(files.size(), 100u) << "captures not found in " << pcap_dir();
    for (const auto& f : files) {
        auto r = tcd::PcapReader::open(f.string());
        ASSERT_TRUE(r) << r.error().message();
        tcd::Frame fr{};
        while (true) {
            auto more = r->next(fr);
            ASSERT_TRUE(more) << more.error().message();
            if (!*more) break;
            d.frame(fr.data, fr.caplen, fmt::format("{} frame {}", f.filename().string(), fr.number));
        }
    }
    d.check_counters();
    EXPECT_EQ(d.frames(), 6849u);
    EXPECT_EQ(d.mismatches(), 0u);
    std::printf("differential: %zu captures, %llu frames (%llu shorter than 14 bytes), %llu mismatches\n",
                files.size(), (unsigned long long)d.frames(), (unsigned long long)d.short_frames(),
                (unsigned long long)d.mismatches());
}

TEST(Differential, GeneratedAndMutatedFrames) {
    TCD_REQUIRE_KERNEL();
    uint64_t seed = tcdtest::g_seed_given ? tcdtest::g_seed : std::random_device{}();
    uint64_t n = tcdtest::g_frames;
    std::printf("differential: %llu generated frames, seed %llu (rerun: tcd_kernel_tests "
                "--gtest_filter='Differential.*' --frames %llu --seed %llu)\n",
                (unsigned long long)n, (unsigned long long)seed, (unsigned long long)n, (unsigned long long)seed);
    RecordProperty("seed", std::to_string(seed));
    auto tracer = fresh_tracer();
    ASSERT_TRUE(tracer);
    Differ d(*tracer);
    tcdref::FrameGen gen(seed);
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < n; i++) {
        auto f = gen.next();
        d.frame(f.data(), f.size(), fmt::format("seed {} frame {}", seed, i + 1));
        if (d.mismatches() > 100) break;
    }
    d.check_counters();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(d.mismatches(), 0u) << "seed " << seed;
    std::printf("differential: %llu frames in %.1f s, %llu mismatches, seed %llu\n", (unsigned long long)d.frames(), s,
                (unsigned long long)d.mismatches(), (unsigned long long)seed);
}

}  // namespace
