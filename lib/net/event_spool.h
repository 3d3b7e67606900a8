// EventSpool: the durable on-disk queue that webhook events wait in until their endpoint
// accepts them. Appends and state changes go to an append-only, checksummed operation log;
// opening the spool replays the log, so an endpoint outage, a restart or a SIGKILL loses
// no event whose append was acknowledged (delivery is at-least-once; the record id is the
// idempotency id receivers de-duplicate on).
//
// Threading: every method is called from one owner thread (the engine loop). Methods never
// touch the disk: they update the in-memory index and hand the encoded operation to a small
// writer thread, which writes and fdatasync()s batches (group commit) and then reports each
// operation's durability through its `done` callback, posted with EventSpoolOptions::post
// (or run on the writer thread when post is empty). The exceptions are open(), flush() and
// close(), which block on disk I/O: call them at start-up/shutdown or from a worker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/result.h"

namespace ivr::net {

// One spooled event as the dispatcher sees it (a copy; the payload is shared and immutable).
struct SpoolRecord {
  std::string id;  // 32 lowercase hex digits: 48-bit creation ms + 80 random bits; sortable
  std::string subscription;                    // the endpoint/subscription it is for
  std::string event_type;                      // "call.started", "dtmf", ...
  int64_t created_ms = 0;                      // Unix time, ms
  uint32_t attempts = 0;                       // failed delivery attempts so far
  int64_t next_attempt_ms = 0;                 // Unix time, ms: due when <= now
  std::string last_error;                      // the last failure's text, "" before the first one
  bool dead = false;                           // in the dead letters
  std::shared_ptr<const std::string> payload;  // the body (JSON); never null

  std::string_view body() const { return payload ? std::string_view(*payload) : ""; }
};

// What append() takes.
struct SpoolEvent {
  std::string subscription;     // 1..255 bytes, no control characters
  std::string event_type;       // 1..255 bytes, printable ASCII without spaces
  std::string payload;          // at most EventSpoolOptions::max_payload_bytes
  int64_t next_attempt_ms = 0;  // first attempt; 0 = due at once
};

// Reports that an operation is durable (ok) or could not be made durable (Errc::io).
using SpoolDone = std::function<void(Status)>;
// Runs a task on the owner's thread (for example EventLoop::post).
using SpoolPost = std::function<void(std::function<void()>)>;

struct EventSpoolOptions {
  std::string directory;  // created if missing; one process at a time (a lock file)
  // Appends are refused (Errc::busy) when the live records would exceed this on disk.
  uint64_t max_bytes = uint64_t{256} << 20;
  uint32_t max_attempts = 12;                  // record_failure() dead-letters at this count
  size_t max_payload_bytes = size_t{1} << 20;  // at most 16 MiB
  // Compaction rewrites the live records into a new segment once the log is at least
  // compaction_min_bytes and at least this fraction of it is garbage.
  uint64_t compaction_min_bytes = uint64_t{4} << 20;
  double compaction_garbage_ratio = 0.5;
  SpoolPost post;                     // where done callbacks run; empty = the writer thread
  std::function<int64_t()> clock_ms;  // Unix ms for created_ms and ids; empty = system clock
  LoggerPtr logger;                   // warnings about corrupt records, compaction failures
};

enum class FailureOutcome : uint8_t { retry, dead_lettered };

struct SpoolStats {
  size_t pending = 0;
  size_t dead = 0;
  uint64_t disk_bytes = 0;  // the log's size once the queued writes are done
  uint64_t live_bytes = 0;  // what a compaction would keep
  uint64_t compactions = 0;
  // What open() found: records dropped as corrupt and bytes skipped (see the log warnings).
  uint32_t corrupt_records = 0;
  uint64_t corrupt_bytes = 0;
};

class EventSpool {
 public:
  // Recovers the spool in options.directory (blocking). Errors: invalid_argument (options),
  // busy (another process holds the spool), version (written by a newer format), io.
  static Result<EventSpool> open(EventSpoolOptions options);

  EventSpool(EventSpool &&) noexcept;
  EventSpool &operator=(EventSpool &&) noexcept;
  ~EventSpool();  // close()

  // Adds an event and returns its id at once; `done` reports when it is durable. Errors:
  // invalid_argument (a field, named), busy (the spool is full: nothing was added),
  // io (an earlier write failed), bad_state (closed).
  Result<std::string> append(SpoolEvent event, SpoolDone done = {});

  // Pending records with next_attempt_ms <= now_ms, earliest first, at most `limit`. The
  // spool keeps no leases: the caller tracks which of them it is already delivering.
  std::vector<SpoolRecord> due(int64_t now_ms, size_t limit) const;
  std::optional<int64_t> next_due_ms() const;  // the earliest next_attempt_ms, if any pending
  std::optional<SpoolRecord> find(std::string_view id) const;
  std::vector<SpoolRecord> dead_letters(
      size_t limit = std::numeric_limits<size_t>::max()) const;  // oldest first

  // The endpoint accepted the event: it leaves the spool. not_found for an unknown id.
  Status mark_delivered(std::string_view id, SpoolDone done = {});
  // A delivery attempt failed: attempts + 1, retry at next_attempt_ms, or into the dead
  // letters once attempts reaches max_attempts. not_found, bad_state (a dead letter).
  Result<FailureOutcome> record_failure(std::string_view id, int64_t next_attempt_ms,
                                        std::string_view error, SpoolDone done = {});
  // Straight into the dead letters (a permanent failure such as 410 Gone).
  Status dead_letter(std::string_view id, std::string_view error, SpoolDone done = {});
  // A dead letter becomes pending again with attempts 0. bad_state if it is not dead.
  Status requeue_dead_letter(std::string_view id, int64_t next_attempt_ms, SpoolDone done = {});
  // Drops one record, pending or dead.
  Status purge(std::string_view id, SpoolDone done = {});
  // Drops every dead letter; returns how many. `done` runs once for all of them.
  Result<size_t> purge_dead_letters(SpoolDone done = {});
  // Schedules a compaction now (normally automatic).
  Status compact(SpoolDone done = {});

  SpoolStats stats() const;

  // Blocking: returns once every operation issued so far is durable (or the first error).
  Status flush();
  // Blocking: flushes, stops the writer thread and releases the directory. Idempotent.
  Status close();

  struct Impl;

 private:
  explicit EventSpool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// CRC-32C (Castagnoli), the per-record checksum; exposed for tests.
uint32_t crc32c(const void *data, size_t size, uint32_t crc = 0);

}  // namespace ivr::net
