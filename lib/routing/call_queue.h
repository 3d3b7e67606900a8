// CallQueue: calls waiting because no target can take them, ordered by priority (0-999,
// LOWER first) and then by enqueue time (FIFO within a priority). Semantics, the direction
// of priorities and the wait estimate: docs/routing.md, "The queue".
//
// An order-statistic treap (nodes in a vector, balanced by a seeded generator so runs are
// reproducible) keeps every operation O(log n): enqueue, remove (hang-up), set_priority,
// position, head; expiry walks a deadline index. offer() reserves a slot on a target for the
// first waiting call without a pending offer, so a slot never goes to two calls and a call
// is never offered twice at once; confirm() takes the call out of the queue (it goes to the
// target with its slot), cancel() puts the slot back and the call keeps its place.
//
// One thread (the engine loop) owns a queue; nothing here locks or reads a clock.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "routing/model.h"
#include "routing/target_pool.h"

namespace ivr::routing {

inline constexpr uint32_t kMaxQueuePriority = 999;
// The priority of a call whose flow names none: the middle, so rules can move a call either
// way.
inline constexpr uint32_t kDefaultQueuePriority = 500;

struct QueueOptions {
  size_t max_size = 100000;  // enqueue beyond this is Errc::busy
  double ewma_alpha = 0.2;   // weight of the newest service interval in the estimate
  uint64_t seed = 1;         // balances the treap; any value gives the same order
};

struct QueuedCall {
  uint64_t call = 0;
  uint32_t priority = 0;  // 0 = served first
  Instant enqueued_at{};
  std::optional<Instant> deadline;  // enqueued_at + max wait
  uint64_t offer_slot = 0;          // a pending offer's slot id, 0 when none
  TargetIndex offer_target = 0;
};

struct Offer {
  uint64_t call = 0;
  Slot slot;
};

struct QueueStats {
  size_t size = 0;
  size_t offered = 0;  // calls with a pending offer
  Duration oldest_wait{0};
  std::vector<std::pair<uint32_t, uint32_t>> by_priority;         // (priority, count), ascending
  std::optional<Duration> service_interval;                       // the wait estimate's I
  uint64_t enqueued = 0, served = 0, abandoned = 0, expired = 0;  // totals
};

class CallQueue {
 public:
  explicit CallQueue(QueueOptions options = {});

  // Adds a call; returns its 1-based position. Errc::busy when the call is already queued
  // or the queue is full; Errc::invalid_argument for a priority above 999 or a max_wait
  // that is not positive.
  Result<size_t> enqueue(uint64_t call, uint32_t priority, Instant now,
                         std::optional<Duration> max_wait = std::nullopt);
  // Takes a call out (the caller hung up, or the flow moved on). A pending offer's slot is
  // released in `pool`. Errc::not_found when the call is not queued.
  Result<QueuedCall> remove(uint64_t call, TargetPool &pool);
  // Moves a call to another priority; within it the call keeps its enqueue time (it goes
  // behind calls that waited longer, ahead of later ones). Returns the new position.
  Result<size_t> set_priority(uint64_t call, uint32_t priority);

  size_t size() const { return index_.size(); }
  bool empty() const { return index_.empty(); }
  const QueuedCall *find(uint64_t call) const;
  // 1-based position, Errc::not_found when the call is not queued.
  Result<size_t> position(uint64_t call) const;
  std::optional<QueuedCall> head() const { return at(1); }
  std::optional<QueuedCall> at(size_t position) const;  // 1-based

  // Removes and returns the calls whose deadline is at or before `now` (earliest deadline
  // first) for the overflow exit; a call with a pending offer is left until the offer is
  // confirmed or cancelled.
  std::vector<QueuedCall> expire(Instant now);
  std::optional<Instant> next_deadline() const;

  // Estimated wait at a position: position x I, where I is the exponentially weighted
  // average of recent service intervals (the time between two calls leaving the queue for a
  // target, counted only while calls were waiting). nullopt until one call has been served.
  std::optional<Duration> estimated_wait_at(size_t position) const;
  std::optional<Duration> estimated_wait(uint64_t call) const;

  // Reserves a slot on `target` for the first call (in queue order) without a pending offer
  // that `accept` allows (all when empty). Errc::not_found when no call qualifies; the
  // pool's Errc::busy when the target has no free slot (nothing changes then).
  Result<Offer> offer(TargetPool &pool, TargetIndex target, Instant now,
                      const std::function<bool(const QueuedCall &)> &accept = {});
  // The offered call goes to the target: it leaves the queue (served); its slot stays
  // reserved for the delivery (commit or release it in the pool). Errc::not_found /
  // Errc::bad_state when the offer is no longer pending.
  Status confirm(const Offer &offer, Instant now);
  // The offer is withdrawn: its slot is released in `pool`; the call keeps its place.
  Status cancel(const Offer &offer, TargetPool &pool);

  QueueStats stats(Instant now) const;

 private:
  struct Node {
    QueuedCall c;
    uint64_t seq = 0;
    uint64_t heap = 0;  // treap priority
    int32_t left = -1, right = -1;
    uint32_t size = 1;
    Instant oldest{};  // earliest enqueued_at in the subtree
  };

  bool less(int32_t a, int32_t b) const;
  void update(int32_t t);
  uint32_t size_of(int32_t t) const { return t < 0 ? 0 : nodes_[static_cast<size_t>(t)].size; }
  void split(int32_t t, int32_t key, int32_t &l, int32_t &r);  // l: keys < key
  int32_t merge(int32_t a, int32_t b);
  int32_t insert(int32_t t, int32_t n);
  int32_t erase(int32_t t, int32_t key);
  size_t rank(int32_t n) const;  // keys before n
  int32_t kth(size_t k) const;   // 0-based
  int32_t alloc_node();
  void drop(int32_t n);  // erase from the tree and every index
  Node &node(int32_t i) { return nodes_[static_cast<size_t>(i)]; }
  const Node &node(int32_t i) const { return nodes_[static_cast<size_t>(i)]; }
  uint64_t next_random();

  QueueOptions opt_;
  std::vector<Node> nodes_;
  std::vector<int32_t> free_;
  int32_t root_ = -1;
  std::unordered_map<uint64_t, int32_t> index_;       // call -> node
  std::set<std::pair<Instant, uint64_t>> deadlines_;  // (deadline, call)
  std::array<uint32_t, kMaxQueuePriority + 1> per_priority_{};
  size_t offered_ = 0;
  uint64_t seq_ = 0;
  uint64_t rng_;
  std::vector<int32_t> stack_;  // in-order walk scratch
  // Wait estimate.
  std::optional<double> interval_ns_;
  Instant busy_since_{};  // when the queue last became non-empty
  std::optional<Instant> last_departure_;
  uint64_t enqueued_ = 0, served_ = 0, abandoned_ = 0, expired_ = 0;
};

}  // namespace ivr::routing
