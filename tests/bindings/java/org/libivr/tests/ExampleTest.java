package org.libivr.tests;

import static org.libivr.tests.TestSupport.check;
import static org.libivr.tests.TestSupport.checkEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.libivr.Engine;
import org.libivr.Event;
import org.libivr.EventType;
import org.libivr.examples.LeadRouter;

/**
 * examples/java with a real SIPp call: the caller 5551234 is Alice, score 91, in the
 * example's leads.db, so the Java routing function sends her to the priority queue.
 * Args: the SIPp scenario, the leads database.
 */
public final class ExampleTest {
  private ExampleTest() {}

  public static void main(String[] args) throws Exception {
    Path scenario = Path.of(args[0]);
    Path leads = Path.of(args[1]);
    Path dir = Files.createTempDirectory("ivr-java-example");
    Semaphore ended = new Semaphore(0);
    AtomicReference<Event> end = new AtomicReference<>();
    try (Engine engine = LeadRouter.start(leads, TestSupport.loopbackOptions(dir), event -> {
      if (event.type() == EventType.CALL_ENDED) {
        end.set(event);
        ended.release();
      }
    })) {
      TestSupport.placeCall(scenario, engine.sipPort(), dir);
      check(ended.tryAcquire(30, TimeUnit.SECONDS), "the call ended within 30 s");
      Event e = end.get();
      if (e != null) {
        checkEquals("answer > lookup > decide > priority > done", e.flowPath(), "path");
        checkEquals("routed priority Alice", e.reason(), "reason");
      }
    } finally {
      TestSupport.deleteTree(dir);
    }
    if (TestSupport.failures != 0) {
      System.err.println(TestSupport.failures + " check(s) failed");
      System.exit(1);
    }
    System.out.println("all checks passed");
  }
}
