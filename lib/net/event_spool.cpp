// EventSpool: see event_spool.h for the contract and docs/net.md for the on-disk format.
#include "net/event_spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

namespace ivr::net {

// ---- CRC-32C -------------------------------------------------------------------------------

namespace {

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kCrc32cTable = make_crc32c_table();

}  // namespace

uint32_t crc32c(const void *data, size_t size, uint32_t crc) {
  auto p = static_cast<const uint8_t *>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

namespace {

// ---- format --------------------------------------------------------------------------------

constexpr char kMagic[8] = {'I', 'V', 'R', 'S', 'P', 'O', 'O', 'L'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 32;    // magic, version, header size, seq, flags, crc
constexpr size_t kFrameOverhead = 8;  // u32 body length, u32 crc32c(length bytes + body)
constexpr size_t kMaxPayloadLimit = size_t{16} << 20;
constexpr uint32_t kMaxFrameBody = kMaxPayloadLimit + (64 << 10);
constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxErrorBytes = 1024;
constexpr size_t kIdBytes = 16;
constexpr size_t kPutFixedBody = 1 + 1 + kIdBytes + 8 + 4 + 8 + 2 + 2 + 2 + 4;

enum Op : uint8_t {
  kPut = 1,        // a whole record (an append, or a live record rewritten by compaction)
  kDelivered = 2,  // id
  kFailed = 3,     // id, attempts, next attempt, error
  kDead = 4,       // id, attempts, error
  kRequeued = 5,   // id, next attempt (attempts back to 0)
  kPurged = 6,     // id
};

void put_u8(std::string &out, uint8_t v) {
  out.push_back(static_cast<char>(v));
}
void put_u16(std::string &out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_str16(std::string &out, std::string_view s) {
  put_u16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}
void put_str32(std::string &out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

uint32_t load_u32(const uint8_t *p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint64_t load_u64(const uint8_t *p) {
  return uint64_t{load_u32(p)} | uint64_t{load_u32(p + 4)} << 32;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Ids are kept as hex in memory and as 16 raw bytes on disk.
bool id_to_bytes(std::string_view id, uint8_t out[kIdBytes]) {
  if (id.size() != 2 * kIdBytes) return false;
  for (size_t i = 0; i < kIdBytes; ++i) {
    int hi = hex_value(id[2 * i]), lo = hex_value(id[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}
std::string bytes_to_hex(const uint8_t *p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

// Starts a frame; finish_frame() fills in its length and checksum.
size_t begin_frame(std::string &out, Op op) {
  size_t start = out.size();
  out.append(kFrameOverhead, '\0');
  put_u8(out, op);
  return start;
}
void finish_frame(std::string &out, size_t start) {
  uint32_t len = static_cast<uint32_t>(out.size() - start - kFrameOverhead);
  auto *p = reinterpret_cast<uint8_t *>(out.data() + start);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(len >> (8 * i));
  uint32_t crc = crc32c(p, 4);
  crc = crc32c(p + kFrameOverhead, len, crc);
  for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<uint8_t>(crc >> (8 * i));
}
void put_id(std::string &out, std::string_view id) {
  uint8_t raw[kIdBytes] = {};
  id_to_bytes(id, raw);  // ids come from the index, always well formed
  out.append(reinterpret_cast<const char *>(raw), kIdBytes);
}

uint64_t put_frame_size(const SpoolRecord &r) {
  return kFrameOverhead + kPutFixedBody + r.subscription.size() + r.event_type.size() +
         r.last_error.size() + r.body().size();
}

void encode_put(std::string &out, const SpoolRecord &r) {
  size_t f = begin_frame(out, kPut);
  put_u8(out, r.dead ? 1 : 0);
  put_id(out, r.id);
  put_u64(out, static_cast<uint64_t>(r.created_ms));
  put_u32(out, r.attempts);
  put_u64(out, static_cast<uint64_t>(r.next_attempt_ms));
  put_str16(out, r.subscription);
  put_str16(out, r.event_type);
  put_str16(out, r.last_error);
  put_str32(out, r.body());
  finish_frame(out, f);
}

std::string encode_id_op(Op op, std::string_view id) {
  std::string out;
  size_t f = begin_frame(out, op);
  put_id(out, id);
  finish_frame(out, f);
  return out;
}

std::string encode_header(uint64_t seq) {
  std::string h(kMagic, sizeof kMagic);
  put_u32(h, kFormatVersion);
  put_u32(h, kHeaderSize);
  put_u64(h, seq);
  put_u32(h, 0);  // flags, none yet
  put_u32(h, crc32c(h.data(), h.size()));
  return h;
}

// Bounds-checked reader over one frame body.
class BodyReader {
 public:
  BodyReader(const uint8_t *p, size_t n) : p_(p), end_(p + n) {}
  bool ok() const { return ok_; }
  bool at_end() const { return p_ == end_; }
  uint8_t u8() { return need(1) ? *p_++ : 0; }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = load_u32(p_);
    p_ += 4;
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = load_u64(p_);
    p_ += 8;
    return v;
  }
  std::string id() {
    if (!need(kIdBytes)) return {};
    std::string s = bytes_to_hex(p_, kIdBytes);
    p_ += kIdBytes;
    return s;
  }
  std::string str16() {
    if (!need(2)) return {};
    size_t n = size_t{p_[0]} | size_t{p_[1]} << 8;
    p_ += 2;
    return bytes(n);
  }
  std::string str32() { return bytes(u32()); }

 private:
  bool need(size_t n) {
    if (!ok_ || static_cast<size_t>(end_ - p_) < n) ok_ = false;
    return ok_;
  }
  std::string bytes(size_t n) {
    if (!need(n)) return {};
    std::string s(reinterpret_cast<const char *>(p_), n);
    p_ += n;
    return s;
  }
  const uint8_t *p_;
  const uint8_t *end_;
  bool ok_ = true;
};

std::string errno_text(int err) {
  return std::strerror(err);
}

Status io_error(std::string what, int err) {
  return Status(Errc::io, std::move(what) + ": " + errno_text(err));
}

Status write_all(int fd, const char *p, size_t n, const std::string &path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error("event spool: write " + path, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

std::string segment_name(uint64_t seq) {
  char name[40];
  std::snprintf(name, sizeof name, "spool-%016llx.log", static_cast<unsigned long long>(seq));
  return name;
}

// "spool-<16 hex>.log" -> seq
std::optional<uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != 6 + 16 + 4 || name.substr(0, 6) != "spool-" || name.substr(22) != ".log")
    return std::nullopt;
  uint64_t seq = 0;
  for (char c : name.substr(6, 16)) {
    int v = hex_value(c);
    if (v < 0) return std::nullopt;
    seq = seq << 4 | static_cast<uint64_t>(v);
  }
  return seq;
}

// Cuts at most `max` bytes without splitting a UTF-8 sequence.
std::string clip_utf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

Status check_name(std::string_view field, std::string_view v, bool token) {
  if (v.empty()) return Status(Errc::invalid_argument, std::string(field) + ": must not be empty");
  if (v.size() > kMaxNameBytes)
    return Status(Errc::invalid_argument, std::string(field) + ": longer than 255 bytes");
  for (char ch : v) {
    auto c = static_cast<uint8_t>(ch);
    bool bad = token ? (c <= 0x20 || c >= 0x7F) : (c < 0x20 || c == 0x7F);
    if (bad)
      return Status(Errc::invalid_argument,
                    std::string(field) + (token ? ": only printable ASCII without spaces"
                                                : ": control characters are not allowed"));
  }
  return {};
}

// Time-sortable 128-bit ids: 48 bits of Unix ms, then 80 random bits; within one
// millisecond (or if the clock steps back) the random part counts up, so ids never repeat.
class IdGenerator {
 public:
  std::string next(int64_t now_ms) {
    uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)) & 0xFFFFFFFFFFFFull;
    if (started_ && ms <= last_ms_) {
      for (int i = 9; i >= 0 && ++random_[i] == 0; --i) {
      }
    } else {
      fill_random();
      last_ms_ = ms;
      started_ = true;
    }
    uint8_t raw[kIdBytes];
    for (int i = 0; i < 6; ++i) raw[i] = static_cast<uint8_t>(last_ms_ >> (8 * (5 - i)));
    std::memcpy(raw + 6, random_.data(), random_.size());
    return bytes_to_hex(raw, kIdBytes);
  }

 private:
  void fill_random() {
    size_t got = 0;
    while (got < random_.size()) {
      ssize_t n = ::getrandom(random_.data() + got, random_.size() - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got < random_.size()) {  // no getrandom (old kernel, seccomp): a seeded engine
      std::random_device rd;
      for (auto &b : random_) b = static_cast<uint8_t>(rd());
    }
  }
  std::array<uint8_t, 10> random_{};
  uint64_t last_ms_ = 0;
  bool started_ = false;
};

int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd &&o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd &operator=(Fd &&o) noexcept {
    if (this != &o) {
      reset();
      fd = std::exchange(o.fd, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

// ---- the spool -----------------------------------------------------------------------------

struct EventSpool::Impl {
  struct Item {
    enum class Kind : uint8_t { write, compact, flush } kind = Kind::write;
    std::string frames;
    SpoolDone done;
    std::shared_ptr<const std::vector<SpoolRecord>> snapshot;  // compact
    uint64_t projected_bytes = 0;                              // compact
    std::shared_ptr<std::promise<Status>> flushed;             // flush
  };

  EventSpoolOptions opt;

  // Owner thread.
  std::map<std::string, SpoolRecord, std::less<>> records;
  std::set<std::pair<int64_t, std::string>> due_index;  // pending only
  size_t dead_count = 0;
  uint64_t disk_bytes = 0;  // projected: what the log holds once the queue is written
  uint64_t live_bytes = 0;
  IdGenerator ids;
  bool closed = false;
  SpoolStats open_stats;

  // Disk; the writer thread's once it runs.
  std::string dir;
  Fd dir_fd, lock_fd, seg_fd;
  uint64_t seq = 0;
  uint64_t seg_size = 0;

  // Shared with the writer thread.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Item> queue;
  bool stopping = false;
  Status failure;  // sticky, under mu
  std::atomic<bool> failed{false};
  std::atomic<int64_t> disk_correction{0};
  std::atomic<uint64_t> compactions{0};
  std::thread writer;

  ~Impl() { shutdown(); }

  int64_t now_ms() const { return opt.clock_ms ? opt.clock_ms() : system_ms(); }
  std::string seg_path(uint64_t s) const { return dir + "/" + segment_name(s); }

  // ---- disk (open() and the writer thread) ----

  // Writes `snapshot` as segment seq+1 (temp file, fsync, rename, fsync dir), makes it the
  // segment appends go to and removes the old one. Before the rename nothing is changed, so
  // a failure there leaves the spool as it was; after it, a failure is fatal (the caller).
  Status write_compacted(const std::vector<SpoolRecord> &snapshot, bool *renamed) {
    *renamed = false;
    uint64_t new_seq = seq + 1;
    std::string final_name = segment_name(new_seq), tmp_name = final_name + ".tmp";
    std::string tmp_path = dir + "/" + tmp_name;
    Fd fd(::openat(dir_fd.fd, tmp_name.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600));
    if (fd.fd < 0) return io_error("event spool: create " + tmp_path, errno);
    auto discard = [&](Status st) {
      ::unlinkat(dir_fd.fd, tmp_name.c_str(), 0);
      return st;
    };
    std::string buf = encode_header(new_seq);
    uint64_t size = 0;
    for (const auto &r : snapshot) {
      encode_put(buf, r);
      if (buf.size() >= (size_t{1} << 20)) {
        if (auto st = write_all(fd.fd, buf.data(), buf.size(), tmp_path); !st) return discard(st);
        size += buf.size();
        buf.clear();
      }
    }
    if (auto st = write_all(fd.fd, buf.data(), buf.size(), tmp_path); !st) return discard(st);
    size += buf.size();
    if (::fsync(fd.fd) != 0) return discard(io_error("event spool: fsync " + tmp_path, errno));
    if (::renameat(dir_fd.fd, tmp_name.c_str(), dir_fd.fd, final_name.c_str()) != 0)
      return discard(io_error("event spool: rename " + tmp_path, errno));
    *renamed = true;
    if (::fsync(dir_fd.fd) != 0) return io_error("event spool: fsync directory " + dir, errno);
    uint64_t old_seq = seq;
    bool had_old = seg_fd.fd >= 0;
    seg_fd = std::move(fd);
    seq = new_seq;
    seg_size = size;
    if (had_old && ::unlinkat(dir_fd.fd, segment_name(old_seq).c_str(), 0) != 0) {
      // Harmless: open() ignores segments older than the newest one.
      IVR_LOG(opt.logger, warn, "net", "event spool: could not remove %s: %s",
              seg_path(old_seq).c_str(), errno_text(errno).c_str());
    }
    return {};
  }

  Status sticky_failure() {
    std::lock_guard lk(mu);
    return failure;
  }
  void set_failure(const Status &st) {
    std::lock_guard lk(mu);
    if (failure.ok()) failure = st;
    failed.store(true);
    IVR_LOG(opt.logger, error, "net", "%s (the spool refuses further operations)",
            st.error().message.c_str());
  }

  void deliver(std::vector<std::pair<SpoolDone, Status>> &completions) {
    if (completions.empty()) return;
    if (opt.post) {
      opt.post([c = std::move(completions)]() mutable {
        for (auto &[done, st] : c) done(std::move(st));
      });
    } else {
      for (auto &[done, st] : completions) done(std::move(st));
    }
    completions.clear();
  }

  void run_writer() {
    std::vector<Item> batch;
    std::string buf;
    std::vector<std::pair<SpoolDone, Status>> completions;
    for (;;) {
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return !queue.empty() || stopping; });
        if (queue.empty()) return;
        batch.swap(queue);
      }
      for (size_t i = 0; i < batch.size();) {
        Item &item = batch[i];
        if (item.kind == Item::Kind::write) {
          // Group commit: consecutive writes go out in one write() and one fdatasync().
          size_t j = i;
          buf.clear();
          for (; j < batch.size() && batch[j].kind == Item::Kind::write; ++j)
            buf += batch[j].frames;
          Status st = sticky_failure();
          if (st.ok()) {
            st = write_all(seg_fd.fd, buf.data(), buf.size(), seg_path(seq));
            if (st.ok() && ::fdatasync(seg_fd.fd) != 0)
              st = io_error("event spool: fdatasync " + seg_path(seq), errno);
            if (st.ok()) seg_size += buf.size();
            if (!st.ok()) set_failure(st);
          }
          for (size_t k = i; k < j; ++k)
            if (batch[k].done) completions.emplace_back(std::move(batch[k].done), st);
          i = j;
          continue;
        }
        if (item.kind == Item::Kind::compact) {
          Status st = sticky_failure();
          if (st.ok()) {
            uint64_t size_before = seg_size;
            bool renamed = false;
            st = write_compacted(*item.snapshot, &renamed);
            if (st.ok()) {
              compactions.fetch_add(1);
            } else if (renamed) {
              set_failure(st);
            } else {
              // Not fatal: appends continue on the old segment, which is bigger than the
              // owner projected.
              IVR_LOG(opt.logger, warn, "net", "event spool: compaction failed: %s",
                      st.error().message.c_str());
              disk_correction.fetch_add(static_cast<int64_t>(size_before) -
                                        static_cast<int64_t>(item.projected_bytes));
            }
          }
          if (item.done) completions.emplace_back(std::move(item.done), st);
        } else {  // flush: earlier callbacks first, so a flush() caller sees them done
          deliver(completions);
          item.flushed->set_value(sticky_failure());
        }
        ++i;
      }
      deliver(completions);
      batch.clear();
    }
  }

  void shutdown() {
    if (writer.joinable()) {
      {
        std::lock_guard lk(mu);
        stopping = true;
      }
      cv.notify_one();
      writer.join();
    }
    seg_fd.reset();
    lock_fd.reset();  // releases the flock
    dir_fd.reset();
  }

  // ---- recovery ----

  void apply(const uint8_t *body, size_t len, const std::string &path, uint64_t offset) {
    BodyReader in(body, len);
    auto op = static_cast<Op>(in.u8());
    auto bad = [&](const char *why) {
      IVR_LOG(opt.logger, warn, "net", "event spool: skipped record at %s offset %llu: %s",
              path.c_str(), static_cast<unsigned long long>(offset), why);
      ++open_stats.corrupt_records;
    };
    if (op == kPut) {
      SpoolRecord r;
      r.dead = in.u8() != 0;
      r.id = in.id();
      r.created_ms = static_cast<int64_t>(in.u64());
      r.attempts = in.u32();
      r.next_attempt_ms = static_cast<int64_t>(in.u64());
      r.subscription = in.str16();
      r.event_type = in.str16();
      r.last_error = in.str16();
      r.payload = std::make_shared<const std::string>(in.str32());
      if (!in.ok() || !in.at_end()) return bad("malformed append record");
      records.insert_or_assign(r.id, std::move(r));
      return;
    }
    std::string id = in.id();
    auto it = records.find(id);
    switch (op) {
      case kDelivered:
      case kPurged:
        if (!in.ok() || !in.at_end()) return bad("malformed delivered/purged record");
        if (it != records.end()) records.erase(it);
        return;
      case kFailed: {
        uint32_t attempts = in.u32();
        auto next = static_cast<int64_t>(in.u64());
        std::string error = in.str16();
        if (!in.ok() || !in.at_end()) return bad("malformed failure record");
        if (it == records.end()) return;
        it->second.attempts = attempts;
        it->second.next_attempt_ms = next;
        it->second.last_error = std::move(error);
        return;
      }
      case kDead: {
        uint32_t attempts = in.u32();
        std::string error = in.str16();
        if (!in.ok() || !in.at_end()) return bad("malformed dead-letter record");
        if (it == records.end()) return;
        it->second.dead = true;
        it->second.attempts = attempts;
        it->second.last_error = std::move(error);
        return;
      }
      case kRequeued: {
        auto next = static_cast<int64_t>(in.u64());
        if (!in.ok() || !in.at_end()) return bad("malformed requeue record");
        if (it == records.end()) return;
        it->second.dead = false;
        it->second.attempts = 0;
        it->second.next_attempt_ms = next;
        return;
      }
      default:
        return bad("unknown operation (written by a newer version?)");
    }
  }

  // The body length of a well-formed frame at `off`, or 0 with the reason.
  static uint32_t frame_at(const uint8_t *data, uint64_t size, uint64_t off, const char **why) {
    if (size - off < kFrameOverhead) {
      *why = "truncated frame header";
      return 0;
    }
    uint32_t len = load_u32(data + off);
    if (len == 0 || len > kMaxFrameBody) {
      *why = "impossible record length";
      return 0;
    }
    if (len > size - off - kFrameOverhead) {
      *why = "record cut short";
      return 0;
    }
    uint32_t crc = crc32c(data + off, 4);
    crc = crc32c(data + off + kFrameOverhead, len, crc);
    if (crc != load_u32(data + off + 4)) {
      *why = "checksum mismatch";
      return 0;
    }
    return len;
  }

  // Replays the segment; returns the end of the last good record and whether bytes after it
  // are garbage (a torn tail).
  uint64_t replay(const uint8_t *data, uint64_t size, const std::string &path, bool *torn) {
    *torn = false;
    uint64_t off = kHeaderSize, good_end = kHeaderSize;
    while (off < size) {
      const char *why = "";
      if (uint32_t len = frame_at(data, size, off, &why)) {
        apply(data + off + kFrameOverhead, len, path, off);
        off += kFrameOverhead + len;
        good_end = off;
        continue;
      }
      // Look for the next good frame: one bad record in the middle loses only itself.
      uint64_t next = off + 1;
      const char *ignored = "";
      while (next + kFrameOverhead <= size && frame_at(data, size, next, &ignored) == 0) ++next;
      ++open_stats.corrupt_records;
      if (next + kFrameOverhead > size) {
        IVR_LOG(opt.logger, warn, "net",
                "event spool: dropped a torn or corrupt record at the end of %s, offset %llu "
                "(%llu bytes): %s",
                path.c_str(), static_cast<unsigned long long>(off),
                static_cast<unsigned long long>(size - off), why);
        open_stats.corrupt_bytes += size - off;
        *torn = true;
        break;
      }
      IVR_LOG(opt.logger, warn, "net",
              "event spool: skipped a corrupt record in %s at offset %llu (%llu bytes): %s",
              path.c_str(), static_cast<unsigned long long>(off),
              static_cast<unsigned long long>(next - off), why);
      open_stats.corrupt_bytes += next - off;
      off = next;
    }
    return good_end;
  }

  enum class HeaderCheck { ok, bad, newer };
  HeaderCheck check_header(int fd, uint64_t expect_seq, uint32_t *version) {
    uint8_t h[kHeaderSize];
    ssize_t n = ::pread(fd, h, sizeof h, 0);
    if (n != static_cast<ssize_t>(sizeof h)) return HeaderCheck::bad;
    if (std::memcmp(h, kMagic, sizeof kMagic) != 0) return HeaderCheck::bad;
    if (crc32c(h, kHeaderSize - 4) != load_u32(h + kHeaderSize - 4)) return HeaderCheck::bad;
    *version = load_u32(h + 8);
    if (*version > kFormatVersion) return HeaderCheck::newer;
    if (*version != kFormatVersion || load_u32(h + 12) != kHeaderSize ||
        load_u64(h + 16) != expect_seq)
      return HeaderCheck::bad;
    return HeaderCheck::ok;
  }

  Status recover() {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status(Errc::io, "event spool: create directory " + dir + ": " + ec.message());
    dir_fd = Fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.fd < 0) return io_error("event spool: open directory " + dir, errno);
    lock_fd = Fd(::openat(dir_fd.fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (lock_fd.fd < 0) return io_error("event spool: open " + dir + "/LOCK", errno);
    if (::flock(lock_fd.fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        return Status(Errc::busy, "event spool: " + dir + " is in use by another process");
      return io_error("event spool: lock " + dir + "/LOCK", errno);
    }

    std::vector<uint64_t> seqs;
    for (auto it = std::filesystem::directory_iterator(dir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (auto s = parse_segment_name(name)) {
        seqs.push_back(*s);
      } else if (name.starts_with("spool-") && name.ends_with(".tmp")) {
        ::unlinkat(dir_fd.fd, name.c_str(), 0);  // an unfinished compaction
      }
    }
    if (ec) return Status(Errc::io, "event spool: list " + dir + ": " + ec.message());
    std::sort(seqs.rbegin(), seqs.rend());

    // The newest segment with a good header holds the whole state; older ones are left over
    // from a compaction interrupted between its rename and its unlink.
    bool found = false;
    for (uint64_t s : seqs) {
      std::string path = seg_path(s);
      if (found) {
        ::unlinkat(dir_fd.fd, segment_name(s).c_str(), 0);
        continue;
      }
      Fd fd(::openat(dir_fd.fd, segment_name(s).c_str(), O_RDWR | O_CLOEXEC));
      if (fd.fd < 0) return io_error("event spool: open " + path, errno);
      uint32_t version = 0;
      switch (check_header(fd.fd, s, &version)) {
        case HeaderCheck::newer:
          return Status(Errc::version, "event spool: " + path + " has format version " +
                                           std::to_string(version) + "; this build reads " +
                                           std::to_string(kFormatVersion));
        case HeaderCheck::bad: {
          IVR_LOG(opt.logger, warn, "net",
                  "event spool: %s has no valid header; renamed to %s.corrupt", path.c_str(),
                  path.c_str());
          std::string to = segment_name(s) + ".corrupt";
          ::renameat(dir_fd.fd, segment_name(s).c_str(), dir_fd.fd, to.c_str());
          continue;
        }
        case HeaderCheck::ok:
          break;
      }
      found = true;
      seq = s;
      seg_fd = std::move(fd);
    }

    bool renamed = false;
    if (!found) {  // a new spool: an empty segment 1
      seq = 0;
      if (auto st = write_compacted({}, &renamed); !st) return st;
      disk_bytes = seg_size;
      return {};
    }

    struct stat sb {};
    if (::fstat(seg_fd.fd, &sb) != 0) return io_error("event spool: stat " + seg_path(seq), errno);
    auto size = static_cast<uint64_t>(sb.st_size);
    uint64_t good_end = kHeaderSize;
    bool torn = false;
    if (size > kHeaderSize) {
      void *map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, seg_fd.fd, 0);
      if (map == MAP_FAILED) return io_error("event spool: map " + seg_path(seq), errno);
      good_end = replay(static_cast<const uint8_t *>(map), size, seg_path(seq), &torn);
      ::munmap(map, size);
    }
    for (auto &[id, r] : records) {
      live_bytes += put_frame_size(r);
      if (r.dead)
        ++dead_count;
      else
        due_index.emplace(r.next_attempt_ms, id);
    }
    seg_size = size;

    if (open_stats.corrupt_records > 0) {
      // Rewrite the survivors so the damage is not met again at every open.
      std::vector<SpoolRecord> snapshot;
      snapshot.reserve(records.size());
      for (auto &[id, r] : records) snapshot.push_back(r);
      Status st = write_compacted(snapshot, &renamed);
      if (!st && renamed) return st;
      if (st.ok()) {
        compactions.fetch_add(1);
      } else {
        IVR_LOG(opt.logger, warn, "net", "event spool: compaction after recovery failed: %s",
                st.error().message.c_str());
        if (torn) {  // at least make the end appendable again
          if (::ftruncate(seg_fd.fd, static_cast<off_t>(good_end)) != 0 || ::fsync(seg_fd.fd) != 0)
            return io_error("event spool: truncate " + seg_path(seq), errno);
          seg_size = good_end;
        }
      }
    }
    if (::lseek(seg_fd.fd, 0, SEEK_END) < 0)
      return io_error("event spool: seek " + seg_path(seq), errno);
    disk_bytes = seg_size;
    return {};
  }

  // ---- owner side ----

  Status usable() {
    if (closed) return Status(Errc::bad_state, "event spool: closed");
    if (failed.load()) {
      Status st = sticky_failure();
      return Status(Errc::io, "event spool: unusable after a write failure (" + st.error().message +
                                  "); reopen it");
    }
    if (int64_t c = disk_correction.exchange(0); c != 0)
      disk_bytes = static_cast<uint64_t>(static_cast<int64_t>(disk_bytes) + c);
    return {};
  }

  void push(Item item) {
    {
      std::lock_guard lk(mu);
      queue.push_back(std::move(item));
    }
    cv.notify_one();
  }

  void submit(std::string frames, SpoolDone done) {
    disk_bytes += frames.size();
    Item item;
    item.frames = std::move(frames);
    item.done = std::move(done);
    push(std::move(item));
  }

  void schedule_compaction(SpoolDone done) {
    auto snapshot = std::make_shared<std::vector<SpoolRecord>>();
    snapshot->reserve(records.size());
    for (auto &[id, r] : records) snapshot->push_back(r);  // payloads are shared, not copied
    Item item;
    item.kind = Item::Kind::compact;
    item.snapshot = std::move(snapshot);
    item.projected_bytes = kHeaderSize + live_bytes;
    item.done = std::move(done);
    disk_bytes = item.projected_bytes;
    push(std::move(item));
  }

  void maybe_compact() {
    if (disk_bytes < opt.compaction_min_bytes) return;
    uint64_t garbage = disk_bytes - std::min(disk_bytes, kHeaderSize + live_bytes);
    if (static_cast<double>(garbage) >=
        opt.compaction_garbage_ratio * static_cast<double>(disk_bytes))
      schedule_compaction({});
  }

  // Keeps live_bytes and the due index in step with a change to a record.
  template <typename Change>
  void update(SpoolRecord &r, Change change) {
    live_bytes -= put_frame_size(r);
    if (r.dead)
      --dead_count;
    else
      due_index.erase({r.next_attempt_ms, r.id});
    change(r);
    live_bytes += put_frame_size(r);
    if (r.dead)
      ++dead_count;
    else
      due_index.emplace(r.next_attempt_ms, r.id);
  }

  void erase(std::map<std::string, SpoolRecord, std::less<>>::iterator it) {
    SpoolRecord &r = it->second;
    live_bytes -= put_frame_size(r);
    if (r.dead)
      --dead_count;
    else
      due_index.erase({r.next_attempt_ms, r.id});
    records.erase(it);
  }

  Result<std::map<std::string, SpoolRecord, std::less<>>::iterator> lookup(std::string_view id) {
    auto it = records.find(id);
    if (it == records.end())
      return Error{Errc::not_found, "event spool: no record with id " + std::string(id)};
    return it;
  }
};

// ---- public API ----------------------------------------------------------------------------

EventSpool::EventSpool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventSpool::EventSpool(EventSpool &&) noexcept = default;
EventSpool &EventSpool::operator=(EventSpool &&o) noexcept {
  if (this != &o) {
    if (impl_) (void)close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
EventSpool::~EventSpool() {
  if (impl_) (void)close();
}

Result<EventSpool> EventSpool::open(EventSpoolOptions options) {
  if (options.directory.empty())
    return Error{Errc::invalid_argument, "event spool: directory: must not be empty"};
  if (options.max_payload_bytes == 0 || options.max_payload_bytes > kMaxPayloadLimit)
    return Error{Errc::invalid_argument, "event spool: max_payload_bytes: must be 1..16 MiB"};
  if (options.max_attempts == 0)
    return Error{Errc::invalid_argument, "event spool: max_attempts: must be at least 1"};
  if (options.max_bytes < 4096)
    return Error{Errc::invalid_argument, "event spool: max_bytes: must be at least 4096"};
  if (!(options.compaction_garbage_ratio > 0 && options.compaction_garbage_ratio <= 1))
    return Error{Errc::invalid_argument,
                 "event spool: compaction_garbage_ratio: must be in (0, 1]"};
  try {
    auto impl = std::make_unique<Impl>();
    impl->opt = std::move(options);
    impl->dir = impl->opt.directory;
    while (impl->dir.size() > 1 && impl->dir.back() == '/') impl->dir.pop_back();
    if (auto st = impl->recover(); !st) return st.error();
    Impl *raw = impl.get();
    impl->writer = std::thread([raw] { raw->run_writer(); });
    return EventSpool(std::move(impl));
  } catch (const std::exception &e) {
    return Error{Errc::internal, std::string("event spool: open: ") + e.what()};
  }
}

Result<std::string> EventSpool::append(SpoolEvent event, SpoolDone done) {
  if (!impl_) return Error{Errc::bad_state, "event spool: moved from"};
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st.error();
  if (auto st = check_name("subscription", event.subscription, false); !st) return st.error();
  if (auto st = check_name("event_type", event.event_type, true); !st) return st.error();
  if (event.payload.size() > s.opt.max_payload_bytes)
    return Error{Errc::invalid_argument, "payload: " + std::to_string(event.payload.size()) +
                                             " bytes, more than max_payload_bytes (" +
                                             std::to_string(s.opt.max_payload_bytes) + ")"};
  int64_t now = s.now_ms();
  SpoolRecord r;
  do {
    r.id = s.ids.next(now);
  } while (s.records.count(r.id) != 0);  // never in practice; cheap to be sure
  r.subscription = std::move(event.subscription);
  r.event_type = std::move(event.event_type);
  r.created_ms = now;
  r.next_attempt_ms = event.next_attempt_ms != 0 ? event.next_attempt_ms : now;
  r.payload = std::make_shared<const std::string>(std::move(event.payload));

  uint64_t frame = put_frame_size(r);
  if (kHeaderSize + s.live_bytes + frame > s.opt.max_bytes)
    return Error{Errc::busy, "event spool: full (" + std::to_string(s.live_bytes) +
                                 " bytes of live records, max_bytes " +
                                 std::to_string(s.opt.max_bytes) + "); nothing was added"};
  if (s.disk_bytes + frame > s.opt.max_bytes) s.schedule_compaction({});

  std::string bytes;
  bytes.reserve(frame);
  encode_put(bytes, r);
  std::string id = r.id;
  s.live_bytes += frame;
  s.due_index.emplace(r.next_attempt_ms, id);
  s.records.emplace(id, std::move(r));
  s.submit(std::move(bytes), std::move(done));
  s.maybe_compact();
  return id;
}

std::vector<SpoolRecord> EventSpool::due(int64_t now_ms, size_t limit) const {
  std::vector<SpoolRecord> out;
  if (!impl_) return out;
  for (auto &[next, id] : impl_->due_index) {
    if (next > now_ms || out.size() >= limit) break;
    out.push_back(impl_->records.find(id)->second);
  }
  return out;
}

std::optional<int64_t> EventSpool::next_due_ms() const {
  if (!impl_ || impl_->due_index.empty()) return std::nullopt;
  return impl_->due_index.begin()->first;
}

std::optional<SpoolRecord> EventSpool::find(std::string_view id) const {
  if (!impl_) return std::nullopt;
  auto it = impl_->records.find(id);
  if (it == impl_->records.end()) return std::nullopt;
  return it->second;
}

std::vector<SpoolRecord> EventSpool::dead_letters(size_t limit) const {
  std::vector<SpoolRecord> out;
  if (!impl_) return out;
  for (auto &[id, r] : impl_->records) {
    if (out.size() >= limit || out.size() >= impl_->dead_count) break;
    if (r.dead) out.push_back(r);
  }
  return out;
}

Status EventSpool::mark_delivered(std::string_view id, SpoolDone done) {
  if (!impl_) return Status(Errc::bad_state, "event spool: moved from");
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st;
  auto it = s.lookup(id);
  if (!it) return it.error();
  std::string frame = encode_id_op(kDelivered, id);
  s.erase(*it);
  s.submit(std::move(frame), std::move(done));
  s.maybe_compact();
  return {};
}

Result<FailureOutcome> EventSpool::record_failure(std::string_view id, int64_t next_attempt_ms,
                                                  std::string_view error, SpoolDone done) {
  if (!impl_) return Error{Errc::bad_state, "event spool: moved from"};
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st.error();
  auto it = s.lookup(id);
  if (!it) return it.error();
  SpoolRecord &r = (*it)->second;
  if (r.dead)
    return Error{Errc::bad_state, "event spool: " + std::string(id) + " is a dead letter"};
  std::string text = clip_utf8(error, kMaxErrorBytes);
  uint32_t attempts = r.attempts + 1;
  bool dead = attempts >= s.opt.max_attempts;
  std::string bytes;
  size_t f = begin_frame(bytes, dead ? kDead : kFailed);
  put_id(bytes, id);
  put_u32(bytes, attempts);
  if (!dead) put_u64(bytes, static_cast<uint64_t>(next_attempt_ms));
  put_str16(bytes, text);
  finish_frame(bytes, f);
  s.update(r, [&](SpoolRecord &x) {
    x.attempts = attempts;
    x.last_error = std::move(text);
    if (dead)
      x.dead = true;
    else
      x.next_attempt_ms = next_attempt_ms;
  });
  s.submit(std::move(bytes), std::move(done));
  s.maybe_compact();
  return dead ? FailureOutcome::dead_lettered : FailureOutcome::retry;
}

Status EventSpool::dead_letter(std::string_view id, std::string_view error, SpoolDone done) {
  if (!impl_) return Status(Errc::bad_state, "event spool: moved from");
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st;
  auto it = s.lookup(id);
  if (!it) return it.error();
  SpoolRecord &r = (*it)->second;
  if (r.dead)
    return Status(Errc::bad_state, "event spool: " + std::string(id) + " is already dead");
  std::string text = clip_utf8(error, kMaxErrorBytes);
  std::string bytes;
  size_t f = begin_frame(bytes, kDead);
  put_id(bytes, id);
  put_u32(bytes, r.attempts);
  put_str16(bytes, text);
  finish_frame(bytes, f);
  s.update(r, [&](SpoolRecord &x) {
    x.dead = true;
    x.last_error = std::move(text);
  });
  s.submit(std::move(bytes), std::move(done));
  s.maybe_compact();
  return {};
}

Status EventSpool::requeue_dead_letter(std::string_view id, int64_t next_attempt_ms,
                                       SpoolDone done) {
  if (!impl_) return Status(Errc::bad_state, "event spool: moved from");
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st;
  auto it = s.lookup(id);
  if (!it) return it.error();
  SpoolRecord &r = (*it)->second;
  if (!r.dead) return Status(Errc::bad_state, "event spool: " + std::string(id) + " is not dead");
  std::string bytes;
  size_t f = begin_frame(bytes, kRequeued);
  put_id(bytes, id);
  put_u64(bytes, static_cast<uint64_t>(next_attempt_ms));
  finish_frame(bytes, f);
  s.update(r, [&](SpoolRecord &x) {
    x.dead = false;
    x.attempts = 0;
    x.next_attempt_ms = next_attempt_ms;
  });
  s.submit(std::move(bytes), std::move(done));
  s.maybe_compact();
  return {};
}

Status EventSpool::purge(std::string_view id, SpoolDone done) {
  if (!impl_) return Status(Errc::bad_state, "event spool: moved from");
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st;
  auto it = s.lookup(id);
  if (!it) return it.error();
  std::string frame = encode_id_op(kPurged, id);
  s.erase(*it);
  s.submit(std::move(frame), std::move(done));
  s.maybe_compact();
  return {};
}

Result<size_t> EventSpool::purge_dead_letters(SpoolDone done) {
  if (!impl_) return Error{Errc::bad_state, "event spool: moved from"};
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st.error();
  std::string bytes;
  size_t n = 0;
  for (auto it = s.records.begin(); it != s.records.end();) {
    auto cur = it++;
    if (!cur->second.dead) continue;
    bytes += encode_id_op(kPurged, cur->first);
    s.erase(cur);
    ++n;
  }
  s.submit(std::move(bytes), std::move(done));  // an empty write still reports durability
  s.maybe_compact();
  return n;
}

Status EventSpool::compact(SpoolDone done) {
  if (!impl_) return Status(Errc::bad_state, "event spool: moved from");
  if (auto st = impl_->usable(); !st) return st;
  impl_->schedule_compaction(std::move(done));
  return {};
}

SpoolStats EventSpool::stats() const {
  SpoolStats out;
  if (!impl_) return out;
  out = impl_->open_stats;
  out.pending = impl_->due_index.size();
  out.dead = impl_->dead_count;
  out.disk_bytes = impl_->disk_bytes + static_cast<uint64_t>(impl_->disk_correction.load());
  out.live_bytes = impl_->live_bytes;
  out.compactions = impl_->compactions.load();
  return out;
}

Status EventSpool::flush() {
  if (!impl_) return Status(Errc::bad_state, "event spool: moved from");
  if (impl_->closed) return Status(Errc::bad_state, "event spool: closed");
  Impl::Item item;
  item.kind = Impl::Item::Kind::flush;
  item.flushed = std::make_shared<std::promise<Status>>();
  auto done = item.flushed->get_future();
  impl_->push(std::move(item));
  return done.get();
}

Status EventSpool::close() {
  if (!impl_ || impl_->closed) return {};
  Status st = flush();
  impl_->closed = true;
  impl_->shutdown();
  return st;
}

}  // namespace ivr::net
