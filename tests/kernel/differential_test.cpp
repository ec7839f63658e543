// Differential test: the BPF dispatcher (through BPF_PROG_TEST_RUN, trace
// mode) against the independent reference classifier, on every frame of
// every capture in tests/data/pcaps and on generated and mutated frames.
// Class, key, missed and the counter totals must agree exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "core/pcap_reader.h"
#include "core/specialise.h"
#include "core/wiring.h"
#include "tcd/shared.h"
#include "core/trace.h"
#include "tests/common/kernel.h"
#include "tests/kernel/knobs.h"
#include "tests/ref/framegen.h"
#include "tests/ref/ref_classifier.h"
#include "tests/ref/ref_port.h"

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

// What is wired behind a tracer: key -> the verdict of its handler, and on a
// port instance each port's counter slot (0: none).
struct Wiring {
    std::map<uint32_t, uint32_t> verdict;
    std::vector<uint32_t> slots;
};

// Runs frames through both sides and keeps the reference's counters. The
// tracer has an empty jump table behind it (every key misses and gets the
// miss action) or, with `wiring`, an instance's; counters are its own.
class Differ {
public:
    explicit Differ(tcd::Tracer& t, tcd::MissAction miss = tcd::MissAction::pass, Wiring wiring = {})
        : t_(t), kind_(t.kind()), miss_(miss), wiring_(std::move(wiring)) {}

    struct Want {
        std::string cls;
        int key;
        size_t row;
        bool keyed;  // a key that is looked up in the jump table
    };

    Want reference(const uint8_t* data, size_t len) const {
        if (kind_.key == tcd::KeyKind::port) {
            tcdref::PortResult r = tcdref::classify_port(data, len);
            switch (r.cls) {
            case tcdref::PortClass::non_ip: return {"non-ip", -1, 1024, false};
            case tcdref::PortClass::malformed: return {"malformed", -1, 1025, false};
            case tcdref::PortClass::no_port: return {"no-port", -1, 1026, false};
            default: {
                size_t slot = size_t(r.port) < wiring_.slots.size() ? wiring_.slots[r.port] : 0;
                return {tcdref::port_class_name(r.cls), r.port, slot, true};  // slot 0: "other ports"
            }
            }
        }
        tcdref::RefResult r = tcdref::classify(data, len);
        if (r.cls == tcdref::Class::non_ip) return {"non-ip", -1, 256, false};
        if (r.cls == tcdref::Class::malformed) return {"malformed", -1, 257, false};
        return {tcdref::class_name(r.cls), r.key, size_t(r.key), true};
    }

    void frame(const uint8_t* data, size_t len, const std::string& where) {
        Want want = reference(data, len);
        frames_++;
        if (len < tcd::Tracer::kMinFrame) {
            // test_run cannot take it; the contract says malformed.
            short_++;
            if (want.cls != "malformed") note(where, data, len, "short frame not malformed in the reference");
            return;
        }
        // tc's test_run builds an skb of at most a page; such frames never
        // reach this non-frags XDP program either, beyond 3520 bytes.
        if (kind_.hook == tcd::Hook::tc && len > kTestRunLinear) {
            skipped_++;
            return;
        }
        auto got = t_.run(data, len, frames_);
        if (!got) {
            note(where, data, len, "test_run failed: " + got.error().message());
            return;
        }
        if (!got->ran) {  // tc's test_run refuses a cut IP header
            skipped_++;
            if (want.cls != "malformed") note(where, data, len, "frame not run but not malformed in the reference");
            return;
        }
        // XDP counts the bytes it sees (data_end - data): test_run hands a
        // frame longer than a page's worth over as a linear part of
        // 4096 - 256 (headroom) - 320 (skb_shared_info) bytes plus fragments.
        // tc counts skb->len.
        size_t bytes = kind_.hook == tcd::Hook::xdp ? std::min(len, kTestRunLinear) : len;
        Row& row = ref_[want.row];
        row.packets++;
        row.bytes += bytes;
        auto hit = want.keyed ? wiring_.verdict.find(uint32_t(want.key)) : wiring_.verdict.end();
        bool wired = hit != wiring_.verdict.end();
        if (want.keyed && !wired) row.missed++;
        if (wired) hits_++;
        if (got->cls != want.cls) {
            note(where, data, len, fmt::format("class bpf={} ref={}", got->cls, want.cls));
            return;
        }
        int key = got->key ? int(*got->key) : -1;
        if (key != want.key) note(where, data, len, fmt::format("key bpf={} ref={}", key, want.key));
        if (got->missed != (want.keyed && !wired)) note(where, data, len, "missed differs");
        // non-ip and malformed pass (next with miss action next); a keyed
        // frame runs its handler or misses and, like no-port, gets the miss
        // action.
        bool miss = (want.keyed && !wired) || want.cls == "no-port";
        uint32_t v = wired ? hit->second
                     : miss ? tcd::miss_action_verdict(miss_, kind_.hook) : tcd::undispatched_verdict(miss_, kind_.hook);
        std::string verdict = tcd::verdict_name(kind_.hook, v);
        if (tcd::verdict_name(got->verdict) != verdict)
            note(where, data, len, "verdict " + tcd::verdict_name(got->verdict) + ", want " + verdict);
    }

    // Compares the trace copy's own counters with the reference's sums.
    void check_counters() {
        auto c = t_.counters();
        ASSERT_TRUE(c) << c.error().message();
        const bool port = kind_.key == tcd::KeyKind::port;
        const size_t rows = port ? 1027 : 258;
        for (size_t r = 0; r < rows; r++) {
            const tcd::Counters* got;
            if (r < c->keys.size()) got = &c->keys[r];
            else if (r == (port ? 1024u : 256u)) got = &c->non_ip;
            else if (r == (port ? 1025u : 257u)) got = &c->malformed;
            else got = &c->no_port;
            EXPECT_EQ(got->packets, ref_[r].packets) << "row " << r;
            EXPECT_EQ(got->bytes, ref_[r].bytes) << "row " << r;
            EXPECT_EQ(got->missed, ref_[r].missed) << "row " << r;
        }
    }

    uint64_t frames() const { return frames_; }
    uint64_t hits() const { return hits_; }  // frames whose key is wired
    uint64_t mismatches() const { return mismatches_; }
    uint64_t short_frames() const { return short_; }
    uint64_t skipped() const { return skipped_; }

private:
    static constexpr size_t kTestRunLinear = 4096 - 256 - 320;
    struct Row {
        uint64_t packets = 0, bytes = 0, missed = 0;
    };
    void note(const std::string& where, const uint8_t* d, size_t n, const std::string& what) {
        if (++mismatches_ <= 20)
            ADD_FAILURE() << where << ": " << what << "\n  frame (" << n << " bytes): " << hex(d, std::min<size_t>(n, 200));
    }

    tcd::Tracer& t_;
    tcd::Kind kind_;
    tcd::MissAction miss_;
    Wiring wiring_;
    Row ref_[1027]{};
    uint64_t frames_ = 0, mismatches_ = 0, short_ = 0, skipped_ = 0, hits_ = 0;
};

// One case: a dispatcher kind and its miss action.
struct DiffCase {
    tcd::Kind kind;
    tcd::MissAction miss = tcd::MissAction::pass;
    unsigned share = 4;  // of the generated frames: 1/share (1 for the main kind)
};

void PrintTo(const DiffCase& c, std::ostream* os) {
    *os << tcd::key_kind_name(c.kind.key) << "/" << tcd::hook_name(c.kind.hook) << " miss "
        << tcd::miss_action_name(c.miss) << " 1/" << c.share;
}

// A tracer with no instance behind it: an empty jump table, every key misses
// and gets the case's miss action.
std::unique_ptr<tcd::Tracer> fresh_tracer(const DiffCase& c) {
    auto t = tcd::Tracer::open("/sys/fs/bpf/" + tcdtest::unique_name("tcddiff_none"), c.kind, c.miss);
    if (!t) {
        ADD_FAILURE() << t.error().message();
        return nullptr;
    }
    return std::make_unique<tcd::Tracer>(std::move(*t));
}

class Differential : public ::testing::TestWithParam<DiffCase> {};

std::string kind_label(const ::testing::TestParamInfo<DiffCase>& i) {
    return std::string(tcd::key_kind_name(i.param.kind.key)) + "_" + tcd::hook_name(i.param.kind.hook) +
           (i.param.miss == tcd::MissAction::pass ? "" : std::string("_miss_") + tcd::miss_action_name(i.param.miss));
}

// Miss actions drop and next (tc): the port kinds (no-port frames get it too) at a twelfth,
// the proto kinds at a 24th of the generated frames, so the whole
// differential test takes about a fifth longer than with pass alone.
INSTANTIATE_TEST_SUITE_P(
    Kinds, Differential,
    ::testing::Values(DiffCase{{tcd::KeyKind::proto, tcd::Hook::xdp}, tcd::MissAction::pass, 1},
                      DiffCase{{tcd::KeyKind::port, tcd::Hook::xdp}},
                      DiffCase{{tcd::KeyKind::proto, tcd::Hook::tc}},
                      DiffCase{{tcd::KeyKind::port, tcd::Hook::tc}},
                      DiffCase{{tcd::KeyKind::port, tcd::Hook::xdp}, tcd::MissAction::drop, 12},
                      DiffCase{{tcd::KeyKind::port, tcd::Hook::tc}, tcd::MissAction::drop, 12},
                      DiffCase{{tcd::KeyKind::proto, tcd::Hook::xdp}, tcd::MissAction::drop, 24},
                      DiffCase{{tcd::KeyKind::proto, tcd::Hook::tc}, tcd::MissAction::drop, 24},
                      DiffCase{{tcd::KeyKind::port, tcd::Hook::tc}, tcd::MissAction::next, 12},
                      DiffCase{{tcd::KeyKind::proto, tcd::Hook::tc}, tcd::MissAction::next, 24}),
    kind_label);

TEST_P(Differential, EveryCaptureFrame) {
    TCD_REQUIRE_KERNEL();
    auto tracer = fresh_tracer(GetParam());
    ASSERT_TRUE(tracer);
    Differ d(*tracer, GetParam().miss);
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
    std::printf("differential %s/%s/miss %s: %zu captures, %llu frames (%llu shorter than 14 bytes, %llu that "
                "tc's test_run refuses), %llu mismatches\n",
                tcd::key_kind_name(GetParam().kind.key), tcd::hook_name(GetParam().kind.hook),
                tcd::miss_action_name(GetParam().miss), files.size(),
                (unsigned long long)d.frames(), (unsigned long long)d.short_frames(), (unsigned long long)d.skipped(),
                (unsigned long long)d.mismatches());
}

TEST_P(Differential, GeneratedAndMutatedFrames) {
    TCD_REQUIRE_KERNEL();
    uint64_t seed = tcdtest::g_seed_given ? tcdtest::g_seed : std::random_device{}();
    // The full count for the proto/XDP dispatcher, a quarter for each other
    // kind, less for the miss-action-drop cases (DiffCase::share).
    uint64_t n = tcdtest::g_frames / GetParam().share;
    std::printf("differential: %llu generated frames, seed %llu (rerun: tcd_kernel_tests "
                "--gtest_filter='*Differential*' --frames %llu --seed %llu)\n",
                (unsigned long long)n, (unsigned long long)seed, (unsigned long long)tcdtest::g_frames,
                (unsigned long long)seed);
    RecordProperty("seed", std::to_string(seed));
    auto tracer = fresh_tracer(GetParam());
    ASSERT_TRUE(tracer);
    Differ d(*tracer, GetParam().miss);
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

// Specialised dispatchers: an instance of the case's kind with a random set
// of keys wired to pass or drop, respecialised after every map set as the
// CLI does it (so the direct keys and, on a port instance, their counter
// slots sit in .rodata), traced by a copy specialised the same way. Twice per
// kind: up to 16 keys (all direct) and 17-28 (some left to the indirect
// path). The frames are every capture's and a share of generated ones; the
// wired ports are drawn from the ports those frames carry.
TEST_P(Differential, SpecialisedRandomWiring) {
    TCD_REQUIRE_KERNEL();
    const DiffCase& c = GetParam();
    uint64_t seed = tcdtest::g_seed_given ? tcdtest::g_seed : std::random_device{}();
    uint64_t n = tcdtest::g_frames / c.share / 4;
    std::printf("differential (specialised): %llu generated frames per wiring, seed %llu\n", (unsigned long long)n,
                (unsigned long long)seed);
    RecordProperty("seed", std::to_string(seed));
    std::vector<std::vector<uint8_t>> frames;
    for (const auto& e : fs::directory_iterator(pcap_dir())) {
        if (e.path().extension() != ".pcap" && e.path().extension() != ".pcapng") continue;
        auto r = tcd::PcapReader::open(e.path().string());
        ASSERT_TRUE(r) << r.error().message();
        tcd::Frame fr{};
        while (true) {
            auto more = r->next(fr);
            ASSERT_TRUE(more);
            if (!*more) break;
            frames.emplace_back(fr.data, fr.data + fr.caplen);
        }
    }
    tcdref::FrameGen gen(seed);
    for (uint64_t i = 0; i < n; i++) frames.push_back(gen.next());
    // The keys the frames carry, to wire some of them.
    std::vector<uint32_t> seen;
    for (const auto& f : frames) {
        if (c.kind.key == tcd::KeyKind::port) {
            auto r = tcdref::classify_port(f.data(), f.size());
            if (r.cls != tcdref::PortClass::non_ip && r.cls != tcdref::PortClass::malformed &&
                r.cls != tcdref::PortClass::no_port)
                seen.push_back(uint32_t(r.port));
        } else {
            auto r = tcdref::classify(f.data(), f.size());
            if (r.cls != tcdref::Class::non_ip && r.cls != tcdref::Class::malformed) seen.push_back(uint32_t(r.key));
        }
    }
    ASSERT_FALSE(seen.empty());
    std::mt19937_64 rng(seed ^ 0x5bd1e995);
    for (size_t want : {size_t(1 + rng() % 16), size_t(17 + rng() % 12)}) {
        std::string dir = "/sys/fs/bpf/" + tcdtest::unique_name("tcddiff_sp");
        (void)tcd::unload(dir);
        tcd::LoadOptions lo;
        lo.kind = c.kind;
        lo.miss = c.miss;
        auto l = tcd::load(dir, lo);
        ASSERT_TRUE(l) << l.error().message();
        struct Unload {
            std::string d;
            ~Unload() { (void)tcd::unload(d); }
        } unload{dir};
        Wiring w;
        std::set<uint32_t> keys;
        keys.insert(seen[rng() % seen.size()]);  // one key the frames carry, at least
        while (keys.size() < want) keys.insert(rng() % 4 ? seen[rng() % seen.size()] : uint32_t(rng() % (tcd::max_key(c.kind.key) + 1)));
        std::string list;
        for (uint32_t k : keys) {
            bool drop = rng() % 2;
            auto in = tcd::Instance::open(dir);
            ASSERT_TRUE(in);
            auto r = tcd::wire_key(*in, k, *tcd::parse_handler_spec(drop ? "drop" : "pass"));
            ASSERT_TRUE(r) << r.error().message();
            w.verdict[k] = drop ? tcd::verdict_drop(c.kind.hook) : tcd::verdict_pass(c.kind.hook);
            list += fmt::format(" {}{}", k, drop ? "d" : "p");
        }
        auto in = tcd::Instance::open(dir);
        ASSERT_TRUE(in);
        if (c.kind.key == tcd::KeyKind::port) w.slots = *tcd::read_port_slots(*in);
        auto live = tcd::read_direct_keys(in->dispatcher());
        ASSERT_TRUE(live);
        EXPECT_EQ(*live, *tcd::wanted_direct(*in));
        std::set<uint32_t> candidates = keys;
        if (c.kind.key == tcd::KeyKind::proto) candidates.insert({1, 6, 17, 58});  // the hot keys fill up
        EXPECT_EQ(live->size(), std::min<size_t>(TCD_DIRECT_MAX, candidates.size()));
        auto t = tcd::Tracer::open(dir);
        ASSERT_TRUE(t) << t.error().message();
        Differ d(*t, c.miss, w);
        for (size_t i = 0; i < frames.size(); i++) {
            d.frame(frames[i].data(), frames[i].size(), fmt::format("seed {} wiring{} frame {}", seed, list, i + 1));
            if (d.mismatches() > 100) break;
        }
        d.check_counters();
        EXPECT_EQ(d.mismatches(), 0u) << "seed " << seed << ", wired:" << list;
        EXPECT_GT(d.hits(), 0u) << "no frame reached a wired key";
        std::printf("differential (specialised, %zu keys wired, %zu direct): %llu frames (%llu to wired keys), %llu "
                    "mismatches\n",
                    want, live->size(), (unsigned long long)d.frames(), (unsigned long long)d.hits(),
                    (unsigned long long)d.mismatches());
    }
}

}  // namespace
