package org.libivr.tests;

import static org.libivr.tests.TestSupport.check;
import static org.libivr.tests.TestSupport.checkEquals;
import static org.libivr.tests.TestSupport.expectIvr;
import static org.libivr.tests.TestSupport.waitFor;

import java.lang.ref.WeakReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.libivr.Availability;
import org.libivr.DbConnector;
import org.libivr.DbOptions;
import org.libivr.DbQuery;
import org.libivr.Engine;
import org.libivr.EngineOptions;
import org.libivr.ErrorCode;
import org.libivr.Event;
import org.libivr.EventHandler;
import org.libivr.EventType;
import org.libivr.FlowReport;
import org.libivr.FlowVersion;
import org.libivr.IvrException;
import org.libivr.LogHandler;
import org.libivr.LogLevel;
import org.libivr.Problem;
import org.libivr.QueueStats;
import org.libivr.TargetHealth;
import org.libivr.TargetState;
import org.libivr.ValidationException;
import org.libivr.VerbHandler;
import org.libivr.VerbRequest;

/**
 * The Java bindings against a real engine: invalid arguments and flow documents give the
 * documented exceptions; real SIPp calls run flows whose custom verbs and db connector are
 * Java objects (answered from other Java threads), events arrive in order on attached daemon
 * threads, a Java exception in a verb or db connector takes the step's error exit with its
 * message, and handlers survive garbage collection while registered and are released after.
 * Args: the SIPp scenario (tests/capi/scenarios/info_call.xml).
 */
public final class EngineTest {
  private EngineTest() {}

  static final String SIMPLE = """
      {"flow": "simple", "version": "1", "start": "bye",
       "nodes": {"bye": {"verb": "hangup", "reason": "bye"}}}
      """;

  /** The lead's score from a Java connector, the routing decision from a Java verb. */
  static final String MAIN = """
      {"flow": "main", "version": "1", "start": "hello", "nodes": {
        "hello": {"verb": "answer", "next": "lead"},
        "lead": {"verb": "db", "connector": "leads", "query": "lead_by_phone",
                 "params": ["{{call.from}}"], "map": {"score": "score"}, "timeout_ms": 5000,
                 "next": "route", "on_error": "failed"},
        "route": {"verb": "java.route",
                  "args": {"score": "{{vars.score}}", "tier": "{{steps.lead.row.tier}}", "n": 7},
                  "exits": {"vip": "vip"}, "timeout_ms": 10000,
                  "next": "std", "on_error": "failed"},
        "vip": {"verb": "hangup",
                "reason": "vip {{steps.route.queue}} {{vars.score}} {{steps.lead.row.tier}}"},
        "std": {"verb": "hangup", "reason": "std"},
        "failed": {"verb": "hangup", "reason": "failed {{steps.lead.error}}{{steps.route.error}}"}
      }}
      """;

  /** A custom verb whose Java handler throws, or drops the request. */
  static String verbFlow(String id, String verb) {
    return """
        {"flow": "%s", "version": "1", "start": "hello", "nodes": {
          "hello": {"verb": "answer", "next": "step"},
          "step": {"verb": "%s", "timeout_ms": 20000, "next": "done",
                   "on_error": "failed", "on_timeout": "slow"},
          "done": {"verb": "hangup", "reason": "done"},
          "slow": {"verb": "hangup", "reason": "slow"},
          "failed": {"verb": "hangup", "reason": "failed {{steps.step.error}}"}
        }}
        """.formatted(id, verb);
  }

  static final String DB_BOOM = """
      {"flow": "dbboom", "version": "1", "start": "hello", "nodes": {
        "hello": {"verb": "answer", "next": "lead"},
        "lead": {"verb": "db", "connector": "broken", "query": "anything", "timeout_ms": 5000,
                 "next": "done", "on_error": "failed"},
        "done": {"verb": "hangup", "reason": "done"},
        "failed": {"verb": "hangup", "reason": "failed {{steps.lead.reason}}: {{steps.lead.error}}"}
      }}
      """;

  static final List<String> uncaught = Collections.synchronizedList(new ArrayList<>());

  public static void main(String[] args) throws Exception {
    Path scenario = Path.of(args[0]);
    Path dir = Files.createTempDirectory("ivr-java-test");
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> {
      uncaught.add(t.getName() + ": " + e.getMessage());
      System.err.println("uncaught on " + t.getName() + ": " + e);
    });
    try {
      basics();
      invalidArguments(dir);
      validation(dir);
      routing(dir);
      calls(scenario, dir);
    } finally {
      TestSupport.deleteTree(dir);
    }
    if (TestSupport.failures != 0) {
      System.err.println(TestSupport.failures + " check(s) failed");
      System.exit(1);
    }
    System.out.println("all checks passed");
    System.exit(0);
  }

  static void basics() {
    check(Engine.libraryVersion().matches("\\d+\\.\\d+\\.\\d+"), "libraryVersion: "
        + Engine.libraryVersion());
    checkEquals(-1, ErrorCode.EINVAL.swigValue(), "EINVAL");
    checkEquals(-99, ErrorCode.EINTERNAL.swigValue(), "EINTERNAL");
    checkEquals(ErrorCode.EGONE, ErrorCode.of(-5), "ErrorCode.of");
    checkEquals(6, EventType.CALL_ENDED.swigValue(), "CALL_ENDED");
    checkEquals(9, EventType.ROUTE_DECIDED.swigValue(), "ROUTE_DECIDED");
    checkEquals(10, EventType.ROUTE_ATTEMPT.swigValue(), "ROUTE_ATTEMPT");
    checkEquals(11, EventType.CALL_QUEUED.swigValue(), "CALL_QUEUED");
    checkEquals(12, EventType.CALL_DELIVERED.swigValue(), "CALL_DELIVERED");
    checkEquals(2, TargetHealth.DRAINING.swigValue(), "TargetHealth.DRAINING");
  }

  /** Two targets on a closed port, no health probes: routing state without SIP traffic. */
  static String routingConfig(int viciCapacity) {
    return """
        {"targets": {
           "vici": {"uris": ["sip:8300@127.0.0.1:9"], "capacity": %d, "probe": {"enabled": false},
                    "availability": {"rule": "idle_agent", "stale_after_s": 600}},
           "five9": {"uris": ["sip:8400@127.0.0.1:9"], "capacity": 2, "probe": {"enabled": false}}},
         "plans": {"sales": {"entries": [{"strategy": "failover", "targets": ["vici", "five9"]}]}}}
        """.formatted(viciCapacity);
  }

  /** Log records of the availability connectors, for checks. */
  static final class LogCapture extends Handler {
    final List<LogRecord> records = Collections.synchronizedList(new ArrayList<>());

    @Override
    public void publish(LogRecord r) {
      records.add(r);
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}

    boolean has(Level level, String part) {
      synchronized (records) {
        for (LogRecord r : records) {
          if (r.getLevel() == level && r.getMessage().contains(part)) {
            return true;
          }
        }
      }
      return false;
    }

    long count(Level level, String part) {
      synchronized (records) {
        return records.stream()
            .filter(r -> r.getLevel() == level && r.getMessage().contains(part))
            .count();
      }
    }
  }

  static void routing(Path dir) throws Exception {
    Logger log = Logger.getLogger("org.libivr.availability");
    LogCapture capture = new LogCapture();
    log.addHandler(capture);
    log.setUseParentHandlers(false); // expected warnings stay out of the test's output
    Engine e = new Engine(TestSupport.loopbackOptions(dir));
    try {
      IvrException x = expectIvr(-1, () -> e.setRouting("""
          {"targets": {"x": {"uris": ["sip:a@127.0.0.1:9"], "capacity": 0}},
           "plans": {"p": {"entries": [{"targets": ["x"]}]}}}
          """), "capacity 0");
      check(x != null && x.getMessage().contains("routing.targets.x.capacity"),
          "the message names the field: " + (x == null ? null : x.getMessage()));
      expectIvr(-11, () -> e.setRouting("{\"targets\": "), "routing that is not JSON");
      expectIvr(-1, () -> e.setRouting(null), "null routing");

      e.setRouting(routingConfig(4)); // kept, applied at start
      expectIvr(-3, () -> e.pushAvailability("vici", Availability.ofAgentsAvailable(1)),
          "push before start");
      expectIvr(-3, () -> e.targetState("vici"), "targetState before start");

      // A connector registered before start: polls from start on, fresh then stale.
      AtomicInteger polls = new AtomicInteger();
      AtomicBoolean failing = new AtomicBoolean(false);
      AtomicInteger active = new AtomicInteger();
      AtomicInteger maxActive = new AtomicInteger();
      e.addAvailabilityConnector("vici", 50, () -> {
        polls.incrementAndGet();
        maxActive.accumulateAndGet(active.incrementAndGet(), Math::max);
        try {
          Thread.sleep(120); // longer than the interval: turns in between are skipped
          if (failing.get()) {
            throw new java.io.IOException("vicidial API down");
          }
          return new Availability(3, 5, 0, 0);
        } finally {
          active.decrementAndGet();
        }
      });
      checkEquals(List.of("vici"), e.availabilityConnectors(), "availabilityConnectors()");
      Thread.sleep(150);
      checkEquals(0, polls.get(), "no poll before start");
      expectIvr(-1, () -> e.addAvailabilityConnector("five9", 10, () -> null), "interval 10 ms");
      expectIvr(-1, () -> e.addAvailabilityConnector("", 1000, () -> null), "empty target");
      expectIvr(-1, () -> e.addAvailabilityConnector("five9", 1000, null), "null connector");

      e.start();
      TargetState s = e.targetState("five9");
      checkEquals(new TargetState(TargetHealth.UP, 2, 0, 0, 0, 0, 0, 0, false, 0), s,
          "five9 at start");
      check(waitFor(() -> e.targetState("vici").availabilityFresh(), 10000), "fresh from the connector");
      checkEquals(3L, e.targetState("vici").idleAgents(), "idle agents from the connector");
      check(waitFor(() -> polls.get() >= 3, 10000), "the connector polls again");
      checkEquals(1, maxActive.get(), "polls never overlap");
      check(Thread.getAllStackTraces().keySet().stream().anyMatch(
          t -> t.isDaemon() && t.getName().startsWith("libivr-availability-")),
          "connectors run on daemon threads");

      failing.set(true);
      check(waitFor(() -> !e.targetState("vici").availabilityFresh(), 10000),
          "a throwing connector marks the data stale");
      check(waitFor(() -> capture.has(Level.WARNING, "vicidial API down"), 5000),
          "the exception is logged");
      check(capture.has(Level.WARNING, "marked stale"), "the log says stale");
      int seen = polls.get();
      check(waitFor(() -> polls.get() >= seen + 2, 10000), "it goes on polling");
      checkEquals(1L, capture.count(Level.WARNING, "vicidial API down"),
          "the same failure is a warning once");
      failing.set(false);
      check(waitFor(() -> e.targetState("vici").availabilityFresh(), 10000), "fresh again");

      // A connector returning null, then one for an unknown target.
      e.addAvailabilityConnector("vici", 50, () -> null);
      check(waitFor(() -> !e.targetState("vici").availabilityFresh(), 10000), "null: stale");
      check(waitFor(() -> capture.has(Level.WARNING, "returned null"), 5000), "null is logged");
      e.addAvailabilityConnector("genesys", 50, () -> Availability.ofAgentsAvailable(1));
      check(waitFor(() -> capture.has(Level.WARNING, "genesys: pushAvailability failed"), 5000),
          "a push to an unknown target is logged");
      check(e.removeAvailabilityConnector("genesys"), "remove genesys");
      check(!e.removeAvailabilityConnector("genesys"), "remove genesys again");
      check(e.removeAvailabilityConnector("vici"), "remove vici");

      // Direct pushes, draining, the queue.
      e.pushAvailability("vici", new Availability(2, 4, 1, 30));
      s = e.targetState("vici");
      check(s.availabilityFresh() && s.idleAgents() == 2, "pushed: " + s);
      e.markAvailabilityStale("vici");
      check(!e.targetState("vici").availabilityFresh(), "marked stale");
      e.setTargetDraining("five9", true);
      checkEquals(TargetHealth.DRAINING, e.targetState("five9").health(), "draining");
      e.setTargetDraining("five9", false);
      checkEquals(TargetHealth.UP, e.targetState("five9").health(), "up again");
      checkEquals(new QueueStats(0, 0, 0, -1, 0, 0, 0, 0), e.queueStats(), "queueStats");
      expectIvr(-4, () -> e.targetState("nope"), "targetState of an unknown target");
      expectIvr(-4, () -> e.pushAvailability("nope", Availability.ofAgentsAvailable(1)),
          "push to an unknown target");
      expectIvr(-4, () -> e.setTargetDraining("nope", true), "drain an unknown target");
      expectIvr(-1, () -> e.pushAvailability("vici", null), "null availability");
      try {
        new Availability(-1, 0, 0, 0);
        check(false, "a negative figure was accepted");
      } catch (IllegalArgumentException ok) {
        check(ok.getMessage().contains("agentsAvailable"), "names the field: " + ok.getMessage());
      }

      // A new configuration keeps the live state of a target of the same name.
      e.pushAvailability("vici", Availability.ofAgentsAvailable(3));
      e.setRouting(routingConfig(8));
      s = e.targetState("vici");
      check(s.capacity() == 8 && s.availabilityFresh(), "kept across setRouting: " + s);

      // close() stops the connectors.
      AtomicInteger late = new AtomicInteger();
      e.addAvailabilityConnector("vici", 50, () -> {
        late.incrementAndGet();
        return Availability.ofAgentsAvailable(1);
      });
      check(waitFor(() -> late.get() >= 2, 10000), "the last connector polls");
      e.close();
      int atClose = late.get();
      Thread.sleep(300);
      check(late.get() <= atClose + 1, "no poll after close: " + atClose + " -> " + late.get());
      expectIvr(-5, () -> e.addAvailabilityConnector("vici", 50, () -> null), "add after close");
      expectIvr(-5, () -> e.targetState("vici"), "targetState after close");
    } finally {
      e.close();
      log.removeHandler(capture);
      log.setUseParentHandlers(true);
    }
  }

  static void invalidArguments(Path dir) {
    IvrException x = expectIvr(-1, () -> new Engine(TestSupport.loopbackOptions(dir).sipPort(70000)),
        "sipPort out of range");
    check(x != null && x.getMessage().contains("sipPort"), "the message names sipPort");
    expectIvr(-1, () -> new Engine(TestSupport.loopbackOptions(dir).sipAddress("not an address")),
        "sipAddress");
    expectIvr(-1, () -> new Engine(TestSupport.loopbackOptions(dir).rtpPorts(30001, 30000)),
        "RTP range");

    try (Engine e = new Engine(TestSupport.loopbackOptions(dir))) {
      VerbHandler ok = new VerbHandler() {
        @Override
        public void onRequest(VerbRequest r) {
          r.complete();
        }
      };
      x = expectIvr(-1, () -> e.registerVerb("bad name!", ok), "verb name");
      check(x != null && x.error() == ErrorCode.EINVAL, "error() is EINVAL");
      expectIvr(-1, () -> e.registerVerb("answer", ok), "a built-in verb's name");
      x = expectIvr(-1, () -> e.registerVerb("x.y", (VerbHandler) null), "null handler");
      check(x != null && x.getMessage().contains("handler"), "the message names the handler");
      x = expectIvr(-1, () -> e.mapFlow("40\u000000", "main"), "NUL in a string");
      check(x != null && x.getMessage().contains("NUL"), "the message says NUL");
      expectIvr(-4, () -> e.activateFlow("nope", "1"), "activate an unknown flow");
      expectIvr(-11, () -> e.setAuthProfiles("{not json"), "auth profiles that are not JSON");
      x = expectIvr(-1, () -> e.setAuthProfiles("{\"crm\": {\"type\": \"bearer\"}}"),
          "an auth profile without its secret");
      check(x != null && x.getMessage().contains("auth.crm"), "the message names the profile");
      e.setAuthProfiles("{\"crm\": {\"type\": \"bearer\", \"token_secret\": \"crm.token\"}}");
      e.setSecret("crm.token", "s3cr3t");
      e.setSecret("crm.token", null);
      expectIvr(-1, () -> e.setSecret("bad name!", "x"), "secret name");
      expectIvr(-4, () -> e.removeDb("nothing"), "remove an unknown connector");
      x = expectIvr(-1, () -> e.addDb("local", new DbOptions()), "a connector without url");
      check(x != null && x.getMessage().contains("db.local.url"), "the message names the url");
      expectIvr(-1, () -> e.addDb("local", new DbOptions().url("sqlite::memory:").poolSize(-1)),
          "negative pool size");
      check(e.flows().isEmpty(), "no flow yet");
      FlowReport r = e.loadFlow(SIMPLE);
      checkEquals("simple", r.flowId(), "loaded flow id");
      checkEquals("1", r.version(), "loaded version");
      expectIvr(-3, () -> e.loadFlow(SIMPLE), "the same version twice");
      List<FlowVersion> flows = e.flows();
      checkEquals(List.of(new FlowVersion("simple", "1", true, 1)), flows, "flows()");
      e.start();
      check(e.sipPort() > 0, "a SIP port was bound");
      checkEquals(0, e.callCount(), "no call");
      x = expectIvr(-3, e::start, "start twice");
      check(x != null && x.error() == ErrorCode.ESTATE, "error() is ESTATE");
      expectIvr(-3, () -> e.setEventHandler(ev -> {}), "event handler after start");
      e.stop("done");
      e.stop(null);  // idempotent
    }
    Engine closed = new Engine(TestSupport.loopbackOptions(dir));
    closed.close();
    closed.close();  // idempotent
    check(closed.isClosed(), "isClosed");
    expectIvr(-5, closed::start, "start after close");
    expectIvr(-5, () -> closed.registerVerb("a.b", r -> r.complete()), "register after close");
  }

  static void validation(Path dir) {
    try (Engine e = new Engine(TestSupport.loopbackOptions(dir))) {
      String bad = """
          {"flow": "bad", "start": "a", "nodes": {
            "a": {"verb": "no_such_verb", "next": "b"},
            "b": {"verb": "answer", "next": "nowhere"}
          }}
          """;
      FlowReport report = e.validateFlow(bad);
      check(!report.isValid(), "validateFlow: invalid");
      check(report.problems().size() >= 2, "validateFlow: problems " + report.problems());
      try {
        e.loadFlow(bad);
        check(false, "loadFlow accepted a bad document");
      } catch (ValidationException v) {
        checkEquals(-11, v.code(), "ValidationException code");
        checkEquals(ErrorCode.EPARSE, v.error(), "ValidationException error()");
        List<Problem> problems = v.problems();
        check(problems.size() >= 2, "every problem: " + problems);
        boolean dangling = false;
        boolean unknown = false;
        for (Problem p : problems) {
          check(p.line() >= 2 && p.column() >= 1, "line and column: " + p);
          check(p.pointer().startsWith("/nodes/"), "pointer: " + p);
          check(!p.message().isEmpty(), "message: " + p);
          dangling |= p.pointer().equals("/nodes/b/next") && p.message().contains("nowhere");
          unknown |= p.pointer().startsWith("/nodes/a") && p.message().contains("no_such_verb");
        }
        check(dangling, "the dangling exit is reported: " + problems);
        check(unknown, "the unknown verb is reported: " + problems);
        check(v.getMessage().contains("line "), "the message lists the problems: " + v.getMessage());
      }
      try {
        e.loadFlow("{not json");
        check(false, "loadFlow accepted text that is not JSON");
      } catch (ValidationException v) {
        check(!v.problems().isEmpty(), "a problem for text that is not JSON");
      }
      check(e.flows().isEmpty(), "nothing was loaded");

      // Text beyond the Basic Multilingual Plane survives both ways (UTF-8, not JNI's
      // modified UTF-8): the document is valid, and a problem quotes it back.
      String smile = new String(Character.toChars(0x1F600));
      FlowReport okReport = e.loadFlow("""
          {"flow": "utf8", "start": "hi", "nodes": {
            "hi": {"verb": "say", "text": "Gr\u00fc\u00dfe %s", "next": "bye"},
            "bye": {"verb": "hangup", "reason": "%s"}}}
          """.formatted(smile, smile));
      check(okReport.isValid(), "a document with U+1F600 is valid");
      FlowReport quoted = e.validateFlow("""
          {"flow": "q", "start": "a", "nodes": {"a": {"verb": "answer", "next": "x%s"}}}
          """.formatted(smile));
      check(quoted.problems().size() == 1
              && quoted.problems().get(0).message().contains("x" + smile),
          "the problem quotes U+1F600: " + quoted.problems());
    }
  }

  /** The event handler: records everything; never referenced by the test after registering. */
  static final class Recorder extends EventHandler {
    final List<Event> events;
    final Semaphore ended;
    final AtomicBoolean throwOnAnswer;
    final AtomicReference<String> threadProblem;
    final AtomicReference<Engine> closeMe;
    final AtomicInteger closeCode;

    Recorder(List<Event> events, Semaphore ended, AtomicBoolean throwOnAnswer,
             AtomicReference<String> threadProblem, AtomicReference<Engine> closeMe,
             AtomicInteger closeCode) {
      this.events = events;
      this.ended = ended;
      this.throwOnAnswer = throwOnAnswer;
      this.threadProblem = threadProblem;
      this.closeMe = closeMe;
      this.closeCode = closeCode;
    }

    @Override
    public void onEvent(Event event) {
      Thread t = Thread.currentThread();
      if (!t.isDaemon() || !t.getName().startsWith("libivr-")) {
        threadProblem.set("event on thread " + t.getName() + " daemon " + t.isDaemon());
      }
      events.add(event);
      Engine engine = closeMe.getAndSet(null);
      if (engine != null) {  // not allowed from a callback: an exception, not a deadlock
        try {
          engine.close();
          closeCode.set(1);
        } catch (IvrException e) {
          closeCode.set(e.code());
        }
      }
      if (event.type() == EventType.CALL_ANSWERED && throwOnAnswer.getAndSet(false)) {
        throw new IllegalStateException("event handler failure");
      }
      if (event.type() == EventType.CALL_ENDED) {
        ended.release();
      }
    }
  }

  static void calls(Path scenario, Path dir) throws Exception {
    List<Event> events = Collections.synchronizedList(new ArrayList<>());
    Semaphore ended = new Semaphore(0);
    AtomicBoolean throwOnAnswer = new AtomicBoolean(false);
    AtomicReference<String> threadProblem = new AtomicReference<>();
    AtomicReference<Engine> closeMe = new AtomicReference<>();
    AtomicInteger closeCode = new AtomicInteger(0);
    AtomicInteger logLines = new AtomicInteger(0);
    AtomicInteger secondComplete = new AtomicInteger(0);
    AtomicReference<String> verbSaw = new AtomicReference<>("");
    AtomicReference<String> dbSaw = new AtomicReference<>("");
    AtomicInteger cancels = new AtomicInteger(0);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    List<WeakReference<Object>> handlers = new ArrayList<>();

    LogHandler logHandler = new LogHandler() {
      @Override
      public void log(LogLevel level, String subsystem, String message) {
        if (logLines.incrementAndGet() == 1) {
          throw new IllegalStateException("log handler failure");  // reported, not fatal
        }
      }
    };
    handlers.add(new WeakReference<>(logHandler));
    EngineOptions options = TestSupport.loopbackOptions(dir).logLevel(LogLevel.INFO)
        .logHandler(logHandler);
    logHandler = null;
    Engine engine = new Engine(options);
    options = null;  // the engine holds the log handler now

    // Handlers are registered and dropped at once: the engine keeps them alive.
    EventHandler recorder =
        new Recorder(events, ended, throwOnAnswer, threadProblem, closeMe, closeCode);
    handlers.add(new WeakReference<>(recorder));
    engine.setEventHandler(recorder);
    recorder = null;

    VerbHandler route = new VerbHandler() {
      @Override
      public void onRequest(VerbRequest r) {
        verbSaw.set(r.verb() + " " + r.node() + " " + r.call().fromUser() + " " + r.args()
            + " " + Thread.currentThread().isDaemon());
        pool.submit(() -> {  // completed later, from a Java thread of our own
          Thread.sleep(50);
          r.set("queue", "gold-desk");
          r.complete(Integer.parseInt(r.get("score")) >= 80 ? "vip" : null);
          try {
            r.complete();
          } catch (IvrException e) {
            secondComplete.set(e.code());
          }
          return null;
        });
      }
    };
    handlers.add(new WeakReference<>(route));
    engine.registerVerb("java.route", route);
    route = null;

    VerbHandler boom = new VerbHandler() {
      @Override
      public void onRequest(VerbRequest r) {
        throw new IllegalStateException("boom from java");
      }
    };
    handlers.add(new WeakReference<>(boom));
    engine.registerVerb("java.boom", boom);
    boom = null;
    engine.registerVerb("java.drop", r -> {});  // drops the request: the GC fails it

    DbConnector leads = new DbConnector() {
      @Override
      public void query(DbQuery q) {
        dbSaw.set(q.connector() + " " + q.statement() + " " + q.params() + " " + q.maxRows());
        pool.submit(() -> {
          Thread.sleep(30);
          q.setColumns("score", "tier", "note");
          q.addRow(87, "gold", null);
          q.complete();
          return null;
        });
      }

      @Override
      public void cancel(long queryId) {
        cancels.incrementAndGet();
      }
    };
    handlers.add(new WeakReference<>(leads));
    engine.registerDbConnector("leads", leads);
    leads = null;
    DbConnector broken = new DbConnector() {
      @Override
      public void query(DbQuery q) {
        throw new IllegalArgumentException("db exploded");
      }
    };
    handlers.add(new WeakReference<>(broken));
    engine.registerDbConnector("broken", broken);
    broken = null;

    engine.loadFlow(MAIN);
    engine.loadFlow(verbFlow("boom", "java.boom"));
    engine.loadFlow(verbFlow("drop", "java.drop"));
    engine.loadFlow(DB_BOOM);
    engine.start();
    int port = engine.sipPort();

    collectGarbage();
    for (WeakReference<Object> w : handlers) {
      check(w.get() != null, "a registered handler survives garbage collection");
    }

    // 1. The Java connector's answer and the Java verb's decision reach the flow.
    closeMe.set(engine);
    engine.mapFlow("4000", "main");
    Event end = call(engine, scenario, port, dir, ended, events, false);
    checkEquals("hello > lead > route > vip", end.flowPath(), "main: path");
    checkEquals("vip gold-desk 87 gold", end.reason(), "main: reason");
    checkEquals("hangup", end.flowEnd(), "main: flow end");
    checkEquals("main", end.flowId(), "main: flow id");
    checkEquals("java.route route 5551234 {score=87, tier=gold, n=7} true", verbSaw.get(),
        "what the verb saw");
    checkEquals("leads lead_by_phone [5551234] 100", dbSaw.get(), "what the connector saw");
    checkEquals(-3, secondComplete.get(), "completing twice: ESTATE");
    checkEquals(-3, closeCode.get(), "close() from a callback: ESTATE");
    checkEquals(null, threadProblem.get(), "events on attached daemon threads");
    checkEventOrder(events, end.callId(), List.of("hello", "lead", "route", "vip"));
    checkEquals(0, cancels.get(), "no query was cancelled");

    // 2. A Java exception in a verb takes on_error with its message; one in the event
    //    handler goes to the uncaught-exception handler and the call goes on.
    throwOnAnswer.set(true);
    engine.mapFlow("4000", "boom");
    end = call(engine, scenario, port, dir, ended, events, false);
    checkEquals("hello > step > failed", end.flowPath(), "boom: path");
    checkEquals("failed java.boom: boom from java", end.reason(), "boom: reason");
    check(waitFor(() -> uncaught.stream().anyMatch(s -> s.endsWith(": event handler failure")),
        5000), "the event handler's exception was reported: " + uncaught);
    check(uncaught.stream().anyMatch(s -> s.startsWith("libivr-")),
        "reported on the engine's thread: " + uncaught);

    // 3. A Java exception in a db connector fails the step with its message.
    engine.mapFlow("4000", "dbboom");
    end = call(engine, scenario, port, dir, ended, events, false);
    checkEquals("hello > lead > failed", end.flowPath(), "dbboom: path");
    check(end.reason().startsWith("failed query: ") && end.reason().endsWith("db exploded"),
        "dbboom: reason " + end.reason());

    // 4. A request the handler drops is failed when the GC collects it, not at its timeout.
    engine.mapFlow("4000", "drop");
    end = call(engine, scenario, port, dir, ended, events, true);
    checkEquals("hello > step > failed", end.flowPath(), "drop: path");
    checkEquals("failed java.drop: the Java VerbHandler dropped the request without completing it",
        end.reason(), "drop: reason");

    check(logLines.get() > 0, "log lines reached the Java handler");
    check(uncaught.stream().anyMatch(s -> s.endsWith(": log handler failure")),
        "the log handler's exception was reported: " + uncaught);
    for (WeakReference<Object> w : handlers) {
      check(w.get() != null, "registered handlers are still alive");
    }

    // Closing releases every handler, and detaches every engine thread from the JVM.
    engine.close();
    engine = null;
    pool.shutdown();
    check(pool.awaitTermination(10, TimeUnit.SECONDS), "pool stopped");
    check(waitFor(() -> {
      collectGarbage();
      return handlers.stream().allMatch(w -> w.get() == null);
    }, 20000), "handlers are collectable once the engine is closed");
    check(waitFor(() -> Thread.getAllStackTraces().keySet().stream()
        .noneMatch(t -> t.getName().startsWith("libivr-")), 10000),
        "engine threads detached: " + Thread.getAllStackTraces().keySet());
  }

  /** Places a call and returns its CALL_ENDED event (bounded waits throughout). */
  static Event call(Engine engine, Path scenario, int port, Path dir, Semaphore ended,
                    List<Event> events, boolean collectWhileWaiting) throws Exception {
    ended.drainPermits();
    Thread gc = null;
    if (collectWhileWaiting) {
      gc = new Thread(() -> {
        while (!Thread.currentThread().isInterrupted()) {
          collectGarbage();
        }
      });
      gc.setDaemon(true);
      gc.start();
    }
    TestSupport.placeCall(scenario, port, dir);
    boolean ok = ended.tryAcquire(30, TimeUnit.SECONDS);
    if (gc != null) {
      gc.interrupt();
      gc.join(5000);
    }
    if (!ok) {
      check(false, "the call ended within 30 s");
      System.err.println("events: " + events + "\nsipp.log:\n"
          + Files.readString(dir.resolve("sipp.log")));
    }
    check(waitFor(() -> engine.callCount() == 0, 10000), "no call left");
    synchronized (events) {
      for (int i = events.size() - 1; i >= 0; i--) {
        if (events.get(i).type() == EventType.CALL_ENDED) {
          return events.get(i);
        }
      }
    }
    throw new AssertionError("no CALL_ENDED event");
  }

  /** CALL_STARTED first, CALL_ENDED last, one CALL_ANSWERED between, the flow's nodes in order. */
  static void checkEventOrder(List<Event> all, String callId, List<String> nodes) {
    List<Event> evs;
    synchronized (all) {
      evs = all.stream().filter(e -> e.callId().equals(callId)).toList();
    }
    check(evs.size() >= 3, "events of the call: " + evs);
    if (evs.size() < 3) {
      return;
    }
    checkEquals(EventType.CALL_STARTED, evs.get(0).type(), "first event");
    checkEquals(EventType.CALL_ENDED, evs.get(evs.size() - 1).type(), "last event");
    Map<EventType, Long> counts = new java.util.EnumMap<>(EventType.class);
    for (Event e : evs) {
      counts.merge(e.type(), 1L, Long::sum);
    }
    checkEquals(1L, counts.get(EventType.CALL_STARTED), "one CALL_STARTED");
    checkEquals(1L, counts.get(EventType.CALL_ANSWERED), "one CALL_ANSWERED");
    checkEquals(1L, counts.get(EventType.CALL_ENDED), "one CALL_ENDED");
    List<String> seen = new ArrayList<>();
    for (Event e : evs) {
      if (e.type() == EventType.FLOW_STEP
          && (seen.isEmpty() || !seen.get(seen.size() - 1).equals(e.flowNode()))) {
        seen.add(e.flowNode());
      }
    }
    checkEquals(nodes, seen, "the flow's steps in order");
    for (Event e : evs) {
      check(e.flowId().equals("main") && e.toString().startsWith(e.typeName()),
          "every event names the flow: " + e);
    }
  }

  static void collectGarbage() {
    System.gc();
    try {
      Thread.sleep(50);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
