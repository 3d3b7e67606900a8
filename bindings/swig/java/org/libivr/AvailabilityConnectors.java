package org.libivr;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The availability connectors of one engine. A daemon timer thread ticks each connector at a
 * fixed rate; a tick hands the poll to a daemon worker thread unless the previous poll still
 * runs (the turn is skipped: polls never overlap, and one slow dialing system never delays
 * another's ticks). A result is pushed; an exception or null is logged and marks the target's
 * data stale. The engine is held weakly: once it is collected, the next poll stops them all.
 */
final class AvailabilityConnectors {
  static final Logger LOG = Logger.getLogger("org.libivr.availability");
  static final long MIN_INTERVAL_MS = 50;
  static final long MAX_INTERVAL_MS = 3_600_000;
  private static final AtomicInteger THREADS = new AtomicInteger();

  private final WeakReference<Engine> engine;
  private final Map<String, Connector> connectors = new HashMap<>();
  private ScheduledExecutorService timer;
  private ExecutorService workers;
  private boolean started;
  private boolean closed;

  AvailabilityConnectors(Engine engine) {
    this.engine = new WeakReference<>(engine);
  }

  synchronized void add(String target, long intervalMs, AvailabilityConnector poll) {
    int einval = ErrorCode.EINVAL.swigValue();
    if (target == null || target.isEmpty()) {
      throw new IvrException(einval, "target: must not be empty");
    }
    if (poll == null) {
      throw new IvrException(einval, "connector: null");
    }
    if (intervalMs < MIN_INTERVAL_MS || intervalMs > MAX_INTERVAL_MS) {
      throw new IvrException(einval, "intervalMs: must be " + MIN_INTERVAL_MS + " to "
          + MAX_INTERVAL_MS + ", got " + intervalMs);
    }
    if (closed) {
      throw new IvrException(ErrorCode.EGONE.swigValue(), "engine: closed");
    }
    Connector connector = new Connector(target, intervalMs, poll);
    Connector old = connectors.put(target, connector);
    if (old != null) {
      old.cancel(); // a poll under way finishes; its result is dropped
    }
    if (started) {
      connector.schedule();
    }
  }

  synchronized boolean remove(String target) {
    Connector connector = connectors.remove(target);
    if (connector == null) {
      return false;
    }
    connector.cancel();
    return true;
  }

  synchronized List<String> targets() {
    List<String> out = new ArrayList<>(connectors.keySet());
    Collections.sort(out);
    return Collections.unmodifiableList(out);
  }

  /** The engine started: every connector polls now, then every interval. */
  synchronized void start() {
    if (started || closed) {
      return;
    }
    started = true;
    for (Connector c : connectors.values()) {
      c.schedule();
    }
  }

  /** Stops every connector; a poll under way is interrupted and its result dropped. */
  void close() {
    ExecutorService t;
    ExecutorService w;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      for (Connector c : connectors.values()) {
        c.cancel();
      }
      connectors.clear();
      t = timer;
      w = workers;
    }
    if (t != null) {
      t.shutdownNow();
    }
    if (w != null) {
      w.shutdownNow();
    }
  }

  private synchronized ScheduledExecutorService timer() {
    if (timer == null) {
      timer = Executors.newSingleThreadScheduledExecutor(daemon("libivr-availability-timer-"));
    }
    return timer;
  }

  private synchronized void execute(Runnable poll) {
    if (closed) {
      throw new RejectedExecutionException("closed");
    }
    if (workers == null) {
      workers = Executors.newCachedThreadPool(daemon("libivr-availability-"));
    }
    workers.execute(poll);
  }

  private static ThreadFactory daemon(String prefix) {
    return r -> {
      Thread t = new Thread(r, prefix + THREADS.incrementAndGet());
      t.setDaemon(true); // never keeps the JVM from exiting
      return t;
    };
  }

  private final class Connector {
    final String target;
    final long intervalMs;
    final AvailabilityConnector poll;
    final AtomicBoolean running = new AtomicBoolean();
    volatile boolean cancelled;
    volatile ScheduledFuture<?> tick;
    long skipped; // the timer thread's
    String lastProblem; // the polls' (one at a time)

    Connector(String target, long intervalMs, AvailabilityConnector poll) {
      this.target = target;
      this.intervalMs = intervalMs;
      this.poll = poll;
    }

    void schedule() {
      tick = timer().scheduleAtFixedRate(this::tick, 0, intervalMs, TimeUnit.MILLISECONDS);
    }

    void cancel() {
      cancelled = true;
      ScheduledFuture<?> t = tick;
      if (t != null) {
        t.cancel(false);
      }
    }

    /** On the timer thread. Never throws: a throwing task would never run again. */
    private void tick() {
      if (cancelled) {
        return;
      }
      if (!running.compareAndSet(false, true)) {
        skipped++;
        LOG.log(Level.FINE, () -> "availability connector " + target
            + ": still polling, turn skipped (" + skipped + " so far)");
        return;
      }
      try {
        execute(this::run);
      } catch (RejectedExecutionException e) {
        running.set(false);
      }
    }

    /** On a worker thread. */
    private void run() {
      try {
        Engine e = engine.get();
        if (e == null) {
          close(); // the engine was collected
          return;
        }
        pollAndPush(e);
      } finally {
        running.set(false);
      }
    }

    private void pollAndPush(Engine e) {
      Availability a;
      try {
        a = poll.poll();
      } catch (Throwable t) {
        if (cancelled) {
          return; // interrupted by close(), or replaced
        }
        problem(e, "availability connector " + target + " threw " + t, t);
        if (t instanceof VirtualMachineError) {
          throw (VirtualMachineError) t;
        }
        return;
      }
      if (cancelled) {
        return;
      }
      if (a == null) {
        problem(e, "availability connector " + target + ": poll() returned null", null);
        return;
      }
      try {
        e.pushAvailability(target, a);
      } catch (IvrException x) {
        if (cancelled) {
          return;
        }
        if (x.code() == ErrorCode.EGONE.swigValue()) {
          cancel(); // the engine stopped or closed: nothing more to push
          LOG.fine(() -> "availability connector " + target + ": stopped with the engine");
          return;
        }
        report("availability connector " + target + ": pushAvailability failed: "
            + x.getMessage(), null);
        return;
      }
      if (lastProblem != null) {
        LOG.info(() -> "availability connector " + target + ": samples again");
        lastProblem = null;
      }
    }

    private void problem(Engine e, String message, Throwable t) {
      report(message + "; availability of target " + target + " marked stale", t);
      try {
        e.markAvailabilityStale(target);
      } catch (IvrException x) {
        LOG.fine(() -> "availability connector " + target + ": markAvailabilityStale failed: "
            + x.getMessage());
      }
    }

    /** The first report of a problem is a warning, repeats are FINE: no flood while a
     *  dialing system is down. */
    private void report(String message, Throwable t) {
      Level level = message.equals(lastProblem) ? Level.FINE : Level.WARNING;
      lastProblem = message;
      LOG.log(level, message, t);
    }
  }
}
