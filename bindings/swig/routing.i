/*
 * Java bindings: routing (ivr/routing.h), %include'd by ivr.i before its declarations. The
 * C++ glue is routing_glue.h; the availability connectors are plain Java
 * (java/org/libivr/AvailabilityConnector*.java), started and stopped with the engine.
 */

/* State snapshots: made by the library only, package-private, turned into Java records. */
%nodefaultctor ivrj::TargetStateNative;
%nodefaultctor ivrj::QueueStatsNative;
%typemap(javaclassmodifiers) ivrj::TargetStateNative "final class"
%typemap(javaclassmodifiers) ivrj::QueueStatsNative "final class"

/* Native pieces that the Java methods below put together: not public. */
%javamethodmodifiers ivrj::Engine::pushAvailabilityNative "private"
%javamethodmodifiers ivrj::Engine::targetStateNative "private"
%javamethodmodifiers ivrj::Engine::queueStatsNative "private"
/* start() and close() also start and stop the availability connectors (Java). */
%javamethodmodifiers ivrj::Engine::start "private"
%rename(startNative) ivrj::Engine::start;
%javamethodmodifiers ivrj::Engine::close "private"
%rename(closeNative) ivrj::Engine::close;

%extend ivrj::Engine {
  /* Each under the Engine's shared lock: a closed engine is IVR_EGONE, never freed memory. */
  void setRouting(const char *json) {
    $self->withLive([&](ivr_engine *e) { ivrj::routing::set_routing(e, json); });
  }
  void pushAvailabilityNative(const char *target, int agentsAvailable, int agentsLoggedIn,
                              int callsWaiting, int longestWaitS) {
    $self->withLive([&](ivr_engine *e) {
      ivrj::routing::push_availability(e, target, agentsAvailable, agentsLoggedIn, callsWaiting,
                                       longestWaitS);
    });
  }
  void markAvailabilityStale(const char *target) {
    $self->withLive([&](ivr_engine *e) { ivrj::routing::mark_availability_stale(e, target); });
  }
  void setTargetDraining(const char *target, bool draining) {
    $self->withLive(
        [&](ivr_engine *e) { ivrj::routing::set_target_draining(e, target, draining); });
  }
  ivrj::TargetStateNative targetStateNative(const char *target) {
    return $self->withLive([&](ivr_engine *e) { return ivrj::routing::target_state(e, target); });
  }
  ivrj::QueueStatsNative queueStatsNative() {
    return $self->withLive([&](ivr_engine *e) { return ivrj::routing::queue_stats(e); });
  }

%proxycode %{
  /* Holds this engine weakly: a connector never keeps an unreachable engine alive. */
  private final AvailabilityConnectors availabilityConnectors = new AvailabilityConnectors(this);

  /**
   * Binds SIP and starts the engine's threads; returns once SIP listens. Availability
   * connectors run from now on.
   */
  public void start() {
    startNative();
    availabilityConnectors.start();
  }

  /**
   * Stops the availability connectors, ends every call and frees the engine; idempotent.
   * Not from a callback.
   */
  @Override
  public void close() {
    availabilityConnectors.close();
    closeNative();
  }

  /**
   * Pushes a fresh agent-availability sample for a target, as a polled connector would.
   * @throws IvrException ENOTFOUND (no such target), ESTATE (routing not configured or the
   *     engine not started), EINVAL (a negative figure, named)
   */
  public void pushAvailability(String target, Availability availability) {
    if (availability == null) {
      throw new IvrException(ErrorCode.EINVAL.swigValue(), "availability: null");
    }
    pushAvailabilityNative(target, availability.agentsAvailable(), availability.agentsLoggedIn(),
        availability.callsWaiting(), availability.longestWaitS());
  }

  /** A target's live state: health, capacity, calls, counters, agent data. */
  public TargetState targetState(String target) {
    TargetStateNative s = targetStateNative(target);
    return new TargetState(s.health(), s.capacity(), s.active(), s.reserved(), s.offered(),
        s.answered(), s.completed(), s.failed(), s.availabilityFresh(), s.idleAgents());
  }

  /** The call queue: calls waiting now, the oldest wait, totals. */
  public QueueStats queueStats() {
    QueueStatsNative s = queueStatsNative();
    return new QueueStats(s.waiting(), s.offered(), s.oldestWaitMs(), s.serviceIntervalMs(),
        s.enqueued(), s.served(), s.abandoned(), s.expired());
  }

  /**
   * Registers (or replaces) the Java connector that reports a target's agent availability.
   * It runs on a daemon thread of its own (so it may block) when the engine starts and then
   * every {@code intervalMs} (50 to 3600000) at a fixed rate; runs never overlap (a turn
   * that comes while one runs is skipped). Its result is pushed as a fresh sample; an
   * exception (or null) is logged (java.util.logging, "org.libivr.availability") and marks
   * the target's data stale. The connectors stop when the engine is closed, stopped or
   * garbage collected.
   */
  public void addAvailabilityConnector(String target, long intervalMs,
                                       AvailabilityConnector connector) {
    if (isClosed()) {
      throw new IvrException(ErrorCode.EGONE.swigValue(), "engine: closed");
    }
    availabilityConnectors.add(target, intervalMs, connector);
  }

  /** Stops and removes a target's connector; false if there was none. */
  public boolean removeAvailabilityConnector(String target) {
    return availabilityConnectors.remove(target);
  }

  /** The targets that have an availability connector, sorted. */
  public java.util.List<String> availabilityConnectors() {
    return availabilityConnectors.targets();
  }
%}
}

namespace ivrj {

class TargetStateNative {
 public:
  ~TargetStateNative();
  TargetHealth health() const;
  int capacity() const;
  int active() const;
  int reserved() const;
  long long offered() const;
  long long answered() const;
  long long completed() const;
  long long failed() const;
  bool availabilityFresh() const;
  long long idleAgents() const;
};

class QueueStatsNative {
 public:
  ~QueueStatsNative();
  int waiting() const;
  int offered() const;
  long long oldestWaitMs() const;
  long long serviceIntervalMs() const;
  long long enqueued() const;
  long long served() const;
  long long abandoned() const;
  long long expired() const;
};

}  // namespace ivrj
