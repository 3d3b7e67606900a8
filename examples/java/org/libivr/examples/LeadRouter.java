package org.libivr.examples;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import org.libivr.DbOptions;
import org.libivr.Engine;
import org.libivr.EngineOptions;
import org.libivr.Event;
import org.libivr.EventType;
import org.libivr.IvrException;
import org.libivr.LogHandler;
import org.libivr.LogLevel;
import org.libivr.VerbRequest;

/**
 * A small IVR with the routing decision in Java. Every call is answered; the flow looks the
 * caller up in a SQLite file of leads (a db step on the engine's built-in SQLite connector),
 * then the custom verb "lead.route", implemented by {@link #route}, picks a queue from the
 * lead's score; the caller hears where the call goes, and the call ends with the reason
 * "routed QUEUE NAME". Callers who are not in the file go to the general queue.
 *
 * <pre>
 * java -Djava.library.path=build/bindings/swig \
 *      -cp build/bindings/swig/ivr.jar:build/examples/java/lead-router.jar \
 *      org.libivr.examples.LeadRouter --leads build/examples/java/leads.db --port 5080
 * </pre>
 */
public final class LeadRouter {
  private LeadRouter() {}

  /** The flow: answer, look the lead up, let Java decide, say where the call goes. */
  static final String FLOW = """
      {
        "flow": "lead_router",
        "version": "1",
        "start": "answer",
        "nodes": {
          "answer": {"verb": "answer", "next": "lookup"},
          "lookup": {
            "verb": "db", "connector": "leads",
            "query": "SELECT name, score FROM leads WHERE phone = ?",
            "params": ["{{call.from}}"],
            "map": {"name": "name", "score": "score"},
            "timeout_ms": 2000,
            "next": "decide", "on_empty": "general", "on_error": "general", "on_timeout": "general"
          },
          "decide": {
            "verb": "lead.route",
            "args": {"phone": "{{call.from}}", "name": "{{vars.name}}", "score": "{{vars.score}}"},
            "exits": {"priority": "priority", "sales": "sales", "nurture": "nurture"},
            "timeout_ms": 2000,
            "next": "general", "on_error": "general", "on_timeout": "general"
          },
          "priority": {"verb": "say", "text": "Welcome back, {{vars.name}}. Your account manager will take your call.", "next": "done"},
          "sales": {"verb": "say", "text": "Thank you, {{vars.name}}. Connecting you to sales.", "next": "done"},
          "nurture": {"verb": "say", "text": "Thank you for calling, {{vars.name}}. We will send you our offers.", "next": "done"},
          "general": {"verb": "say", "text": "Thank you for calling. Please hold for the next agent.", "next": "bye"},
          "done": {"verb": "hangup", "reason": "routed {{steps.decide.queue}} {{vars.name}}"},
          "bye": {"verb": "hangup", "reason": "routed general"}
        }
      }
      """;

  /** The routing decision: a lead's score picks a queue (the flow's exit of the same name). */
  static String queueFor(int score) {
    if (score >= 80) {
      return "priority";
    }
    return score >= 50 ? "sales" : "nurture";
  }

  /**
   * The custom verb. It runs on the engine thread, so it decides at once; work that takes
   * time (a CRM call) would complete the request later, from another thread.
   */
  static void route(VerbRequest request) {
    int score;
    try {
      score = Integer.parseInt(request.get("score"));
    } catch (NumberFormatException e) {
      request.fail("lead " + request.get("phone") + ": no usable score");
      return;
    }
    String queue = queueFor(score);
    request.set("queue", queue);
    request.complete(queue);
  }

  /**
   * Starts an engine that runs the IVR for every number called. The caller closes it.
   * @param leads the SQLite file of leads (read-only)
   * @param listener receives every event, on the engine thread (may be null)
   */
  public static Engine start(Path leads, EngineOptions options, Consumer<Event> listener) {
    if (!Files.isRegularFile(leads)) {
      throw new IllegalArgumentException("leads: no such file: " + leads);
    }
    Engine engine = new Engine(options);
    try {
      engine.addDb("leads", new DbOptions().url("sqlite://" + leads.toAbsolutePath()).readOnly(true));
      engine.registerVerb("lead.route", LeadRouter::route);
      if (listener != null) {
        engine.setEventHandler(listener);
      }
      engine.loadFlow(FLOW);
      engine.mapFlow("*", "lead_router");
      engine.start();
      return engine;
    } catch (RuntimeException e) {
      engine.close();
      throw e;
    }
  }

  public static void main(String[] args) throws InterruptedException {
    Path leads = Path.of("leads.db");
    EngineOptions options = new EngineOptions().sipPort(5080);
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--leads" -> leads = Path.of(args[i + 1]);
        case "--address" -> options.sipAddress(args[i + 1]);
        case "--port" -> options.sipPort(Integer.parseInt(args[i + 1]));
        default -> {
          System.err.println("usage: LeadRouter [--leads FILE] [--address IP] [--port N]");
          System.exit(2);
        }
      }
    }
    options.logLevel(LogLevel.WARN).logHandler(new LogHandler() {
      @Override
      public void log(LogLevel level, String subsystem, String message) {
        System.err.println(level + " " + subsystem + ": " + message);
      }
    });
    CountDownLatch stopped = new CountDownLatch(1);
    Engine engine;
    try {
      engine = start(leads, options, event -> {
        if (event.type() == EventType.CALL_ENDED) {
          System.out.println("call from " + event.call().fromUser() + ": " + event.reason());
        }
      });
    } catch (IvrException | IllegalArgumentException e) {
      System.err.println("lead-router: " + e.getMessage());
      System.exit(1);
      return;
    }
    System.out.println("lead-router: SIP on " + options.sipAddress() + ":" + engine.sipPort()
        + ", leads from " + leads + " (Ctrl-C stops)");
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      engine.close();
      stopped.countDown();
    }));
    stopped.await();
  }
}
