// libFuzzer: any bytes as a capture file: the reader returns frames or an
// error, never crashes, and every frame's bytes are readable.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/pcap_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = "/tmp/tcd_fuzz_pcap_" + std::to_string(getpid());
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    auto r = tcd::PcapReader::open(path);
    if (!r) return 0;
    tcd::Frame fr{};
    unsigned sum = 0;
    for (int i = 0; i < 10000; i++) {
        auto more = r->next(fr);
        if (!more || !*more) break;
        for (uint32_t b = 0; b < fr.caplen; b++) sum += fr.data[b];
    }
    return static_cast<int>(sum & 0);
}
