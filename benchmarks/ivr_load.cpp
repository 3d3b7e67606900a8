// ivr-load: a SIP + RTP load generator for ivr-hello (benchmarks/README.md, docs/benchmarks.md).
//
// One process, no thread per call:
//  - the SIP thread (main) runs Sofia-SIP's NUA on its su_root; a 10 ms su_timer places calls
//    at the configured rate, enforces the hang-up deadlines and prints progress;
//  - the media thread runs one epoll loop with one timerfd tick; every call has its own UDP
//    socket, sends PCMU (or PCMA) 20 ms frames paced from CLOCK_MONOTONIC, then, `--hold`
//    seconds after the 200 OK, its RFC 4733 digits (a distinct random 4-6 digit string + '#',
//    each event as start/continuation packets and three end packets), and counts the RTP it
//    receives (sequence gaps, RFC 3550 interarrival jitter).
// The SIP thread hands calls to the media thread through a mutex-protected queue; the only
// other shared datum is Call::digits_done_ns (atomic). The media thread is joined before the
// report reads its counters.
//
// At the end it reads the server's stdout (`--server-log`, lines
// `call <Call-ID> digits <digits> source <source>`) and checks every call's digits by Call-ID.
//
// `--answer` turns it into the far end of a bridged call (a stand-in dialing system): it
// answers up to --calls INVITEs with SDP (PCMU + the offer's telephone-event), sends its own
// BYE --hold seconds after its 200 OK, and per call either echoes the RTP it gets (`--media
// echo`, the default: one shared UDP socket, recvmmsg/sendmmsg batches, each packet re-stamped
// with the call's own SSRC and sequence) or sends its own paced PCMU frames from a socket per
// call (`--media paced`). Either way it counts the RTP each call receives.
// Machine-readable output on stdout: `EVENT ...` progress lines and one `REPORT {json}` line.

#define SU_ROOT_MAGIC_T struct App
#define SU_TIMER_ARG_T struct App
#define NUA_MAGIC_T struct App
#define NUA_HMAGIC_T struct Call

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

extern "C" {
extern su_log_t nua_log[];
extern su_log_t nta_log[];
extern su_log_t tport_log[];
}

constexpr int64_t kMs = 1000000;  // nanoseconds
constexpr int64_t kFrameNs = 20 * kMs;
constexpr uint32_t kFrameSamples = 160;

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("ivr-load: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::exit(2);
}

// ---- options ----

struct Options {
  std::string target = "127.0.0.1:5060";  // the server's SIP address
  std::string local = "127.0.0.1:0";      // our SIP address (port 0: any)
  unsigned calls = 100;
  double rate = 50;                             // calls per second
  double hold_s = 30;                           // 200 OK -> first digit
  unsigned digit_ms = 100;                      // event duration, multiple of 20
  unsigned gap_min_ms = 150, gap_max_ms = 400;  // between the end of a digit and the next
  double bye_after_s = 20;            // our BYE if the server has not hung up this long after '#'
  double max_run_s = 0;               // 0: no global deadline
  unsigned rtp_min = 0, rtp_max = 0;  // 0: ephemeral ports
  unsigned tick_ms = 2;               // media timer tick
  std::string codec = "pcmu";
  std::string server_log;   // the server's stdout, for the digit check
  std::string report_path;  // JSON report
  std::string calls_csv;    // per-call CSV
  uint64_t seed = 1;
  bool verbose = false;
  bool no_digits = false;      // UAC: send audio only (the call is ended by the far side)
  bool answer = false;         // UAS: the far end of a bridge
  std::string media = "echo";  // --answer: echo (shared socket) or paced (socket per call)
};

void usage(FILE *out) {
  std::fprintf(out,
               "usage: ivr-load --target HOST:PORT [--local HOST:PORT] [--calls N] [--rate CPS]\n"
               "                [--hold S] [--digit-ms MS] [--gap-ms MIN-MAX] [--bye-after S]\n"
               "                [--max-run S] [--rtp-ports MIN-MAX] [--tick-ms MS]\n"
               "                [--codec pcmu|pcma] [--server-log FILE] [--report FILE]\n"
               "                [--calls-csv FILE] [--seed N] [--no-digits] [--verbose]\n"
               "       ivr-load --answer --local HOST:PORT [--calls N] [--hold S]\n"
               "                [--media echo|paced] [--rtp-ports MIN-MAX] [--max-run S]\n"
               "                [--report FILE] [--calls-csv FILE]\n"
               "  --answer: answer up to N INVITEs (PCMU), hang up S s after the 200 OK; echo\n"
               "  the RTP back from one shared socket (echo) or send paced frames per call.\n");
}

bool split_host_port(const std::string &s, std::string &host, unsigned &port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  host = s.substr(0, colon);
  char *end = nullptr;
  long p = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end || p < 0 || p > 65535 || host.empty()) return false;
  port = unsigned(p);
  return true;
}

bool parse_range(const char *s, unsigned &lo, unsigned &hi) {
  return std::sscanf(s, "%u-%u", &lo, &hi) == 2 && lo <= hi;
}

Options parse_options(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    }
    if (a == "--verbose" || a == "--no-digits" || a == "--answer") {
      (a == "--verbose" ? o.verbose : a == "--answer" ? o.answer : o.no_digits) = true;
      continue;
    }
    if (i + 1 >= argc) {
      usage(stderr);
      std::exit(2);
    }
    const char *v = argv[++i];
    if (a == "--target") {
      o.target = v;
    } else if (a == "--local") {
      o.local = v;
    } else if (a == "--calls") {
      o.calls = unsigned(std::strtoul(v, nullptr, 10));
    } else if (a == "--rate") {
      o.rate = std::strtod(v, nullptr);
    } else if (a == "--hold") {
      o.hold_s = std::strtod(v, nullptr);
    } else if (a == "--digit-ms") {
      o.digit_ms = unsigned(std::strtoul(v, nullptr, 10));
    } else if (a == "--gap-ms") {
      if (!parse_range(v, o.gap_min_ms, o.gap_max_ms)) die("--gap-ms: expected MIN-MAX");
    } else if (a == "--bye-after") {
      o.bye_after_s = std::strtod(v, nullptr);
    } else if (a == "--max-run") {
      o.max_run_s = std::strtod(v, nullptr);
    } else if (a == "--rtp-ports") {
      if (!parse_range(v, o.rtp_min, o.rtp_max) || o.rtp_max > 65535)
        die("--rtp-ports: expected MIN-MAX");
    } else if (a == "--tick-ms") {
      o.tick_ms = unsigned(std::strtoul(v, nullptr, 10));
    } else if (a == "--codec") {
      o.codec = v;
    } else if (a == "--server-log") {
      o.server_log = v;
    } else if (a == "--report") {
      o.report_path = v;
    } else if (a == "--calls-csv") {
      o.calls_csv = v;
    } else if (a == "--media") {
      o.media = v;
    } else if (a == "--seed") {
      o.seed = std::strtoull(v, nullptr, 10);
    } else {
      usage(stderr);
      std::exit(2);
    }
  }
  if (o.calls == 0 || o.rate <= 0) die("--calls and --rate must be positive");
  if (o.digit_ms < 20 || o.digit_ms % 20) die("--digit-ms must be a positive multiple of 20");
  if (o.tick_ms == 0 || o.tick_ms > 20) die("--tick-ms must be 1..20");
  if (o.codec != "pcmu" && o.codec != "pcma") die("--codec: pcmu or pcma");
  if (o.media != "echo" && o.media != "paced") die("--media: echo or paced");
  return o;
}

// ---- G.711 (a quiet 400 Hz tone, so the stream is not pure digital silence) ----

uint8_t linear_to_ulaw(int16_t pcm) {
  constexpr int kBias = 0x84, kClip = 32635;
  int sign = (pcm >> 8) & 0x80;
  int v = pcm;
  if (sign) v = -v;
  if (v > kClip) v = kClip;
  v += kBias;
  int exponent = 7;
  for (int mask = 0x4000; (v & mask) == 0 && exponent > 0; mask >>= 1) exponent--;
  int mantissa = (v >> (exponent + 3)) & 0x0F;
  return uint8_t(~(sign | (exponent << 4) | mantissa));
}

uint8_t linear_to_alaw(int16_t pcm) {
  int sign = pcm >= 0 ? 0x80 : 0;
  int v = pcm >= 0 ? pcm : -pcm - 1;
  if (v > 32767) v = 32767;
  int exponent = 7;
  for (int mask = 0x4000; (v & mask) == 0 && exponent > 0; mask >>= 1) exponent--;
  int mantissa = exponent == 0 ? (v >> 4) & 0x0F : (v >> (exponent + 3)) & 0x0F;
  return uint8_t((sign | (exponent << 4) | mantissa) ^ 0x55);
}

// ---- calls ----

enum class SipState : uint8_t { idle, inviting, up, ending, ended, failed };

struct Call {
  // Immutable after setup.
  unsigned index = 0;
  std::string digits;          // without the '#'
  std::vector<uint16_t> gaps;  // ms after each event (one per digit including '#')
  int fd = -1;
  unsigned local_rtp_port = 0;

  // SIP thread.
  nua_handle_t *nh = nullptr;
  SipState state = SipState::idle;
  std::string call_id;
  int final_status = 0;
  int64_t invite_ns = 0, ringing_ns = 0, answer_ns = 0, end_ns = 0;
  int64_t server_bye_ns = 0, our_bye_ns = 0;
  bool reinvites = false, cancelled = false;

  // Handed from the SIP thread to the media thread with the start command.
  sockaddr_in remote{};
  int audio_pt = 0, te_pt = -1;

  // Media thread.
  bool media_active = false, media_closed = false;
  uint32_t ssrc = 0, ts = 0;
  uint16_t seq = 0;
  int64_t next_send_ns = 0, digits_at_ns = 0;
  enum class Dtmf : uint8_t { waiting, event, gap, done } dtmf = Dtmf::waiting;
  unsigned dtmf_index = 0, ev_packets = 0, ev_ends = 0;
  uint32_t ev_ts = 0;
  int64_t next_digit_ns = 0;
  uint64_t tx_packets = 0, tx_events = 0;
  uint64_t rx_packets = 0, rx_audio = 0, rx_other = 0, rx_bad = 0, rx_ssrc_changes = 0;
  bool rx_have = false;
  uint32_t rx_ssrc = 0;
  uint64_t rx_base_seq = 0, rx_max_seq = 0, rx_cycles = 0;
  uint64_t rx_expected_seq = 0;  // summed over SSRC changes
  uint16_t rx_last_seq = 0;
  int64_t rx_first_ns = 0, rx_last_ns = 0, rx_max_gap_ns = 0, rx_max_gap_at_ns = 0;
  int64_t max_transit_ns = 0;
  double jitter = 0;  // RFC 3550, in timestamp units
  bool jitter_have = false;
  int64_t jitter_prev_transit = 0;

  // Shared: written by the media thread when the '#' end packets are out.
  std::atomic<int64_t> digits_done_ns{0};
};

struct MediaCmd {
  enum Kind { start, stop } kind;
  Call *call;
};

struct MediaStats {
  uint64_t loops = 0, late_5ms = 0, late_10ms = 0, skipped_frames = 0, send_errors = 0;
  int64_t max_late_ns = 0, max_loop_ns = 0, max_wake_ns = 0;
  uint64_t late_2ms = 0;
  uint64_t stalls = 0;  // waits or loop turns over 50 ms
};

struct App {
  Options opt;
  std::vector<std::unique_ptr<Call>> calls;
  std::string target_host;
  unsigned target_port = 0;
  std::string local_host;
  unsigned local_port = 0;
  uint8_t audio_frame[kFrameSamples];
  int audio_pt = 0;

  // SIP thread.
  su_root_t *root = nullptr;
  nua_t *nua = nullptr;
  su_timer_t *timer = nullptr;
  int64_t start_ns = 0;
  unsigned placed = 0, finals = 0, up = 0, max_up = 0, finished = 0;
  int64_t all_up_ns = 0, ramp_done_ns = 0, first_end_ns = 0, digits_begin_ns = 0;
  int64_t last_status_ns = 0, last_deadline_check_ns = 0, finish_ns = 0;
  bool stopping = false, shutting_down = false;
  unsigned next_rtp_port = 0;
  std::map<int, unsigned> final_status_counts;

  // Media thread.
  int epfd = -1, tfd = -1;
  std::mutex mu;
  std::vector<MediaCmd> pending;
  // Calls with media in a min-heap on next_send_ns: a tick only touches the calls that are
  // due. (A FIFO is not enough: calls starting mid-tick break its order for good.)
  struct Due {
    int64_t at;
    Call *call;
    bool operator>(const Due &o) const { return at > o.at; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> send_queue;
  std::atomic<bool> media_stop{false};
  MediaStats mstats;
  std::thread media_thread;

  // --answer --media echo: one socket for every call; calls found by the packet's source
  // (the address the offer named), owned by the media thread.
  int echo_fd = -1;
  unsigned echo_port = 0;
  std::unordered_map<uint64_t, Call *> by_source;
  uint64_t echo_rx = 0, echo_tx = 0, echo_unknown = 0, echo_send_errors = 0, echo_batches = 0;
  unsigned accepted = 0, refused = 0;  // SIP thread
};

// The epoll tag of the shared echo socket (call sockets carry their Call *, the timer null).
Call *const kEchoTag = reinterpret_cast<Call *>(uintptr_t(1));

uint64_t source_key(const sockaddr_in &a) {
  return uint64_t(ntohl(a.sin_addr.s_addr)) << 16 | ntohs(a.sin_port);
}

std::atomic<int> g_signal{0};

double secs(const App &app, int64_t t) {
  return t ? double(t - app.start_ns) / 1e9 : -1;
}

void event_line(const App &app, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::printf("EVENT t=%.3f ", secs(app, now_ns()));
  std::vprintf(fmt, ap);
  std::printf("\n");
  std::fflush(stdout);
  va_end(ap);
}

// ---- RTP sockets ----

int open_rtp_socket(App &app, unsigned &port_out) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: %s (raise ulimit -n)", std::strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, app.local_host.c_str(), &sa.sin_addr);
  if (app.opt.rtp_min == 0) {
    sa.sin_port = 0;
    if (bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0)
      die("bind RTP: %s", std::strerror(errno));
  } else {
    unsigned span = app.opt.rtp_max - app.opt.rtp_min + 1;
    bool bound = false;
    for (unsigned tries = 0; tries < span && !bound; tries++) {
      unsigned port = app.opt.rtp_min + (app.next_rtp_port++ % span);
      sa.sin_port = htons(uint16_t(port));
      bound = bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0;
    }
    if (!bound) die("no free RTP port in %u-%u", app.opt.rtp_min, app.opt.rtp_max);
  }
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len);
  port_out = ntohs(sa.sin_port);
  return fd;
}

// ---- media thread ----

void rtp_header(uint8_t *p, bool marker, int pt, uint16_t seq, uint32_t ts, uint32_t ssrc) {
  p[0] = 0x80;
  p[1] = uint8_t((marker ? 0x80 : 0) | (pt & 0x7f));
  p[2] = uint8_t(seq >> 8);
  p[3] = uint8_t(seq);
  p[4] = uint8_t(ts >> 24);
  p[5] = uint8_t(ts >> 16);
  p[6] = uint8_t(ts >> 8);
  p[7] = uint8_t(ts);
  p[8] = uint8_t(ssrc >> 24);
  p[9] = uint8_t(ssrc >> 16);
  p[10] = uint8_t(ssrc >> 8);
  p[11] = uint8_t(ssrc);
}

int dtmf_event_code(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c == '*') return 10;
  if (c == '#') return 11;
  return -1;
}

// Transit time of our own audio through the system under test: every audio frame we send
// (and every frame the echo returns) carries a marker and CLOCK_MONOTONIC at the send in its
// first 12 payload bytes; a bridge relays PCMU to PCMU untouched, so the receiving side (on
// the same host) reads how long the packet took, relay and both kernels' queues included.
constexpr uint8_t kStampMagic[4] = {'I', 'V', 'R', 'L'};
constexpr int64_t kTransitBucketNs = 100000;  // 0.1 ms buckets up to 200 ms
constexpr size_t kTransitBuckets = 2000;

struct TransitHist {
  std::vector<uint64_t> buckets = std::vector<uint64_t>(kTransitBuckets + 1);
  uint64_t count = 0;
  int64_t max_ns = 0;
};
TransitHist g_transit;  // media thread only

void stamp_payload(uint8_t *payload, int64_t t) {
  std::memcpy(payload, kStampMagic, 4);
  for (int i = 0; i < 8; i++) payload[4 + i] = uint8_t(uint64_t(t) >> (56 - 8 * i));
}

// The transit of a stamped payload, or -1.
int64_t payload_transit(const uint8_t *payload, size_t len, int64_t now) {
  if (len < 12 || std::memcmp(payload, kStampMagic, 4) != 0) return -1;
  uint64_t t = 0;
  for (int i = 0; i < 8; i++) t = t << 8 | payload[4 + i];
  int64_t d = now - int64_t(t);
  return d >= 0 && d < 60000 * kMs ? d : -1;
}

double transit_percentile_ms(double p) {
  if (!g_transit.count) return -1;
  auto want = uint64_t(std::ceil(p / 100.0 * double(g_transit.count)));
  uint64_t seen = 0;
  for (size_t i = 0; i <= kTransitBuckets; i++) {
    seen += g_transit.buckets[i];
    if (seen >= want)
      return i == kTransitBuckets ? double(g_transit.max_ns) / 1e6
                                  : double(int64_t(i + 1) * kTransitBucketNs) / 1e6;
  }
  return double(g_transit.max_ns) / 1e6;
}

uint64_t transit_over_ms(int64_t ms) {
  uint64_t n = 0;
  for (size_t i = size_t(ms * kMs / kTransitBucketNs); i <= kTransitBuckets; i++)
    n += g_transit.buckets[i];
  return n;
}

// Sends one 20 ms slot of call c scheduled at slot_ns: audio, or a telephone-event packet.
void send_slot(App &app, Call &c, int64_t slot_ns) {
  uint8_t pkt[12 + kFrameSamples];
  size_t len;
  const Options &o = app.opt;
  if (c.dtmf == Call::Dtmf::waiting && slot_ns >= c.digits_at_ns && c.te_pt >= 0 && !o.no_digits &&
      !o.answer) {
    c.dtmf = Call::Dtmf::event;
    c.ev_packets = c.ev_ends = 0;
    c.ev_ts = c.ts;
  } else if (c.dtmf == Call::Dtmf::gap && slot_ns >= c.next_digit_ns) {
    c.dtmf = Call::Dtmf::event;
    c.ev_packets = c.ev_ends = 0;
    c.ev_ts = c.ts;
  }
  if (c.dtmf == Call::Dtmf::event) {
    unsigned n = o.digit_ms / 20;
    char digit = c.dtmf_index < c.digits.size() ? c.digits[c.dtmf_index] : '#';
    bool end = c.ev_packets >= n;
    uint32_t duration = end ? n * kFrameSamples : (c.ev_packets + 1) * kFrameSamples;
    rtp_header(pkt, c.ev_packets == 0 && !end, c.te_pt, c.seq++, c.ev_ts, c.ssrc);
    pkt[12] = uint8_t(dtmf_event_code(digit));
    pkt[13] = uint8_t((end ? 0x80 : 0) | 10);  // E bit, volume -10 dBm0
    pkt[14] = uint8_t(duration >> 8);
    pkt[15] = uint8_t(duration);
    len = 16;
    c.tx_events++;
    if (!end) {
      c.ev_packets++;
    } else if (++c.ev_ends == 3) {
      uint16_t gap = c.gaps[c.dtmf_index];
      c.dtmf_index++;
      if (c.dtmf_index > c.digits.size()) {  // the '#' is out
        c.dtmf = Call::Dtmf::done;
        c.digits_done_ns.store(slot_ns, std::memory_order_release);
      } else {
        c.dtmf = Call::Dtmf::gap;
        c.next_digit_ns = slot_ns + kFrameNs + int64_t(gap) * kMs;
      }
    }
  } else {
    rtp_header(pkt, false, c.audio_pt, c.seq++, c.ts, c.ssrc);
    std::memcpy(pkt + 12, app.audio_frame, kFrameSamples);
    stamp_payload(pkt + 12, now_ns());
    len = 12 + kFrameSamples;
  }
  c.ts += kFrameSamples;
  if (sendto(c.fd, pkt, len, 0, reinterpret_cast<const sockaddr *>(&c.remote), sizeof c.remote) <
      0) {
    app.mstats.send_errors++;
  } else {
    c.tx_packets++;
  }
}

void media_commands(App &app, int64_t now) {
  std::vector<MediaCmd> cmds;
  {
    std::lock_guard<std::mutex> lock(app.mu);
    cmds.swap(app.pending);
  }
  for (auto &cmd : cmds) {
    Call &c = *cmd.call;
    if (app.echo_fd >= 0) {  // echo: no socket or pacing of its own, only the source map
      if (cmd.kind == MediaCmd::start && !c.media_closed) {
        app.by_source[source_key(c.remote)] = &c;
      } else if (cmd.kind == MediaCmd::stop && !c.media_closed) {
        c.media_closed = true;
        auto it = app.by_source.find(source_key(c.remote));
        if (it != app.by_source.end() && it->second == &c) app.by_source.erase(it);
      }
      continue;
    }
    if (cmd.kind == MediaCmd::start && !c.media_closed && !c.media_active) {
      c.media_active = true;
      c.next_send_ns = now;
      c.digits_at_ns = c.answer_ns + int64_t(app.opt.hold_s * 1e9);
      app.send_queue.push({c.next_send_ns, &c});
    } else if (cmd.kind == MediaCmd::stop && !c.media_closed) {
      c.media_closed = true;
      c.media_active = false;  // leaves the send queue when it next comes up
      epoll_ctl(app.epfd, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
    }
  }
}

void media_tick(App &app) {
  int64_t now = now_ns();
  media_commands(app, now);
  app.mstats.loops++;
  auto &q = app.send_queue;
  while (!q.empty() && q.top().at <= now) {
    Call *c = q.top().call;
    q.pop();
    if (!c->media_active) continue;  // stopped: leaves the queue here
    int64_t late = now - c->next_send_ns;
    if (late > 5 * kFrameNs) {  // stalled: resynchronise instead of bursting
      int64_t skip = late / kFrameNs;
      app.mstats.skipped_frames += uint64_t(skip);
      c->next_send_ns += skip * kFrameNs;
      c->ts += uint32_t(skip) * kFrameSamples;
      late = now - c->next_send_ns;
    }
    app.mstats.max_late_ns = std::max(app.mstats.max_late_ns, late);
    if (late > 2 * kMs) app.mstats.late_2ms++;
    if (late > 5 * kMs) app.mstats.late_5ms++;
    if (late > 10 * kMs) app.mstats.late_10ms++;
    send_slot(app, *c, c->next_send_ns);
    c->next_send_ns += kFrameNs;  // if still due (late), it comes round again this tick
    q.push({c->next_send_ns, c});
  }
}

void handle_packet(Call &c, const uint8_t *buf, ssize_t n, int64_t now) {
  c.rx_packets++;
  if (n < 12 || (buf[0] >> 6) != 2) {
    c.rx_bad++;
    return;
  }
  int pt = buf[1] & 0x7f;
  if (buf[1] >= 192 && buf[1] <= 223) {  // RTCP on the RTP port (RFC 5761)
    c.rx_other++;
    return;
  }
  uint16_t seq = uint16_t(buf[2] << 8 | buf[3]);
  uint32_t ts = uint32_t(buf[4]) << 24 | uint32_t(buf[5]) << 16 | uint32_t(buf[6]) << 8 | buf[7];
  uint32_t ssrc =
      uint32_t(buf[8]) << 24 | uint32_t(buf[9]) << 16 | uint32_t(buf[10]) << 8 | buf[11];
  if (pt == c.audio_pt) {
    c.rx_audio++;
    int64_t d = payload_transit(buf + 12, size_t(n - 12), now);
    if (d >= 0) {
      g_transit.count++;
      g_transit.buckets[std::min(size_t(d / kTransitBucketNs), kTransitBuckets)]++;
      g_transit.max_ns = std::max(g_transit.max_ns, d);
      c.max_transit_ns = std::max(c.max_transit_ns, d);
    }
  } else {
    c.rx_other++;
  }
  if (c.rx_first_ns == 0) c.rx_first_ns = now;
  if (c.rx_last_ns && now - c.rx_last_ns > c.rx_max_gap_ns) {
    c.rx_max_gap_ns = now - c.rx_last_ns;
    c.rx_max_gap_at_ns = now;  // when the gap ended
  }
  c.rx_last_ns = now;
  if (!c.rx_have || ssrc != c.rx_ssrc) {
    if (c.rx_have) {
      c.rx_ssrc_changes++;
      c.rx_expected_seq += c.rx_max_seq - c.rx_base_seq + 1;
    }
    c.rx_have = true;
    c.rx_ssrc = ssrc;
    c.rx_base_seq = c.rx_max_seq = seq;
    c.rx_cycles = 0;
    c.rx_last_seq = seq;
    c.jitter_have = false;
  } else {
    uint16_t delta = uint16_t(seq - c.rx_last_seq);
    if (delta > 0 && delta < 0x8000) {
      if (seq < c.rx_last_seq) c.rx_cycles += 65536;
      c.rx_last_seq = seq;
      c.rx_max_seq = c.rx_cycles + seq;
    }
  }
  if (pt == c.audio_pt) {  // RFC 3550 A.8, arrival in 8 kHz units
    int64_t arrival = now / 125000;
    int64_t transit = arrival - int64_t(ts);
    if (c.jitter_have) {
      int64_t d = transit - c.jitter_prev_transit;
      if (d < 0) d = -d;
      if (d < 8000 * 10) c.jitter += (double(d) - c.jitter) / 16.0;
    }
    c.jitter_prev_transit = transit;
    c.jitter_have = true;
  }
}

// One recvmmsg per readiness event: whatever queued up during a stall comes in one call.
void media_receive(Call &c, int64_t now) {
  constexpr int kBatch = 8;
  static uint8_t bufs[kBatch][2048];
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  for (int i = 0; i < kBatch; i++) {
    iov[i] = {bufs[i], sizeof bufs[i]};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n = recvmmsg(c.fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
  if (n > 0) now = now_ns();  // after the read: a transit is never negative
  for (int i = 0; i < n; i++) handle_packet(c, bufs[i], ssize_t(msgs[i].msg_len), now);
}

// Echo: drain the shared socket in batches; each packet goes back to its source with the
// call's own SSRC and sequence number (a far end of its own, not a mirror of ivrd's leg).
void echo_receive(App &app, int64_t now) {
  constexpr int kBatch = 64;
  static uint8_t bufs[kBatch][2048];
  static sockaddr_in from[kBatch];
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  media_commands(app, now);  // a call's first packets may come before its start command
  for (int round = 0; round < 16; round++) {  // bounded: sends are checked between rounds
    for (int i = 0; i < kBatch; i++) {
      iov[i] = {bufs[i], sizeof bufs[i]};
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(app.echo_fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    now = now_ns();
    app.echo_batches++;
    app.echo_rx += uint64_t(n);
    for (int i = 0; i < n; i++) {
      uint8_t *p = bufs[i];
      ssize_t len = ssize_t(msgs[i].msg_len);
      auto it = app.by_source.find(source_key(from[i]));
      if (it == app.by_source.end()) {
        app.echo_unknown++;
      } else {
        Call &c = *it->second;
        handle_packet(c, p, len, now);
        if (len >= 12) {
          p[2] = uint8_t(c.seq >> 8);
          p[3] = uint8_t(c.seq);
          p[8] = uint8_t(c.ssrc >> 24);
          p[9] = uint8_t(c.ssrc >> 16);
          p[10] = uint8_t(c.ssrc >> 8);
          p[11] = uint8_t(c.ssrc);
          c.seq++;
          if (len >= 24 && payload_transit(p + 12, size_t(len - 12), now) >= 0)
            stamp_payload(p + 12, now_ns());  // the return trip is timed from here
        }
        c.tx_packets++;
      }
      iov[i].iov_len = size_t(len);
      msgs[i].msg_len = 0;
    }
    int sent = 0;
    while (sent < n) {
      int r = sendmmsg(app.echo_fd, msgs + sent, unsigned(n - sent), MSG_DONTWAIT);
      if (r <= 0) {
        app.echo_send_errors += uint64_t(n - sent);
        break;
      }
      sent += r;
    }
    app.echo_tx += uint64_t(sent);
    if (n < kBatch) return;
  }
}

void media_main(App &app) {
  epoll_event evs[64];  // small batches: sends are checked between them
  while (!app.media_stop.load(std::memory_order_acquire)) {
    int64_t before = now_ns();
    int n = epoll_wait(app.epfd, evs, 64, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: %s", std::strerror(errno));
    }
    int64_t now = now_ns();
    // A wait longer than two ticks means the thread did not get the CPU in time.
    app.mstats.max_wake_ns = std::max(app.mstats.max_wake_ns, now - before);
    // The 2 ms timerfd wakes every wait: a long one means this thread lost its CPU. Logged
    // (the first 100) so that RTP gaps can be told apart from the server's.
    if (now - before > 50 * kMs && app.mstats.stalls++ < 100)
      event_line(app, "stall media_wait_ms=%.1f", double(now - before) / 1e6);
    for (int i = 0; i < n; i++) {
      Call *c = static_cast<Call *>(evs[i].data.ptr);
      if (!c) {
        uint64_t expirations;
        [[maybe_unused]] ssize_t r = read(app.tfd, &expirations, sizeof expirations);
      } else if (c == kEchoTag) {
        echo_receive(app, now);
      } else if (c->fd >= 0) {
        media_receive(*c, now);
      }
    }
    // Sends are checked after every batch, not only when the timerfd is among the ready
    // events: with hundreds of readable sockets the tick can wait behind them.
    media_tick(app);
    int64_t loop_ns = now_ns() - now;
    app.mstats.max_loop_ns = std::max(app.mstats.max_loop_ns, loop_ns);
    if (loop_ns > 50 * kMs && app.mstats.stalls++ < 100)
      event_line(app, "stall media_loop_ms=%.1f", double(loop_ns) / 1e6);
  }
  // Close whatever is left.
  media_tick(app);
  if (app.echo_fd >= 0) close(app.echo_fd);
  for (auto &c : app.calls)
    if (c->fd >= 0) {
      close(c->fd);
      c->fd = -1;
    }
}

void media_post(App &app, MediaCmd::Kind kind, Call *c) {
  std::lock_guard<std::mutex> lock(app.mu);
  app.pending.push_back(MediaCmd{kind, c});
}

// ---- SDP ----

struct SdpAnswer {
  std::string ip;
  unsigned port = 0;
  int audio_pt = -1, te_pt = -1;
};

bool parse_sdp(const std::string &sdp, int want_audio_pt, SdpAnswer &out) {
  std::istringstream in(sdp);
  std::string line;
  bool in_audio = false;
  std::vector<int> fmts;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("c=IN IP4 ", 0) == 0) {
      std::string ip = line.substr(9);
      auto slash = ip.find('/');
      if (slash != std::string::npos) ip.resize(slash);
      if (out.ip.empty() || in_audio) out.ip = ip;
    } else if (line.rfind("m=", 0) == 0) {
      in_audio = line.rfind("m=audio ", 0) == 0;
      if (in_audio) {
        std::istringstream m(line.substr(8));
        std::string proto;
        m >> out.port >> proto;
        int f;
        while (m >> f) fmts.push_back(f);
      }
    } else if (in_audio && line.rfind("a=rtpmap:", 0) == 0) {
      int pt = std::atoi(line.c_str() + 9);
      auto sp = line.find(' ');
      if (sp != std::string::npos) {
        std::string enc = line.substr(sp + 1);
        std::transform(enc.begin(), enc.end(), enc.begin(), ::tolower);
        if (enc.rfind("telephone-event/8000", 0) == 0) out.te_pt = pt;
      }
    }
  }
  for (int f : fmts)
    if (f == want_audio_pt) out.audio_pt = f;
  return !out.ip.empty() && out.port != 0 && out.audio_pt >= 0;
}

// Our SDP: the offer of a call we place, or (--answer) the answer to an offer, with the
// offer's telephone-event type (te_pt < 0: none).
std::string make_sdp(const App &app, const Call &c, int te_pt) {
  char buf[512], te[128] = "";
  const char *enc = app.audio_pt == 0 ? "PCMU" : "PCMA";
  unsigned port = app.echo_fd >= 0 ? app.echo_port : c.local_rtp_port;
  if (te_pt >= 0)
    std::snprintf(te, sizeof te, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", te_pt,
                  te_pt);
  std::snprintf(buf, sizeof buf,
                "v=0\r\n"
                "o=ivrload %u 1 IN IP4 %s\r\n"
                "s=ivr-load\r\n"
                "c=IN IP4 %s\r\n"
                "t=0 0\r\n"
                "m=audio %u RTP/AVP %d%s%s\r\n"
                "a=rtpmap:%d %s/8000\r\n"
                "%s"
                "a=ptime:20\r\n"
                "a=sendrecv\r\n",
                c.index + 1, app.local_host.c_str(), app.local_host.c_str(), port, app.audio_pt,
                te_pt >= 0 ? " " : "", te_pt >= 0 ? std::to_string(te_pt).c_str() : "",
                app.audio_pt, enc, te);
  return buf;
}

std::string make_offer(const App &app, const Call &c) {
  return make_sdp(app, c, 101);
}

// ---- SIP thread ----

void call_finished(App &app, Call &c, SipState final_state) {
  if (c.state == SipState::ended || c.state == SipState::failed) return;
  int64_t now = now_ns();
  bool was_up = c.state == SipState::up || c.state == SipState::ending;
  if (was_up) {
    app.up--;
    if (!app.first_end_ns) {
      app.first_end_ns = now;
      event_line(app, "first_end call=%u up=%u", c.index, app.up);
    }
  }
  c.state = final_state;
  c.end_ns = now;
  app.finished++;
  media_post(app, MediaCmd::stop, &c);
}

void send_bye(App &app, Call &c) {
  if (c.state != SipState::up || !c.nh) return;
  c.state = SipState::ending;
  c.our_bye_ns = now_ns();
  nua_bye(c.nh, TAG_END());
  (void)app;
}

void place_call(App &app, Call &c) {
  std::string uri =
      "sip:ivr@" + app.target_host + ":" + std::to_string(app.target_port) + ";transport=udp";
  char call_id[96];
  std::snprintf(call_id, sizeof call_id, "load-%" PRIu64 "-%u@%s", app.opt.seed, c.index,
                app.local_host.c_str());
  c.call_id = call_id;
  c.nh = nua_handle(app.nua, &c, NUTAG_URL(uri.c_str()), SIPTAG_TO_STR(uri.c_str()),
                    SIPTAG_CALL_ID_STR(call_id), TAG_END());
  if (!c.nh) die("nua_handle failed");
  std::string sdp = make_offer(app, c);
  c.state = SipState::inviting;
  c.invite_ns = now_ns();
  nua_invite(c.nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(sdp.c_str()),
             TAG_END());
}

void on_final(App &app) {
  if (++app.finals == app.opt.calls) {
    app.ramp_done_ns = now_ns();
    unsigned failed = 0;
    for (auto &c : app.calls) failed += c->final_status >= 300 || c->final_status == 0;
    event_line(app, "ramp_done up=%u failed=%u", app.up, failed);
  }
}

// --answer: the next free Call takes the INVITE; 200 OK at once with our SDP, media from now.
void answer_call(App &app, nua_handle_t *nh, sip_t const *sip) {
  std::string body;
  if (sip && sip->sip_payload && sip->sip_payload->pl_data)
    body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
  SdpAnswer offer;
  if (app.accepted >= app.opt.calls || app.stopping || !parse_sdp(body, app.audio_pt, offer)) {
    app.refused++;
    bool full = app.accepted >= app.opt.calls || app.stopping;
    if (app.refused <= 3)
      std::fprintf(stderr, "ivr-load: refusing an INVITE: %s\n",
                   full ? "all --calls taken" : "no usable PCMU offer");
    nua_respond(nh, full ? 486 : 488, full ? "Busy Here" : "Not Acceptable Here", TAG_END());
    nua_handle_destroy(nh);
    return;
  }
  Call &c = *app.calls[app.accepted++];
  app.placed = app.accepted;  // "placed" counts the calls we own, for the end condition
  nua_handle_bind(nh, &c);
  c.nh = nh;
  if (sip && sip->sip_call_id && sip->sip_call_id->i_id) c.call_id = sip->sip_call_id->i_id;
  int64_t now = now_ns();
  c.invite_ns = c.answer_ns = now;
  c.final_status = 200;
  app.final_status_counts[200]++;
  c.remote.sin_family = AF_INET;
  c.remote.sin_port = htons(uint16_t(offer.port));
  inet_pton(AF_INET, offer.ip.c_str(), &c.remote.sin_addr);
  c.audio_pt = offer.audio_pt;
  c.te_pt = offer.te_pt;  // echoed in the answer; we send no digits (the pacer's te_pt is -1)
  nua_respond(nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
              SIPTAG_PAYLOAD_STR(make_sdp(app, c, offer.te_pt).c_str()), TAG_END());
  c.state = SipState::up;
  app.up++;
  app.max_up = std::max(app.max_up, app.up);
  media_post(app, MediaCmd::start, &c);
  if (app.up == app.opt.calls && !app.all_up_ns) {
    app.all_up_ns = now;
    event_line(app, "all_up up=%u", app.up);
  }
  on_final(app);
}

void nua_callback(nua_event_t event, int status, char const *phrase, nua_t *, App *app,
                  nua_handle_t *nh, Call *c, sip_t const *sip, tagi_t tags[]) {
  if (event == nua_r_shutdown) {
    if (status >= 200) su_root_break(app->root);
    return;
  }
  if (!c && event == nua_i_invite && app->opt.answer) return answer_call(*app, nh, sip);
  if (!c) {
    // Out-of-dialog requests (there should be none): nua answers them itself.
    if (event == nua_i_invite) nua_respond(nh, 480, "Not here", TAG_END());
    if (app->opt.verbose)
      std::fprintf(stderr, "ivr-load: unowned event %s %d %s\n", nua_event_name(event), status,
                   phrase ? phrase : "");
    if (event == nua_i_invite || event == nua_i_terminated) nua_handle_destroy(nh);
    return;
  }
  Call &call = *c;
  int64_t now = now_ns();
  switch (event) {
    case nua_r_invite:
      if (status >= 180 && status < 200 && !call.ringing_ns) call.ringing_ns = now;
      if (status >= 200 && call.state == SipState::inviting) {
        call.final_status = status;
        app->final_status_counts[status]++;
        if (sip && sip->sip_call_id && sip->sip_call_id->i_id)
          call.call_id = sip->sip_call_id->i_id;
        if (status < 300) {
          SdpAnswer ans;
          std::string body;
          if (sip && sip->sip_payload && sip->sip_payload->pl_data)
            body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
          if (!parse_sdp(body, app->audio_pt, ans)) {
            std::fprintf(stderr, "ivr-load: call %u (%s): unusable SDP answer:\n%s\n", call.index,
                         call.call_id.c_str(), body.c_str());
            call.final_status = 606;
            call.state = SipState::up;
            app->up++;
            send_bye(*app, call);
          } else {
            call.answer_ns = now;
            call.remote.sin_family = AF_INET;
            call.remote.sin_port = htons(uint16_t(ans.port));
            inet_pton(AF_INET, ans.ip.c_str(), &call.remote.sin_addr);
            call.audio_pt = ans.audio_pt;
            call.te_pt = ans.te_pt;
            if (ans.te_pt < 0)
              std::fprintf(stderr, "ivr-load: call %u: no telephone-event in the answer\n",
                           call.index);
            call.state = SipState::up;
            app->up++;
            app->max_up = std::max(app->max_up, app->up);
            media_post(*app, MediaCmd::start, &call);
            if (app->up == app->opt.calls && !app->all_up_ns) {
              app->all_up_ns = now;
              event_line(*app, "all_up up=%u", app->up);
            }
          }
        } else {
          if (app->opt.verbose || app->final_status_counts[status] <= 3)
            std::fprintf(stderr, "ivr-load: call %u (%s) failed: %d %s\n", call.index,
                         call.call_id.c_str(), status, phrase ? phrase : "");
        }
        on_final(*app);
      }
      break;
    case nua_i_bye:
      if (!call.server_bye_ns) call.server_bye_ns = now;
      break;
    case nua_i_invite:  // re-INVITE: media is ours, so answer it by hand (same SDP)
      call.reinvites = true;
      nua_respond(
          nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
          SIPTAG_PAYLOAD_STR(make_sdp(*app, call, app->opt.answer ? call.te_pt : 101).c_str()),
          TAG_END());
      break;
    case nua_i_state: {
      int cs = -1;
      tl_gets(tags, NUTAG_CALLSTATE_REF(cs), TAG_END());
      if (cs == nua_callstate_terminated) {
        if (call.state == SipState::inviting) {
          if (!call.final_status) {
            call.final_status = status ? status : 999;
            app->final_status_counts[call.final_status]++;
            on_final(*app);
          }
          call_finished(*app, call, SipState::failed);
        } else {
          call_finished(*app, call,
                        call.final_status >= 200 && call.final_status < 300 ? SipState::ended
                                                                            : SipState::failed);
        }
        if (call.nh) {
          nua_handle_destroy(call.nh);
          call.nh = nullptr;
        }
      }
      break;
    }
    default:
      if (app->opt.verbose)
        std::fprintf(stderr, "ivr-load: call %u: %s %d %s\n", call.index, nua_event_name(event),
                     status, phrase ? phrase : "");
      break;
  }
}

void finish(App &app);

void on_timer(App *appp, su_timer_t *, App *) {
  App &app = *appp;
  if (app.shutting_down) return;
  int64_t now = now_ns();
  const Options &o = app.opt;

  if (g_signal.load() && !app.stopping) {
    std::fprintf(stderr, "ivr-load: signal: hanging up every call\n");
    app.stopping = true;
  }
  if (o.max_run_s > 0 && !app.stopping && now - app.start_ns > int64_t(o.max_run_s * 1e9)) {
    std::fprintf(stderr, "ivr-load: --max-run reached: hanging up every call\n");
    app.stopping = true;
  }

  // Place calls at the configured rate.
  if (!app.stopping && !o.answer) {
    double elapsed = double(now - app.start_ns) / 1e9;
    unsigned target = std::min<unsigned>(o.calls, unsigned(elapsed * o.rate) + 1);
    while (app.placed < target) place_call(app, *app.calls[app.placed++]);
  }

  if (now - app.last_deadline_check_ns >= 100 * kMs) {
    app.last_deadline_check_ns = now;
    int64_t bye_after = int64_t(o.bye_after_s * 1e9);
    for (auto &cp : app.calls) {
      Call &c = *cp;
      if (c.state != SipState::up) continue;
      if (o.answer) {  // the far end hangs up --hold seconds after its 200 OK
        if (app.stopping || now - c.answer_ns >= int64_t(o.hold_s * 1e9)) send_bye(app, c);
        continue;
      }
      int64_t done = c.digits_done_ns.load(std::memory_order_acquire);
      if (app.stopping || (done && now - done > bye_after)) send_bye(app, c);
      if (!app.digits_begin_ns && c.answer_ns && now >= c.answer_ns + int64_t(o.hold_s * 1e9)) {
        app.digits_begin_ns = now;
        event_line(app, "digits_begin call=%u up=%u", c.index, app.up);
      }
    }
    if (app.stopping)  // calls still ringing when we stop: cancel them
      for (auto &cp : app.calls)
        if (cp->state == SipState::inviting && cp->nh && !cp->cancelled) {
          cp->cancelled = true;
          nua_cancel(cp->nh, TAG_END());
        }
  }

  if (now - app.last_status_ns >= 1000 * kMs) {
    app.last_status_ns = now;
    std::fprintf(stderr, "ivr-load: t=%.0fs placed=%u up=%u finished=%u\n", secs(app, now),
                 app.placed, app.up, app.finished);
  }

  bool all_done = (app.placed == o.calls || app.stopping) && app.finished == app.placed;
  if (all_done && !app.finish_ns) app.finish_ns = now;
  if (app.finish_ns && now - app.finish_ns > 1000 * kMs) finish(app);  // let the log settle
}

// ---- report ----

struct ServerLine {
  std::string digits, source;
  int count = 0;
};

std::unordered_map<std::string, ServerLine> read_server_log(const std::string &path,
                                                            unsigned &lines, unsigned &other) {
  std::unordered_map<std::string, ServerLine> out;
  lines = other = 0;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string w_call, id, w_digits, digits, w_source, source;
    ls >> w_call >> id >> w_digits;
    if (w_call != "call" || w_digits != "digits") {
      other++;
      continue;
    }
    // "digits" may be empty: then the next word is "source".
    ls >> digits;
    if (digits == "source") {
      digits.clear();
      ls >> source;
    } else {
      ls >> w_source >> source;
    }
    lines++;
    auto &e = out[id];
    e.digits = digits;
    e.source = source;
    e.count++;
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::ceil(p / 100.0 * double(v.size())));
  if (i > 0) i--;
  return v[std::min(i, v.size() - 1)];
}

std::string json_escape(const std::string &s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (uint8_t(ch) < 0x20) continue;
    o += ch;
  }
  return o;
}

void write_report(App &app) {
  const Options &o = app.opt;
  std::vector<double> lat, lat180, jit;
  uint64_t tx = 0, tx_ev = 0, rx = 0, rx_audio = 0, rx_exp_seq = 0, rx_exp_time = 0, rx_bad = 0,
           ssrc_changes = 0, no_rx_calls = 0;
  double max_gap_ms = 0, max_jit = 0;
  unsigned answered = 0, server_bye = 0, our_bye = 0, early_bye = 0, reinvite_calls = 0;
  unsigned dtmf_complete = 0;
  for (auto &cp : app.calls) {
    Call &c = *cp;
    if (c.answer_ns) {
      answered++;
      lat.push_back(double(c.answer_ns - c.invite_ns) / 1e6);
      if (c.ringing_ns) lat180.push_back(double(c.ringing_ns - c.invite_ns) / 1e6);
      int64_t end = c.server_bye_ns ? c.server_bye_ns : (c.our_bye_ns ? c.our_bye_ns : c.end_ns);
      if (end > c.answer_ns) rx_exp_time += uint64_t((end - c.answer_ns) / kFrameNs);
    }
    if (c.server_bye_ns) server_bye++;
    if (c.our_bye_ns) our_bye++;
    if (c.server_bye_ns && c.digits_done_ns.load() == 0) early_bye++;
    if (c.reinvites) reinvite_calls++;
    if (c.digits_done_ns.load()) dtmf_complete++;
    tx += c.tx_packets;
    tx_ev += c.tx_events;
    rx += c.rx_packets;
    rx_audio += c.rx_audio;
    rx_bad += c.rx_bad;
    ssrc_changes += c.rx_ssrc_changes;
    if (c.rx_have) rx_exp_seq += c.rx_expected_seq + (c.rx_max_seq - c.rx_base_seq + 1);
    if (c.answer_ns && c.rx_packets == 0) no_rx_calls++;
    max_gap_ms = std::max(max_gap_ms, double(c.rx_max_gap_ns) / 1e6);
    if (c.rx_audio > 1) {
      double j = c.jitter / 8.0;  // ms
      jit.push_back(j);
      max_jit = std::max(max_jit, j);
    }
  }

  // Digit check against the server's stdout.
  bool have_log = !o.server_log.empty();
  unsigned log_lines = 0, log_other = 0;
  std::unordered_map<std::string, ServerLine> log;
  if (have_log) log = read_server_log(o.server_log, log_lines, log_other);
  unsigned calls_ok = 0, calls_wrong = 0, calls_missing = 0, dup_lines = 0, wrong_source = 0;
  uint64_t digits_sent = 0, digits_ok = 0;
  std::vector<std::string> problems;
  std::set<std::string> ours;
  for (auto &cp : app.calls) {
    Call &c = *cp;
    ours.insert(c.call_id);
    if (!c.digits_done_ns.load()) continue;
    digits_sent += c.digits.size() + 1;  // counting the '#'
    if (!have_log) continue;
    auto it = log.find(c.call_id);
    if (it == log.end()) {
      calls_missing++;
      if (problems.size() < 20)
        problems.push_back(c.call_id + ": no line (sent " + c.digits + "#)");
      continue;
    }
    if (it->second.count > 1) dup_lines++;
    const std::string &got = it->second.digits;
    for (size_t i = 0; i < std::min(got.size(), c.digits.size()); i++)
      if (got[i] == c.digits[i]) digits_ok++;
    if (got == c.digits) digits_ok++;  // the '#' ended the collection: counted as received
    if (got == c.digits && it->second.source == "rfc4733") {
      calls_ok++;
    } else {
      calls_wrong++;
      if (got == c.digits) wrong_source++;
      if (problems.size() < 20)
        problems.push_back(c.call_id + ": sent " + c.digits + "# got '" + got + "' source " +
                           it->second.source);
    }
  }
  unsigned foreign = 0;
  for (auto &kv : log)
    if (!ours.count(kv.first)) foreign++;

  MediaStats &ms = app.mstats;
  double run_s = secs(app, now_ns());
  double window_s =
      app.all_up_ns && app.first_end_ns ? double(app.first_end_ns - app.all_up_ns) / 1e9 : 0;
  std::ostringstream js;
  js.setf(std::ios::fixed);
  js.precision(3);
  js << "{\"mode\":\"" << (o.answer ? "answer-" + o.media : std::string("call")) << "\""
     << ",\"accepted\":" << app.accepted << ",\"refused\":" << app.refused
     << ",\"echo\":{\"rx\":" << app.echo_rx << ",\"tx\":" << app.echo_tx
     << ",\"unknown_source\":" << app.echo_unknown << ",\"send_errors\":" << app.echo_send_errors
     << ",\"batches\":" << app.echo_batches << "}"
     << ",\"calls\":" << o.calls << ",\"rate\":" << o.rate << ",\"hold_s\":" << o.hold_s
     << ",\"run_s\":" << run_s << ",\"answered\":" << answered << ",\"max_up\":" << app.max_up
     << ",\"all_up_s\":" << secs(app, app.all_up_ns)
     << ",\"first_end_s\":" << secs(app, app.first_end_ns) << ",\"all_up_window_s\":" << window_s
     << ",\"final_status\":{";
  bool first = true;
  for (auto &kv : app.final_status_counts) {
    js << (first ? "" : ",") << "\"" << kv.first << "\":" << kv.second;
    first = false;
  }
  js << "},\"invite_200_ms\":{\"p50\":" << percentile(lat, 50) << ",\"p90\":" << percentile(lat, 90)
     << ",\"p99\":" << percentile(lat, 99) << ",\"max\":" << percentile(lat, 100) << "}"
     << ",\"invite_180_ms\":{\"p50\":" << percentile(lat180, 50)
     << ",\"p99\":" << percentile(lat180, 99) << "}"
     << ",\"server_bye\":" << server_bye << ",\"our_bye\":" << our_bye
     << ",\"server_bye_before_digits\":" << early_bye << ",\"reinvite_calls\":" << reinvite_calls
     << ",\"rtp\":{\"tx\":" << tx << ",\"tx_dtmf\":" << tx_ev << ",\"rx\":" << rx
     << ",\"rx_audio\":" << rx_audio << ",\"rx_expected_by_seq\":" << rx_exp_seq
     << ",\"rx_expected_by_time\":" << rx_exp_time << ",\"rx_bad\":" << rx_bad
     << ",\"ssrc_changes\":" << ssrc_changes << ",\"answered_calls_without_rx\":" << no_rx_calls
     << ",\"max_gap_ms\":" << max_gap_ms << ",\"jitter_ms_p50\":" << percentile(jit, 50)
     << ",\"jitter_ms_max\":" << max_jit << ",\"transit_ms\":{\"stamped\":" << g_transit.count
     << ",\"p50\":" << transit_percentile_ms(50) << ",\"p99\":" << transit_percentile_ms(99)
     << ",\"p999\":" << transit_percentile_ms(99.9) << ",\"max\":" << double(g_transit.max_ns) / 1e6
     << ",\"over_20ms\":" << transit_over_ms(20) << ",\"over_50ms\":" << transit_over_ms(50)
     << ",\"over_100ms\":" << transit_over_ms(100) << "}}"
     << ",\"generator\":{\"loops\":" << ms.loops
     << ",\"max_late_ms\":" << double(ms.max_late_ns) / 1e6 << ",\"late_over_2ms\":" << ms.late_2ms
     << ",\"late_over_5ms\":" << ms.late_5ms << ",\"max_loop_ms\":" << double(ms.max_loop_ns) / 1e6
     << ",\"max_wait_ms\":" << double(ms.max_wake_ns) / 1e6
     << ",\"late_over_10ms\":" << ms.late_10ms << ",\"stalls_over_50ms\":" << ms.stalls
     << ",\"skipped_frames\":" << ms.skipped_frames << ",\"send_errors\":" << ms.send_errors << "}"
     << ",\"dtmf\":{\"checked\":" << (have_log ? "true" : "false")
     << ",\"calls_sent\":" << dtmf_complete << ",\"calls_correct\":" << calls_ok
     << ",\"calls_wrong\":" << calls_wrong << ",\"calls_wrong_source_only\":" << wrong_source
     << ",\"calls_missing\":" << calls_missing << ",\"digits_sent\":" << digits_sent
     << ",\"digits_correct\":" << digits_ok << ",\"server_lines\":" << log_lines
     << ",\"server_duplicate_lines\":" << dup_lines << ",\"server_foreign_lines\":" << foreign
     << ",\"problems\":[";
  for (size_t i = 0; i < problems.size(); i++)
    js << (i ? "," : "") << "\"" << json_escape(problems[i]) << "\"";
  js << "]}}";

  std::printf("REPORT %s\n", js.str().c_str());
  std::fflush(stdout);
  if (!o.report_path.empty()) {
    std::ofstream f(o.report_path);
    f << js.str() << "\n";
  }
  std::fprintf(stderr,
               "ivr-load: %u calls, %u answered, max %u up at once; INVITE->200 p50 %.2f ms p99 "
               "%.2f ms max %.2f ms\n"
               "ivr-load: RTP tx %" PRIu64 " rx %" PRIu64 " (expected by seq %" PRIu64
               ", by time %" PRIu64 "), jitter p50 %.2f ms max %.2f ms, max gap %.1f ms\n",
               o.calls, answered, app.max_up, percentile(lat, 50), percentile(lat, 99),
               percentile(lat, 100), tx, rx, rx_exp_seq, rx_exp_time, percentile(jit, 50), max_jit,
               max_gap_ms);
  if (have_log)
    std::fprintf(stderr,
                 "ivr-load: digits: %u calls sent, %u correct, %u wrong, %u missing; %" PRIu64
                 " of %" PRIu64 " digits correct\n",
                 dtmf_complete, calls_ok, calls_wrong, calls_missing, digits_ok, digits_sent);
  for (auto &p : problems) std::fprintf(stderr, "ivr-load:   %s\n", p.c_str());

  if (!o.calls_csv.empty()) {
    std::ofstream f(o.calls_csv);
    f << "index,call_id,status,invite_200_ms,answer_s,end_s,server_bye_s,our_bye_s,digits_sent,"
         "digits_got,source,tx,rx,rx_expected_seq,jitter_ms,max_gap_ms,max_gap_end_s,"
         "max_transit_ms\n";
    for (auto &cp : app.calls) {
      Call &c = *cp;
      std::string got, source;
      auto it = log.find(c.call_id);
      if (it != log.end()) {
        got = it->second.digits;
        source = it->second.source;
      }
      char line[512];
      std::snprintf(line, sizeof line,
                    "%u,%s,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%s,%s,%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64
                    ",%.2f,%.1f,%.3f,%.2f\n",
                    c.index, c.call_id.c_str(), c.final_status,
                    c.answer_ns ? double(c.answer_ns - c.invite_ns) / 1e6 : -1.0,
                    secs(app, c.answer_ns), secs(app, c.end_ns), secs(app, c.server_bye_ns),
                    secs(app, c.our_bye_ns),
                    c.digits_done_ns.load() ? (c.digits + "#").c_str() : "", got.c_str(),
                    source.c_str(), c.tx_packets, c.rx_packets,
                    c.rx_have ? c.rx_expected_seq + c.rx_max_seq - c.rx_base_seq + 1 : 0,
                    c.jitter / 8.0, double(c.rx_max_gap_ns) / 1e6, secs(app, c.rx_max_gap_at_ns),
                    double(c.max_transit_ns) / 1e6);
      f << line;
    }
  }
}

void finish(App &app) {
  if (app.shutting_down) return;
  app.shutting_down = true;
  event_line(app, "done");
  app.media_stop.store(true, std::memory_order_release);
  app.media_thread.join();
  write_report(app);
  nua_shutdown(app.nua);
}

void sofia_logger(void *, char const *fmt, va_list ap) {
  std::vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv) {
  App app;
  app.opt = parse_options(argc, argv);
  const Options &o = app.opt;
  if (!split_host_port(o.target, app.target_host, app.target_port))
    die("--target: expected HOST:PORT");
  if (!split_host_port(o.local, app.local_host, app.local_port)) die("--local: expected HOST:PORT");

  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < o.calls + 64)
    die("file descriptor limit %lu is below %u calls: raise ulimit -n", (unsigned long)rl.rlim_cur,
        o.calls);

  app.audio_pt = o.codec == "pcmu" ? 0 : 8;
  for (unsigned i = 0; i < kFrameSamples; i++) {
    auto s = int16_t(1000.0 * std::sin(2 * M_PI * 400.0 * i / 8000.0));
    app.audio_frame[i] = app.audio_pt == 0 ? linear_to_ulaw(s) : linear_to_alaw(s);
  }

  // Distinct random digit strings, 4-6 digits each.
  std::mt19937_64 rng(o.seed);
  std::set<std::string> used;
  app.calls.reserve(o.calls);
  for (unsigned i = 0; i < o.calls; i++) {
    auto c = std::make_unique<Call>();
    c->index = i;
    do {
      unsigned len = 4 + unsigned(rng() % 3);
      c->digits.clear();
      for (unsigned k = 0; k < len; k++) c->digits += char('0' + rng() % 10);
    } while (!used.insert(c->digits).second);
    for (size_t k = 0; k <= c->digits.size(); k++)
      c->gaps.push_back(uint16_t(o.gap_min_ms + rng() % (o.gap_max_ms - o.gap_min_ms + 1)));
    c->ssrc = uint32_t(rng());
    c->seq = uint16_t(rng());
    c->ts = uint32_t(rng());
    app.calls.push_back(std::move(c));
  }

  // Media: epoll + one periodic timerfd; sockets are added as calls are placed.
  app.epfd = epoll_create1(EPOLL_CLOEXEC);
  app.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (app.epfd < 0 || app.tfd < 0) die("epoll/timerfd: %s", std::strerror(errno));
  itimerspec its{};
  its.it_interval.tv_nsec = long(o.tick_ms) * kMs;
  its.it_value.tv_nsec = long(o.tick_ms) * kMs;
  timerfd_settime(app.tfd, 0, &its, nullptr);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(app.epfd, EPOLL_CTL_ADD, app.tfd, &ev);
  if (o.answer && o.media == "echo") {  // one socket for every call
    app.echo_fd = open_rtp_socket(app, app.echo_port);
    int buf = 8 << 20;  // a stall must not drop: the kernel caps this at rmem_max/wmem_max
    setsockopt(app.echo_fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(app.echo_fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    ev.data.ptr = kEchoTag;
    epoll_ctl(app.epfd, EPOLL_CTL_ADD, app.echo_fd, &ev);
    std::fprintf(stderr, "ivr-load: answering on %s, RTP echo on port %u\n", o.local.c_str(),
                 app.echo_port);
  }
  for (auto &c : app.calls) {  // all sockets up front: the run itself opens none
    if (app.echo_fd >= 0) break;
    c->fd = open_rtp_socket(app, c->local_rtp_port);
    epoll_event cev{};
    cev.events = EPOLLIN;
    cev.data.ptr = c.get();
    epoll_ctl(app.epfd, EPOLL_CTL_ADD, c->fd, &cev);
  }

  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = [](int s) { g_signal.store(s); };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  su_init();
  su_log_redirect(nullptr, sofia_logger, nullptr);
  su_log_redirect(nua_log, sofia_logger, nullptr);
  su_log_redirect(nta_log, sofia_logger, nullptr);
  su_log_redirect(tport_log, sofia_logger, nullptr);
  app.root = su_root_create(&app);
  if (!app.root) die("su_root_create failed");
  su_root_threading(app.root, 0);  // the NUA runs in this thread, no stack thread
  std::string local_url =
      "sip:" + app.local_host + ":" + std::to_string(app.local_port) + ";transport=udp";
  app.nua = nua_create(app.root, nua_callback, &app, NUTAG_URL(local_url.c_str()),
                       NUTAG_MEDIA_ENABLE(0), SIPTAG_USER_AGENT_STR("ivr-load"),
                       NUTAG_SESSION_TIMER(0), SIPTAG_SUPPORTED_STR(""), TAG_END());
  if (!app.nua) die("nua_create failed (cannot bind %s?)", local_url.c_str());

  app.media_thread = std::thread(media_main, std::ref(app));
  app.start_ns = now_ns();
  if (o.answer)
    event_line(app, "start answer calls=%u hold=%.1f media=%s rtp_port=%u", o.calls, o.hold_s,
               o.media.c_str(), app.echo_port);
  else
    event_line(app, "start calls=%u rate=%.1f hold=%.1f", o.calls, o.rate, o.hold_s);
  app.timer = su_timer_create(su_root_task(app.root), 10);
  su_timer_run(app.timer, on_timer, &app);
  su_root_run(app.root);

  su_timer_destroy(app.timer);
  nua_destroy(app.nua);
  su_root_destroy(app.root);
  su_deinit();
  if (!app.shutting_down) return 1;
  return 0;
}
