// Deterministic frame generator/mutator for the differential test: the same
// seed gives the same byte-for-byte frame sequence on every platform and
// standard library (own PRNG, no <random> distributions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tcdref {

class FrameGen {
public:
    explicit FrameGen(uint64_t seed);

    // One frame, 0..1600 bytes. About 98% of frames are >= 14 bytes.
    std::vector<uint8_t> next();

    static constexpr size_t kMaxFrameLen = 1600;

private:
    // xoshiro256** seeded through splitmix64.
    uint64_t s_[4];

    uint64_t u64();
    uint64_t below(uint64_t n);                // in [0, n), n > 0
    uint64_t range(uint64_t lo, uint64_t hi);  // inclusive
    bool per_mille(unsigned p);                // true with probability p/1000
    uint8_t byte();
    template <typename T, size_t N>
    T pick(const T (&table)[N]) {
        return table[below(N)];
    }

    // Frame building; `cuts` collects header boundaries (offsets) that the
    // truncation mutation likes to aim at.
    using Bytes = std::vector<uint8_t>;
    void put_random(Bytes& f, size_t n);
    void put16(Bytes& f, unsigned v);
    size_t payload_len(size_t used);
    void ethernet(Bytes& f, std::vector<size_t>& cuts, unsigned ethertype, unsigned tags);
    unsigned vlan_tag_count();
    void ipv4_header(Bytes& f, std::vector<size_t>& cuts, unsigned version, unsigned ihl,
                     unsigned protocol);
    void ipv4_payload(Bytes& f, unsigned protocol);
    void ipv6_header(Bytes& f, std::vector<size_t>& cuts, unsigned version, unsigned chain_len);
    unsigned ipv4_protocol();
    unsigned ipv6_final_next_header();

    Bytes well_formed_ipv4(std::vector<size_t>& cuts);
    Bytes well_formed_ipv6(std::vector<size_t>& cuts);
    Bytes non_ip(std::vector<size_t>& cuts);
    Bytes ipv4_edge(std::vector<size_t>& cuts);
    Bytes ipv6_edge(std::vector<size_t>& cuts);
    Bytes garbage();
    Bytes tiny();
    void mutate(Bytes& f, const std::vector<size_t>& cuts);
};

}  // namespace tcdref
