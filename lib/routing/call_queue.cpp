#include "routing/call_queue.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace ivr::routing {

namespace {
std::string call_text(uint64_t call) {
  return "call " + std::to_string(call);
}
}  // namespace

CallQueue::CallQueue(QueueOptions options) : opt_(options), rng_(options.seed) {
  if (!(opt_.ewma_alpha > 0 && opt_.ewma_alpha <= 1)) opt_.ewma_alpha = 0.2;
}

uint64_t CallQueue::next_random() {  // splitmix64
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Queue order: priority (lower first), then enqueue time, then arrival sequence.
bool CallQueue::less(int32_t a, int32_t b) const {
  const Node &x = node(a), &y = node(b);
  if (x.c.priority != y.c.priority) return x.c.priority < y.c.priority;
  if (x.c.enqueued_at != y.c.enqueued_at) return x.c.enqueued_at < y.c.enqueued_at;
  return x.seq < y.seq;
}

void CallQueue::update(int32_t t) {
  Node &n = node(t);
  n.size = 1 + size_of(n.left) + size_of(n.right);
  n.oldest = n.c.enqueued_at;
  if (n.left >= 0) n.oldest = std::min(n.oldest, node(n.left).oldest);
  if (n.right >= 0) n.oldest = std::min(n.oldest, node(n.right).oldest);
}

void CallQueue::split(int32_t t, int32_t key, int32_t &l, int32_t &r) {
  if (t < 0) {
    l = r = -1;
    return;
  }
  if (less(t, key)) {
    split(node(t).right, key, node(t).right, r);
    l = t;
  } else {
    split(node(t).left, key, l, node(t).left);
    r = t;
  }
  update(t);
}

int32_t CallQueue::merge(int32_t a, int32_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  if (node(a).heap > node(b).heap) {
    node(a).right = merge(node(a).right, b);
    update(a);
    return a;
  }
  node(b).left = merge(a, node(b).left);
  update(b);
  return b;
}

int32_t CallQueue::insert(int32_t t, int32_t n) {
  if (t < 0) return n;
  if (node(n).heap > node(t).heap) {
    split(t, n, node(n).left, node(n).right);
    update(n);
    return n;
  }
  if (less(n, t))
    node(t).left = insert(node(t).left, n);
  else
    node(t).right = insert(node(t).right, n);
  update(t);
  return t;
}

int32_t CallQueue::erase(int32_t t, int32_t key) {
  if (t < 0) return -1;  // not reached: the key is in the tree
  if (t == key) return merge(node(t).left, node(t).right);
  if (less(key, t))
    node(t).left = erase(node(t).left, key);
  else
    node(t).right = erase(node(t).right, key);
  update(t);
  return t;
}

size_t CallQueue::rank(int32_t n) const {
  size_t r = 0;
  int32_t t = root_;
  while (t >= 0 && t != n) {
    if (less(t, n)) {
      r += size_of(node(t).left) + 1;
      t = node(t).right;
    } else {
      t = node(t).left;
    }
  }
  return r + size_of(n >= 0 ? node(n).left : -1);
}

int32_t CallQueue::kth(size_t k) const {
  int32_t t = root_;
  while (t >= 0) {
    size_t left = size_of(node(t).left);
    if (k < left) {
      t = node(t).left;
    } else if (k == left) {
      return t;
    } else {
      k -= left + 1;
      t = node(t).right;
    }
  }
  return -1;
}

int32_t CallQueue::alloc_node() {
  if (!free_.empty()) {
    int32_t n = free_.back();
    free_.pop_back();
    node(n) = Node{};
    return n;
  }
  nodes_.emplace_back();
  return static_cast<int32_t>(nodes_.size() - 1);
}

void CallQueue::drop(int32_t n) {
  Node &x = node(n);
  root_ = erase(root_, n);
  if (x.c.deadline) deadlines_.erase({*x.c.deadline, x.c.call});
  --per_priority_[x.c.priority];
  if (x.c.offer_slot) --offered_;
  index_.erase(x.c.call);
  free_.push_back(n);
}

Result<size_t> CallQueue::enqueue(uint64_t call, uint32_t priority, Instant now,
                                  std::optional<Duration> max_wait) {
  if (priority > kMaxQueuePriority)
    return Error{Errc::invalid_argument, call_text(call) + ": priority " +
                                             std::to_string(priority) +
                                             ": must be an integer from 0 to 999"};
  if (max_wait && max_wait->count() <= 0)
    return Error{Errc::invalid_argument, call_text(call) + ": max wait must be positive"};
  if (index_.count(call)) return Error{Errc::busy, call_text(call) + ": already queued"};
  if (index_.size() >= opt_.max_size)
    return Error{Errc::busy, call_text(call) + ": the queue is full (" +
                                 std::to_string(opt_.max_size) + " calls)"};
  if (index_.empty()) busy_since_ = now;
  int32_t n = alloc_node();
  Node &x = node(n);
  x.c.call = call;
  x.c.priority = priority;
  x.c.enqueued_at = now;
  if (max_wait) x.c.deadline = now + *max_wait;
  x.seq = seq_++;
  x.heap = next_random();
  update(n);
  root_ = insert(root_, n);
  index_.emplace(call, n);
  if (node(n).c.deadline) deadlines_.emplace(*node(n).c.deadline, call);
  ++per_priority_[priority];
  ++enqueued_;
  return rank(n) + 1;
}

Result<QueuedCall> CallQueue::remove(uint64_t call, TargetPool &pool) {
  auto it = index_.find(call);
  if (it == index_.end()) return Error{Errc::not_found, call_text(call) + ": not queued"};
  QueuedCall c = node(it->second).c;
  if (c.offer_slot) (void)pool.release(Slot{c.offer_slot, c.offer_target});
  drop(it->second);
  ++abandoned_;
  return c;
}

Result<size_t> CallQueue::set_priority(uint64_t call, uint32_t priority) {
  if (priority > kMaxQueuePriority)
    return Error{Errc::invalid_argument, call_text(call) + ": priority " +
                                             std::to_string(priority) +
                                             ": must be an integer from 0 to 999"};
  auto it = index_.find(call);
  if (it == index_.end()) return Error{Errc::not_found, call_text(call) + ": not queued"};
  int32_t n = it->second;
  root_ = erase(root_, n);
  --per_priority_[node(n).c.priority];
  node(n).c.priority = priority;
  node(n).left = node(n).right = -1;
  update(n);
  root_ = insert(root_, n);
  ++per_priority_[priority];
  return rank(n) + 1;
}

const QueuedCall *CallQueue::find(uint64_t call) const {
  auto it = index_.find(call);
  return it == index_.end() ? nullptr : &node(it->second).c;
}

Result<size_t> CallQueue::position(uint64_t call) const {
  auto it = index_.find(call);
  if (it == index_.end()) return Error{Errc::not_found, call_text(call) + ": not queued"};
  return rank(it->second) + 1;
}

std::optional<QueuedCall> CallQueue::at(size_t position) const {
  if (position == 0 || position > size()) return std::nullopt;
  return node(kth(position - 1)).c;
}

std::vector<QueuedCall> CallQueue::expire(Instant now) {
  std::vector<QueuedCall> out;
  for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= now;) {
    int32_t n = index_.at(it->second);
    ++it;  // drop() erases the current element
    if (node(n).c.offer_slot) continue;
    out.push_back(node(n).c);
    drop(n);
    ++expired_;
  }
  return out;
}

std::optional<Instant> CallQueue::next_deadline() const {
  for (const auto &[when, call] : deadlines_)
    if (!node(index_.at(call)).c.offer_slot) return when;
  return std::nullopt;
}

std::optional<Duration> CallQueue::estimated_wait_at(size_t position) const {
  if (!interval_ns_ || position == 0) return std::nullopt;
  double ns = *interval_ns_ * static_cast<double>(position);
  return std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(std::llround(ns)));
}

std::optional<Duration> CallQueue::estimated_wait(uint64_t call) const {
  auto p = position(call);
  if (!p.ok()) return std::nullopt;
  return estimated_wait_at(p.value());
}

Result<Offer> CallQueue::offer(TargetPool &pool, TargetIndex target, Instant now,
                               const std::function<bool(const QueuedCall &)> &accept) {
  // In-order walk to the first call without a pending offer that `accept` allows.
  int32_t found = -1;
  stack_.clear();
  int32_t t = root_;
  while (found < 0 && (t >= 0 || !stack_.empty())) {
    while (t >= 0) {
      stack_.push_back(t);
      t = node(t).left;
    }
    t = stack_.back();
    stack_.pop_back();
    const QueuedCall &c = node(t).c;
    if (!c.offer_slot && (!accept || accept(c))) found = t;
    t = node(t).right;
  }
  if (found < 0)
    return Error{Errc::not_found,
                 empty() ? "the queue is empty" : "no waiting call without a pending offer"};
  auto slot = pool.try_reserve(target, now);
  if (!slot.ok()) return slot.error();
  QueuedCall &c = node(found).c;
  c.offer_slot = slot->id;
  c.offer_target = target;
  ++offered_;
  return Offer{c.call, slot.value()};
}

Status CallQueue::confirm(const Offer &offer, Instant now) {
  auto it = index_.find(offer.call);
  if (it == index_.end()) return Status(Errc::not_found, call_text(offer.call) + ": not queued");
  if (node(it->second).c.offer_slot != offer.slot.id)
    return Status(Errc::bad_state, call_text(offer.call) + ": the offer is not pending");
  Instant from = last_departure_ ? std::max(*last_departure_, busy_since_) : busy_since_;
  double x = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::max(now - from, Duration::zero()))
          .count());
  interval_ns_ = interval_ns_ ? opt_.ewma_alpha * x + (1 - opt_.ewma_alpha) * *interval_ns_ : x;
  last_departure_ = now;
  drop(it->second);
  ++served_;
  return {};
}

Status CallQueue::cancel(const Offer &offer, TargetPool &pool) {
  auto it = index_.find(offer.call);
  if (it == index_.end()) return Status(Errc::not_found, call_text(offer.call) + ": not queued");
  QueuedCall &c = node(it->second).c;
  if (c.offer_slot != offer.slot.id)
    return Status(Errc::bad_state, call_text(offer.call) + ": the offer is not pending");
  (void)pool.release(offer.slot);
  c.offer_slot = 0;
  --offered_;
  return {};
}

QueueStats CallQueue::stats(Instant now) const {
  QueueStats s;
  s.size = size();
  s.offered = offered_;
  if (root_ >= 0) s.oldest_wait = now - node(root_).oldest;
  for (uint32_t p = 0; p <= kMaxQueuePriority; ++p)
    if (per_priority_[p]) s.by_priority.emplace_back(p, per_priority_[p]);
  if (interval_ns_)
    s.service_interval =
        std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(std::llround(*interval_ns_)));
  s.enqueued = enqueued_;
  s.served = served_;
  s.abandoned = abandoned_;
  s.expired = expired_;
  return s;
}

}  // namespace ivr::routing
