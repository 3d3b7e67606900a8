package org.libivr.tests;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.libivr.EngineOptions;
import org.libivr.IvrException;

/** Checks that count failures, free ports, bounded waits and SIPp calls for the Java tests. */
final class TestSupport {
  private TestSupport() {}

  static int failures = 0;

  static synchronized void check(boolean ok, String what) {
    if (!ok) {
      failures++;
      System.err.println("CHECK failed: " + what);
      new Throwable("here").printStackTrace();
    }
  }

  static void checkEquals(Object expected, Object actual, String what) {
    check(expected == null ? actual == null : expected.equals(actual),
        what + ": expected <" + expected + ">, got <" + actual + ">");
  }

  interface Action {
    void run() throws Exception;
  }

  /** Runs action, which must throw an IvrException of this code; returns it (or null). */
  static IvrException expectIvr(int code, Action action, String what) {
    try {
      action.run();
      check(false, what + ": no exception (expected code " + code + ")");
    } catch (IvrException e) {
      checkEquals(code, e.code(), what + " (" + e.getMessage() + ")");
      check(e.getMessage() != null && !e.getMessage().isEmpty(), what + ": has a message");
      return e;
    } catch (Exception e) {
      check(false, what + ": unexpected " + e);
    }
    return null;
  }

  /** Waits up to timeoutMs for cond; false on timeout. */
  static boolean waitFor(BooleanSupplier cond, long timeoutMs) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      Thread.sleep(20);
    }
    return true;
  }

  /** A loopback UDP port free right now. */
  static int freeUdpPort() throws IOException {
    try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** The first of n consecutive loopback UDP ports (the first even) that are free right now. */
  static int freePortBlock(int n) {
    java.util.Random random = new java.util.Random();
    for (int attempt = 0; attempt < 500; attempt++) {
      int base = (20000 + random.nextInt(40000 - n)) & ~1;
      boolean free = true;
      for (int p = base; p < base + n && free; p++) {
        try (DatagramSocket s = new DatagramSocket(p, InetAddress.getLoopbackAddress())) {
          free = s.getLocalPort() == p;
        } catch (IOException e) {
          free = false;
        }
      }
      if (free) {
        return base;
      }
    }
    throw new IllegalStateException("no block of " + n + " free UDP ports");
  }

  /** Engine options on loopback: a free SIP port (0: the engine binds one), free RTP ports. */
  static EngineOptions loopbackOptions(Path promptDir) {
    int base = freePortBlock(20);
    return new EngineOptions()
        .sipAddress("127.0.0.1")
        .sipPort(0)
        .rtpPorts(base, base + 19)
        .promptDir(promptDir.toString());
  }

  /**
   * Places one SIPp call (the C ABI tests' scenario: From 5551234, To 4000, DTMF by INFO,
   * then waits for our BYE) and waits for SIPp to exit, at most 60 s. SIPp's own status is
   * not checked: flows that hang up early make its INFO transactions fail.
   */
  static void placeCall(Path scenario, int sipPort, Path logDir) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("sipp", "-sf", scenario.toAbsolutePath().toString(),
        "-m", "1", "-nostdin", "-i", "127.0.0.1", "-p", Integer.toString(freeUdpPort()),
        "-timeout", "30s", "-timeout_error", "127.0.0.1:" + sipPort));
    Process sipp = new ProcessBuilder(cmd)
        .redirectErrorStream(true)
        .redirectOutput(logDir.resolve("sipp.log").toFile())
        .directory(logDir.toFile())
        .start();
    if (!sipp.waitFor(60, TimeUnit.SECONDS)) {
      sipp.destroyForcibly();
      sipp.waitFor(10, TimeUnit.SECONDS);
      check(false, "sipp did not exit within 60 s");
    }
  }

  static void deleteTree(Path dir) {
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      System.err.println("cleanup: " + e);
    }
  }
}
