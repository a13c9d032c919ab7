// The hold model of bench/kernel.ts, run through ns-3 so the kernel target ("at least 2x ns-3's
// fastest scheduler") is judged against a real number on the same machine.
//
// Same workload as ours, draw for draw: the same generator (xoshiro128** seeded through splitmix32,
// a port of src/core/rng.ts RngStream), seed 12345, delays floor(-mean * ln(1 - u)) in integer ps,
// the same processes and event count, only the run loop timed, one warm-up run then the median of
// N. Both kernels break time ties first-scheduled-first, so every run must end at the same simulated
// time as ours (endPs): a check that the two did the same work.
//
// Two measurements per scheduler, one JSON line each:
// - "simulator": ns-3's real kernel, a function that reschedules itself with Simulator::Schedule
//   (an EventImpl per event, as in any ns-3 model); the like-for-like comparison with our
//   VirtualScheduler, whose run loop also calls a callback per event.
// - "scheduler": the Scheduler object alone, Insert and RemoveNext of bare keys, no event objects
//   and no callbacks: a lower bound on what any ns-3 simulation pays per event.
//
// Build: g++ -O3 -std=c++20 -I/usr/include ns3-hold.cc -lns3-core (Debian's libns3-dev; its
// libraries are the ns-3 "release" build profile: optimized, no asserts or logging).
// Run: ns3-hold [--processes=1000] [--events=10000000] [--mean-ps=1000000] [--runs=3]
//               [--schedulers=ns3::MapScheduler,...] [--modes=simulator,scheduler]

#include "ns3/nstime.h"
#include "ns3/object-factory.h"
#include "ns3/scheduler.h"
#include "ns3/simulator.h"
#include "ns3/version-defines.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

using namespace ns3;

namespace
{

/** src/core/rng.ts RngStream, bit for bit (JS's 32-bit unsigned arithmetic is uint32_t's). */
class Rng
{
  public:
    explicit Rng(uint32_t seed)
    {
        uint32_t x = seed;
        auto next = [&x]() {
            x += 0x9e3779b9u;
            uint32_t z = x;
            z = (z ^ (z >> 16)) * 0x85ebca6bu;
            z = (z ^ (z >> 13)) * 0xc2b2ae35u;
            return z ^ (z >> 16);
        };
        s0 = next();
        s1 = next();
        s2 = next();
        s3 = next();
        if ((s0 | s1 | s2 | s3) == 0)
            s0 = 1;
    }

    /** floor(exponential(mean)), the integer delay bench/kernel.ts schedules. */
    uint64_t Hold(double mean)
    {
        double u = NextU32() / 4294967296.0;
        return static_cast<uint64_t>(std::floor(-mean * std::log(1 - u)));
    }

  private:
    static uint32_t Rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

    uint32_t NextU32()
    {
        uint32_t result = Rotl(s1 * 5, 7) * 9;
        uint32_t t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = Rotl(s3, 11);
        return result;
    }

    uint32_t s0, s1, s2, s3;
};

struct Run
{
    double eventsPerSec;
    uint64_t endPs;
};

double
Elapsed(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/**
 * Every delay of a run, drawn before it is timed: the kernels are measured, not the generator (ours
 * is JavaScript, ~15 ns a draw; this C++ port ~3 ns). Index k is the k-th event scheduled.
 */
std::vector<uint64_t>
Delays(uint64_t events, double mean)
{
    Rng rng(12345);
    std::vector<uint64_t> d(events);
    for (auto& x : d)
        x = rng.Hold(mean);
    return d;
}

// State of the simulator-mode run: a free function keeps the event as cheap as ns-3 allows.
const uint64_t* g_delays = nullptr;
uint64_t g_events = 0;
uint64_t g_scheduled = 0;
uint64_t g_executed = 0;

void
Hold()
{
    g_executed++;
    if (g_scheduled < g_events)
    {
        Simulator::Schedule(PicoSeconds(g_delays[g_scheduled++]), &Hold);
    }
}

Run
SimulatorRun(const ObjectFactory& factory, uint64_t processes, uint64_t events, double mean)
{
    Simulator::SetScheduler(factory);
    std::vector<uint64_t> delays = Delays(events, mean);
    g_delays = delays.data();
    g_events = events;
    g_scheduled = 0;
    g_executed = 0;
    for (uint64_t i = 0; i < processes && g_scheduled < events; i++)
        Simulator::Schedule(PicoSeconds(g_delays[g_scheduled++]), &Hold);
    auto t0 = std::chrono::steady_clock::now();
    Simulator::Run();
    double s = Elapsed(t0);
    uint64_t endPs = Simulator::Now().GetPicoSeconds();
    Simulator::Destroy(); // the next run starts at time 0 with a fresh scheduler
    if (g_executed != events)
    {
        std::fprintf(stderr, "simulator ran %llu events, expected %llu\n",
                     (unsigned long long)g_executed, (unsigned long long)events);
        std::exit(1);
    }
    return {events / s, endPs};
}

Run
SchedulerRun(const ObjectFactory& factory, uint64_t processes, uint64_t events, double mean)
{
    Ptr<Scheduler> sched = factory.Create<Scheduler>();
    std::vector<uint64_t> delays = Delays(events, mean);
    uint32_t uid = 0;
    uint64_t scheduled = 0;
    // No EventImpl: the schedulers order by key and never touch impl.
    for (uint64_t i = 0; i < processes && scheduled < events; i++)
        sched->Insert({nullptr, {delays[scheduled++], uid++, 0}});
    auto t0 = std::chrono::steady_clock::now();
    uint64_t executed = 0;
    uint64_t now = 0;
    while (!sched->IsEmpty())
    {
        now = sched->RemoveNext().key.m_ts;
        executed++;
        if (scheduled < events)
            sched->Insert({nullptr, {now + delays[scheduled++], uid++, 0}});
    }
    double s = Elapsed(t0);
    if (executed != events)
    {
        std::fprintf(stderr, "scheduler ran %llu events, expected %llu\n",
                     (unsigned long long)executed, (unsigned long long)events);
        std::exit(1);
    }
    return {events / s, now};
}

std::vector<std::string>
Split(const std::string& s)
{
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty())
            out.push_back(item);
    return out;
}

} // namespace

int
main(int argc, char* argv[])
{
    uint64_t processes = 1000;
    uint64_t events = 10000000;
    double mean = 1e6;
    int runs = 3;
    // ListScheduler is left out by default: a sorted linked list, O(processes) per insert.
    std::string schedulers =
        "ns3::MapScheduler,ns3::HeapScheduler,ns3::CalendarScheduler,ns3::PriorityQueueScheduler";
    std::string modes = "simulator,scheduler";
    for (int i = 1; i < argc; i++)
    {
        std::string a = argv[i];
        auto eq = a.find('=');
        std::string key = a.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : a.substr(eq + 1);
        if (key == "--processes")
            processes = std::stoull(value);
        else if (key == "--events")
            events = std::stoull(value);
        else if (key == "--mean-ps")
            mean = std::stod(value);
        else if (key == "--runs")
            runs = std::stoi(value);
        else if (key == "--schedulers")
            schedulers = value;
        else if (key == "--modes")
            modes = value;
        else
        {
            std::fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (runs < 1)
    {
        std::fprintf(stderr, "--runs must be at least 1\n");
        return 2;
    }

    Time::SetResolution(Time::PS); // the default (ns) would round every hold

    for (const std::string& type : Split(schedulers))
    {
        ObjectFactory factory(type);
        for (const std::string& mode : Split(modes))
        {
            if (mode != "simulator" && mode != "scheduler")
            {
                std::fprintf(stderr, "unknown mode %s (simulator or scheduler)\n", mode.c_str());
                return 2;
            }
            auto once = mode == "simulator" ? SimulatorRun : SchedulerRun;
            once(factory, processes, events, mean); // warm-up: caches, allocator, page faults
            std::vector<double> rates;
            uint64_t endPs = 0;
            for (int r = 0; r < runs; r++)
            {
                Run x = once(factory, processes, events, mean);
                rates.push_back(x.eventsPerSec);
                endPs = x.endPs;
            }
            std::vector<double> sorted = rates;
            std::sort(sorted.begin(), sorted.end());
            std::printf("{\"ns3\":\"%d.%d\",\"scheduler\":\"%s\",\"mode\":\"%s\","
                        "\"eventsPerSec\":%.0f,\"runs\":[",
                        NS3_VERSION_MAJOR, NS3_VERSION_MINOR, type.c_str(), mode.c_str(),
                        sorted[sorted.size() / 2]);
            for (size_t r = 0; r < rates.size(); r++)
                std::printf("%s%.0f", r ? "," : "", rates[r]);
            std::printf("],\"endPs\":%llu}\n", (unsigned long long)endPs);
            std::fflush(stdout);
        }
    }
    return 0;
}
